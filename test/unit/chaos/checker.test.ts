import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { check, checkStatus, type ObservedFileCluster, type Property } from '../../chaos/checker.ts';
import { readValue, valueBody } from '../../chaos/client.ts';
import type { AckMode, Call, Completion, FaultLog, FinalRead, Op } from '../../chaos/history.ts';

let nextId = 1;
let clock = 0;
function call(op: Omit<Op, 'id' | 'node'> & { node?: string }, done: Completion): Call {
  clock += 10;
  const invokedAt = clock;
  clock += 5;
  return { op: { id: nextId++, node: 'n1', ...op }, invokedAt, completedAt: clock, done };
}
const put = (key: string, value: string, version: string, outcome: Completion['outcome'] = 'ok') =>
  call({ kind: 'put', key, value, ack: 'all' }, { outcome, status: 201, version });
const del = (key: string, version: string | undefined, outcome: Completion['outcome'] = 'ok') =>
  call({ kind: 'delete', key, ack: 'all' }, { outcome, ...(version ? { version } : {}) });
const present = (key: string, value: string, version: string, nodes = ['n1', 'n2']): FinalRead[] =>
  nodes.map((node) => ({ node, key, status: 200, value, version, intact: true }));
const absent = (key: string, nodes = ['n1', 'n2']): FinalRead[] => nodes.map((node) => ({ node, key, status: 404 }));
const properties = (v: ReturnType<typeof check>): Property[] => v.map((x) => x.property);

describe('chaos checker', () => {
  it('passes a history whose final state is the newest acknowledged change', () => {
    const calls = [put('a', 'w1s16', 'v1'), put('a', 'w2s16', 'v2'), put('b', 'w3s16', 'v3'), del('b', 'v4')];
    assert.deepEqual(check(calls, [...present('a', 'w2s16', 'v2'), ...absent('b')]), []);
  });

  it('finds an acknowledged write replaced by an older version (a lost write)', () => {
    const calls = [put('a', 'w1s16', 'v1'), put('a', 'w2s16', 'v2')];
    assert.deepEqual(properties(check(calls, present('a', 'w1s16', 'v1'))), ['acknowledged-write-kept', 'acknowledged-write-kept']);
  });

  it('finds an acknowledged delete undone by an older copy (a resurrected delete)', () => {
    const calls = [put('a', 'w1s16', 'v1'), del('a', 'v2')];
    const v = check(calls, present('a', 'w1s16', 'v1'));
    assert.deepEqual(properties(v), ['acknowledged-delete-kept', 'acknowledged-delete-kept']);
    assert.match(v[0]!.message, /older than the acknowledged delete/);
  });

  it('accepts a newer write after an acknowledged delete, even one whose answer was lost', () => {
    const calls = [put('a', 'w1s16', 'v1'), del('a', 'v2'), put('a', 'w3s16', 'v3', 'info')];
    assert.deepEqual(check(calls, present('a', 'w3s16', 'v3')), []);
  });

  it('finds an acknowledged write that vanished, unless a delete with an unknown outcome explains it', () => {
    assert.deepEqual(properties(check([put('a', 'w1s16', 'v1')], absent('a'))), ['acknowledged-write-kept', 'acknowledged-write-kept']);
    assert.deepEqual(check([put('a', 'w1s16', 'v1'), del('a', undefined, 'info')], absent('a')), []);
    // A refused delete cannot explain it, nor one whose version is older than the write.
    assert.equal(check([put('a', 'w1s16', 'v2'), del('a', undefined, 'fail')], absent('a')).length, 2);
    assert.equal(check([put('a', 'w1s16', 'v2'), del('a', 'v1', 'info')], absent('a')).length, 2);
  });

  it('finds reads of bytes nobody wrote and damaged bytes', () => {
    const calls = [put('a', 'w1s16', 'v1'), call({ kind: 'get', key: 'a' }, { outcome: 'ok', status: 200, read: 'w9s16', intact: true, version: 'v1' })];
    assert.deepEqual(properties(check(calls, present('a', 'w1s16', 'v1'))), ['reads-written']);
    const damaged = [put('a', 'w1s16', 'v1'), call({ kind: 'get', key: 'a' }, { outcome: 'ok', status: 200, read: 'w1s16', intact: false, version: 'v1' })];
    assert.deepEqual(properties(check(damaged, present('a', 'w1s16', 'v1'))), ['reads-intact']);
  });

  it('finds nodes that disagree after healing', () => {
    const finals = [...present('a', 'w1s16', 'v1', ['n1']), ...absent('a', ['n2'])];
    assert.ok(properties(check([put('a', 'w1s16', 'v1', 'info')], finals)).includes('converged'));
  });

  it('finds two acknowledged swaps from one version and two creates with no delete between', () => {
    const swap = (value: string, version: string) => call({ kind: 'swap', key: 'a', value, ifMatch: 'v1' }, { outcome: 'ok', status: 200, version });
    const calls = [put('a', 'w1s16', 'v1'), swap('w2s16', 'v2'), swap('w3s16', 'v3')];
    assert.deepEqual(properties(check(calls, present('a', 'w3s16', 'v3'))), ['conditional-writes']);
    const create = (value: string, version: string) => call({ kind: 'create', key: 'b', value }, { outcome: 'ok', status: 201, version });
    assert.deepEqual(properties(check([create('w4s16', 'v4'), create('w5s16', 'v6')], present('b', 'w5s16', 'v6'))), ['conditional-writes']);
    assert.deepEqual(check([create('w4s16', 'v4'), del('b', 'v5'), create('w5s16', 'v6')], present('b', 'w5s16', 'v6')), []);
  });
});

describe('chaos checker, faults', () => {
  const faults = (f: Partial<FaultLog>): FaultLog => ({ isolated: [], alone: [], full: [], damaged: [], ...f });
  const write = (ack: AckMode, outcome: Completion['outcome'], node = 'n1') =>
    call({ kind: 'put', key: 'a', value: `w${nextId}s16`, ack, node }, { outcome, status: outcome === 'ok' ? 201 : 504, version: `v${nextId}` });

  it('finds a majority or all write acknowledged by a node cut off from every other node', () => {
    const during = { node: 'n1', from: clock, to: clock + 1000 };
    const calls = [write('local', 'ok'), write('majority', 'ok'), write('all', 'info'), write('all', 'ok', 'n2')];
    const finals = present('a', calls[3]!.op.value!, calls[3]!.done.version!);
    const v = check(calls, finals, faults({ isolated: [during] }));
    assert.deepEqual(properties(v), ['ack-honoured']);
    assert.equal(v[0]!.calls![0], calls[1]);
    // Acknowledged before the partition, or by a node on the connected side: fine.
    assert.deepEqual(check(calls, finals, faults({ isolated: [{ node: 'n1', from: calls[1]!.invokedAt + 1, to: clock + 1000 }] })), []);
    // Its peer list named no other member during the call (the documented exception): fine too.
    assert.deepEqual(check(calls, finals, faults({ isolated: [during], alone: [{ node: 'n1', from: 0, to: calls[1]!.invokedAt + 1 }] })), []);
  });

  it('finds the bytes of a failed write (a 507) read back or held after healing', () => {
    const refused = call({ kind: 'put', key: 'a', value: 'w1s16', ack: 'local' }, { outcome: 'fail', status: 507 });
    const read = call({ kind: 'get', key: 'a' }, { outcome: 'ok', status: 200, read: 'w1s16', intact: true, version: 'v1' });
    assert.deepEqual(properties(check([refused, read], absent('a'))), ['refused-writes-absent']);
    assert.deepEqual(properties(check([refused], present('a', 'w1s16', 'v1'))), ['refused-writes-absent', 'refused-writes-absent']);
  });

  it('finds a delete refused with 507 on a full volume', () => {
    const refused = call({ kind: 'delete', key: 'a', ack: 'local' }, { outcome: 'fail', status: 507 });
    const full = faults({ full: [{ node: 'n1', from: 0, to: clock + 1000 }] });
    assert.deepEqual(properties(check([refused], absent('a'), full)), ['deletes-on-full-volume']);
    assert.deepEqual(check([refused], absent('a')), []);
  });

  it('excuses the loss of an ack=local write whose bytes were damaged, not of one with more copies', () => {
    const local = call({ kind: 'put', key: 'a', value: 'w1s16', ack: 'local' }, { outcome: 'ok', status: 201, version: 'v1' });
    const rot = faults({ damaged: [{ node: 'n1', value: 'w1s16', at: clock }] });
    assert.deepEqual(check([local], absent('a'), rot), []);
    assert.deepEqual(properties(check([local], absent('a'))), ['acknowledged-write-kept', 'acknowledged-write-kept']);
    // Damage to a later write of the key, here one whose outcome is unknown, can take it too.
    const later = call({ kind: 'put', key: 'a', value: 'w9s16', ack: 'majority' }, { outcome: 'info', status: 504, version: 'v9' });
    const laterRot = faults({ damaged: [{ node: 'n1', value: 'w9s16', at: clock }] });
    assert.deepEqual(check([local, later], absent('a'), laterRot), []);
    // Not damage to an earlier write of the key, nor to another key.
    const earlier = call({ kind: 'put', key: 'a', value: 'w0s16', ack: 'local' }, { outcome: 'ok', status: 201, version: 'v0' });
    const other = call({ kind: 'put', key: 'b', value: 'w8s16', ack: 'local' }, { outcome: 'ok', status: 201, version: 'v8' });
    const elsewhere = faults({
      damaged: [
        { node: 'n1', value: 'w0s16', at: clock },
        { node: 'n1', value: 'w8s16', at: clock },
      ],
    });
    assert.deepEqual(properties(check([earlier, local, other], [...absent('a'), ...present('b', 'w8s16', 'v8')], elsewhere)), [
      'acknowledged-write-kept',
      'acknowledged-write-kept',
    ]);
    const all = put('a', 'w2s16', 'v2');
    assert.deepEqual(properties(check([all], absent('a'), faults({ damaged: [{ node: 'n1', value: 'w2s16', at: clock }] }))), [
      'acknowledged-write-kept',
      'acknowledged-write-kept',
    ]);
  });
});

describe('chaos status check', () => {
  const pod = (i: number): ObservedFileCluster['pods'][number] => ({
    name: `fc-${i}`,
    url: `http://127.0.0.${i + 2}:8080`,
    ready: true,
    serving: true,
    peerGeneration: 7,
  });
  const condition = (type: 'Ready' | 'Progressing' | 'PeersSynced' | 'Degraded', status: 'True' | 'False') => ({
    type,
    status,
    reason: 'R',
    message: 'm',
    lastTransitionTime: '2026-01-01T00:00:00Z',
    observedGeneration: 4,
  });
  const healthy = (): ObservedFileCluster => ({
    generation: 4,
    replicas: 2,
    pods: [pod(0), pod(1)],
    status: {
      observedGeneration: 4,
      replicas: 2,
      readyReplicas: 2,
      peerGeneration: 7,
      peersAcknowledged: 2,
      peers: [pod(1), pod(0)].map((p) => ({ id: p.name, url: p.url })),
      conditions: [condition('Ready', 'True'), condition('Progressing', 'False'), condition('PeersSynced', 'True'), condition('Degraded', 'False')],
    },
  });
  const messages = (o: ObservedFileCluster) => checkStatus(o).map((v) => v.message);

  it('passes a status that describes its pods', () => {
    assert.deepEqual(checkStatus(healthy()), []);
  });

  it('finds a scale-down whose pod stayed, a stale peer list and a Ready that ignores a pod behind', () => {
    const stayed = healthy();
    stayed.pods.push(pod(2));
    assert.match(messages(stayed)[0]!, /3 pods \(fc-0, fc-1, fc-2\) where the spec asks for 2.*status.replicas 2 but 3 pods.*status.peers/);
    const behind = healthy();
    behind.pods[1]!.peerGeneration = 6;
    assert.match(messages(behind)[0]!, /status.peerGeneration 7, but fc-1 holds 6/);
    const notServing = healthy();
    notServing.pods[0]!.serving = false;
    assert.match(messages(notServing)[0]!, /fc-0 not Ready and serving/);
  });

  it('finds conditions that do not match: still Progressing, or set for an older generation', () => {
    const moving = healthy();
    moving.status.conditions![1] = { ...condition('Progressing', 'True'), reason: 'ScaleDownWaitingForReplication', message: 'waits' };
    assert.match(messages(moving)[0]!, /Progressing is True \(ScaleDownWaitingForReplication: waits\)/);
    const old = healthy();
    old.generation = 5;
    assert.match(messages(old)[0]!, /observedGeneration 4 is not the spec's generation 5.*Ready was set for generation 4, not 5/);
  });
});

describe('chaos values', () => {
  it('names the value a body holds and detects a changed byte', () => {
    const body = valueBody('w12s3000', 3000);
    assert.deepEqual(readValue(body), { value: 'w12s3000', intact: true });
    body[2000] = body[2000]! ^ 1;
    assert.deepEqual(readValue(body), { value: 'w12s3000', intact: false });
    assert.equal(readValue(valueBody('w12s3000', 3000).subarray(0, 2999)).intact, false);
  });
});
