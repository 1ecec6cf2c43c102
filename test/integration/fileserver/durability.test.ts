import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { api, assertHolds, converged, eventually, owesNothing, TestCluster, writeMany, type FileServerNode } from './support/nodes.ts';

describe('crashes, stops and restarts', () => {
  const cluster = new TestCluster();
  let a: FileServerNode, b: FileServerNode, c: FileServerNode;

  before(async () => {
    const env = { FC_CATCHUP_INTERVAL_SECONDS: '2' };
    a = await cluster.add({ id: 'dur-a', env });
    b = await cluster.add({ id: 'dur-b', env });
    c = await cluster.add({ id: 'dur-c', env });
    await cluster.pushPeers();
  });
  after(() => cluster.close());

  it('the node taking writes is SIGKILLed mid-load: no acknowledged write is lost, and all of them reach every peer', async () => {
    const acked = new Map<string, Buffer>();
    const load = writeMany(a, 100_000, { prefix: 'kill-origin', concurrency: 16, stopOnError: true, acked });
    await eventually('some acknowledged writes', async () => acked.size >= 400);
    await a.kill('SIGKILL');
    await load;
    const ackedAtKill = new Map(acked);
    await a.start();
    await assertHolds(a, ackedAtKill);
    await eventually('identical manifests', () => converged([a, b, c]), 60_000);
    await assertHolds(b, ackedAtKill);
    await assertHolds(c, ackedAtKill);
  });

  it('a peer SIGKILLed mid-load catches up after restart', async () => {
    const acked = new Map<string, Buffer>();
    const load = writeMany(a, 1500, { prefix: 'kill-peer', concurrency: 16, acked });
    await eventually('some acknowledged writes', async () => acked.size >= 300);
    await c.kill('SIGKILL');
    await load;
    await c.start();
    await eventually('identical manifests after the peer restarted', () => converged([a, b, c]), 60_000);
    await assertHolds(c, acked);
  });

  it('a node stopped while files were written, overwritten and deleted catches up, deletes included', async () => {
    await api(a, 'PUT', '/files/stopped/keep.txt', { body: 'old' });
    await api(a, 'PUT', '/files/stopped/remove.txt', { body: 'remove me' });
    await eventually('seeded files on c', async () => (await api(c, 'GET', '/files/stopped/remove.txt')).status === 200);
    assert.equal(await c.kill('SIGTERM'), 0, 'SIGTERM exits cleanly');
    assert.ok(c.logs.some((l) => l.includes('"msg":"stopped"')));
    assert.equal((await api(b, 'PUT', '/files/stopped/keep.txt', { body: 'new' })).status, 200);
    assert.equal((await api(a, 'DELETE', '/files/stopped/remove.txt')).status, 200);
    const more = await writeMany(b, 200, { prefix: 'stopped/new', concurrency: 8 });
    await api(b, 'PUT', '/files/stopped/born-and-gone.txt', { body: 'x' });
    await api(b, 'DELETE', '/files/stopped/born-and-gone.txt');
    await c.start();
    await eventually('identical manifests', () => converged([a, b, c]), 60_000);
    assert.equal((await api(c, 'GET', '/files/stopped/keep.txt')).text, 'new');
    assert.equal((await api(c, 'GET', '/files/stopped/remove.txt')).status, 404);
    assert.equal((await api(c, 'GET', '/files/stopped/born-and-gone.txt')).status, 404);
    await assertHolds(c, more);
  });

  it('a restart reads back files, versions, tombstones and the outbound queues', async () => {
    await eventually('earlier pushes acknowledged', () => owesNothing(a), 60_000);
    await c.kill('SIGKILL');
    await api(a, 'PUT', '/files/queued-for-c.txt', { body: 'owed' });
    await api(a, 'DELETE', '/files/stopped/keep.txt');
    const before = (await api(a, 'GET', '/internal/status', { auth: true })).json<{ peers: Array<{ id: string; pendingChanges: number }> }>();
    assert.equal(before.peers.find((p) => p.id === c.id)?.pendingChanges, 2);
    const listBefore = (await api(a, 'GET', '/files?limit=10000')).text;
    await a.kill('SIGKILL');
    await a.start();
    assert.equal((await api(a, 'GET', '/files?limit=10000')).text, listBefore);
    const after = (await api(a, 'GET', '/internal/status', { auth: true })).json<{ peers: Array<{ id: string; pendingChanges: number }> }>();
    assert.equal(after.peers.find((p) => p.id === c.id)?.pendingChanges, 2, 'the queue for the down peer survived the crash');
    await c.start();
    await eventually('queue drained', async () => {
      const s = (await api(a, 'GET', '/internal/status', { auth: true })).json<{ peers: Array<{ id: string; pendingChanges: number; lagSeconds: number }> }>();
      return s.peers.every((p) => p.pendingChanges === 0 && p.lagSeconds === 0);
    });
    assert.equal((await api(c, 'GET', '/files/queued-for-c.txt')).text, 'owed');
    assert.equal((await api(c, 'GET', '/files/stopped/keep.txt')).status, 404);
  });
});
