import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { parseVersion } from '../../../fileserver/src/store/version.ts';
import type { NodeStatus } from '../../../contract/peer-api.ts';
import { api, converged, eventually, metric, skewedClockEnv, TestCluster, type FileServerNode } from './support/nodes.ts';

const TEN_YEARS_MS = 10 * 365 * 24 * 3600 * 1000;
const versionTime = (v: string) => parseVersion(v)!.ms;
// Only what the node itself holds: a miss is otherwise proxied to a peer while a catch-up runs.
const LOCAL_ONLY = { 'x-filecluster-proxied': '1' };

const TEN_YEARS_S = TEN_YEARS_MS / 1000;
const refusals = (n: FileServerNode) => n.logRecords().filter((l) => typeof l.msg === 'string' && l.msg.startsWith('refusing client writes'));

/** Asserts a client write answer is the loud refusal: 503 `clock_skew`, Retry-After, a message naming the offset. */
function assertRefusedForSkew(res: { status: number; headers: Headers; json<T>(): T }, what: string): string {
  assert.equal(res.status, 503, `${what}: ${res.status}`);
  assert.ok(Number(res.headers.get('retry-after')) > 0, `${what}: Retry-After`);
  const body = res.json<{ error: string; message: string }>();
  assert.equal(body.error, 'clock_skew', what);
  return body.message;
}

/** Asserts `message` matches `re` and its captured number of seconds lies within a minute of `expected`. */
function assertSecondsNear(message: string, re: RegExp, expected: number): void {
  const m = re.exec(message);
  assert.ok(m, `${message} does not match ${re}`);
  assert.ok(Math.abs(Number(m[1]) - expected) < 60, message);
}

/** Two nodes with the right clock and a third 10 years fast (FAULT INJECTION: support/fake-clock.ts), catching up every second. */
async function twoRightOneFast(cluster: TestCluster, prefix: string): Promise<[FileServerNode, FileServerNode, FileServerNode]> {
  const env = { FC_CATCHUP_INTERVAL_SECONDS: '1' };
  return [
    await cluster.add({ id: `${prefix}-a`, env }),
    await cluster.add({ id: `${prefix}-b`, env }),
    await cluster.add({ id: `${prefix}-fast`, env: { ...env, ...skewedClockEnv(TEN_YEARS_MS) } }),
  ];
}

// FAULT INJECTION (support/fake-clock.ts): one node of three runs 10 years fast. Its peers refuse versions
// more than FC_MAX_CLOCK_DRIFT_SECONDS ahead of their clocks, so a write it acknowledged would stay on it
// alone (chaos seed 263139136). It must refuse client writes loudly instead; the others go on.
describe('a node 10 years fast among two right ones', () => {
  const cluster = new TestCluster();
  let a: FileServerNode;
  let b: FileServerNode;
  let fast: FileServerNode;

  before(async () => {
    [a, b, fast] = await twoRightOneFast(cluster, 'ahead');
    await cluster.pushPeers();
  });
  after(() => cluster.close());

  it('refuses client writes with 503 clock_skew naming the offset, and stores nothing', async () => {
    // At once after learning its peers: the first write waits for their clocks to be read.
    const message = assertRefusedForSkew(await api(fast, 'PUT', '/files/stranded.txt', { body: 'would never reach a peer' }), 'PUT');
    assertSecondsNear(message, /at least (\d+) s ahead of 2 of the 2 peers whose clocks it knows \(ahead-a, ahead-b\)/, TEN_YEARS_S);
    assertRefusedForSkew(await api(fast, 'DELETE', '/files/stranded.txt'), 'DELETE');
    assert.equal((await api(fast, 'GET', '/files/stranded.txt', { headers: LOCAL_ONLY })).status, 404);
    await eventually('the refusal logged', async () => refusals(fast).length > 0);
    assert.equal(refusals(fast).length, 1, 'logged once, when it starts');
  });

  it('says so in /readyz, /internal/status and its metrics; the others do not', async () => {
    const ready = await api(fast, 'GET', '/readyz');
    assert.equal(ready.status, 503);
    assert.equal(ready.json<{ error: string }>().error, 'clock_skew');
    const status = (await api(fast, 'GET', '/internal/status', { auth: true })).json<NodeStatus>();
    assert.equal(status.clock?.refusingWrites, true);
    for (const p of status.peers) assert.ok(Math.abs(p.clockOffsetSeconds! + TEN_YEARS_S) < 60, `${p.id}: ${p.clockOffsetSeconds}`);
    assert.equal(await metric(fast, 'filecluster_clock_refusing_writes'), 1);
    const offset = await metric(fast, `filecluster_clock_offset_seconds{peer="${a.id}"}`);
    assert.ok(offset !== undefined && Math.abs(offset + TEN_YEARS_S) < 60, `offset ${offset}`);
    for (const n of [a, b]) {
      await eventually(`${n.id} ready`, async () => (await api(n, 'GET', '/readyz')).status === 200);
      assert.equal(await metric(n, 'filecluster_clock_refusing_writes'), 0);
      const toFast = await eventually(`${n.id} reading the fast clock`, () => metric(n, `filecluster_clock_offset_seconds{peer="${fast.id}"}`));
      assert.ok(Math.abs(toFast - TEN_YEARS_S) < 60, `${n.id} sees the fast clock at +${toFast} s`);
    }
  });

  it('lets writes to the others converge on all three', async () => {
    for (const n of [a, b]) assert.equal((await api(n, 'PUT', `/files/via-${n.id}.txt`, { body: n.id })).status, 201);
    assert.equal((await api(b, 'DELETE', `/files/via-${b.id}.txt`)).status, 200);
    await eventually('identical manifests', () => converged([a, b, fast]));
    assert.equal((await api(fast, 'GET', `/files/via-${a.id}.txt`, { headers: LOCAL_ONLY })).text, a.id);
  });

  it('takes writes again once restarted with the right clock, and they converge', async () => {
    await fast.kill('SIGKILL');
    await fast.start({ NODE_OPTIONS: '', FAKE_CLOCK_OFFSET_MS: '0' });
    const put = await api(fast, 'PUT', '/files/after-the-fix.txt', { body: 'now' });
    assert.equal(put.status, 201, put.text);
    await eventually('identical manifests', () => converged([a, b, fast]));
    assert.equal(await metric(fast, 'filecluster_clock_refusing_writes'), 0);
  });
});

// One node's wall clock 10 years fast (FAULT INJECTION: support/fake-clock.ts) must not move the
// others' clocks: its changes are refused, counted and logged, and everything else keeps working. Its one
// write is taken before it knows any peer (no clock to compare with), as under a release that did not
// compare clocks: that version is stranded on it, and it stays loud about it.
describe('a node whose clock is 10 years fast', () => {
  const cluster = new TestCluster();
  let a: FileServerNode;
  let b: FileServerNode;
  let fast: FileServerNode;

  before(async () => {
    [a, b, fast] = await twoRightOneFast(cluster, 'skew');
  });
  after(() => cluster.close());

  it('has its writes refused by the others, with a metric and a log line naming it and the drift', async () => {
    const put = await api(fast, 'PUT', '/files/from-the-future.txt', { body: 'written in 2036' });
    assert.equal(put.status, 201);
    assert.ok(versionTime(put.json<{ version: string }>().version) > Date.now() + TEN_YEARS_MS - 60_000, 'the fault is in place');
    await cluster.pushPeers();
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

  it('holding a version from its future, refuses writes even once its clock is right, and says why', async () => {
    await fast.kill('SIGKILL');
    await fast.start({ NODE_OPTIONS: '', FAKE_CLOCK_OFFSET_MS: '0' });
    const message = assertRefusedForSkew(await api(fast, 'PUT', '/files/today.txt', { body: 'today' }), 'PUT');
    assertSecondsNear(message, /holds versions (\d+) s ahead of its own clock/, TEN_YEARS_S);
    const ahead = await metric(fast, 'filecluster_clock_version_ahead_seconds');
    assert.ok(ahead !== undefined && ahead > TEN_YEARS_S - 60, `filecluster_clock_version_ahead_seconds ${ahead}`);
    assert.equal((await api(fast, 'GET', '/readyz')).status, 503);
    // The stranded version is still readable where it is, and still only there.
    assert.equal((await api(fast, 'GET', '/files/from-the-future.txt', { headers: LOCAL_ONLY })).text, 'written in 2036');
    for (const n of [a, b]) assert.equal((await api(n, 'GET', '/files/from-the-future.txt', { headers: LOCAL_ONLY })).status, 404);
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
