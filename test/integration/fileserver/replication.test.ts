import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { api, eventually, metric, TestCluster, type FileServerNode } from './support/nodes.ts';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('replication between three file-server processes', () => {
  const cluster = new TestCluster();
  let nodes: FileServerNode[] = [];

  before(async () => {
    const env = { FC_ACK_TIMEOUT_MS: '1500' };
    nodes = [await cluster.add({ id: 'rep-a', env }), await cluster.add({ id: 'rep-b', env }), await cluster.add({ id: 'rep-c', env })];
    await cluster.pushPeers();
  });
  after(() => cluster.close());

  it('a write on one node is readable with the same bytes from every node', async () => {
    const small = randomBytes(3000);
    const large = randomBytes(3 * 1024 * 1024 + 17);
    assert.equal((await api(nodes[0]!, 'PUT', '/files/docs/small.bin', { body: small })).status, 201);
    assert.equal((await api(nodes[1]!, 'PUT', '/files/docs/nested/large.bin', { body: large })).status, 201);
    for (const n of nodes) {
      for (const [path, bytes] of [
        ['docs/small.bin', small],
        ['docs/nested/large.bin', large],
      ] as const) {
        const got = await eventually(`${path} on ${n.id}`, async () => {
          const r = await api(n, 'GET', `/files/${path}`);
          return r.status === 200 ? r : undefined;
        });
        assert.equal(sha(got.body), sha(bytes));
      }
    }
    // Replicated writes are not replicated again: the node that took no client write pushed nothing.
    assert.equal(await metric(nodes[2]!, `filecluster_replication_attempts_total{peer="${nodes[0]!.id}",result="success"}`), 0);
    assert.equal(await metric(nodes[2]!, `filecluster_replication_attempts_total{peer="${nodes[1]!.id}",result="success"}`), 0);
  });

  it('concurrent conflicting writes to one path converge to one result everywhere', async () => {
    const bodies = nodes.map((n, i) => Buffer.from(`version from ${n.id} #${i} ${randomBytes(8).toString('hex')}`));
    const answers = await Promise.all(nodes.map((n, i) => api(n, 'PUT', '/files/conflict.txt', { body: bodies[i]! })));
    const versions = answers.map((a) => a.json<{ version: string }>().version);
    const winner = [...versions].sort().at(-1)!;
    const winnerBody = bodies[versions.indexOf(winner)]!;
    for (const n of nodes) {
      await eventually(`conflict.txt converged on ${n.id}`, async () => {
        const r = await api(n, 'GET', '/files/conflict.txt');
        return r.headers.get('x-filecluster-version') === winner && r.body.equals(winnerBody);
      });
    }
  });

  it('a delete propagates to every node', async () => {
    assert.equal((await api(nodes[2]!, 'PUT', '/files/doomed.txt', { body: 'bye' })).status, 201);
    for (const n of nodes) await eventually(`doomed.txt on ${n.id}`, async () => (await api(n, 'GET', '/files/doomed.txt')).status === 200);
    assert.equal((await api(nodes[0]!, 'DELETE', '/files/doomed.txt')).status, 200);
    for (const n of nodes) await eventually(`doomed.txt gone on ${n.id}`, async () => (await api(n, 'GET', '/files/doomed.txt')).status === 404);
  });

  it('answers ack=all only after every peer holds the write', async () => {
    const r = await api(nodes[0]!, 'PUT', '/files/acked.txt', { body: 'everyone', headers: { 'x-filecluster-ack': 'all' } });
    assert.equal(r.status, 201);
    assert.equal(r.json<{ acked: number }>().acked, 2);
    for (const n of nodes.slice(1)) assert.equal((await api(n, 'GET', '/files/acked.txt')).text, 'everyone');
  });

  it('shows lag above 0 while a peer is down and exactly 0 once it caught up', async () => {
    const [a, b, c] = nodes as [FileServerNode, FileServerNode, FileServerNode];
    c.pause(true);
    try {
      assert.equal((await api(a, 'PUT', '/files/while-paused.txt', { body: 'queued' })).status, 201);
      await eventually('lag for the paused peer', async () => ((await metric(a, `filecluster_replication_lag_seconds{peer="${c.id}"}`)) ?? 0) > 0);
      assert.equal(await metric(a, `filecluster_replication_pending_changes{peer="${c.id}"}`), 1);
      const ackAll = await api(a, 'PUT', '/files/needs-all.txt', { body: 'x', headers: { 'x-filecluster-ack': 'all' } });
      assert.equal(ackAll.status, 504);
      assert.equal(ackAll.json<{ acked: number; required: number }>().acked, 1);
    } finally {
      c.pause(false);
    }
    await eventually('lag back to 0', async () => (await metric(a, `filecluster_replication_lag_seconds{peer="${c.id}"}`)) === 0);
    assert.equal(await metric(a, `filecluster_replication_pending_changes{peer="${c.id}"}`), 0);
    assert.equal(await metric(a, `filecluster_replication_lag_seconds{peer="${b.id}"}`), 0);
    assert.equal((await api(c, 'GET', '/files/while-paused.txt')).text, 'queued');
    assert.equal(await metric(a, `filecluster_replication_dropped_changes_total{peer="${c.id}"}`), 0);
  });
});
