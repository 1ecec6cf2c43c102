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
    assert.deepEqual(
      entriesToPull(remote, (p) => local.get(p)).map((r) => r.path),
      ['older', 'new'],
    );
  });

  it('splits a page into fetches of at most 512 paths, and a short list over three streams', () => {
    const many = Array.from({ length: 10_000 }, (_, i) => item(`p${i}`, 'v'));
    const chunks = fetchChunks(many);
    assert.ok(chunks.every((c) => c.length <= 512));
    assert.deepEqual(chunks.flat(), many.map((m) => m.path));
    assert.deepEqual(fetchChunks([item('a', 'v'), item('b', 'v')]), [['a'], ['b']]);
    assert.deepEqual(fetchChunks([]), []);
  });

  it('goes on from a page only if its cursor moves forward', () => {
    assert.equal(nextCursor(undefined, { entries: [], next: 'b' }), 'b');
    assert.equal(nextCursor('b', { entries: [] }), undefined);
    assert.equal(nextCursor('b', { entries: [], next: 'c' }), 'c');
    assert.throws(() => nextCursor('b', { entries: [], next: 'b' }), /not forward/);
    assert.throws(() => nextCursor('b', { entries: [], next: 'a' }), /not forward/);
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

  it('pages through every entry once, in path order, tombstones included', () => {
    const all = Array.from({ length: 256 }, (_, i) => i);
    const { items, pages } = allPages(all, 37);
    assert.equal(items.length, FILES);
    assert.equal(pages, Math.ceil(FILES / 37));
    assert.deepEqual(items.map((i) => i.path), [...items.map((i) => i.path)].sort());
    assert.equal(new Set(items.map((i) => i.path)).size, FILES);
    assert.equal(items.filter((i) => i.deleted).length, FILES / 10);
    const one = items.find((i) => i.path === 'f/3')!;
    assert.equal(one.version, store.get('f/3')!.version);
  });

  it('pages through only the asked buckets, and answers nodes of the previous version in one piece', () => {
    const buckets = [0, 7, 200];
    const expected = [...Array(FILES).keys()].map((i) => `f/${i}`).filter((p) => buckets.includes(bucketOf(p))).sort();
    assert.deepEqual(allPages(buckets, 2).items.map((i) => i.path), expected);
    const legacy = manifestAnswer(store, ManifestRequest.parse({ buckets }));
    assert.deepEqual(legacy.entries.map((i) => i.path), expected);
    assert.equal(legacy.next, undefined);
  });

  it('refuses a cursor without a limit, and a limit past the page size', () => {
    assert.equal(ManifestRequest.safeParse({ buckets: [1], after: 'f/1' }).success, false);
    assert.equal(ManifestRequest.safeParse({ buckets: [1], limit: 10_001 }).success, false);
    assert.equal(ManifestRequest.safeParse({ buckets: [1], limit: 0 }).success, false);
    assert.equal(ManifestRequest.safeParse({ buckets: [256], limit: 1 }).success, false);
  });

  it('bounds the paths one page looks at: a short page carries a cursor to go on from', () => {
    const page = store.entriesAfter(undefined, 100, 5, () => false);
    assert.deepEqual(page.entries, []);
    assert.equal(page.next, [...Array(FILES).keys()].map((i) => `f/${i}`).sort()[4]);
    assert.deepEqual(store.entriesAfter('zzz', 100, 5), { entries: [], next: undefined });
  });
});
