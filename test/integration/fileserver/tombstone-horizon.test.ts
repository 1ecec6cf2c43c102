// A delete acknowledged by all stays deleted when a node that missed it comes back after every holder of
// the tombstone collected it (issue scenarios a and b), with a short retention so "a day away" takes seconds.
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { api, converged, eventually, metric, TestCluster, type FileServerNode } from './support/nodes.ts';

const RETENTION_SECONDS = 2;
const ENV = { FC_TOMBSTONE_RETENTION_SECONDS: String(RETENTION_SECONDS), FC_CATCHUP_INTERVAL_SECONDS: '0.2' };
const ALL = { 'x-filecluster-ack': 'all' };

const statusOf = async (n: FileServerNode, path: string) => (await api(n, 'GET', `/files/${path}`)).status;

/** Reads `path` from every node for `ms`, failing at the first answer other than 404. */
async function staysDeleted(nodes: FileServerNode[], path: string, ms: number): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    for (const n of nodes) assert.equal(await statusOf(n, path), 404, `${path} came back on ${n.id}`);
    await sleep(100);
  }
}

const tombstonesGone = (nodes: FileServerNode[]) => async () => {
  for (const n of nodes) if ((await metric(n, 'filecluster_tombstones')) !== 0) return false;
  return true;
};

describe('a delete stays deleted after its tombstone is collected', () => {
  let cluster: TestCluster;
  afterEach(() => cluster.close());

  it('a node that missed the delete returns after every reachable holder collected it (scenario a)', async () => {
    cluster = new TestCluster();
    const [n1, n2, n3] = [await cluster.add({ id: 'ha1', env: ENV }), await cluster.add({ id: 'ha2', env: ENV }), await cluster.add({ id: 'ha3', env: ENV })];
    await cluster.pushPeers();
    assert.equal((await api(n1, 'PUT', '/files/doc', { body: 'v1', headers: ALL })).status, 201);
    await n3.kill();
    assert.equal((await api(n1, 'DELETE', '/files/doc', { headers: { 'x-filecluster-ack': 'majority' } })).status, 200);
    // n2 received the delete and owes it to no one: it collects it; n1 keeps it for n3.
    await eventually('n2 collected the tombstone', tombstonesGone([n2]), 30_000);
    await n1.kill();
    await n3.start();
    // Until its first complete catch-up a restarted node is not ready: no Service sends it reads.
    await eventually('n3 ready', async () => (await api(n3, 'GET', '/readyz')).status === 200, 30_000);
    await staysDeleted([n2, n3], 'doc', 4_000);
    await n1.start();
    await eventually('all converge', () => converged([n1, n2, n3]), 30_000);
    await staysDeleted([n1, n2, n3], 'doc', 1_000);
  });

  it('a node removed from the peer list while down returns on its volume after both others collected (scenario b)', async () => {
    cluster = new TestCluster();
    const [n1, n2, n3] = [await cluster.add({ id: 'hb1', env: ENV }), await cluster.add({ id: 'hb2', env: ENV }), await cluster.add({ id: 'hb3', env: ENV })];
    await cluster.pushPeers();
    assert.equal((await api(n1, 'PUT', '/files/doc', { body: 'v1', headers: ALL })).status, 201);
    assert.equal((await api(n1, 'PUT', '/files/kept', { body: 'k', headers: ALL })).status, 201);
    await n3.kill();
    await cluster.pushPeers([n1, n2], [n1, n2]);
    assert.equal((await api(n1, 'DELETE', '/files/doc', { headers: ALL })).status, 200);
    await eventually('both collected the tombstone', tombstonesGone([n1, n2]), 30_000);
    await n3.start();
    await cluster.pushPeers();
    await eventually('n3 ready', async () => (await api(n3, 'GET', '/readyz')).status === 200, 30_000);
    await staysDeleted([n1, n2, n3], 'doc', 4_000);
    await eventually('all converge', () => converged([n1, n2, n3]), 30_000);
    assert.equal((await api(n3, 'GET', '/files/kept')).text, 'k', 'what was not deleted stays');
    assert.ok(((await metric(n3, 'filecluster_catchup_forgotten_total')) ?? 0) >= 1, 'the returning node counted what it forgot');
  });
});
