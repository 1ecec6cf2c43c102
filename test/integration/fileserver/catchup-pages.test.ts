import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { api, converged, eventually, metric, TestCluster, writeMany, type FileServerNode } from './support/nodes.ts';

// Paths of about 1,000 bytes (four 250-byte segments and a number) make each manifest entry about
// 1,070 bytes of JSON, so 66,000 files give a manifest of about 70 MB: past the 64 MiB one answer could
// hold, which with short paths takes about 570,000 files. Real counts (10,000,000 files of 100 bytes) are measured by
// `bench/node-scale/run.ts`.
const FILES = 66_000;
const PREFIX = ['a', 'b', 'c', 'd'].map((c) => c.repeat(250)).join('/');
const OLD_ANSWER_CAP = 64 * 1024 * 1024;

describe('a new node joins a peer whose manifest is larger than one answer could hold', () => {
  const cluster = new TestCluster();
  let a: FileServerNode;
  let files: Map<string, Buffer>;

  before(async () => {
    a = await cluster.add({ id: 'pages-a' });
    files = await writeMany(a, FILES, { prefix: PREFIX, concurrency: 32, size: 0 });
    assert.equal(files.size, FILES);
  });
  after(() => cluster.close());

  it('pulls every file in pages and turns ready only once it holds them all', async () => {
    const all = (await api(a, 'POST', '/internal/manifest', { json: { buckets: Array.from({ length: 256 }, (_, i) => i) }, auth: true })).body.length;
    assert.ok(all > OLD_ANSWER_CAP, `the whole manifest is ${all} bytes, more than ${OLD_ANSWER_CAP}`);

    const c = await cluster.add({ id: 'pages-c', env: { FC_PEERS: `${a.id}=${a.url}` } });
    let sawNotReady = false;
    const heldWhenReady = await eventually(
      'the joiner is ready',
      async () => {
        const ready = (await api(c, 'GET', '/readyz')).status === 200;
        // Read right after Ready: a node that turned ready before its catch-up completed shows fewer.
        const held = (await metric(c, 'filecluster_store_files')) ?? 0;
        if (ready) return { held };
        sawNotReady = true;
        return false;
      },
      300_000,
      25,
    );
    assert.equal(heldWhenReady.held, FILES, 'ready only with every file');
    assert.ok(sawNotReady, 'not ready while the catch-up ran');
    assert.ok(await converged([a, c]));
    assert.ok(((await metric(c, 'filecluster_catchup_manifest_pages_total')) ?? 0) >= Math.ceil(FILES / 10_000));
    assert.ok(((await metric(c, 'filecluster_catchup_entries_compared_total')) ?? 0) >= FILES);
    const status = (await api(c, 'GET', '/internal/status', { auth: true })).json<{ ready: boolean; peers: Array<{ id: string; catchup: string }> }>();
    assert.equal(status.ready, true);
    assert.deepEqual(
      status.peers.map((p) => [p.id, p.catchup]),
      [[a.id, 'complete']],
    );
    for (const i of [0, 33_333, FILES - 1]) {
      const path = `${PREFIX}/${i}`;
      const r = await api(c, 'GET', `/files/${path}`);
      assert.equal(r.status, 200, `file ${i}`);
      assert.equal(r.headers.get('x-filecluster-served-by'), null, `file ${i} is the joiner's own`);
      assert.ok(r.body.equals(files.get(path)!));
    }
  });
});
