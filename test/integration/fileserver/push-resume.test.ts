import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { api, eventually, metric, TestCluster } from './support/nodes.ts';

// A push loop backing off from a peer that was down must not wait out its delay (up to 30 s) once the
// peer answers again: the catch-up a new peer list starts reaches the peer, and that resumes the pushes.
describe('a push loop in back-off resumes when the peer answers again', () => {
  const cluster = new TestCluster();
  after(() => cluster.close());

  it('the owed write reaches the returning peer well before the back-off delay ends', async () => {
    const a = await cluster.add({ id: 'resume-a' });
    // b knows no peers, so the file can reach it only through a's push (it pulls nothing itself).
    const b = await cluster.add({ id: 'resume-b' });
    await b.kill('SIGKILL');
    await cluster.pushPeers([a], [a, b]);
    assert.equal((await api(a, 'PUT', '/files/owed.txt', { body: 'owed' })).status, 201);
    // After nine failed pushes in a row the next delay is 12.8 to 25.6 s.
    const failures = `filecluster_replication_attempts_total{peer="${b.id}",result="failure"}`;
    await eventually('nine failed pushes to the stopped peer', async () => ((await metric(a, failures)) ?? 0) >= 9, 60_000);
    await b.start();
    // What the operator does when the pod is Ready again: a new generation, which makes a catch up now.
    await cluster.pushPeers([a], [a, b]);
    const t0 = Date.now();
    await eventually('the returning peer holding the owed write', async () => (await api(b, 'GET', '/files/owed.txt')).status === 200, 40_000);
    const waited = Date.now() - t0;
    assert.ok(waited < 8_000, `the write reached the peer ${waited} ms after it answered again; the back-off delay was at least 12.8 s`);
    assert.equal((await api(b, 'GET', '/files/owed.txt')).text, 'owed');
  });
});
