import { test } from 'node:test';
import assert from 'node:assert/strict';
import { withDefaults } from '../../../../../operator/src/api/v1alpha1/defaults.ts';
import { memberPods } from '../../../../../operator/src/controllers/filecluster/membership.ts';
import { computeStatus, type StatusInput } from '../../../../../operator/src/controllers/filecluster/status.ts';
import { fileCluster, pod } from './fixtures.ts';

const t0 = new Date('2026-01-01T00:00:00Z');
const t1 = new Date('2026-01-01T00:05:00Z');

function input(over: Partial<StatusInput> = {}): StatusInput {
  const fc = fileCluster({ replicas: 3 });
  return {
    fc,
    spec: withDefaults(fc.spec),
    members: memberPods('fc', [pod('fc-0', { ip: '127.0.1.2' }), pod('fc-1', { ip: '127.0.1.3' }), pod('fc-2', { ip: '127.0.1.4' })]),
    peers: [{ id: 'fc-0', url: 'http://127.0.1.2:8080' }],
    peerGeneration: 4,
    secretName: 'fc-token',
    push: { targets: 3, acknowledged: 3, failures: [] },
    acknowledged: new Set(['fc-0', 'fc-1', 'fc-2']),
    progress: { reason: 'Reconciled', message: 'ok' },
    now: t0,
    ...over,
  };
}

const cond = (s: ReturnType<typeof computeStatus>, type: string) => s.conditions?.find((c) => c.type === type);

test('all pods Ready and acknowledged: Ready, PeersSynced, not Progressing, not Degraded', () => {
  const s = computeStatus(input());
  assert.equal(s.readyReplicas, 3);
  assert.equal(s.replicas, 3);
  assert.equal(s.peerGeneration, 4);
  assert.equal(s.peersAcknowledged, 3);
  assert.equal(s.observedGeneration, 1);
  assert.equal(s.selector, 'app.kubernetes.io/name=filecluster,app.kubernetes.io/instance=fc');
  assert.deepEqual(
    s.conditions?.map((c) => [c.type, c.status, c.reason]),
    [
      ['Ready', 'True', 'ClusterReady'],
      ['Progressing', 'False', 'Reconciled'],
      ['PeersSynced', 'True', 'AllPodsAcknowledged'],
      ['Degraded', 'False', 'AsExpected'],
    ],
  );
});

test('push failures show who failed; the cluster is not Ready until the list is everywhere', () => {
  const s = computeStatus(
    input({ push: { targets: 3, acknowledged: 2, failures: [{ pod: 'fc-2', ready: true, error: 'ECONNREFUSED' }] }, acknowledged: new Set(['fc-0', 'fc-1']) }),
  );
  assert.equal(cond(s, 'PeersSynced')?.reason, 'PeerPushFailed');
  assert.match(cond(s, 'PeersSynced')?.message ?? '', /2\/3 .* generation 4; fc-2: ECONNREFUSED/);
  assert.equal(cond(s, 'Ready')?.status, 'False');
  assert.equal(cond(s, 'Ready')?.reason, 'PeersNotSynced');
});

test('Degraded carries the reason into Ready; a waiting scale-down is Progressing', () => {
  const s = computeStatus(
    input({
      degraded: { reason: 'TokenSecretMissing', message: 'Secret "x" not found' },
      progress: { reason: 'ScaleDownWaitingForReplication', message: 'fc-3 owes 2 changes to fc-0' },
    }),
  );
  assert.deepEqual([cond(s, 'Degraded')?.status, cond(s, 'Degraded')?.reason], ['True', 'TokenSecretMissing']);
  assert.deepEqual([cond(s, 'Ready')?.status, cond(s, 'Ready')?.reason], ['False', 'TokenSecretMissing']);
  assert.deepEqual([cond(s, 'Progressing')?.status, cond(s, 'Progressing')?.message], ['True', 'fc-3 owes 2 changes to fc-0']);
});

test('lastTransitionTime moves only when a condition flips', () => {
  const first = computeStatus(input());
  const fc = { ...fileCluster({ replicas: 3 }), status: first };
  const same = computeStatus(input({ fc, now: t1 }));
  assert.equal(cond(same, 'Ready')?.lastTransitionTime, '2026-01-01T00:00:00Z');
  const flipped = computeStatus(input({ fc, now: t1, members: memberPods('fc', [pod('fc-0', { ip: '127.0.1.2', serving: false })]) }));
  assert.equal(cond(flipped, 'Ready')?.status, 'False');
  assert.equal(cond(flipped, 'Ready')?.message, 'no pod serves yet (1/3 Ready)');
  assert.equal(cond(flipped, 'Ready')?.lastTransitionTime, '2026-01-01T00:05:00Z');
  assert.equal(cond(flipped, 'Degraded')?.lastTransitionTime, '2026-01-01T00:00:00Z');
});

test('Ready means serving and in sync: a scale-up or a pod that is not in service yet keeps it True, motion shows in Progressing', () => {
  const members = memberPods('fc', [
    pod('fc-0', { ip: '127.0.1.2' }),
    pod('fc-1', { ip: '127.0.1.3' }),
    pod('fc-2', { ip: '127.0.1.4', serving: 'unset', ready: false }),
  ]);
  const table: Array<[string, Partial<StatusInput>, string, string]> = [
    ['new pod still starting', { members, acknowledged: new Set(['fc-0', 'fc-1']), push: { targets: 3, acknowledged: 2, failures: [] } }, 'True', 'ClusterReady'],
    ['a serving pod lacks the list', { members, acknowledged: new Set(['fc-0']), push: { targets: 3, acknowledged: 1, failures: [] } }, 'False', 'PeersNotSynced'],
    ['nothing serves', { members: memberPods('fc', [pod('fc-0', { ip: '127.0.1.2', serving: 'unset' })]) }, 'False', 'NoPodServing'],
  ];
  for (const [name, over, status, reason] of table) {
    const s = computeStatus(input({ ...over, progress: { reason: 'ScalingUp', message: '2/3 pods Ready' } }));
    assert.deepEqual([cond(s, 'Ready')?.status, cond(s, 'Ready')?.reason], [status, reason], name);
    assert.equal(cond(s, 'Progressing')?.status, 'True', name);
  }
});

test('a waiting scale-down and a forced one are recorded in the status', () => {
  const s = computeStatus(input({ scaleDownBlockedSince: '2026-01-01T00:00:00Z', forcedScaleDown: { replicas: 2, generation: 7 } }));
  assert.equal(s.scaleDownBlockedSince, '2026-01-01T00:00:00Z');
  assert.deepEqual(s.forcedScaleDown, { replicas: 2, generation: 7 });
  assert.equal(computeStatus(input()).scaleDownBlockedSince, undefined);
});

test('the status that publishes a new generation keeps Ready as it was; the one after the pushes decides', () => {
  const first = computeStatus(input());
  const fc = { ...fileCluster({ replicas: 3 }), status: first };
  const publishing = computeStatus(input({ fc, now: t1, peerGeneration: 5, acknowledged: new Set(), publishing: true }));
  assert.deepEqual(cond(publishing, 'Ready'), cond(first, 'Ready'));
  const after = computeStatus(input({ fc, now: t1, peerGeneration: 5, acknowledged: new Set(['fc-0', 'fc-1']) }));
  assert.deepEqual([cond(after, 'Ready')?.status, cond(after, 'Ready')?.reason], ['False', 'PeersNotSynced']);
  assert.match(cond(after, 'Ready')?.message ?? '', /fc-2 does not hold peer list generation 5/);
});
