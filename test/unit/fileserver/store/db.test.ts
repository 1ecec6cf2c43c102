import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { MetaDb } from '../../../../fileserver/src/store/db.ts';
import { ManifestDigest } from '../../../../fileserver/src/store/digest.ts';
import type { FileEntry } from '../../../../fileserver/src/store/entry.ts';
import { encodeVersion } from '../../../../fileserver/src/store/version.ts';

const peers = {
  generation: 1,
  peers: [
    { id: 'p1', url: 'http://127.0.0.1:1' },
    { id: 'p2', url: 'http://127.0.0.1:2' },
  ],
};

let clock = 0;
function file(path: string, body: string): FileEntry {
  return {
    path,
    version: encodeVersion({ ms: 1_700_000_000_000, counter: ++clock, nodeId: 'n1' }),
    deleted: false,
    size: body.length,
    sha256: createHash('sha256').update(body).digest('hex'),
    contentType: 'text/plain',
  };
}

/** The cached aggregates of `db` next to what its rows say they must be. */
function aggregates(db: MetaDb) {
  const fromRows = new ManifestDigest();
  for (const e of db.entriesInBuckets(Array.from({ length: 256 }, (_, i) => i))) fromRows.toggle(e.path, e.version, e.deleted ? '' : e.sha256);
  return {
    counts: { ...db.counts },
    digest: db.digest.hex(),
    digestFromRows: fromRows.hex(),
    p1: { ...db.outboxTotals('p1') },
    p1Rows: db.outboxTake('p1', 1000).length,
    p2: { ...db.outboxTotals('p2') },
  };
}

describe('metadata database', () => {
  let dir: string;
  const opened: MetaDb[] = [];
  const open = (file: string) => {
    const db = MetaDb.open(file);
    opened.push(db);
    return db;
  };

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fc-db-'));
  });
  afterEach(async () => {
    for (const db of opened.splice(0)) db.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('a failed step undoes its changes to the counts, the digest and the outbox totals along with its rows', () => {
    const db = MetaDb.create(join(dir, 'store.db'), peers);
    opened.push(db);
    const a = file('a', 'aaa');
    const b = file('b', 'bbbb');
    const c = file('c', 'cc');
    db.begin();
    db.step(() => db.applyEntry(a, { data: Buffer.from('aaa') }, ['p1', 'p2'], 1));
    assert.throws(
      () =>
        db.step(() => {
          db.applyEntry(b, { data: Buffer.from('bbbb') }, ['p1', 'p2'], 2);
          db.applyEntry(file('a', 'a2'), { data: Buffer.from('a2') }, ['p1'], 2);
          db.ack('p2', [[a.path, a.version]]);
          throw new Error('refused');
        }),
      /refused/,
    );
    db.step(() => db.applyEntry(c, { data: Buffer.from('cc') }, ['p1'], 3));
    db.commit();

    const expected = new ManifestDigest();
    for (const e of [a, c]) expected.toggle(e.path, e.version, e.sha256);
    const mem = aggregates(db);
    assert.deepEqual(mem.counts, { liveFiles: 2, liveBytes: 5, tombstones: 0 });
    assert.deepEqual(mem.digest, expected.hex());
    assert.deepEqual(mem.digestFromRows, expected.hex());
    assert.deepEqual(mem.p1, { changes: 2, bytes: 5 });
    assert.equal(mem.p1Rows, 2);
    assert.deepEqual(mem.p2, { changes: 1, bytes: 3 });
    db.close();
    opened.length = 0;
    assert.deepEqual(aggregates(open(join(dir, 'store.db'))), mem);
  });

  it('writes the aggregates in the same commit as the changes: a copy of the files right after each commit, as a crash leaves them, reads back the same', async () => {
    const db = MetaDb.create(join(dir, 'store.db'), peers);
    opened.push(db);
    for (let round = 0; round < 3; round++) {
      db.begin();
      for (let i = 0; i < 20; i++) {
        const e = file(`r${round}/f${i}`, `body ${round} ${i}`);
        db.step(() => db.applyEntry(e, { data: Buffer.from(`body ${round} ${i}`) }, ['p1', 'p2'], round));
      }
      db.step(() =>
        db.ack(
          'p1',
          db.outboxTake('p1', 7).map((o) => [o.path, o.version] as const),
        ),
      );
      db.commit();
      // The database stays open (no checkpoint, no close): the log holds what the commit wrote.
      const copy = join(dir, `copy-${round}`);
      await copyFile(join(dir, 'store.db'), `${copy}.db`);
      await copyFile(join(dir, 'store.db-wal'), `${copy}.db-wal`);
      const reopened = aggregates(open(`${copy}.db`));
      assert.deepEqual(reopened, aggregates(db));
      assert.deepEqual(reopened.digest, reopened.digestFromRows);
      assert.deepEqual(reopened.counts.liveFiles, 20 * (round + 1));
    }
  });
});
