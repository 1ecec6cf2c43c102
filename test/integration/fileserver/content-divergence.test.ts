import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { encodeVersion } from '../../../fileserver/src/store/version.ts';
import { api, converged, eventually, metric, TestCluster, type FileServerNode } from './support/nodes.ts';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** One change in the peer wire format (u32 header length, JSON header, bytes), as a peer sends it. */
function frame(path: string, version: string, body: Buffer): Buffer {
  const header = Buffer.from(JSON.stringify({ path, version, deleted: false, size: body.length, sha256: sha(body), contentType: 'text/plain' }));
  const len = Buffer.alloc(4);
  len.writeUInt32BE(header.length);
  return Buffer.concat([len, header, body]);
}

// Two replicas hold one version of a path with different bytes: what a node with a duplicated id, or
// a wiped node issuing its versions again, leaves behind. The test plays that node, pushing the two
// writes through the peer API; the nodes must see the difference and settle on one content.
describe('two replicas holding one version with different bytes', () => {
  const cluster = new TestCluster();
  let p: FileServerNode;
  let q: FileServerNode;
  const version = encodeVersion({ ms: Date.now(), counter: 0, nodeId: 'reissued' });
  const [low, high] = [Buffer.from('bytes written first'), Buffer.from('other bytes, same version')].sort((x, y) => (sha(x) < sha(y) ? -1 : 1)) as [Buffer, Buffer];

  before(async () => {
    const env = { FC_CATCHUP_INTERVAL_SECONDS: '1' };
    p = await cluster.add({ id: 'div-p', env });
    q = await cluster.add({ id: 'div-q', env });
    for (const [n, body] of [[p, high], [q, low]] as const) {
      const r = await api(n, 'POST', '/internal/replicate', { body: frame('same.txt', version, body), auth: true });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json<{ results: Array<{ result: string }> }>().results[0]!.result, 'applied');
    }
  });
  after(() => cluster.close());

  it('their digests differ', async () => {
    assert.equal((await api(p, 'GET', '/files/same.txt')).headers.get('x-filecluster-version'), version);
    assert.equal((await api(q, 'GET', '/files/same.txt')).headers.get('x-filecluster-version'), version);
    assert.equal(await converged([p, q]), false);
  });

  it('catch-up settles both on the higher SHA-256, counted as a content conflict', async () => {
    await cluster.pushPeers();
    for (const n of [p, q]) await eventually(`${n.id} serving the winning bytes`, async () => (await api(n, 'GET', '/files/same.txt')).body.equals(high));
    await eventually('identical digests', () => converged([p, q]));
    const conflicts = ((await metric(p, 'filecluster_content_conflicts_total')) ?? 0) + ((await metric(q, 'filecluster_content_conflicts_total')) ?? 0);
    assert.ok(conflicts >= 1, `${conflicts} content conflicts counted`);
    assert.equal((await api(q, 'GET', '/files/same.txt')).headers.get('x-filecluster-version'), version);
  });
});
