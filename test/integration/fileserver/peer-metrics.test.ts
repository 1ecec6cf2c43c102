import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { api, eventually, metric, TestCluster, type FileServerNode } from './support/nodes.ts';

// Per-peer series follow the peer list: present (at 0) from the moment a peer joins, gone once it leaves,
// so scaling a cluster up and down does not leave departed pods' series behind.
describe('per-peer metric series follow the peer list', () => {
  const cluster = new TestCluster();
  let n: FileServerNode;
  // Nothing listens on port 1 of this address: the peer is down, which its series must show too.
  const peer = { id: 'leaving-peer', url: 'http://127.0.0.9:1' };
  const series = [
    `filecluster_replication_dropped_changes_total{peer="${peer.id}"}`,
    `filecluster_replication_attempts_total{peer="${peer.id}",result="success"}`,
    `filecluster_replication_sent_bytes_total{peer="${peer.id}"}`,
    `filecluster_replication_pending_changes{peer="${peer.id}"}`,
  ];

  before(async () => {
    n = await cluster.add({ id: 'metrics-node' });
  });
  after(() => cluster.close());

  it('a joining peer has its series at once, and they go when it leaves the list', async () => {
    assert.equal((await api(n, 'PUT', '/internal/peers', { json: { generation: 1, peers: [peer] }, auth: true })).status, 200);
    // A write owed to the down peer gives it a failed push and a pending change.
    assert.equal((await api(n, 'PUT', '/files/owed.txt', { body: 'owed' })).status, 201);
    for (const s of series.slice(0, 3)) assert.notEqual(await metric(n, s), undefined, s);
    assert.equal(await metric(n, series[0]!), 0, 'nothing dropped');
    await eventually(
      'a failed push to the down peer',
      async () => ((await metric(n, `filecluster_replication_attempts_total{peer="${peer.id}",result="failure"}`)) ?? 0) > 0,
    );
    assert.equal(await metric(n, series[3]!), 1);

    assert.equal((await api(n, 'PUT', '/internal/peers', { json: { generation: 2, peers: [] }, auth: true })).status, 200);
    await eventually('the departed peer has no series left', async () => {
      const text = await (await fetch(n.metricsUrl)).text();
      return !text.includes(`peer="${peer.id}"`);
    });
    assert.equal(await metric(n, 'filecluster_peers'), 0);
  });
});
