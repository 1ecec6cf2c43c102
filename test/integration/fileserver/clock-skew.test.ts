import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { parseVersion } from '../../../fileserver/src/store/version.ts';
import { api, eventually, metric, skewedClockEnv, TestCluster, type FileServerNode } from './support/nodes.ts';

const TEN_YEARS_MS = 10 * 365 * 24 * 3600 * 1000;
const versionTime = (v: string) => parseVersion(v)!.ms;
// Only what the node itself holds: a miss is otherwise proxied to a peer while a catch-up runs.
const LOCAL_ONLY = { 'x-filecluster-proxied': '1' };

// One node's wall clock 10 years fast (FAULT INJECTION: support/fake-clock.ts) must not move the
// others' clocks: its changes are refused, counted and logged, and everything else keeps working.
describe('a node whose clock is 10 years fast', () => {
  const cluster = new TestCluster();
  let a: FileServerNode;
  let b: FileServerNode;
  let fast: FileServerNode;

  before(async () => {
    const env = { FC_CATCHUP_INTERVAL_SECONDS: '1' };
    a = await cluster.add({ id: 'skew-a', env });
    b = await cluster.add({ id: 'skew-b', env });
    fast = await cluster.add({ id: 'skew-fast', env: { ...env, ...skewedClockEnv(TEN_YEARS_MS) } });
    await cluster.pushPeers();
  });
  after(() => cluster.close());

  it('has its writes refused by the others, with a metric and a log line naming it and the drift', async () => {
    const put = await api(fast, 'PUT', '/files/from-the-future.txt', { body: 'written in 2036' });
    assert.equal(put.status, 201);
    assert.ok(versionTime(put.json<{ version: string }>().version) > Date.now() + TEN_YEARS_MS - 60_000, 'the fault is in place');
    for (const n of [a, b]) {
      // Pushes and catch-up pulls both, several times over.
      await eventually(`${n.id} refusing repeatedly`, async () => ((await metric(n, `filecluster_clock_drift_rejections_total{origin="${fast.id}"}`)) ?? 0) >= 3);
      assert.equal((await api(n, 'GET', '/files/from-the-future.txt', { headers: LOCAL_ONLY })).status, 404);
      const line = n.logRecords().find((l) => l.peer === fast.id && typeof l.aheadSeconds === 'number');
      assert.ok(line, `${n.id} logged the refusal`);
      assert.ok((line.aheadSeconds as number) > (TEN_YEARS_MS / 1000) * 0.99, `${line.aheadSeconds} s ahead`);
    }
  });

  it("leaves the clocks of the others at the present: their new versions carry today's time", async () => {
    for (const n of [a, b]) {
      const put = await api(n, 'PUT', `/files/after-${n.id}.txt`, { body: n.id });
      assert.equal(put.status, 201);
      const ahead = versionTime(put.json<{ version: string }>().version) - Date.now();
      assert.ok(ahead < 60_000, `${n.id} issued a version ${Math.round(ahead / 1000)} s in the future`);
    }
  });

  it('still replicates between the others, and to the fast node', async () => {
    for (const n of [a, b, fast]) {
      for (const from of [a, b]) {
        await eventually(`after-${from.id}.txt on ${n.id}`, async () => (await api(n, 'GET', `/files/after-${from.id}.txt`, { headers: LOCAL_ONLY })).text === from.id);
      }
    }
  });
});

// A change refused for drift stays queued and is taken once the receiver's clock has caught up with it.
describe('a change refused for clock drift', () => {
  const cluster = new TestCluster();
  after(() => cluster.close());

  it('arrives once the clocks agree, not lost', async () => {
    const a = await cluster.add({ id: 'drift-a', env: { FC_MAX_CLOCK_DRIFT_SECONDS: '1' } });
    const ahead = await cluster.add({ id: 'drift-ahead', env: skewedClockEnv(5_000) });
    await cluster.pushPeers();
    assert.equal((await api(ahead, 'PUT', '/files/early.txt', { body: 'five seconds early' })).status, 201);
    await eventually('a refusing it first', async () => ((await metric(a, `filecluster_clock_drift_rejections_total{origin="${ahead.id}"}`)) ?? 0) >= 1);
    assert.equal((await api(a, 'GET', '/files/early.txt', { headers: LOCAL_ONLY })).status, 404);
    await eventually('a holding it later', async () => (await api(a, 'GET', '/files/early.txt', { headers: LOCAL_ONLY })).text === 'five seconds early', 30_000);
    await eventually('nothing owed any more', async () => (await metric(ahead, `filecluster_replication_pending_changes{peer="${a.id}"}`)) === 0);
  });
});
