import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { entriesToPull, fetchChunks, nextCursor } from '../../../../fileserver/src/replication/catchup.ts';
import { manifestAnswer } from '../../../../fileserver/src/replication/catchup-server.ts';
import { ManifestRequest, type ManifestItem } from '../../../../fileserver/src/replication/catchup-wire.ts';
import { bucketOf } from '../../../../fileserver/src/store/digest.ts';
import { Store } from '../../../../fileserver/src/store/store.ts';
import { HybridClock } from '../../../../fileserver/src/store/version.ts';

const item = (path: string, version: string, deleted = false): ManifestItem => ({ path, version, deleted });

describe('catch-up, the asking side', () => {
  it('pulls only newer versions, tombstones included', () => {
    const local = new Map([
      ['same', { path: 'same', version: '0000000000010000-a', deleted: true as const }],
      ['older', { path: 'older', version: '0000000000010000-a', deleted: true as const }],
    ]);
    const remote = [item('same', '0000000000010000-a'), item('older', '0000000000020000-b', true), item('new', '0000000000010000-b')];
    const { pull, refused } = entriesToPull(remote, (p) => local.get(p), { horizon: '', trustPeer: false, wanted: () => false });
    assert.deepEqual(
      pull.map((r) => r.path),
      ['older', 'new'],
    );
    assert.deepEqual(refused, []);
  });

  it('refuses files it lacks below its horizon, and pulls newer versions of what it holds whatever their age', () => {
    const local = new Map([['held', { path: 'held', version: '0000000000010000-a', deleted: true as const }]]);
    const remote = [item('held', '0000000000020000-b'), item('old', '0000000000020000-b'), item('gone', '0000000000020000-b', true), item('young', '0000000000040000-b')];
    const { pull, refused } = entriesToPull(remote, (p) => local.get(p), { horizon: '0000000000030000-c', trustPeer: false, wanted: () => false });
    assert.deepEqual(
      pull.map((r) => r.path),
      ['held', 'gone', 'young'],
    );
    assert.deepEqual(
      refused.map((r) => r.path),
      ['old'],
    );
  });

  it('splits a page into fetches of at most 512 paths, and a short list over three streams', () => {
    const many = Array.from({ length: 10_000 }, (_, i) => item(`p${i}`, 'v'));
    const chunks = fetchChunks(many);
    assert.ok(chunks.every((c) => c.length <= 512));
    assert.deepEqual(
      chunks.flat(),
      many.map((m) => m.path),
    );
    assert.deepEqual(fetchChunks([item('a', 'v'), item('b', 'v')]), [['a'], ['b']]);
    assert.deepEqual(fetchChunks([]), []);
  });

  it('goes on from a page only if its cursor moves forward', () => {
    assert.equal(nextCursor(undefined, { entries: [], next: 'b' }), 'b');
    assert.equal(nextCursor('b', { entries: [] }), undefined);
    assert.equal(nextCursor('b', { entries: [], next: 'c' }), 'c');
    assert.throws(() => nextCursor('b', { entries: [], next: 'b' }), /not forward/);
    assert.throws(() => nextCursor('b', { entries: [], next: 'a' }), /not forward/);
    // Forward in code point order, the store's, though UTF-16 units (a surrogate, 0xD83D) sort the other way.
    assert.equal(nextCursor('00/a\uFF01', { entries: [], next: '00/a\u{1F600}' }), '00/a\u{1F600}');
  });
});

describe('catch-up, the answering side', () => {
  let dir: string;
  let store: Store;
  const FILES = 1000;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fc-catchup-'));
    store = await Store.open({ dataDir: dir, clock: new HybridClock('n1'), logger: pino({ level: 'silent' }), initialPeers: { generation: 1, peers: [] } });
    for (let i = 0; i < FILES; i++) await store.put(`f/${i}`, [Buffer.from(String(i))], String(i).length, { contentType: 'text/plain' });
    for (let i = 0; i < FILES; i += 10) await store.delete(`f/${i}`, {});
  });
  after(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** Every entry of `buckets`, asked for page by page as the asking side does. */
  function allPages(buckets: number[], limit: number): { items: ManifestItem[]; pages: number } {
    const items: ManifestItem[] = [];
    let pages = 0;
    let after: string | undefined;
    do {
      const page = manifestAnswer(store, ManifestRequest.parse({ buckets, limit, ...(after === undefined ? {} : { after }) }));
      assert.ok(page.entries.length <= limit);
      items.push(...page.entries);
      pages++;
      after = nextCursor(after, page);
    } while (after !== undefined);
    return { items, pages };
  }

  it('pages through every entry once, in (bucket, path) order, tombstones included', () => {
    const all = Array.from({ length: 256 }, (_, i) => i);
    const { items, pages } = allPages(all, 37);
    assert.equal(items.length, FILES);
    assert.equal(pages, Math.ceil(FILES / 37));
    const byBucketThenPath = (a: string, b: string) => bucketOf(a) - bucketOf(b) || (a < b ? -1 : a > b ? 1 : 0);
    assert.deepEqual(
      items.map((i) => i.path),
      [...items.map((i) => i.path)].sort(byBucketThenPath),
    );
    assert.equal(new Set(items.map((i) => i.path)).size, FILES);
    assert.equal(items.filter((i) => i.deleted).length, FILES / 10);
    const one = items.find((i) => i.path === 'f/3')!;
    assert.equal(one.version, store.get('f/3')!.version);
  });

  it('pages through only the asked buckets, and answers nodes of the previous version in one piece', () => {
    const buckets = [0, 7, 200];
    const expected = [...Array(FILES).keys()].map((i) => `f/${i}`).filter((p) => buckets.includes(bucketOf(p)));
    const inBuckets = buckets.flatMap((b) => expected.filter((p) => bucketOf(p) === b).sort());
    assert.deepEqual(
      allPages(buckets, 2).items.map((i) => i.path),
      inBuckets,
    );
    const legacy = manifestAnswer(store, ManifestRequest.parse({ buckets }));
    assert.deepEqual(
      legacy.entries.map((i) => i.path),
      inBuckets,
    );
    assert.equal(legacy.next, undefined);
  });

  it('refuses a cursor without a limit, a malformed cursor, and a limit past the page size', () => {
    assert.equal(ManifestRequest.safeParse({ buckets: [1], after: '01/f/1' }).success, false);
    assert.equal(ManifestRequest.safeParse({ buckets: [1], limit: 1, after: 'f/1' }).success, false);
    assert.equal(ManifestRequest.safeParse({ buckets: [1], limit: 10_001 }).success, false);
    assert.equal(ManifestRequest.safeParse({ buckets: [1], limit: 0 }).success, false);
    assert.equal(ManifestRequest.safeParse({ buckets: [256], limit: 1 }).success, false);
  });

  it('reads a page from the (bucket, path) index: full pages while entries remain, and an empty bucket answered at once', () => {
    const counts = new Map<number, number>();
    for (let i = 0; i < FILES; i++) counts.set(bucketOf(`f/${i}`), (counts.get(bucketOf(`f/${i}`)) ?? 0) + 1);
    const [busy] = [...counts].sort((a, b) => b[1] - a[1])[0]!;
    const empty = Array.from({ length: 256 }, (_, i) => i).find((b) => !counts.has(b))!;
    // A page of a bucket whose entries are a small part of the store is full, not cut short by a bound
    // on the rows looked at: only the bucket's own rows are read.
    const first = manifestAnswer(store, ManifestRequest.parse({ buckets: [empty, busy], limit: 2 }));
    assert.equal(first.entries.length, 2);
    assert.ok(first.entries.every((e) => bucketOf(e.path) === busy));
    assert.deepEqual(manifestAnswer(store, ManifestRequest.parse({ buckets: [empty], limit: 10 })), { entries: [] });
    const all = Array.from({ length: 256 }, (_, i) => i);
    assert.deepEqual(manifestAnswer(store, ManifestRequest.parse({ buckets: all, limit: 10, after: 'ff/\u{10FFFF}' })), { entries: [] });
  });

  it('pages past paths whose code point and UTF-16 orders differ', async () => {
    // Two paths of one bucket: U+FF01 sorts before U+1F600 by code point (and in SQLite), after it by UTF-16 unit.
    // The bucket is not the last one, so the page of the second path is followed by another and carries a cursor.
    let k = 0;
    while (bucketOf(`u/${k}\uFF01`) !== bucketOf(`u/${k}\u{1F600}`) || bucketOf(`u/${k}\uFF01`) > 200) k++;
    for (const p of [`u/${k}\uFF01`, `u/${k}\u{1F600}`]) await store.put(p, [Buffer.from('x')], 1, { contentType: 'text/plain' });
    const from = bucketOf(`u/${k}\uFF01`);
    const { items } = allPages(
      Array.from({ length: 256 - from }, (_, i) => from + i),
      1,
    );
    assert.deepEqual(
      items.filter((i) => i.path.startsWith('u/')).map((i) => i.path),
      [`u/${k}\uFF01`, `u/${k}\u{1F600}`],
    );
  });
});
