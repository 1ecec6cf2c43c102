import type {
  V1PersistentVolumeClaim,
  V1PodDisruptionBudget,
  V1PodTemplateSpec,
  V1Secret,
  V1Service,
  V1StatefulSet,
  V1EnvVar,
  V1OwnerReference,
} from '@kubernetes/client-node';
import type { ResolvedSpec } from '../../api/v1alpha1/defaults.ts';
import { digest } from '../../runtime/digest.ts';
import { quantityToBytes } from '../../api/v1alpha1/quantity.ts';
import { API_VERSION, KIND, type FileCluster, type Peer } from '../../api/v1alpha1/types.ts';
import { isRunning, isServing, type MemberPod } from './membership.ts';
import { PEER_TOKEN_KEY, PREVIOUS_TOKEN_KEY, TOKEN_VERSION_LABEL, peerTokensData, type PeerTokens } from './token.ts';
import {
  API_PORT,
  DATA_VOLUME,
  FORCE_SCALE_DOWN_ANNOTATION,
  JOINED_ANNOTATION,
  SERVING_LABEL,
  TEMPLATE_HASH_ANNOTATION,
  TOKEN_KEY,
  commonLabels,
  generatedSecretName,
  headlessServiceName,
  clientServiceName,
  pdbName,
  peerTokensSecretName,
  podName,
  selectorLabels,
  statefulSetName,
} from './names.ts';

/** What a pod says about itself on GET /internal/status or PUT /internal/fence (or why it could not be read). */
export type NodeReport =
  | {
      ok: true;
      generation: number;
      /** The generation of the last catch-up pass that reached every peer of that list. */
      syncedGeneration: number;
      /** Fenced: it refuses client writes, and the backlog below includes every write it acknowledged. */
      leaving: boolean;
      peers: Array<{ id: string; pendingChanges: number }>;
    }
  | { ok: false; error: string };

/** A pod's data claim, reduced to what the planner decides on. */
export interface Claim {
  name: string;
  ordinal: number;
  /** False only while its pod has never been given a peer list: it then holds no acknowledged write. */
  joined: boolean;
  /** Its pod was fenced and handed every write over before a scale-down took it. */
  drained: boolean;
  requested?: string;
  capacity?: string;
}

export type ProgressReason =
  | 'Reconciled'
  | 'Creating'
  | 'ScalingUp'
  | 'ScalingDown'
  | 'ScaleDownWaitingForReplication'
  | 'RollingUpdate'
  | 'RollingUpdateWaitingForReplication';

export interface Observed {
  statefulSet?: V1StatefulSet;
  members: readonly MemberPod[];
  /** Reports of the pods named by podsToInspect. */
  reports: ReadonlyMap<string, NodeReport>;
  /** The peer list and generation the operator publishes (already advanced for this reconcile). */
  peers: readonly Peer[];
  peerGeneration: number;
  /** The cluster's data claims (empty when unknown). */
  claims: readonly Claim[];
  /** Pods that acknowledged peerGeneration. */
  acknowledged: ReadonlySet<string>;
  /** Claim -> the size a resize of it was refused at (not asked again for that size). */
  failedResizes: ReadonlyMap<string, string>;
  now: Date;
  /** The version of the operator's token Secret the pods must run with (a new one rolls them). */
  tokenVersion: number;
}

export interface Plan {
  statefulSet: V1StatefulSet;
  headlessService: V1Service;
  clientService: V1Service;
  podDisruptionBudget: V1PodDisruptionBudget;
  tokenSecret: { name: string; generate: boolean };
  progress: { reason: ProgressReason; message: string };
  pvcResizes: Array<{ name: string; size: string }>;
  /** Pods whose serving label must change (leaving pods stop taking client traffic before they drain). */
  servingLabels: Array<{ name: string; serving: boolean }>;
  /** Pods fenced by mistake (a cancelled scale-down) that take writes again. */
  unfence: string[];
  /** Claims of pods about to get their first peer list: marked joined (and no longer drained) before the push. */
  joinMarks: string[];
  /** Claims of leaving pods that passed the write barrier: marked drained before the StatefulSet shrinks. */
  drainMarks: string[];
  /** Claims of scaled-away pods that are gone and held nothing the others lack. */
  claimDeletes: string[];
  /** Set when the force annotation let a scale-down skip the barrier. */
  forced?: { replicas: number; blockers: string[]; keptClaims: string[] };
  /** Since when the scale-down waits, while one does. */
  scaleDownBlockedSince?: string;
  forcedScaleDown?: { replicas: number; generation: number };
}

export function ownerReference(fc: FileCluster): V1OwnerReference {
  return {
    apiVersion: API_VERSION,
    kind: KIND,
    name: fc.metadata.name,
    uid: fc.metadata.uid ?? '',
    controller: true,
    blockOwnerDeletion: true,
  };
}

function meta(fc: FileCluster, name: string): { name: string; namespace: string; labels: Record<string, string>; ownerReferences: V1OwnerReference[] } {
  return { name, namespace: fc.metadata.namespace, labels: commonLabels(fc.metadata.name), ownerReferences: [ownerReference(fc)] };
}

export function tokenSecretName(fc: FileCluster, spec: ResolvedSpec): { name: string; generate: boolean } {
  return spec.tokenSecretName !== undefined ? { name: spec.tokenSecretName, generate: false } : { name: generatedSecretName(fc.metadata.name), generate: true };
}

export function generatedSecret(fc: FileCluster, token: string): V1Secret {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: meta(fc, generatedSecretName(fc.metadata.name)),
    type: 'Opaque',
    stringData: { [TOKEN_KEY]: token },
  };
}

/** The operator's Secret of the token(s) the pods are given (see token.ts). */
export function peerTokensSecret(fc: FileCluster, tokens: PeerTokens): V1Secret {
  const m = meta(fc, peerTokensSecretName(fc.metadata.name));
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { ...m, labels: { ...m.labels, [TOKEN_VERSION_LABEL]: String(tokens.version) } },
    type: 'Opaque',
    data: peerTokensData(tokens),
  };
}

function env(spec: ResolvedSpec, tokensSecret: string): V1EnvVar[] {
  const r = spec.replication;
  const vars: V1EnvVar[] = [
    { name: 'FC_NODE_ID', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
    { name: 'FC_PORT', value: String(API_PORT) },
    { name: 'FC_METRICS_PORT', value: String(spec.metrics.port) },
    { name: 'FC_DATA_DIR', value: '/data' },
    // Membership comes from this operator: a pod takes client writes once it holds the list (see scaleDownBlockers).
    { name: 'FC_AWAIT_PEER_LIST', value: 'true' },
    // From the operator's Secret, not the user's: a token changed there reaches pods through a rotation.
    { name: 'FC_TOKEN', valueFrom: { secretKeyRef: { name: tokensSecret, key: PEER_TOKEN_KEY } } },
    { name: 'FC_PREVIOUS_TOKEN', valueFrom: { secretKeyRef: { name: tokensSecret, key: PREVIOUS_TOKEN_KEY, optional: true } } },
    { name: 'FC_DEFAULT_ACK', value: r.defaultAck },
    { name: 'FC_ACK_TIMEOUT_MS', value: String(r.ackTimeoutMs) },
    { name: 'FC_TOMBSTONE_RETENTION_SECONDS', value: String(r.tombstoneRetentionSeconds) },
    { name: 'FC_CATCHUP_INTERVAL_SECONDS', value: String(r.catchUpIntervalSeconds) },
    { name: 'FC_LOG_LEVEL', value: spec.logLevel },
  ];
  if (r.maxBodyBytes !== undefined) vars.push({ name: 'FC_MAX_BODY_BYTES', value: String(r.maxBodyBytes) });
  return vars;
}

export function podTemplate(fc: FileCluster, spec: ResolvedSpec, tokenVersion: number): V1PodTemplateSpec {
  const cluster = fc.metadata.name;
  const ports = [{ name: 'http', containerPort: API_PORT, protocol: 'TCP' }];
  if (spec.metrics.enabled) ports.push({ name: 'metrics', containerPort: spec.metrics.port, protocol: 'TCP' });
  const template: V1PodTemplateSpec = {
    metadata: {
      // No serving label: a new pod enters the client Service only once the operator saw it join.
      labels: commonLabels(cluster),
      annotations: {
        ...(spec.metrics.enabled ? { 'prometheus.io/scrape': 'true', 'prometheus.io/port': String(spec.metrics.port), 'prometheus.io/path': '/metrics' } : {}),
        [TOKEN_VERSION_LABEL]: String(tokenVersion),
      },
    },
    spec: {
      enableServiceLinks: false,
      automountServiceAccountToken: false,
      terminationGracePeriodSeconds: 30,
      securityContext: {
        runAsNonRoot: true,
        runAsUser: 10001,
        runAsGroup: 10001,
        fsGroup: 10001,
        seccompProfile: { type: 'RuntimeDefault' },
      },
      // The default spreads pods across nodes but still schedules them all on a one-node cluster.
      topologySpreadConstraints: (spec.topologySpreadConstraints ?? [
        {
          maxSkew: 1,
          topologyKey: 'kubernetes.io/hostname',
          whenUnsatisfiable: 'ScheduleAnyway',
          labelSelector: { matchLabels: selectorLabels(cluster) },
        },
      ]) as unknown as NonNullable<V1PodTemplateSpec['spec']>['topologySpreadConstraints'],
      containers: [
        {
          name: 'fileserver',
          image: spec.image,
          imagePullPolicy: spec.imagePullPolicy,
          ports,
          env: env(spec, peerTokensSecretName(cluster)),
          readinessProbe: { httpGet: { path: '/readyz', port: 'http' }, periodSeconds: 2, timeoutSeconds: 2, failureThreshold: 2 },
          livenessProbe: {
            httpGet: { path: '/healthz', port: 'http' },
            initialDelaySeconds: 10,
            periodSeconds: 10,
            timeoutSeconds: 3,
            failureThreshold: 3,
          },
          resources: spec.resources,
          securityContext: {
            allowPrivilegeEscalation: false,
            readOnlyRootFilesystem: true,
            runAsNonRoot: true,
            capabilities: { drop: ['ALL'] },
          },
          volumeMounts: [
            { name: DATA_VOLUME, mountPath: '/data' },
            { name: 'tmp', mountPath: '/tmp' },
          ],
        },
      ],
      volumes: [{ name: 'tmp', emptyDir: {} }],
    },
  };
  const podSpec = template.spec!;
  if (spec.nodeSelector !== undefined) podSpec.nodeSelector = spec.nodeSelector;
  if (spec.tolerations !== undefined) podSpec.tolerations = spec.tolerations as unknown as NonNullable<typeof podSpec.tolerations>;
  if (spec.affinity !== undefined) podSpec.affinity = spec.affinity as unknown as NonNullable<typeof podSpec.affinity>;
  return template;
}

/** A stable digest of the pod template: a change starts a gated rollout. */
export function templateHash(template: V1PodTemplateSpec): string {
  return digest(template);
}

/** Volume claim templates are immutable on a StatefulSet: keep what exists, grow the PVCs themselves. */
function volumeClaimTemplate(fc: FileCluster, spec: ResolvedSpec, existing?: V1StatefulSet): V1PersistentVolumeClaim {
  const old = existing?.spec?.volumeClaimTemplates?.find((t) => t.metadata?.name === DATA_VOLUME);
  const size = (old?.spec?.resources?.requests?.['storage'] as string | undefined) ?? spec.storage.size;
  const storageClassName = old ? old.spec?.storageClassName : spec.storage.storageClassName;
  // New claims start marked not joined; templates made before the mark existed stay as they are
  // (their claims count as joined, which only makes a scale-down wait for them).
  const annotations = old ? old.metadata?.annotations : { [JOINED_ANNOTATION]: 'false' };
  const claim: V1PersistentVolumeClaim = {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: { name: DATA_VOLUME, labels: selectorLabels(fc.metadata.name), ...(annotations ? { annotations } : {}) },
    spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: size } } },
  };
  if (storageClassName !== undefined && storageClassName !== null) claim.spec!.storageClassName = storageClassName;
  return claim;
}

/**
 * What keeps the leaving pods (ordinals from spec.replicas up to current) from going: each must have
 * confirmed the fence (it takes no more writes) in a status read that shows no backlog to any remaining
 * pod. A pod whose claim was never given a peer list holds no acknowledged write and never blocks.
 */
function scaleDownBlockers(spec: ResolvedSpec, current: number, obs: Observed): { blockers: string[]; drained: string[] } {
  const blockers: string[] = [];
  const drained: string[] = [];
  const remaining = new Set(obs.peers.map((p) => p.id));
  const cluster = obs.statefulSet?.metadata?.name ?? '';
  let holding = 0;
  for (let ordinal = spec.replicas; ordinal < current; ordinal++) {
    const name = podName(cluster, ordinal);
    const claim = obs.claims.find((c) => c.ordinal === ordinal);
    if (claim && !claim.joined) continue;
    holding++;
    const pod = obs.members.find((m) => m.ordinal === ordinal);
    const report = obs.reports.get(name);
    if (!pod || !isRunning(pod)) {
      blockers.push(`${name} is not running, cannot confirm it has replicated its writes`);
      continue;
    }
    if (!report?.ok) {
      const why = report && !report.ok ? report.error : 'not asked';
      blockers.push(pod.ready ? `${name} status unavailable: ${why}` : `${name} is not Ready, cannot confirm it has replicated its writes (${why})`);
      continue;
    }
    if (!report.leaving) {
      blockers.push(`${name} has not confirmed it stopped taking writes`);
      continue;
    }
    if (report.generation < obs.peerGeneration) {
      blockers.push(`${name} has not received peer list generation ${obs.peerGeneration}`);
      continue;
    }
    const owed: string[] = [];
    for (const id of remaining) {
      const peer = report.peers.find((p) => p.id === id);
      if (!peer) owed.push(`unknown backlog to ${id}`);
      else if (peer.pendingChanges > 0) owed.push(`${peer.pendingChanges} changes to ${id}`);
    }
    if (owed.length > 0) blockers.push(`${name} owes ${owed.join(', ')}`);
    else if (claim) drained.push(claim.name);
  }
  if (holding > 0 && remaining.size === 0) blockers.unshift('no Ready pod remains to take over the leaving pods\u2019 data');
  return { blockers, drained };
}

/** The pods leaving in a scale-down that can be told so: they are fenced, and the fence's answer is their status. */
export function podsToFence(spec: ResolvedSpec, sts: V1StatefulSet | undefined, members: readonly MemberPod[]): string[] {
  const current = sts?.spec?.replicas ?? 0;
  return members.filter((m) => isRunning(m) && m.ordinal >= spec.replicas && m.ordinal < current).map((m) => m.name);
}

/**
 * Pods whose GET /internal/status this reconcile decides on: pods that stay but are not serving (new,
 * restarted, or fenced by a cancelled scale-down) and the next pod to roll.
 */
export function podsToInspect(fc: FileCluster, spec: ResolvedSpec, sts: V1StatefulSet | undefined, members: readonly MemberPod[], tokenVersion: number): string[] {
  if (!sts) return [];
  const names = members.filter((m) => isRunning(m) && !m.serving && m.ordinal < spec.replicas).map((m) => m.name);
  const next = nextRolloutOrdinal(fc, spec, sts, tokenVersion);
  const nextPod = next === undefined ? undefined : members.find((m) => m.ordinal === next && isServing(m));
  if (nextPod && !names.includes(nextPod.name)) names.push(nextPod.name);
  return names;
}

function nextRolloutOrdinal(fc: FileCluster, spec: ResolvedSpec, sts: V1StatefulSet, tokenVersion: number): number | undefined {
  const hash = templateHash(podTemplate(fc, spec, tokenVersion));
  if (sts.metadata?.annotations?.[TEMPLATE_HASH_ANNOTATION] !== hash) return undefined;
  const partition = Math.min(sts.spec?.updateStrategy?.rollingUpdate?.partition ?? 0, sts.spec?.replicas ?? 0);
  return partition > 0 ? partition - 1 : undefined;
}

/**
 * Rolling updates go one pod at a time through the StatefulSet partition: the partition moves down
 * past a pod only when every pod above it runs the new template and is Ready, and the pod about to
 * restart has no replication backlog.
 */
function rollout(
  sts: V1StatefulSet | undefined,
  hash: string,
  replicas: number,
  obs: Observed,
): { partition: number; waiting?: { reason: ProgressReason; message: string }; restarting?: string } {
  if (!sts) return { partition: 0 };
  if (sts.metadata?.annotations?.[TEMPLATE_HASH_ANNOTATION] !== hash) {
    return { partition: replicas, waiting: { reason: 'RollingUpdate', message: 'pod template changed, starting a rolling update' } };
  }
  const partition = Math.min(sts.spec?.updateStrategy?.rollingUpdate?.partition ?? 0, replicas);
  if (partition === 0) return { partition: 0 };
  const stale = (sts.status?.observedGeneration ?? 0) < (sts.metadata?.generation ?? 0);
  const updateRevision = sts.status?.updateRevision;
  const notDone = obs.members.filter((m) => m.ordinal >= partition && m.ordinal < replicas && (m.revision !== updateRevision || !m.ready || !m.serving || m.terminating));
  if (stale || notDone.length > 0 || obs.members.filter((m) => m.ordinal >= partition && m.ordinal < replicas).length < replicas - partition) {
    const who = notDone.map((m) => m.name).join(', ') || 'the StatefulSet controller';
    return { partition, waiting: { reason: 'RollingUpdate', message: `waiting for ${who} to run the new template, be Ready and serve` } };
  }
  const next = partition - 1;
  const pod = obs.members.find((m) => m.ordinal === next);
  // The pod about to restart stays out of the client Service from now until it runs the new template.
  const restarting = pod && pod.revision !== updateRevision ? { restarting: pod.name } : {};
  if (pod && pod.revision !== updateRevision && pod.serving && !pod.terminating) {
    return { partition, ...restarting, waiting: { reason: 'RollingUpdate', message: `taking ${pod.name} out of the client Service before it restarts` } };
  }
  if (pod && isServing(pod)) {
    const report = obs.reports.get(pod.name);
    if (!report?.ok) {
      return {
        partition,
        ...restarting,
        waiting: { reason: 'RollingUpdateWaitingForReplication', message: `${pod.name} status unavailable${report && !report.ok ? `: ${report.error}` : ''}` },
      };
    }
    const owed = report.peers.filter((p) => p.pendingChanges > 0);
    if (owed.length > 0) {
      const detail = owed.map((p) => `${p.pendingChanges} changes to ${p.id}`).join(', ');
      return { partition, ...restarting, waiting: { reason: 'RollingUpdateWaitingForReplication', message: `${pod.name} owes ${detail} before it restarts` } };
    }
  }
  return {
    partition: next,
    ...restarting,
    ...(next > 0 ? { waiting: { reason: 'RollingUpdate' as const, message: `updating ${podName(sts.metadata?.name ?? '', next)}` } } : {}),
  };
}

export function planCluster(fc: FileCluster, spec: ResolvedSpec, obs: Observed): Plan {
  const cluster = fc.metadata.name;
  const secret = tokenSecretName(fc, spec);
  const template = podTemplate(fc, spec, obs.tokenVersion);
  const hash = templateHash(template);
  const sts = obs.statefulSet;
  const current = sts?.spec?.replicas ?? spec.replicas;
  const generation = fc.metadata.generation ?? 0;

  // The force annotation names the replica count it authorises and forces one scale-down to it: its use
  // is recorded with the spec's generation, and a later scale-down (a newer generation) waits again.
  const forceNames = fc.metadata.annotations?.[FORCE_SCALE_DOWN_ANNOTATION];
  const used = forceNames === undefined ? undefined : fc.status?.forcedScaleDown;
  const forceAllowed = forceNames === String(spec.replicas) && (!used || used.replicas !== spec.replicas || used.generation === generation);

  let replicas = spec.replicas;
  let progress: Plan['progress'] = { reason: 'Reconciled', message: 'all pods run the desired spec' };
  let drainMarks: string[] = [];
  let forced: Plan['forced'];
  let forcedScaleDown = used;
  let scaleDownBlockedSince: string | undefined;
  if (spec.replicas < current) {
    const { blockers, drained } = scaleDownBlockers(spec, current, obs);
    drainMarks = drained.filter((name) => !obs.claims.find((c) => c.name === name)?.drained);
    if (blockers.length > 0 && !forceAllowed) {
      replicas = current;
      const since = fc.status?.scaleDownBlockedSince ?? obs.now.toISOString().replace(/\.\d{3}Z$/, 'Z');
      scaleDownBlockedSince = since;
      const waited = Math.max(0, obs.now.getTime() - Date.parse(since));
      const ignored =
        forceNames !== undefined && !forceAllowed
          ? `; the ${FORCE_SCALE_DOWN_ANNOTATION} annotation ("${forceNames}") does not authorise this scale-down (it must name ${spec.replicas}, and forces one scale-down to it)`
          : '';
      progress = {
        reason: 'ScaleDownWaitingForReplication',
        message: `scale-down from ${current} to ${spec.replicas} waits (for ${formatDuration(waited)}): ${blockers.join('; ')}${ignored}`,
      };
    } else if (blockers.length > 0) {
      const keptClaims = obs.claims.filter((c) => c.ordinal >= spec.replicas && c.ordinal < current && c.joined && !drained.includes(c.name)).map((c) => c.name);
      forced = { replicas: spec.replicas, blockers, keptClaims };
      forcedScaleDown = { replicas: spec.replicas, generation };
      progress = { reason: 'ScalingDown', message: `scaling down from ${current} to ${spec.replicas} (forced: ${blockers.join('; ')})` };
    } else {
      progress = { reason: 'ScalingDown', message: `scaling down from ${current} to ${spec.replicas}` };
    }
  }
  const roll = rollout(sts, hash, replicas, obs);
  if (progress.reason === 'Reconciled') {
    const ready = obs.members.filter((m) => m.ordinal < spec.replicas && isServing(m)).length;
    const serving = obs.members.filter((m) => m.ordinal < spec.replicas && m.serving && !m.terminating).length;
    if (roll.waiting) progress = roll.waiting;
    else if (!sts) progress = { reason: 'Creating', message: `creating ${spec.replicas} pods` };
    else if (ready < spec.replicas) progress = { reason: 'ScalingUp', message: `${ready}/${spec.replicas} pods Ready` };
    else if (serving < spec.replicas)
      progress = { reason: 'ScalingUp', message: `${serving}/${spec.replicas} pods serving (new pods join once they hold the peer list and caught up)` };
  }

  const statefulSet: V1StatefulSet = {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: { ...meta(fc, statefulSetName(cluster)), annotations: { [TEMPLATE_HASH_ANNOTATION]: hash } },
    spec: {
      replicas,
      serviceName: headlessServiceName(cluster),
      // Parallel only affects creation and deletion order; the operator itself decides when the
      // StatefulSet shrinks (after the leaving pods drained), and rollouts go through the partition.
      podManagementPolicy: 'Parallel',
      selector: { matchLabels: selectorLabels(cluster) },
      updateStrategy: { type: 'RollingUpdate', rollingUpdate: { partition: roll.partition } },
      // Claims outlive an accidental delete unless the spec asks otherwise. A scaled-away pod's claim is
      // deleted by the operator, only once the pod is gone and had handed every write over (drained), so
      // that a later scale-up starts empty and catches up instead of resurrecting files deleted since.
      persistentVolumeClaimRetentionPolicy: { whenDeleted: spec.storage.whenDeleted, whenScaled: 'Retain' },
      template,
      volumeClaimTemplates: [volumeClaimTemplate(fc, spec, sts)],
    },
  };

  const httpPort = { name: 'http', port: API_PORT, targetPort: 'http', protocol: 'TCP' };
  const headlessService: V1Service = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: meta(fc, headlessServiceName(cluster)),
    spec: { clusterIP: 'None', publishNotReadyAddresses: true, selector: selectorLabels(cluster), ports: [httpPort] },
  };
  const clientPorts = [httpPort];
  if (spec.metrics.enabled) clientPorts.push({ name: 'metrics', port: spec.metrics.port, targetPort: 'metrics', protocol: 'TCP' });
  const clientService: V1Service = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: meta(fc, clientServiceName(cluster)),
    spec: { type: 'ClusterIP', selector: { ...selectorLabels(cluster), [SERVING_LABEL]: 'true' }, ports: clientPorts },
  };
  const podDisruptionBudget: V1PodDisruptionBudget = {
    apiVersion: 'policy/v1',
    kind: 'PodDisruptionBudget',
    metadata: meta(fc, pdbName(cluster)),
    spec: { maxUnavailable: 1, selector: { matchLabels: selectorLabels(cluster) } },
  };

  // Growing volumes: each claim whose request is below the spec is asked once per size; what the
  // claims already request (or a refused size) is not asked again.
  const pvcResizes: Plan['pvcResizes'] = [];
  const wantedBytes = quantityToBytes(spec.storage.size);
  for (const c of obs.claims) {
    if (c.ordinal >= Math.max(current, replicas) || wantedBytes === undefined) continue;
    const requested = c.requested === undefined ? undefined : quantityToBytes(c.requested);
    if (requested === undefined || requested >= wantedBytes || obs.failedResizes.get(c.name) === spec.storage.size) continue;
    pvcResizes.push({ name: c.name, size: spec.storage.size });
  }

  // The client Service takes a pod once it holds the current peer list and caught up over it; leaving
  // pods and the pod about to restart leave it first.
  const servingLabels: Plan['servingLabels'] = [];
  const unfence: string[] = [];
  for (const m of obs.members) {
    if (m.terminating) continue;
    const report = obs.reports.get(m.name);
    if (m.ordinal < spec.replicas && report?.ok && report.leaving) unfence.push(m.name);
    let serving = m.serving;
    if (m.ordinal >= spec.replicas || m.name === roll.restarting) serving = false;
    else if (!m.serving) serving = caughtUp(m, report, obs);
    if (serving !== m.serving) servingLabels.push({ name: m.name, serving });
  }

  // Claims: marked joined before their pod's first peer list; deleted once a scaled-away pod is gone and
  // held nothing the others lack. A leaving pod is not given a first list: the scale-down above was
  // decided on its claim as never joined, and with a list it would take writes it never hands over.
  const joinMarks = obs.members
    .filter((m) => isRunning(m) && m.ordinal < spec.replicas && !obs.acknowledged.has(m.name))
    .map((m) => obs.claims.find((c) => c.ordinal === m.ordinal))
    .filter((c): c is Claim => c !== undefined && (!c.joined || c.drained))
    .map((c) => c.name);
  const floor = Math.max(spec.replicas, replicas, sts?.spec?.replicas ?? 0);
  const claimDeletes = obs.claims.filter((c) => c.ordinal >= floor && (c.drained || !c.joined) && !obs.members.some((m) => m.ordinal === c.ordinal)).map((c) => c.name);

  const plan: Plan = {
    statefulSet,
    headlessService,
    clientService,
    podDisruptionBudget,
    tokenSecret: secret,
    progress,
    pvcResizes,
    servingLabels,
    unfence,
    joinMarks,
    drainMarks,
    claimDeletes,
  };
  if (forced) plan.forced = forced;
  if (scaleDownBlockedSince) plan.scaleDownBlockedSince = scaleDownBlockedSince;
  if (forcedScaleDown) plan.forcedScaleDown = forcedScaleDown;
  return plan;
}

/** A pod joins the client Service once it is Ready, holds the current list and a catch-up over it reached every peer. */
function caughtUp(m: MemberPod, report: NodeReport | undefined, obs: Observed): boolean {
  return (
    isServing(m) &&
    obs.acknowledged.has(m.name) &&
    report?.ok === true &&
    !report.leaving &&
    report.generation >= obs.peerGeneration &&
    report.syncedGeneration >= obs.peerGeneration
  );
}

/** 75 s -> "1m15s". */
export function formatDuration(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${s % 60}s`;
  return `${Math.floor(m / 60)}h${m % 60}m`;
}
