import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { V1StatefulSet } from '@kubernetes/client-node';
import { withDefaults } from '../../../operator/src/api/v1alpha1/defaults.ts';
import { desiredPeers, memberPods } from '../../../operator/src/controllers/filecluster/membership.ts';
import { planCluster, podsToInspect, type NodeReport, type Observed } from '../../../operator/src/controllers/filecluster/plan.ts';
import type { FileCluster } from '../../../operator/src/api/v1alpha1/types.ts';
import { fileCluster, pod } from './fixtures.ts';

function observe(fc: FileCluster, sts: V1StatefulSet | undefined, pods: ReturnType<typeof pod>[], reports: Record<string, NodeReport> = {}, generation = 2): Observed {
  const members = memberPods(fc.metadata.name, pods);
  const obs: Observed = { members, reports: new Map(Object.entries(reports)), peers: desiredPeers(members, withDefaults(fc.spec).replicas), peerGeneration: generation };
  if (sts) obs.statefulSet = sts;
  return obs;
}

/** The StatefulSet as the API would hold it after the operator applied `fc` at `replicas`. */
function appliedStatefulSet(fc: FileCluster, replicas: number, partition = 0): V1StatefulSet {
  const sts = planCluster({ ...fc, spec: { ...fc.spec, replicas } }, withDefaults({ ...fc.spec, replicas }), observe(fc, undefined, [])).statefulSet;
  sts.spec!.updateStrategy = { type: 'RollingUpdate', rollingUpdate: { partition } };
  sts.metadata!.generation = 1;
  sts.status = { replicas, observedGeneration: 1, updateRevision: 'rev-new', currentRevision: 'rev-new' };
  return sts;
}

const ready = (n: number, from = 0): ReturnType<typeof pod>[] =>
  Array.from({ length: n }, (_, i) => pod(`fc-${from + i}`, { ip: `127.0.1.${from + i + 2}`, revision: 'rev-new' }));

test('spec -> desired objects: StatefulSet, Services, PDB, all owned by the FileCluster', () => {
  const fc = fileCluster({ replicas: 3, storage: { size: '5Gi', storageClassName: 'fast' }, replication: { defaultAck: 'majority' } });
  const plan = planCluster(fc, withDefaults(fc.spec), observe(fc, undefined, []));
  const sts = plan.statefulSet;
  for (const obj of [sts, plan.headlessService, plan.clientService, plan.podDisruptionBudget]) {
    assert.deepEqual(obj.metadata?.ownerReferences?.map((o) => [o.kind, o.name, o.uid, o.controller]), [['FileCluster', 'fc', 'uid-1', true]]);
  }
  assert.equal(sts.spec?.replicas, 3);
  assert.equal(sts.spec?.serviceName, 'fc-peers');
  assert.equal(plan.headlessService.spec?.clusterIP, 'None');
  const c = sts.spec?.template.spec?.containers[0];
  assert.ok(c);
  assert.equal(c.image, 'filecluster/fileserver:0.1.0');
  const env = Object.fromEntries((c.env ?? []).map((e) => [e.name, e.value ?? e.valueFrom]));
  assert.deepEqual(env['FC_HOST'], { fieldRef: { fieldPath: 'status.podIP' } });
  assert.deepEqual(env['FC_NODE_ID'], { fieldRef: { fieldPath: 'metadata.name' } });
  assert.deepEqual(env['FC_TOKEN'], { secretKeyRef: { name: 'fc-token', key: 'token' } });
  assert.equal(env['FC_DATA_DIR'], '/data');
  assert.equal(env['FC_DEFAULT_ACK'], 'majority');
  assert.equal(env['FC_TOMBSTONE_RETENTION_SECONDS'], '86400');
  assert.deepEqual(c.volumeMounts?.find((m) => m.mountPath === '/data')?.name, 'data');
  assert.equal(c.readinessProbe?.httpGet?.path, '/readyz');
  assert.equal(c.livenessProbe?.httpGet?.path, '/healthz');
  assert.equal(c.securityContext?.readOnlyRootFilesystem, true);
  assert.equal(sts.spec?.template.spec?.securityContext?.runAsNonRoot, true);
  assert.equal(c.resources?.requests?.['cpu'], '100m');
  const claim = sts.spec?.volumeClaimTemplates?.[0];
  assert.equal(claim?.spec?.resources?.requests?.['storage'], '5Gi');
  assert.equal(claim?.spec?.storageClassName, 'fast');
  assert.deepEqual(sts.spec?.template.spec?.topologySpreadConstraints?.map((t) => [t.topologyKey, t.whenUnsatisfiable]), [['kubernetes.io/hostname', 'ScheduleAnyway']]);
  assert.equal(plan.tokenSecret.generate, true);
  assert.equal(plan.progress.reason, 'Creating');
});

test('a given token Secret and placement reach the pod template', () => {
  const fc = fileCluster({ tokenSecretName: 'mine', nodeSelector: { disk: 'ssd' }, topologySpreadConstraints: [{ maxSkew: 2, topologyKey: 'zone', whenUnsatisfiable: 'DoNotSchedule' }] });
  const plan = planCluster(fc, withDefaults(fc.spec), observe(fc, undefined, []));
  assert.deepEqual(plan.tokenSecret, { name: 'mine', generate: false });
  const podSpec = plan.statefulSet.spec?.template.spec;
  assert.deepEqual(podSpec?.nodeSelector, { disk: 'ssd' });
  assert.equal(podSpec?.topologySpreadConstraints?.[0]?.topologyKey, 'zone');
  assert.deepEqual(podSpec?.containers[0]?.env?.find((e) => e.name === 'FC_TOKEN')?.valueFrom?.secretKeyRef?.name, 'mine');
});

test('scale-down keeps the StatefulSet size until the leaving pods have replicated their writes', () => {
  const fc = fileCluster({ replicas: 3 });
  const sts = appliedStatefulSet(fc, 5);
  const pods = ready(5);
  const inspect = podsToInspect(fc, withDefaults(fc.spec), sts, memberPods('fc', pods));
  assert.deepEqual(inspect, ['fc-3', 'fc-4']);

  const owing: Record<string, NodeReport> = {
    'fc-3': { ok: true, generation: 2, peers: [{ id: 'fc-0', pendingChanges: 4 }, { id: 'fc-1', pendingChanges: 0 }, { id: 'fc-2', pendingChanges: 0 }] },
    'fc-4': { ok: true, generation: 1, peers: [] },
  };
  const waiting = planCluster(fc, withDefaults(fc.spec), observe(fc, sts, pods, owing));
  assert.equal(waiting.statefulSet.spec?.replicas, 5);
  assert.equal(waiting.progress.reason, 'ScaleDownWaitingForReplication');
  assert.match(waiting.progress.message, /fc-3 owes 4 changes to fc-0/);
  assert.match(waiting.progress.message, /fc-4 has not received peer list generation 2/);
  // Leaving pods leave the client Service first.
  assert.deepEqual(waiting.servingLabels, [{ name: 'fc-3', serving: false }, { name: 'fc-4', serving: false }]);

  const drained = (): NodeReport => ({ ok: true, generation: 2, peers: ['fc-0', 'fc-1', 'fc-2'].map((p) => ({ id: p, pendingChanges: 0 })) });
  const done = planCluster(fc, withDefaults(fc.spec), observe(fc, sts, pods, { 'fc-3': drained(), 'fc-4': drained() }));
  assert.equal(done.statefulSet.spec?.replicas, 3);
  assert.equal(done.progress.reason, 'ScalingDown');
});

test('scale-down waits for a leaving pod that is down or unreadable, unless forced', () => {
  const fc = fileCluster({ replicas: 2 });
  const sts = appliedStatefulSet(fc, 3);
  const pods = [...ready(2), pod('fc-2', { ip: '127.0.1.9', ready: false })];
  const plan = planCluster(fc, withDefaults(fc.spec), observe(fc, sts, pods));
  assert.equal(plan.statefulSet.spec?.replicas, 3);
  assert.match(plan.progress.message, /fc-2 is not Ready/);
  const unreadable = planCluster(fc, withDefaults(fc.spec), observe(fc, sts, ready(3), { 'fc-2': { ok: false, error: 'timeout' } }));
  assert.match(unreadable.progress.message, /fc-2 status unavailable: timeout/);
  const forcedFc = { ...fc, metadata: { ...fc.metadata, annotations: { 'filecluster.dev/force-scale-down': 'true' } } };
  assert.equal(planCluster(forcedFc, withDefaults(fc.spec), observe(fc, sts, pods)).statefulSet.spec?.replicas, 2);
});

test('scale-up applies at once and reports progress until the pods are Ready', () => {
  const fc = fileCluster({ replicas: 5 });
  const plan = planCluster(fc, withDefaults(fc.spec), observe(fc, appliedStatefulSet(fc, 3), ready(3)));
  assert.equal(plan.statefulSet.spec?.replicas, 5);
  assert.deepEqual(plan.progress, { reason: 'ScalingUp', message: '3/5 pods Ready' });
});

test('a template change rolls one pod at a time, gated on readiness and the next pod\u2019s backlog', () => {
  const fc = fileCluster({ replicas: 3 });
  const updated = fileCluster({ replicas: 3, image: 'filecluster/fileserver:0.2.0' });
  const spec = withDefaults(updated.spec);
  // The template changes: nothing may restart yet.
  const start = planCluster(updated, spec, observe(updated, appliedStatefulSet(fc, 3), ready(3)));
  assert.equal(start.statefulSet.spec?.updateStrategy?.rollingUpdate?.partition, 3);
  assert.equal(start.progress.reason, 'RollingUpdate');

  const rolling = appliedStatefulSet(updated, 3, 3);
  const oldPods = ready(3).map((p) => ({ ...p, metadata: { ...p.metadata, labels: { 'controller-revision-hash': 'rev-old' } } }));
  assert.deepEqual(podsToInspect(updated, spec, rolling, memberPods('fc', oldPods)), ['fc-2']);
  const owes = planCluster(updated, spec, observe(updated, rolling, oldPods, { 'fc-2': { ok: true, generation: 2, peers: [{ id: 'fc-0', pendingChanges: 7 }] } }));
  assert.equal(owes.statefulSet.spec?.updateStrategy?.rollingUpdate?.partition, 3);
  assert.equal(owes.progress.reason, 'RollingUpdateWaitingForReplication');
  assert.match(owes.progress.message, /fc-2 owes 7 changes to fc-0/);
  const step = planCluster(updated, spec, observe(updated, rolling, oldPods, { 'fc-2': { ok: true, generation: 2, peers: [{ id: 'fc-0', pendingChanges: 0 }] } }));
  assert.equal(step.statefulSet.spec?.updateStrategy?.rollingUpdate?.partition, 2);

  // fc-2 restarted on the new revision but is not Ready yet: hold.
  const mid = appliedStatefulSet(updated, 3, 2);
  const midPods = [...oldPods.slice(0, 2), pod('fc-2', { ip: '127.0.1.4', revision: 'rev-new', ready: false })];
  const hold = planCluster(updated, spec, observe(updated, mid, midPods));
  assert.equal(hold.statefulSet.spec?.updateStrategy?.rollingUpdate?.partition, 2);
  assert.match(hold.progress.message, /waiting for fc-2/);
});

test('growing storage keeps the immutable claim template and resizes each claim', () => {
  const fc = fileCluster({ replicas: 2, storage: { size: '1Gi' } });
  const grown = fileCluster({ replicas: 2, storage: { size: '2Gi' } });
  const plan = planCluster(grown, withDefaults(grown.spec), observe(grown, appliedStatefulSet(fc, 2), ready(2)));
  assert.equal(plan.statefulSet.spec?.volumeClaimTemplates?.[0]?.spec?.resources?.requests?.['storage'], '1Gi');
  assert.deepEqual(plan.pvcResizes, [{ name: 'data-fc-0', size: '2Gi' }, { name: 'data-fc-1', size: '2Gi' }]);
  assert.deepEqual(planCluster(fc, withDefaults(fc.spec), observe(fc, appliedStatefulSet(fc, 2), ready(2))).pvcResizes, []);
});
