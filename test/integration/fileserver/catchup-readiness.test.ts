import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { api, converged, eventually, freshAddress, metric, TestCluster, TOKEN, writeMany, type FileServerNode } from './support/nodes.ts';

const FILES = 200;

interface Status {
  ready: boolean;
  catchingUp: boolean;
  peers: Array<{ id: string; catchup: string; catchupError?: string }>;
}
const status = async (n: FileServerNode) => (await api(n, 'GET', '/internal/status', { auth: true })).json<Status>();
const isReady = async (n: FileServerNode) => (await api(n, 'GET', '/readyz')).status === 200;
/** `404 x12, 200 x40`: a sequence of statuses as runs. */
function runs(statuses: number[]): string {
  const out: string[] = [];
  let i = 0;
  while (i < statuses.length) {
    let j = i;
    while (j < statuses.length && statuses[j] === statuses[i]) j++;
    out.push(`${statuses[i]} x${j - i}`);
    i = j;
  }
  return out.join(', ');
}

describe('readiness and proxying follow complete catch-ups', () => {
  const cluster = new TestCluster();
  let a: FileServerNode;

  before(async () => {
    // A node without peers holding some files; the joiners below list it as their peer.
    a = await cluster.add({ id: 'ready-a' });
    assert.equal((await writeMany(a, FILES, { prefix: 'seed' })).size, FILES);
  });
  after(() => cluster.close());

  it('turns ready past an unreachable peer, and names it in the log, the metric and the status', async () => {
    // Nothing listens on port 1 of a fresh loopback address: every connection is refused.
    const ghost = `http://${freshAddress()}:1`;
    const c = await cluster.add({ id: 'ready-c', env: { FC_PEERS: `${a.id}=${a.url},ghost=${ghost}` } });
    await eventually('ready', () => isReady(c), 60_000);
    assert.equal(await metric(c, 'filecluster_store_files'), FILES, 'everything the reachable peer holds came first');
    const s = await status(c);
    const byId = new Map(s.peers.map((p) => [p.id, p]));
    assert.equal(byId.get(a.id)?.catchup, 'complete');
    assert.equal(byId.get('ghost')?.catchup, 'unreachable');
    assert.match(byId.get('ghost')?.catchupError ?? '', /unreachable.*ECONNREFUSED/);
    assert.equal(await metric(c, 'filecluster_catchup_peer_unreachable{peer="ghost"}'), 1);
    assert.equal(await metric(c, `filecluster_catchup_peer_unreachable{peer="${a.id}"}`), 0);
    assert.ok(((await metric(c, 'filecluster_catchup_runs_total{result="unreachable"}')) ?? 0) >= 1);
    const readyLine = c.logRecords().find((r) => String(r.msg).endsWith('; ready'));
    assert.deepEqual(readyLine?.unreachable, ['ghost'], 'the ready log line names the unreachable peer');
  });

  it('stays not ready while a peer that answers cannot be caught up from, and turns ready once it can', async () => {
    // A peer with another token answers every catch-up request with 401.
    const x = await cluster.add({ id: 'ready-x', env: { FC_TOKEN: 'not-the-cluster-token' } });
    const d = await cluster.add({ id: 'ready-d', env: { FC_PEERS: `${a.id}=${a.url},${x.id}=${x.url}`, FC_CATCHUP_INTERVAL_SECONDS: '2' } });
    // Several retried passes later it is still not ready, though it holds everything a had.
    await sleep(4000);
    assert.equal(await isReady(d), false, 'not ready while a reachable peer fails');
    assert.equal(await metric(d, 'filecluster_store_files'), FILES);
    assert.equal((await status(d)).peers.find((p) => p.id === x.id)?.catchup, 'failed');
    assert.match((await status(d)).peers.find((p) => p.id === x.id)?.catchupError ?? '', /401/);
    assert.ok(((await metric(d, 'filecluster_catchup_runs_total{result="failure"}')) ?? 0) >= 2, 'the failing pass was retried');

    await x.kill();
    await x.start({ FC_TOKEN: TOKEN });
    // A pass that ran while x was restarting found it unreachable, which also makes d ready: wait for x's turn.
    await eventually('x caught up from', async () => (await status(d)).peers.find((p) => p.id === x.id)?.catchup === 'complete', 30_000);
    assert.equal(await isReady(d), true);
  });

  it('does not proxy reads of missing files during periodic catch-ups, so they never flap between 404 and 200', async () => {
    // b catches up from a and p every second; neither pushes to b (b is not in their lists), so a file
    // written on a reaches b only through catch-up.
    const p = await cluster.add({ id: 'ready-p' });
    const b = await cluster.add({ id: 'ready-b', env: { FC_PEERS: `${a.id}=${a.url},${p.id}=${p.url}`, FC_CATCHUP_INTERVAL_SECONDS: '1' } });
    await eventually('b is ready', () => isReady(b), 30_000);
    assert.ok(await converged([a, b]));

    // A frozen p holds b's next periodic pass open (it waits for p's answer) after its turn with a.
    p.pause(true);
    await sleep(1500);
    assert.equal((await status(b)).catchingUp, true, 'a periodic pass is waiting on p');
    assert.equal((await api(a, 'PUT', '/files/late/one', { body: 'late' })).status, 201);

    const seen: Array<{ status: number; servedBy: string | null }> = [];
    const read = async () => {
      const r = await api(b, 'GET', '/files/late/one');
      seen.push({ status: r.status, servedBy: r.headers.get('x-filecluster-served-by') });
    };
    const until = Date.now() + 1500;
    while (Date.now() < until) await read();
    p.pause(false);
    // The pass that waited on p ends; the next one pulls the file from a.
    await eventually(
      'b holds the file',
      async () => {
        await read();
        return seen.at(-1)!.status === 200;
      },
      30_000,
      20,
    );
    const last = Date.now() + 1500;
    while (Date.now() < last) await read();

    const statuses = seen.map((s) => s.status);
    assert.equal(statuses[0], 404, 'a file b does not hold is not served by b while it is ready');
    assert.ok(
      seen.every((s) => s.servedBy === null),
      `nothing was proxied: ${runs(statuses)}`,
    );
    const firstOk = statuses.indexOf(200);
    assert.ok(firstOk > 0 && statuses.slice(firstOk).every((s) => s === 200), `404 until pulled, then 200 for good: ${runs(statuses)}`);
  });
});
