import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { api, eventually, metric, skewedClockEnv, TestCluster, type FileServerNode } from './support/nodes.ts';

/** The object files of a node's data volume (the bytes of large files; small ones are kept in the database). */
async function objectFiles(n: FileServerNode): Promise<string[]> {
  const dir = join(n.dataDir, 'objects');
  return (await readdir(dir)).filter((f) => !f.endsWith('.tmp')).map((f) => join(dir, f));
}

// A change whose bytes cannot be read is given up (the queue keeps moving), but the peer never got it:
// a write waiting for ack=all must not count it as acknowledged.
describe('a change dropped as unreadable is not an acknowledgement', () => {
  const cluster = new TestCluster();
  after(() => cluster.close());

  it('ack=all times out (504, 0 acknowledged) when the only peer was never sent the write', async () => {
    const b = await cluster.add({ id: 'ghost-b' });
    // Frequent catch-ups, so a reaches b again within a second of its return.
    const a = await cluster.add({ id: 'ghost-a', env: { FC_ACK_TIMEOUT_MS: '10000', FC_CATCHUP_INTERVAL_SECONDS: '0.5' } });
    await cluster.pushPeers([a], [a, b]);
    await b.kill('SIGKILL');
    const put = api(a, 'PUT', '/files/unreadable.bin', { body: randomBytes(200 * 1024), headers: { 'x-filecluster-ack': 'all' } });
    await eventually('the write committed on a', async () => (await api(a, 'HEAD', '/files/unreadable.bin')).status === 200);
    // The damaged volume: the file's object is gone, so its bytes cannot be read for the push.
    const objects = await objectFiles(a);
    assert.equal(objects.length, 1);
    await unlink(objects[0]!);
    await b.start();
    const r = await put;
    // Dropped (once per attempt while b was down, then in the push b answered), and so out of the queue
    // while the write waited: the moment it used to count as b's acknowledgement.
    assert.ok(((await metric(a, `filecluster_replication_dropped_changes_total{peer="${b.id}"}`)) ?? 0) >= 1, 'the change was dropped');
    assert.equal(await metric(a, `filecluster_replication_pending_changes{peer="${b.id}"}`), 0, 'the change left the queue');
    assert.equal(r.status, 504, r.text);
    assert.equal(r.json<{ acked: number; required: number }>().acked, 0);
    assert.equal((await api(b, 'HEAD', '/files/unreadable.bin')).status, 404);
  });
});

// A batch the peer refuses fails every time, while the peer answers catch-ups: those answers must not
// reset the back-off, or the batch is retried at the catch-up rate.
describe('push back-off against a peer that answers catch-ups but refuses the batch', () => {
  const cluster = new TestCluster();
  after(() => cluster.close());

  it('the refused batch is retried with growing delays, not after every catch-up', async (t) => {
    const b = await cluster.add({ id: 'refuse-b' });
    // a's clock runs 10 minutes fast: b refuses its changes as too far ahead (clock_ahead) every time.
    const a = await cluster.add({ id: 'refuse-a', env: { FC_CATCHUP_INTERVAL_SECONDS: '0.3', ...skewedClockEnv(600_000) } });
    await cluster.pushPeers([a], [a, b]);
    await b.kill('SIGKILL');
    // With its only peer down, a has no clock to compare with and takes the write.
    assert.equal((await api(a, 'PUT', '/files/ahead.bin', { body: randomBytes(1024) })).status, 201);
    await b.start();
    const failures = () => metric(a, `filecluster_replication_attempts_total{peer="${b.id}",result="failure"}`).then((v) => v ?? 0);
    const contacts = () => metric(a, 'filecluster_catchup_runs_total{result="success"}').then((v) => v ?? 0);
    await eventually('a catching up with b again', async () => (await contacts()) > 0);
    const [f0, c0] = [await failures(), await contacts()];
    await new Promise((r) => setTimeout(r, 15_000));
    const [f1, c1] = [await failures(), await contacts()];
    t.diagnostic(`${f1 - f0} failed pushes and ${c1 - c0} successful catch-ups in 15 s`);
    assert.ok(c1 - c0 >= 20, `b answered catch-ups throughout (${c1 - c0})`);
    // Delays of 0.1 s doubling (from a count that is not reset) fit about 8 attempts into 15 s.
    assert.ok(f1 - f0 <= 12, `${f1 - f0} failed pushes in 15 s`);
    assert.ok(f1 - f0 >= 1, 'the batch was still retried');
    assert.equal((await api(b, 'HEAD', '/files/ahead.bin')).status, 404);
  });
});
