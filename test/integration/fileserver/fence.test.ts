import assert from 'node:assert/strict';
import http from 'node:http';
import { after, describe, it } from 'node:test';
import { api, eventually, TestCluster, TOKEN, type FileServerNode } from './support/nodes.ts';

interface StatusView {
  leaving: boolean;
  generation: number;
  syncedGeneration: number;
  peers: Array<{ id: string; pendingChanges: number }>;
}

const fence = async (node: FileServerNode, leaving: boolean) => {
  const res = await api(node, 'PUT', '/internal/fence', { json: { leaving }, auth: true });
  assert.equal(res.status, 200, res.text);
  return res.json<StatusView>();
};
const owed = (s: StatusView, peer: string) => s.peers.find((p) => p.id === peer)?.pendingChanges;

// The write barrier a scale-down relies on: once fenced, a node refuses client writes, answers the fence
// only after the writes it had admitted are stored (and so counted in its backlog), and stays fenced
// across a restart, while its outbox keeps draining to its peers.
describe('a fenced (leaving) node takes no more writes and still hands over what it holds', () => {
  const cluster = new TestCluster();
  after(() => cluster.close());

  it('refuses writes with 503 leaving, waits for admitted writes, survives a restart, drains, and can be lifted', async () => {
    const a = await cluster.add({ id: 'fence-a' });
    const b = await cluster.add({ id: 'fence-b' });
    // b is down: whatever a acknowledges stays in its outbox.
    await b.kill('SIGKILL');
    await cluster.pushPeers([a], [a, b]);
    assert.equal((await api(a, 'PUT', '/files/before.txt', { body: 'before' })).status, 201);

    // A write whose body is still arriving when the fence comes: the fence answers only after it stored.
    const body = Buffer.alloc(64 * 1024, 'x');
    const slow = http.request(`${a.url}/files/in-flight.bin`, { method: 'PUT', headers: { 'content-length': body.length, 'content-type': 'application/octet-stream' } });
    const slowStatus = new Promise<number>((resolve, reject) => {
      slow.on('response', (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      slow.on('error', reject);
    });
    slow.write(body.subarray(0, 1024));
    await new Promise((r) => setTimeout(r, 200));
    let fenceAnswered = false;
    const fenced = fence(a, true).then((s) => {
      fenceAnswered = true;
      return s;
    });
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(fenceAnswered, false, 'the fence waits for the write it admitted before');
    slow.end(body.subarray(1024));
    assert.equal(await slowStatus, 201, 'a write admitted before the fence completes');
    const after1 = await fenced;
    assert.equal(after1.leaving, true);
    assert.equal(owed(after1, b.id), 2, 'the status taken after the fence counts every acknowledged write');

    for (const [method, body2] of [
      ['PUT', 'late'],
      ['DELETE', undefined],
    ] as const) {
      const res = await api(a, method, '/files/before.txt', body2 === undefined ? {} : { body: body2 });
      assert.equal(res.status, 503, `${method} on a leaving node`);
      assert.equal(res.json<{ error: string }>().error, 'leaving');
      assert.equal(res.headers.get('retry-after'), '1');
    }
    // Reads still work.
    assert.equal((await api(a, 'GET', '/files/before.txt')).text, 'before');

    // A restart of the leaving pod does not reopen it for writes.
    await a.kill('SIGKILL');
    await a.start();
    assert.equal((await api(a, 'PUT', '/files/after-restart.txt', { body: 'x' })).status, 503);
    const status = (await api(a, 'GET', '/internal/status', { auth: true })).json<StatusView>();
    assert.equal(status.leaving, true);

    // The peer comes back: the leaving node still pushes its backlog.
    await b.start();
    await cluster.pushPeers([a, b], [a, b]);
    await eventually('the backlog to drain', async () => owed(await fence(a, true), b.id) === 0, 30_000);
    assert.equal((await api(b, 'GET', '/files/before.txt')).text, 'before');
    assert.equal((await api(b, 'GET', '/files/in-flight.bin')).body.length, body.length);

    // A cancelled scale-down lifts the fence.
    assert.equal((await fence(a, false)).leaving, false);
    assert.equal((await api(a, 'PUT', '/files/after-lift.txt', { body: 'y' })).status, 201);
  });

  it('rejects a malformed fence request and one without the token', async () => {
    const c = await cluster.add({ id: 'fence-c' });
    const bad = await api(c, 'PUT', '/internal/fence', { json: { leaving: 'yes' }, auth: true });
    assert.equal(bad.status, 400);
    assert.equal(bad.json<{ error: string }>().error, 'bad_request');
    assert.equal((await api(c, 'PUT', '/internal/fence', { json: { leaving: true } })).status, 401);
  });

  it('reports the generation of the last catch-up that reached every peer', async () => {
    const d = await cluster.add({ id: 'fence-d' });
    const e = await cluster.add({ id: 'fence-e' });
    const generation = await cluster.pushPeers([d, e], [d, e]);
    await eventually(
      'a catch-up over the new list',
      async () => (await api(d, 'GET', '/internal/status', { auth: true })).json<StatusView>().syncedGeneration === generation,
    );
    assert.ok(TOKEN);
  });
});

// A pod the operator starts is a node with no peers until its first list arrives. Acknowledging a write
// then would leave it on that pod alone, and the operator removes a pod that never got a list without a
// write barrier (its claim never joined).
describe('a node that waits for its peer list takes no writes before the first one', () => {
  const cluster = new TestCluster();
  after(() => cluster.close());

  it('refuses writes with 503 not_joined until a list arrives, also after a restart, and keeps taking them once it has one', async () => {
    const env = { FC_AWAIT_PEER_LIST: 'true' };
    const a = await cluster.add({ id: 'join-a', env });
    const b = await cluster.add({ id: 'join-b', env });
    const refused = async (why: string) => {
      for (const method of ['PUT', 'DELETE'] as const) {
        const res = await api(a, method, '/files/early.txt', method === 'PUT' ? { body: 'early' } : {});
        assert.equal(res.status, 503, `${method} ${why}: ${res.text}`);
        assert.equal(res.json<{ error: string }>().error, 'not_joined');
        assert.equal(res.headers.get('retry-after'), '1');
      }
      assert.equal((await api(a, 'PUT', '/files/early.txt', { body: 'early', headers: { 'if-none-match': '*' } })).status, 503, `a conditional write ${why}`);
      assert.equal((await api(a, 'GET', '/files/early.txt')).status, 404, `nothing was stored ${why}`);
    };
    await refused('before any list');
    await a.kill('SIGKILL');
    await a.start();
    await refused('after a restart without a list');

    await cluster.pushPeers([a, b], [a, b]);
    assert.equal((await api(a, 'PUT', '/files/joined.txt', { body: 'joined', headers: { 'x-filecluster-ack': 'all' } })).status, 201);
    assert.equal((await api(b, 'GET', '/files/joined.txt')).text, 'joined');
    await a.kill('SIGKILL');
    await a.start();
    assert.equal((await api(a, 'DELETE', '/files/joined.txt')).status, 200, 'the stored list keeps the node open for writes across a restart');
  });

  it('is refused at start when the setting is neither true nor false', async () => {
    await assert.rejects(cluster.add({ id: 'join-bad', env: { FC_AWAIT_PEER_LIST: 'yes' } }), /FC_AWAIT_PEER_LIST/);
  });
});
