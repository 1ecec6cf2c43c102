import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { V1StatefulSet } from '@kubernetes/client-node';
import { withDefaults } from '../../../../../operator/src/api/v1alpha1/defaults.ts';
import { desiredPeers, memberPods } from '../../../../../operator/src/controllers/filecluster/membership.ts';
import { planCluster, podsToFence, podsToInspect, type Claim, type NodeReport, type Observed } from '../../../../../operator/src/controllers/filecluster/plan.ts';
import type { FileCluster } from '../../../../../operator/src/api/v1alpha1/types.ts';
import { fileCluster, pod } from './fixtures.ts';

const NOW = new Date('2026-01-01T00:10:00Z');

function observe(
  fc: FileCluster,
  sts: V1StatefulSet | undefined,
  pods: ReturnType<typeof pod>[],
  reports: Record<string, NodeReport> = {},
  generation = 2,
  more: Partial<Observed> = {},
): Observed {
  const members = memberPods(fc.metadata.name, pods);
  const obs: Observed = {
    members,
    reports: new Map(Object.entries(reports)),
    peers: desiredPeers(members, withDefaults(fc.spec).replicas),
    peerGeneration: generation,
    claims: [],
    acknowledged: new Set(members.map((m) => m.name)),
    failedResizes: new Map(),
    now: NOW,
    tokenVersion: 1,
    ...more,
  };
  if (sts) obs.statefulSet = sts;
  return obs;
}

/** A status read of a pod: fenced or not, holding `generation`, owing `owed` changes to each named peer. */
const report = (generation: number, owed: Record<string, number>, leaving = true, syncedGeneration = generation): NodeReport => ({
  ok: true,
  generation,
  syncedGeneration,
  leaving,
  peers: Object.entries(owed).map(([id, pendingChanges]) => ({ id, pendingChanges })),
});

const claim = (ordinal: number, over: Partial<Claim> = {}): Claim => ({ name: `data-fc-${ordinal}`, ordinal, joined: true, drained: false, requested: '1Gi', ...over });

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
    assert.deepEqual(
      obj.metadata?.ownerReferences?.map((o) => [o.kind, o.name, o.uid, o.controller]),
      [['FileCluster', 'fc', 'uid-1', true]],
    );
  }
  assert.equal(sts.spec?.replicas, 3);
  assert.equal(sts.spec?.serviceName, 'fc-peers');
  assert.equal(plan.headlessService.spec?.clusterIP, 'None');
  const c = sts.spec?.template.spec?.containers[0];
  assert.ok(c);
  assert.equal(c.image, 'filecluster/fileserver:0.1.0');
  const env = Object.fromEntries((c.env ?? []).map((e) => [e.name, e.value ?? e.valueFrom]));
  // Every address of the pod: kubectl port-forward connects to localhost inside it.
  assert.equal('FC_HOST' in env, false);
  assert.deepEqual(env['FC_NODE_ID'], { fieldRef: { fieldPath: 'metadata.name' } });
  // The pods' tokens come from the operator's Secret, which follows the user's through rotations.
  assert.deepEqual(env['FC_TOKEN'], { secretKeyRef: { name: 'fc-peer-tokens', key: 'token' } });
  assert.deepEqual(env['FC_PREVIOUS_TOKEN'], { secretKeyRef: { name: 'fc-peer-tokens', key: 'previous', optional: true } });
  assert.equal(sts.spec?.template.metadata?.annotations?.['filecluster.dev/token-version'], '1');
  assert.equal(env['FC_DATA_DIR'], '/data');
  // A pod takes writes only once the operator gave it a peer list: before, the scale-down barrier ignores it.
  assert.equal(env['FC_AWAIT_PEER_LIST'], 'true');
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
  assert.deepEqual(
    sts.spec?.template.spec?.topologySpreadConstraints?.map((t) => [t.topologyKey, t.whenUnsatisfiable]),
    [['kubernetes.io/hostname', 'ScheduleAnyway']],
  );
  assert.equal(plan.tokenSecret.generate, true);
  assert.equal(plan.progress.reason, 'Creating');
});

test('a given token Secret and placement reach the plan and the pod template', () => {
  const fc = fileCluster({
    tokenSecretName: 'mine',
    nodeSelector: { disk: 'ssd' },
    topologySpreadConstraints: [{ maxSkew: 2, topologyKey: 'zone', whenUnsatisfiable: 'DoNotSchedule' }],
  });
  const plan = planCluster(fc, withDefaults(fc.spec), observe(fc, undefined, []));
  assert.deepEqual(plan.tokenSecret, { name: 'mine', generate: false });
  const podSpec = plan.statefulSet.spec?.template.spec;
  assert.deepEqual(podSpec?.nodeSelector, { disk: 'ssd' });
  assert.equal(podSpec?.topologySpreadConstraints?.[0]?.topologyKey, 'zone');
});

test('scale-down: the leaving pods are fenced, and the StatefulSet shrinks only after a status read behind the fence shows no backlog', () => {
  const fc = fileCluster({ replicas: 3 });
  const spec = withDefaults(fc.spec);
  const sts = appliedStatefulSet(fc, 5);
  const pods = ready(5);
  assert.deepEqual(podsToFence(spec, sts, memberPods('fc', pods)), ['fc-3', 'fc-4']);
  assert.deepEqual(podsToInspect(fc, spec, sts, memberPods('fc', pods), 1), [], 'serving pods that stay need no status read');
  const claims = [0, 1, 2, 3, 4].map((i) => claim(i));

  const table: Array<[string, Record<string, NodeReport>, RegExp | undefined]> = [
    ['owes changes', { 'fc-3': report(2, { 'fc-0': 4, 'fc-1': 0, 'fc-2': 0 }), 'fc-4': report(2, { 'fc-0': 0, 'fc-1': 0, 'fc-2': 0 }) }, /fc-3 owes 4 changes to fc-0/],
    ['old list', { 'fc-3': report(2, { 'fc-0': 0, 'fc-1': 0, 'fc-2': 0 }), 'fc-4': report(1, {}) }, /fc-4 has not received peer list generation 2/],
    [
      'not fenced',
      { 'fc-3': report(2, { 'fc-0': 0, 'fc-1': 0, 'fc-2': 0 }, false), 'fc-4': report(2, { 'fc-0': 0, 'fc-1': 0, 'fc-2': 0 }) },
      /fc-3 has not confirmed it stopped taking writes/,
    ],
    ['unreadable', { 'fc-3': { ok: false, error: 'timed out' }, 'fc-4': report(2, { 'fc-0': 0, 'fc-1': 0, 'fc-2': 0 }) }, /fc-3 status unavailable: timed out/],
    ['drained', { 'fc-3': report(2, { 'fc-0': 0, 'fc-1': 0, 'fc-2': 0 }), 'fc-4': report(2, { 'fc-0': 0, 'fc-1': 0, 'fc-2': 0, 'fc-3': 9 }) }, undefined],
  ];
  for (const [name, reports, blocker] of table) {
    const plan = planCluster(fc, spec, observe(fc, sts, pods, reports, 2, { claims }));
    // Leaving pods leave the client Service first, whatever else happens.
    assert.deepEqual(
      plan.servingLabels,
      [
        { name: 'fc-3', serving: false },
        { name: 'fc-4', serving: false },
      ],
      name,
    );
    if (blocker) {
      assert.equal(plan.statefulSet.spec?.replicas, 5, name);
      assert.equal(plan.progress.reason, 'ScaleDownWaitingForReplication', name);
      assert.match(plan.progress.message, blocker, name);
      assert.equal(plan.scaleDownBlockedSince, '2026-01-01T00:10:00Z', name);
    } else {
      assert.equal(plan.statefulSet.spec?.replicas, 3, name);
      assert.equal(plan.progress.reason, 'ScalingDown', name);
      assert.deepEqual(plan.drainMarks, ['data-fc-3', 'data-fc-4'], 'the drained claims are marked before the shrink');
      assert.equal(plan.scaleDownBlockedSince, undefined);
    }
  }
});

test('scale-down waits for a leaving pod that is down or unreadable; a pod that never held a peer list does not block', () => {
  const fc = fileCluster({ replicas: 2 });
  const sts = appliedStatefulSet(fc, 3);
  const pods = [...ready(2), pod('fc-2', { ip: '127.0.1.9', ready: false })];
  const plan = planCluster(fc, withDefaults(fc.spec), observe(fc, sts, pods, { 'fc-2': { ok: false, error: 'ECONNREFUSED' } }));
  assert.equal(plan.statefulSet.spec?.replicas, 3);
  assert.match(plan.progress.message, /fc-2 is not Ready, cannot confirm it has replicated its writes \(ECONNREFUSED\)/);
  const pending = [...ready(2), pod('fc-2', { running: false, ready: false, serving: 'unset' })];
  assert.match(planCluster(fc, withDefaults(fc.spec), observe(fc, sts, pending)).progress.message, /fc-2 is not running/);
  // The claim was never marked joined: the pod never got a peer list, so it holds no acknowledged write.
  const never = planCluster(fc, withDefaults(fc.spec), observe(fc, sts, pending, {}, 2, { claims: [claim(0), claim(1), claim(2, { joined: false })] }));
  assert.equal(never.statefulSet.spec?.replicas, 2);
  assert.equal(never.progress.reason, 'ScalingDown');
  assert.deepEqual(never.drainMarks, []);
});

test('the force annotation authorises one scale-down to the count it names, with a record of its use', () => {
  const fc = fileCluster({ replicas: 2 });
  const sts = appliedStatefulSet(fc, 3);
  const pods = [...ready(2), pod('fc-2', { ip: '127.0.1.9', ready: false })];
  const claims = [claim(0), claim(1), claim(2)];
  const annotated = (value: string, status?: FileCluster['status'], generation = 5): FileCluster => ({
    ...fc,
    metadata: { ...fc.metadata, generation, annotations: { 'filecluster.dev/force-scale-down': value } },
    ...(status ? { status } : {}),
  });
  const table: Array<[string, FileCluster, boolean]> = [
    ['"true" names no count', annotated('true'), false],
    ['another count', annotated('1'), false],
    ['the count, first use', annotated('2'), true],
    ['the count, same generation (still under way)', annotated('2', { forcedScaleDown: { replicas: 2, generation: 5 } }), true],
    ['the count, a later scale-down to it', annotated('2', { forcedScaleDown: { replicas: 2, generation: 3 } }), false],
    ['used for another count before', annotated('2', { forcedScaleDown: { replicas: 1, generation: 3 } }), true],
  ];
  for (const [name, cluster, forced] of table) {
    const plan = planCluster(cluster, withDefaults(cluster.spec), observe(cluster, sts, pods, {}, 2, { claims }));
    assert.equal(plan.statefulSet.spec?.replicas, forced ? 2 : 3, name);
    if (forced) {
      assert.deepEqual(plan.forced?.keptClaims, ['data-fc-2'], `${name}: the undrained claim is kept`);
      assert.deepEqual(plan.forcedScaleDown, { replicas: 2, generation: 5 }, name);
    } else {
      assert.equal(plan.forced, undefined, name);
      assert.match(plan.progress.message, /annotation \("\d|true"\) does not authorise this scale-down/, name);
    }
  }
  // Removing the annotation forgets the record, so setting it again authorises one more.
  assert.equal(
    planCluster({ ...fc, status: { forcedScaleDown: { replicas: 2, generation: 3 } } }, withDefaults(fc.spec), observe(fc, sts, pods)).forcedScaleDown,
    undefined,
  );
});

test('a blocked scale-down keeps the time it started waiting and says how long', () => {
  const fc = { ...fileCluster({ replicas: 2 }), status: { scaleDownBlockedSince: '2026-01-01T00:07:30Z' } };
  const plan = planCluster(fc, withDefaults(fc.spec), observe(fc, appliedStatefulSet(fc, 3), ready(3), { 'fc-2': { ok: false, error: 'timed out' } }));
  assert.equal(plan.scaleDownBlockedSince, '2026-01-01T00:07:30Z');
  assert.match(plan.progress.message, /waits \(for 2m30s\)/);
});

test('claims: kept when the cluster is deleted unless asked, deleted only once a scaled-away pod is gone and drained or never joined', () => {
  const keep = fileCluster({ replicas: 2 });
  const policy = (fc: FileCluster) => planCluster(fc, withDefaults(fc.spec), observe(fc, undefined, [])).statefulSet.spec?.persistentVolumeClaimRetentionPolicy;
  assert.deepEqual(policy(keep), { whenDeleted: 'Retain', whenScaled: 'Retain' });
  assert.deepEqual(policy(fileCluster({ storage: { whenDeleted: 'Delete' } })), { whenDeleted: 'Delete', whenScaled: 'Retain' });

  const sts = appliedStatefulSet(keep, 2);
  const claims = [claim(0), claim(1), claim(2, { drained: true }), claim(3, { joined: false }), claim(4), claim(5, { drained: true })];
  // fc-5 is still there (terminating); fc-4 was never drained (a forced or out-of-band scale-down).
  const pods = [...ready(2), pod('fc-5', { ip: '127.0.1.9', terminating: true })];
  const plan = planCluster(keep, withDefaults(keep.spec), observe(keep, sts, pods, {}, 2, { claims }));
  assert.deepEqual(plan.claimDeletes, ['data-fc-2', 'data-fc-3']);
  // Still scaling down from 3 (fc-2 not gone from the StatefulSet yet): its claim stays; fc-5's pod is gone.
  const shrinking = planCluster(keep, withDefaults(keep.spec), observe(keep, appliedStatefulSet(keep, 3), ready(2), {}, 2, { claims }));
  assert.deepEqual(shrinking.claimDeletes, ['data-fc-3', 'data-fc-5']);
});

test('a claim is marked joined (and no longer drained) before its pod gets its first peer list', () => {
  const fc = fileCluster({ replicas: 3 });
  const pods = [...ready(2), pod('fc-2', { ip: '127.0.1.4', ready: false, serving: 'unset' })];
  const claims = [claim(0), claim(1, { drained: true }), claim(2, { joined: false })];
  const plan = planCluster(fc, withDefaults(fc.spec), observe(fc, appliedStatefulSet(fc, 3), pods, {}, 2, { claims, acknowledged: new Set(['fc-0']) }));
  assert.deepEqual(plan.joinMarks, ['data-fc-1', 'data-fc-2']);
  // Scaled to 1 before they joined: the scale-down goes ahead without them, so they get no list (and, as
  // operator-started pods, take no writes).
  const away = fileCluster({ replicas: 1 });
  const leaving = planCluster(away, withDefaults(away.spec), observe(away, appliedStatefulSet(away, 3), pods, {}, 2, { claims, acknowledged: new Set(['fc-0']) }));
  assert.deepEqual(leaving.joinMarks, []);
  const template = planCluster(fc, withDefaults(fc.spec), observe(fc, undefined, [])).statefulSet.spec?.volumeClaimTemplates?.[0];
  assert.deepEqual(template?.metadata?.annotations, { 'filecluster.dev/joined': 'false' }, 'new claims start not joined');
  // An existing StatefulSet keeps its (immutable) claim template as it is.
  const old = appliedStatefulSet(fc, 3);
  delete old.spec!.volumeClaimTemplates![0]!.metadata!.annotations;
  assert.equal(planCluster(fc, withDefaults(fc.spec), observe(fc, old, ready(3))).statefulSet.spec?.volumeClaimTemplates?.[0]?.metadata?.annotations, undefined);
});

test('a new pod joins the client Service only once it holds the current list and caught up over it', () => {
  const fc = fileCluster({ replicas: 3 });
  const spec = withDefaults(fc.spec);
  const sts = appliedStatefulSet(fc, 3);
  const pods = [...ready(2), pod('fc-2', { ip: '127.0.1.4', serving: 'unset' })];
  assert.equal(
    planCluster(fc, spec, observe(fc, undefined, [])).statefulSet.spec?.template.metadata?.labels?.['filecluster.dev/serving'],
    undefined,
    'the template labels no pod serving',
  );
  assert.deepEqual(podsToInspect(fc, spec, sts, memberPods('fc', pods), 1), ['fc-2']);
  const all = new Set(['fc-0', 'fc-1', 'fc-2']);
  const table: Array<[string, Partial<Observed>, Record<string, NodeReport>, boolean]> = [
    ['no list acknowledged', { acknowledged: new Set(['fc-0', 'fc-1']) }, { 'fc-2': report(2, {}) }, false],
    ['still catching up', { acknowledged: all }, { 'fc-2': report(2, {}, false, 1) }, false],
    ['status unknown', { acknowledged: all }, {}, false],
    ['caught up', { acknowledged: all }, { 'fc-2': report(2, {}, false, 2) }, true],
  ];
  for (const [name, more, reports, serving] of table) {
    const plan = planCluster(fc, spec, observe(fc, sts, pods, reports, 2, more));
    assert.deepEqual(plan.servingLabels, serving ? [{ name: 'fc-2', serving: true }] : [], name);
    assert.equal(plan.progress.reason, 'ScalingUp', name);
  }
  // A pod fenced by a scale-down that was called off takes writes again.
  const fenced = planCluster(fc, spec, observe(fc, sts, pods, { 'fc-2': report(2, {}, true) }));
  assert.deepEqual(fenced.unfence, ['fc-2']);
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
  const oldPods = ready(3).map((p) => ({ ...p, metadata: { ...p.metadata, labels: { 'controller-revision-hash': 'rev-old', 'filecluster.dev/serving': 'true' } } }));
  // First out of the client Service, then the backlog check, then the restart.
  const out = planCluster(updated, spec, observe(updated, rolling, oldPods));
  assert.equal(out.statefulSet.spec?.updateStrategy?.rollingUpdate?.partition, 3);
  assert.deepEqual(out.servingLabels, [{ name: 'fc-2', serving: false }]);
  assert.match(out.progress.message, /taking fc-2 out of the client Service before it restarts/);
  const outPods = [
    ...oldPods.slice(0, 2),
    { ...oldPods[2]!, metadata: { ...oldPods[2]!.metadata, labels: { 'controller-revision-hash': 'rev-old', 'filecluster.dev/serving': 'false' } } },
  ];
  assert.deepEqual(podsToInspect(updated, spec, rolling, memberPods('fc', outPods), 1), ['fc-2']);
  const owes = planCluster(updated, spec, observe(updated, rolling, outPods, { 'fc-2': report(2, { 'fc-0': 7 }, false) }));
  assert.equal(owes.statefulSet.spec?.updateStrategy?.rollingUpdate?.partition, 3);
  assert.equal(owes.progress.reason, 'RollingUpdateWaitingForReplication');
  assert.match(owes.progress.message, /fc-2 owes 7 changes to fc-0/);
  assert.deepEqual(owes.servingLabels, [], 'the pod about to restart is not put back in service');
  const step = planCluster(updated, spec, observe(updated, rolling, outPods, { 'fc-2': report(2, { 'fc-0': 0 }, false) }));
  assert.equal(step.statefulSet.spec?.updateStrategy?.rollingUpdate?.partition, 2);
  assert.deepEqual(step.servingLabels, []);

  // fc-2 restarted on the new revision but is not Ready yet: hold.
  const mid = appliedStatefulSet(updated, 3, 2);
  const midPods = [...oldPods.slice(0, 2), pod('fc-2', { ip: '127.0.1.4', revision: 'rev-new', ready: false })];
  const hold = planCluster(updated, spec, observe(updated, mid, midPods));
  assert.equal(hold.statefulSet.spec?.updateStrategy?.rollingUpdate?.partition, 2);
  assert.match(hold.progress.message, /waiting for fc-2/);
});

test('growing storage keeps the immutable claim template and asks each claim that requests less, once per size', () => {
  const fc = fileCluster({ replicas: 2, storage: { size: '1Gi' } });
  const grown = fileCluster({ replicas: 2, storage: { size: '2Gi' } });
  const sts = appliedStatefulSet(fc, 2);
  const resizes = (claims: Claim[], failed: Array<[string, string]> = []) =>
    planCluster(grown, withDefaults(grown.spec), observe(grown, sts, ready(2), {}, 2, { claims, failedResizes: new Map(failed) })).pvcResizes;
  assert.equal(
    planCluster(grown, withDefaults(grown.spec), observe(grown, sts, ready(2))).statefulSet.spec?.volumeClaimTemplates?.[0]?.spec?.resources?.requests?.['storage'],
    '1Gi',
  );
  const table: Array<[string, Claim[], Array<[string, string]>, string[]]> = [
    ['both below', [claim(0), claim(1)], [], ['data-fc-0', 'data-fc-1']],
    ['one already asked (2048Mi is 2Gi)', [claim(0, { requested: '2048Mi' }), claim(1)], [], ['data-fc-1']],
    ['both asked', [claim(0, { requested: '2Gi' }), claim(1, { requested: '3Gi' })], [], []],
    ['refused at this size', [claim(0), claim(1)], [['data-fc-0', '2Gi']], ['data-fc-1']],
    ['refused at a smaller size', [claim(0), claim(1)], [['data-fc-0', '1536Mi']], ['data-fc-0', 'data-fc-1']],
    ['a scaled-away claim', [claim(0, { requested: '2Gi' }), claim(1, { requested: '2Gi' }), claim(2)], [], []],
  ];
  for (const [name, claims, failed, want] of table)
    assert.deepEqual(
      resizes(claims, failed).map((r) => r.name),
      want,
      name,
    );
  assert.deepEqual(planCluster(fc, withDefaults(fc.spec), observe(fc, sts, ready(2), {}, 2, { claims: [claim(0), claim(1)] })).pvcResizes, []);
});
