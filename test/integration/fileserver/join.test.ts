import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { api, converged, eventually, metric, TestCluster, writeMany, type FileServerNode } from './support/nodes.ts';

const FILES = 10_000;

describe('a new, empty node joins a cluster holding 10,000 files', () => {
  const cluster = new TestCluster();
  let a: FileServerNode, b: FileServerNode;
  let files: Map<string, Buffer>;

  before(async () => {
    a = await cluster.add({ id: 'join-a' });
    b = await cluster.add({ id: 'join-b' });
    await cluster.pushPeers();
    files = await writeMany(a, FILES, { prefix: 'bulk', concurrency: 32, size: 100 });
    assert.equal(files.size, FILES);
    await api(a, 'DELETE', '/files/bulk/0');
    files.delete('bulk/0');
    await eventually('the first two nodes agree', () => converged([a, b]), 60_000);
  });
  after(() => cluster.close());

  it('serves every file from the start (proxied while catching up), turns ready only with the data, and converges', async () => {
    // Starts with a static peer list, the way a node runs outside Kubernetes.
    const c = await cluster.add({ id: 'join-c', env: { FC_PEERS: `${a.id}=${a.url},${b.id}=${b.url}` } });
    // The newest file is pulled in the last catch-up chunk, so right after start it can only come from a peer.
    const first = await api(c, 'GET', '/files/bulk/9999');
    assert.equal(first.status, 200);
    assert.ok(first.body.equals(files.get('bulk/9999')!));
    assert.ok([a.id, b.id].includes(first.headers.get('x-filecluster-served-by') ?? ''), 'served from a peer while catching up');
    const sample = ['bulk/1', 'bulk/4999', 'bulk/9998'];
    for (const path of sample) {
      const r = await api(c, 'GET', `/files/${path}`);
      assert.equal(r.status, 200, `${path} right after start`);
      assert.ok(r.body.equals(files.get(path)!));
    }
    await eventually('ready', async () => (await api(c, 'GET', '/readyz')).status === 200, 120_000);
    // Ready means the first catch-up finished, so the data is already here.
    assert.equal(await metric(c, 'filecluster_store_files'), FILES - 1);
    assert.ok(((await metric(c, 'filecluster_catchup_files_repaired_total')) ?? 0) >= FILES - 1);
    assert.equal((await api(c, 'GET', '/files/bulk/0')).status, 404, 'the delete came along');
    assert.ok(await converged([a, b, c]));
    const listed = (await api(c, 'GET', '/files?prefix=bulk/&limit=10000')).json<{ entries: unknown[] }>();
    assert.equal(listed.entries.length, FILES - 1);
    for (const path of ['bulk/17', 'bulk/2345', 'bulk/8888']) assert.ok((await api(c, 'GET', `/files/${path}`)).body.equals(files.get(path)!));
  });
});
