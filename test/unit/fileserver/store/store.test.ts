import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, open, readdir, readFile, rm, truncate, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { pino } from 'pino';
import { HttpError, toHttpError } from '../../../../fileserver/src/errors.ts';
import { DiskObjectFiles, type ObjectCopy, type ObjectFiles, type ObjectWriter } from '../../../../fileserver/src/store/object-files.ts';
import { INLINE_MAX_BYTES, Store, type StoreOptions } from '../../../../fileserver/src/store/store.ts';
import { createMetrics } from '../../../../fileserver/src/metrics.ts';
import { encodeVersion, HybridClock, parseVersion } from '../../../../fileserver/src/store/version.ts';

const logger = pino({ level: 'silent' });
const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
const peers = { generation: 1, peers: [{ id: 'p1', url: 'http://127.0.0.1:1' }, { id: 'p2', url: 'http://127.0.0.1:2' }] };
/** Nothing is owed to anyone, so the recent-writes cache holds nothing and reads go to the store's files. */
const noPeers = { generation: 1, peers: [] };

/**
 * FAKE: stands in for a full volume, which cannot be created here without privileges. Object bytes are
 * written to /dev/full, so the kernel itself answers ENOSPC. The journal stays on the real disk.
 */
class FakeFullDiskObjectFiles implements ObjectFiles {
  async copyOut(copies: ObjectCopy[]): Promise<void> {
    for (const c of copies) await writeFile('/dev/full', Buffer.alloc(c.size));
  }
  async openLarge(): Promise<ObjectWriter> {
    const fh = await open('/dev/full', 'w');
    return {
      write: async (chunks) => {
        await fh.writev(chunks);
      },
      sync: () => fh.datasync(),
      close: () => fh.close(),
    };
  }
  async close(): Promise<void> {}
}

async function readAll(store: Store, path: string): Promise<Buffer | undefined> {
  const e = store.get(path);
  if (e && !e.deleted && e.size <= INLINE_MAX_BYTES) return store.readSmall(path, { keep: false })?.data;
  const f = await store.openFile(path);
  if (!f) return undefined;
  try {
    return await f.fh.readFile();
  } finally {
    await f.fh.close();
  }
}

describe('store', () => {
  let dir: string;
  const opened: Store[] = [];
  const objectNames = async () => (await readdir(join(dir, 'objects'))).sort();
  const openStore = async (o: Partial<StoreOptions> = {}) => {
    const s = await Store.open({ dataDir: dir, clock: new HybridClock('n1'), logger, initialPeers: peers, ...o });
    opened.push(s);
    return s;
  };

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fc-store-'));
  });
  afterEach(async () => {
    await Promise.all(opened.map((s) => s.close().catch(() => undefined)));
    opened.length = 0;
    await rm(dir, { recursive: true, force: true });
  });

  it('serves a small file read before from memory, and never its old bytes after an overwrite or a delete', async () => {
    const s = await openStore();
    const first = randomBytes(4096);
    const second = randomBytes(4096);
    await s.put('hot.bin', [first], first.length, { contentType: 'x/y' });
    assert.deepEqual(s.readSmall('hot.bin')?.data, first);
    assert.deepEqual(s.readSmall('hot.bin')?.data, first);
    const e = await s.put('hot.bin', [second], second.length, { contentType: 'x/y' });
    const again = s.readSmall('hot.bin');
    assert.equal(again?.entry, e);
    assert.deepEqual(again?.data, second);
    await s.delete('hot.bin', {});
    assert.equal(s.readSmall('hot.bin'), undefined);
  });

  it('keeps bytes read for replication out of the hot cache, and bytes read by clients in it', async () => {
    // No peers, so nothing is owed and the recent-writes cache does not hold the file either.
    const s = await openStore({ initialPeers: noPeers });
    const stored = randomBytes(4096);
    const e = await s.put('scan.bin', [stored], stored.length, { contentType: 'x/y' });
    await s.compact();
    assert.deepEqual(s.readSmall('scan.bin', { keep: false })?.data, stored);
    // Object files never change in operation; changing one here shows where the next read's bytes come from.
    const changed = randomBytes(4096);
    await writeFile(join(dir, 'objects', e.blob), changed);
    assert.deepEqual(s.readSmall('scan.bin')?.data, changed, 'a replication read kept the bytes');
    await writeFile(join(dir, 'objects', e.blob), stored);
    assert.deepEqual(s.readSmall('scan.bin')?.data, changed, 'a client read did not keep the bytes');
  });

  it('stores small and large files and reads back the same bytes, versions and hashes after a clean restart', async () => {
    const s = await openStore();
    const small = randomBytes(1000);
    const large = randomBytes(300 * 1024);
    const e1 = await s.put('a/b/small.bin', [small], small.length, { contentType: 'x/y' });
    const e2 = await s.put('large.bin', [large.subarray(0, 100_000), large.subarray(100_000)], large.length, { contentType: 'application/octet-stream' });
    assert.equal(e1.sha256, sha(small));
    await s.close();
    const s2 = await openStore();
    assert.deepEqual(await readAll(s2, 'a/b/small.bin'), small);
    assert.deepEqual(await readAll(s2, 'large.bin'), large);
    assert.equal(s2.get('large.bin')?.version, e2.version);
    assert.equal(s2.get('a/b/small.bin')?.deleted === false && s2.get('a/b/small.bin')?.deleted === false ? 'x/y' : '', 'x/y');
    assert.equal(s2.state.liveFiles, 2);
    assert.equal(s2.state.liveBytes, small.length + large.length);
    const next = await s2.put('again', [Buffer.from('x')], 1, { contentType: 'a/b' });
    assert.ok(next.version > e2.version, 'the clock continues after the newest stored version');
  });

  it('recovers acknowledged writes after a crash (no clean close), rebuilding small objects from the journal', async () => {
    const s = await openStore();
    const bodies = Array.from({ length: 50 }, (_, i) => randomBytes(100 + i));
    await Promise.all(bodies.map((b, i) => s.put(`f/${i}`, [b], b.length, { contentType: 'a/b' })));
    await s.delete('f/7', {});
    // Simulate lost page cache: small objects are durable only through the journal until compaction.
    for (const name of await readdir(join(dir, 'objects'))) await truncate(join(dir, 'objects', name), 0);
    const s2 = await openStore();
    for (let i = 0; i < bodies.length; i++) {
      if (i === 7) assert.equal(await readAll(s2, 'f/7'), undefined);
      else assert.deepEqual(await readAll(s2, `f/${i}`), bodies[i], `f/${i}`);
    }
    assert.equal(s2.get('f/7')?.deleted, true);
    // What each peer is owed survives the crash too.
    assert.equal(s2.state.outbox.size('p1'), 50);
    assert.equal(s2.state.outbox.size('p2'), 50);
  });

  it('replays a journal longer than one read window', async () => {
    const s = await openStore();
    const bodies = Array.from({ length: 200 }, () => randomBytes(60 * 1024));
    await Promise.all(bodies.map((b, i) => s.put(`w/${i}`, [b], b.length, { contentType: 'a/b' })));
    for (const name of await readdir(join(dir, 'objects'))) await truncate(join(dir, 'objects', name), 0);
    const s2 = await openStore();
    for (const i of [0, 77, 133, 199]) assert.deepEqual(await readAll(s2, `w/${i}`), bodies[i]);
  });

  it('ignores a torn journal tail and removes objects no entry references', async () => {
    const s = await openStore();
    await s.put('kept', [Buffer.from('kept')], 4, { contentType: 'a/b' });
    const journal = (await readdir(join(dir, 'journal'))).find((n) => n.endsWith('.log'))!;
    const fh = await open(join(dir, 'journal', journal), 'a');
    await fh.write(Buffer.from([200, 0, 0, 0, 5, 0, 0, 0, 1, 2, 3, 4, 5, 6]));
    await fh.close();
    const orphan = join(dir, 'objects', 'deadbeef');
    await (await open(orphan, 'w')).close();
    const s2 = await openStore();
    assert.deepEqual(await readAll(s2, 'kept'), Buffer.from('kept'));
    assert.ok(!(await readdir(join(dir, 'objects'))).includes('deadbeef'));
  });

  it('compacts the journal into a snapshot and keeps every file', async () => {
    const s = await openStore({ compactBytes: 20_000 });
    for (let i = 0; i < 40; i++) await s.put(`c/${i}`, [Buffer.alloc(2000, i)], 2000, { contentType: 'a/b' });
    await s.close();
    const s2 = await openStore();
    for (let i = 0; i < 40; i++) assert.deepEqual(await readAll(s2, `c/${i}`), Buffer.alloc(2000, i));
    const names = await readdir(join(dir, 'journal'));
    assert.ok(names.some((n) => n.startsWith('snapshot-')), names.join());
  });

  it('writes and reloads a snapshot larger than one serialisation slice', async () => {
    const s = await openStore();
    await Promise.all(Array.from({ length: 2500 }, (_, i) => s.put(`many/${i}`, [Buffer.from(String(i))], String(i).length, { contentType: 'a/b' })));
    await s.close();
    const s2 = await openStore();
    assert.equal(s2.state.liveFiles, 2500);
    assert.deepEqual(await readAll(s2, 'many/2345'), Buffer.from('2345'));
    assert.equal(s2.state.outbox.size('p2'), 2500);
  });

  it('keeps only the latest version per path in each peer queue, and acks clear it', async () => {
    const s = await openStore();
    let last;
    for (let i = 0; i < 5; i++) last = await s.put('hot', [Buffer.from(`v${i}`)], 2, { contentType: 'a/b' });
    assert.equal(s.state.outbox.size('p1'), 1);
    assert.equal(s.state.outbox.take('p1', 10)[0]![1].version, last!.version);
    s.ack('p1', [['hot', last!.version]]);
    assert.equal(s.state.outbox.size('p1'), 0);
    assert.equal(s.state.outbox.size('p2'), 1);
    assert.equal(s.state.outbox.oldestSince('p1'), undefined);
  });

  it('enforces If-Match / If-None-Match as compare-and-swap', async () => {
    const s = await openStore();
    const e = await s.put('cas', [Buffer.from('1')], 1, { contentType: 'a/b', ifNoneMatch: '*' });
    await assert.rejects(s.put('cas', [Buffer.from('2')], 1, { contentType: 'a/b', ifNoneMatch: '*' }), (err: HttpError) => err.status === 412);
    await assert.rejects(s.put('cas', [Buffer.from('2')], 1, { contentType: 'a/b', ifMatch: ['"stale"'] }), (err: HttpError) => err.status === 412);
    await s.put('cas', [Buffer.from('3')], 1, { contentType: 'a/b', ifMatch: [`"${e.version}"`] });
    assert.deepEqual(await readAll(s, 'cas'), Buffer.from('3'));
  });

  it('stores nothing when the body does not match Content-SHA256 or its declared length', async () => {
    const s = await openStore();
    await assert.rejects(s.put('bad', [Buffer.from('abc')], 3, { contentType: 'a/b', sha256: sha('abd') }), (err: HttpError) => err.status === 400);
    await assert.rejects(s.put('short', [Buffer.from('ab')], 3, { contentType: 'a/b' }), (err: HttpError) => err.status === 400);
    await assert.rejects(s.put('long', [Buffer.from('abcd')], 3, { contentType: 'a/b' }), (err: HttpError) => err.status === 400);
    assert.equal(s.get('bad'), undefined);
    assert.deepEqual(await readdir(join(dir, 'objects')), []);
  });

  it('maps a full disk to 507 and leaves earlier data intact (object writes go to a fake full disk)', async () => {
    const s = await openStore();
    await s.put('before', [Buffer.from('safe')], 4, { contentType: 'a/b' });
    await s.close();
    const full = await openStore({ objectFiles: new FakeFullDiskObjectFiles() });
    const size = 200 * 1024;
    const err = await full.put('after', [Buffer.alloc(size)], size, { contentType: 'a/b' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.equal(toHttpError(err).status, 507, String(err));
    assert.equal(full.get('after'), undefined);
    assert.deepEqual(await readAll(full, 'before'), Buffer.from('safe'));
  });

  it('serves small files from the journal until compaction has written their object files', async () => {
    const s = await openStore({ initialPeers: noPeers });
    const bodies = Array.from({ length: 20 }, (_, i) => randomBytes(1000 + i));
    await Promise.all(bodies.map((b, i) => s.put(`j/${i}`, [b], b.length, { contentType: 'a/b' })));
    await s.put('j/0', [Buffer.from('newer')], 5, { contentType: 'a/b' });
    await s.delete('j/1', {});
    await s.put('j/empty', [], 0, { contentType: 'a/b' });
    assert.deepEqual(await objectNames(), [], 'no object file before compaction');
    const journalsBefore = (await readdir(join(dir, 'journal'))).filter((n) => n.endsWith('.log'));
    assert.deepEqual(s.readSmall('j/5', { keep: false })?.data, bodies[5]);
    await s.compact();
    const live = [...s.state.entries.values()].filter((e) => !e.deleted && e.size > 0);
    assert.deepEqual(await objectNames(), live.map((e) => (e.deleted ? '' : e.blob)).sort(), 'one object file per live non-empty file');
    const journalsAfter = (await readdir(join(dir, 'journal'))).filter((n) => n.endsWith('.log'));
    assert.ok(journalsBefore.every((n) => !journalsAfter.includes(n)), `old journals deleted: ${journalsAfter.join()}`);
    for (const e of live) assert.deepEqual(await readFile(join(dir, 'objects', e.deleted ? '' : e.blob)), s.readSmall(e.path, { keep: false })?.data);
    assert.deepEqual(s.readSmall('j/0')?.data, Buffer.from('newer'));
    assert.equal(s.readSmall('j/1'), undefined);
    assert.deepEqual(s.readSmall('j/empty')?.data, Buffer.alloc(0));
    for (let i = 2; i < bodies.length; i++) assert.deepEqual(s.readSmall(`j/${i}`, { keep: false })?.data, bodies[i], `j/${i}`);
  });

  it('leaves no object file for a small file superseded while compaction writes it out', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let started!: () => void;
    const copying = new Promise<void>((r) => (started = r));
    const disk = new DiskObjectFiles();
    // The real writer, held at the moment it has written the object files and compaction is about to retire the journal entries.
    const gated: ObjectFiles = {
      copyOut: async (copies) => {
        await disk.copyOut(copies);
        started();
        await gate;
      },
      openLarge: (p) => disk.openLarge(p),
      close: () => disk.close(),
    };
    const s = await openStore({ initialPeers: noPeers, objectFiles: gated });
    const old = await s.put('moving', [Buffer.from('old bytes')], 9, { contentType: 'a/b' });
    const kept = await s.put('still', [Buffer.from('kept')], 4, { contentType: 'a/b' });
    const compaction = s.compact();
    await copying;
    assert.ok((await objectNames()).includes(old.blob), 'the writer wrote the old object');
    const next = await s.put('moving', [Buffer.from('new')], 3, { contentType: 'a/b' });
    release();
    await compaction;
    assert.deepEqual(await objectNames(), [kept.blob].sort(), 'only the object of the file still current');
    assert.deepEqual(s.readSmall('moving')?.data, Buffer.from('new'));
    assert.equal(s.get('moving'), next);
    await s.compact();
    assert.deepEqual(await objectNames(), [kept.blob, next.blob].sort());
  });

  it('keeps small files in the journal when their object files cannot be written, and writes them after a restart', async () => {
    const full = await openStore({ initialPeers: noPeers, objectFiles: new FakeFullDiskObjectFiles() });
    const body = randomBytes(3000);
    const e = await full.put('stays', [body], body.length, { contentType: 'a/b' });
    await full.compact();
    assert.deepEqual(full.readSmall('stays', { keep: false })?.data, body, 'readable from the journal after a failed compaction');
    assert.ok((await readdir(join(dir, 'journal'))).some((n) => n.endsWith('.log')));
    await full.close();
    // A crash while writing it out can leave a partial object file; the journal still holds the bytes.
    await writeFile(join(dir, 'objects', e.blob), body.subarray(0, 10));
    const s = await openStore({ initialPeers: noPeers });
    assert.deepEqual(s.readSmall('stays', { keep: false })?.data, body);
    await s.compact();
    assert.deepEqual(await readFile(join(dir, 'objects', e.blob)), body);
    assert.deepEqual(s.readSmall('stays', { keep: false })?.data, body);
  });

  it('applies replicated changes by last-writer-wins and does not owe them onwards', async () => {
    const s = await openStore();
    const local = await s.put('x', [Buffer.from('local')], 5, { contentType: 'a/b' });
    const older = { path: 'x', version: '000000000001' + '0000-zz', deleted: false, size: 3, sha256: sha('old'), contentType: 'a/b' };
    assert.equal(await s.applyRemote(older, [Buffer.from('old')]), 'stale');
    const newer = { ...older, version: 'ffffffffff000000-aa', sha256: sha('new') };
    assert.equal(await s.applyRemote(newer, [Buffer.from('new')]), 'applied');
    assert.deepEqual(await readAll(s, 'x'), Buffer.from('new'));
    assert.ok(s.state.outbox.take('p1', 10).every(([, p]) => p.version === local.version), 'only the local write is owed');
    await assert.rejects(s.applyRemote({ ...newer, path: 'y', version: 'ffffffffff000001-aa' }, [Buffer.from('bad')]), (e: HttpError) => e.status === 400);
  });

  it('applies a batch of small replicated changes as one-by-one application would, a bad one as its error', async () => {
    const s = await openStore();
    const local = await s.put('mine', [Buffer.from('local')], 5, { contentType: 'a/b' });
    await s.put('gone', [Buffer.from('x')], 1, { contentType: 'a/b' });
    const v = (n: number) => `ffffffffff${String(n).padStart(6, '0')}-aa`;
    const put = (path: string, body: string, version: string) => ({
      h: { path, version, deleted: false, size: body.length, sha256: sha(body), contentType: 'a/b' },
      data: Buffer.from(body),
    });
    const results = await s.applyRemoteBatch([
      put('new', 'fresh', v(1)),
      put('mine', 'older', '000000000001' + '0000-zz'),
      { ...put('bad', 'abc', v(2)), data: Buffer.from('abd') },
      { h: { path: 'gone', version: v(3), deleted: true, size: 0, sha256: '', contentType: '' }, data: Buffer.alloc(0) },
      put('twice', 'one', v(4)),
      put('twice', 'two', v(5)),
    ]);
    assert.deepEqual(results.map((r) => (r instanceof Error ? (r as HttpError).status : r)), ['applied', 'stale', 400, 'applied', 'applied', 'applied']);
    assert.deepEqual(s.readSmall('new')?.data, Buffer.from('fresh'));
    assert.equal(s.get('mine'), local, 'a stale change leaves the local file');
    assert.equal(s.get('bad'), undefined);
    assert.equal(s.get('gone')?.deleted, true);
    assert.deepEqual(s.readSmall('twice')?.data, Buffer.from('two'), 'a path repeated in a batch ends at its newest version');
    assert.ok(s.state.outbox.take('p1', 10).every(([, p]) => p.version !== v(1)), 'replicated changes are not owed onwards');
    const s2 = await openStore();
    assert.deepEqual(s2.readSmall('new')?.data, Buffer.from('fresh'), 'durable: replayed after a crash');
  });

  it('refuses replicated changes whose versions lie too far ahead of its clock, and its clock stays put', async () => {
    const metrics = createMetrics();
    const s = await openStore({ clock: new HybridClock('n1', Date.now, 60_000), metrics });
    const at = (aheadMs: number, nodeId: string) => encodeVersion({ ms: Date.now() + aheadMs, counter: 0, nodeId });
    const change = (path: string, version: string, body: string) => ({ path, version, deleted: false, size: body.length, sha256: sha(body), contentType: 'a/b' });
    const big = Buffer.alloc(INLINE_MAX_BYTES + 1, 7);
    assert.equal(await s.applyRemote({ ...change('large', at(3_600_000, 'fast'), ''), size: big.length, sha256: sha(big) }, [big]), 'clock_ahead');
    const results = await s.applyRemoteBatch([
      { h: change('future', at(10 * 365 * 86_400_000, 'fast'), 'x'), data: Buffer.from('x') },
      { h: change('near', at(30_000, 'slightly-fast'), 'y'), data: Buffer.from('y') },
      { h: { ...change('gone', at(3_600_000, 'fast'), ''), deleted: true }, data: Buffer.alloc(0) },
    ]);
    assert.deepEqual(results, ['clock_ahead', 'applied', 'clock_ahead']);
    assert.equal(s.get('large'), undefined);
    assert.equal(s.get('future'), undefined);
    assert.equal(s.get('gone'), undefined);
    assert.equal((await metrics.clockDriftRejections.get()).values.find((v) => v.labels.origin === 'fast')?.value, 3);
    const mine = await s.put('mine', [Buffer.from('m')], 1, { contentType: 'a/b' });
    const ahead = parseVersion(mine.version)!.ms - Date.now();
    assert.ok(ahead <= 30_000, `the next local version is ${ahead} ms ahead: only the accepted change moved the clock`);
  });

  it('settles one version held with different bytes on the higher SHA-256, counts it, and replays the same way', async () => {
    const metrics = createMetrics();
    const s = await openStore({ initialPeers: noPeers, metrics });
    const version = encodeVersion({ ms: Date.now(), counter: 0, nodeId: 'dup' });
    const [low, high] = ['one', 'two'].map((x) => Buffer.from(x)).sort((x, y) => (sha(x) < sha(y) ? -1 : 1)) as [Buffer, Buffer];
    const change = (b: Buffer) => ({ path: 'dup.txt', version, deleted: false, size: b.length, sha256: sha(b), contentType: 'a/b' });
    assert.equal(await s.applyRemote({ path: 'dup.txt', version, deleted: true, size: 0, sha256: '', contentType: '' }, []), 'applied');
    assert.deepEqual(await s.applyRemoteBatch([{ h: change(low), data: low }]), ['applied'], 'a file beats a delete of one version');
    assert.equal(await s.applyRemote(change(high), [high]), 'applied');
    assert.equal(await s.applyRemote(change(low), [low]), 'stale');
    assert.deepEqual(await s.applyRemoteBatch([{ h: change(low), data: low }]), ['stale']);
    assert.deepEqual(await readAll(s, 'dup.txt'), high);
    assert.equal((await metrics.contentConflicts.get()).values[0]?.value, 4);
    const digest = s.state.digest.hex();
    await s.close();
    const replayed = await openStore({ initialPeers: noPeers });
    assert.deepEqual(await readAll(replayed, 'dup.txt'), high, 'the journal replays to the same winner');
    assert.deepEqual(replayed.state.digest.hex(), digest);
  });

  it("counts a tombstone's retention from when this node received it, not from its version's time", async () => {
    const s = await openStore({ initialPeers: noPeers });
    const day = 86_400_000;
    const old = encodeVersion({ ms: Date.now() - 2 * day, counter: 0, nodeId: 'slow' });
    assert.equal(await s.applyRemote({ path: 'old-delete', version: old, deleted: true, size: 0, sha256: '', contentType: '' }, []), 'applied');
    assert.equal(await s.collectTombstones(Date.now(), day), 0, 'received just now: kept for the retention');
    await s.compact();
    await s.close();
    const again = await openStore({ initialPeers: noPeers });
    assert.equal(await again.collectTombstones(Date.now() + day / 2, day), 0, 'the receipt time survives a snapshot and a restart');
    assert.equal(await again.collectTombstones(Date.now() + day + 1000, day), 1);
  });

  it('collects a tombstone only once no peer is owed it and the retention passed', async () => {
    const s = await openStore();
    await s.put('t', [Buffer.from('1')], 1, { contentType: 'a/b' });
    const t = await s.delete('t', {});
    assert.equal(await s.collectTombstones(Date.now() + 10_000, 0), 0, 'peers still owed the delete');
    s.ack('p1', [['t', t.version]]);
    s.ack('p2', [['t', t.version]]);
    assert.equal(await s.collectTombstones(Date.now(), 60_000), 0, 'too young');
    assert.equal(await s.collectTombstones(Date.now() + 120_000, 60_000), 1);
    assert.equal(s.get('t'), undefined);
    assert.equal(s.state.tombstones, 0);
  });

  it('lists live files in order with paging and prefix', async () => {
    const s = await openStore();
    for (const p of ['b/2', 'a/1', 'b/1', 'b/3', 'c']) await s.put(p, [Buffer.from(p)], p.length, { contentType: 'a/b' });
    await s.delete('b/2', {});
    const page1 = s.list('b/', 1, undefined);
    assert.deepEqual(page1.entries.map((e) => e.path), ['b/1']);
    const page2 = s.list('b/', 1, page1.next);
    assert.deepEqual(page2.entries.map((e) => e.path), ['b/3']);
    assert.equal(page2.next, undefined);
    assert.deepEqual(s.list('', 10, undefined).entries.map((e) => e.path), ['a/1', 'b/1', 'b/3', 'c']);
  });
});

describe('journal frames', () => {
  it('a journal file is only ever read up to its last intact frame', async () => {
    const { encodeFrame, decodeFrames } = await import('../../../../fileserver/src/store/journal.ts');
    const a = Buffer.concat(encodeFrame({ t: 'gc', path: 'a', version: 'v' }));
    const b = Buffer.concat(encodeFrame({ t: 'gc', path: 'b', version: 'v' }, Buffer.from('data')));
    const both = Buffer.concat([a, b]);
    assert.equal(decodeFrames(both).records.length, 2);
    assert.equal(decodeFrames(both.subarray(0, both.length - 1)).validBytes, a.length);
    const flipped = Buffer.from(both);
    flipped[flipped.length - 2]! ^= 1;
    assert.equal(decodeFrames(flipped).records.length, 1);
    const withData = decodeFrames(both).records[1]!;
    assert.deepEqual(withData.data, Buffer.from('data'));
    assert.deepEqual(both.subarray(withData.dataOffset, withData.dataOffset + 4), Buffer.from('data'), 'dataOffset points at the data');
    void readFile;
    void unlink;
  });
});
