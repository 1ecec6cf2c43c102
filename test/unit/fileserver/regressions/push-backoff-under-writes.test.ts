// Regression (found by the partition test in test/resilience/containers.test.ts): every local write woke
// the push loop of a peer that was down out of its back-off sleep, so each write cost a failed attempt
// and the failure count (the back-off exponent) reached the 30 s ceiling within a second of an outage.
// After a short partition healed, replication then resumed only up to 30 s later.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { freePort } from '../../../harness/processes.ts';
import { TestCluster, api, freshAddress, metric } from '../../../integration/fileserver/support/nodes.ts';

describe('push back-off while a peer is down', () => {
  const cluster = new TestCluster();
  after(() => cluster.close());

  it('local writes do not cut the back-off short: a burst of writes costs a few attempts, not one each', async (t) => {
    const host = freshAddress();
    // Nothing listens there: every push fails at once with ECONNREFUSED.
    const down = `http://${host}:${await freePort(host)}`;
    const node = await cluster.add({ id: 'writer', host, env: { FC_PEERS: `down=${down}` } });
    const writes = 60;
    for (let i = 0; i < writes; i++) assert.equal((await api(node, 'PUT', `/files/burst/${i}`, { body: `file ${i}` })).status, 201);
    const failures = (await metric(node, 'filecluster_replication_attempts_total{peer="down",result="failure"}')) ?? 0;
    t.diagnostic(`${failures} failed pushes for ${writes} writes`);
    // With back-off (100 ms doubling) the burst spans a handful of retry slots; one attempt per write is the bug.
    assert.ok(failures >= 1, 'the peer was tried');
    assert.ok(failures <= writes / 4, `${failures} failed pushes for ${writes} writes`);
  });
});
