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
import { isServing, type MemberPod } from './membership.ts';
import {
  API_PORT,
  DATA_VOLUME,
  FORCE_SCALE_DOWN_ANNOTATION,
  SERVING_LABEL,
  TEMPLATE_HASH_ANNOTATION,
  TOKEN_KEY,
  commonLabels,
  generatedSecretName,
  headlessServiceName,
  clientServiceName,
  pdbName,
  podName,
  pvcName,
  selectorLabels,
  statefulSetName,
} from './names.ts';

/** What a pod says about itself on GET /internal/status (or why it could not be read). */
export type NodeReport =
  | { ok: true; generation: number; peers: Array<{ id: string; pendingChanges: number }> }
  | { ok: false; error: string };

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
  return spec.tokenSecretName !== undefined
    ? { name: spec.tokenSecretName, generate: false }
    : { name: generatedSecretName(fc.metadata.name), generate: true };
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

function env(spec: ResolvedSpec, secretName: string): V1EnvVar[] {
  const r = spec.replication;
  const vars: V1EnvVar[] = [
    { name: 'FC_NODE_ID', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
    { name: 'FC_HOST', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
    { name: 'FC_PORT', value: String(API_PORT) },
    { name: 'FC_METRICS_PORT', value: String(spec.metrics.port) },
    { name: 'FC_DATA_DIR', value: '/data' },
    { name: 'FC_TOKEN', valueFrom: { secretKeyRef: { name: secretName, key: TOKEN_KEY } } },
    { name: 'FC_DEFAULT_ACK', value: r.defaultAck },
    { name: 'FC_ACK_TIMEOUT_MS', value: String(r.ackTimeoutMs) },
    { name: 'FC_TOMBSTONE_RETENTION_SECONDS', value: String(r.tombstoneRetentionSeconds) },
    { name: 'FC_CATCHUP_INTERVAL_SECONDS', value: String(r.catchUpIntervalSeconds) },
    { name: 'FC_LOG_LEVEL', value: spec.logLevel },
  ];
  if (r.maxBodyBytes !== undefined) vars.push({ name: 'FC_MAX_BODY_BYTES', value: String(r.maxBodyBytes) });
  return vars;
}

export function podTemplate(fc: FileCluster, spec: ResolvedSpec, secretName: string): V1PodTemplateSpec {
  const cluster = fc.metadata.name;
  const ports = [{ name: 'http', containerPort: API_PORT, protocol: 'TCP' }];
  if (spec.metrics.enabled) ports.push({ name: 'metrics', containerPort: spec.metrics.port, protocol: 'TCP' });
  const template: V1PodTemplateSpec = {
    metadata: {
      labels: { ...commonLabels(cluster), [SERVING_LABEL]: 'true' },
      annotations: spec.metrics.enabled
        ? { 'prometheus.io/scrape': 'true', 'prometheus.io/port': String(spec.metrics.port), 'prometheus.io/path': '/metrics' }
        : {},
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
          env: env(spec, secretName),
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
  const claim: V1PersistentVolumeClaim = {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: { name: DATA_VOLUME, labels: selectorLabels(fc.metadata.name) },
    spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: size } } },
  };
  if (storageClassName !== undefined && storageClassName !== null) claim.spec!.storageClassName = storageClassName;
  return claim;
}

function scaleDownBlockers(
  spec: ResolvedSpec,
  current: number,
  obs: Observed,
): string[] {
  const blockers: string[] = [];
  const remaining = new Set(obs.peers.map((p) => p.id));
  if (remaining.size === 0) blockers.push('no Ready pod remains to take over the leaving pods\u2019 data');
  for (let ordinal = spec.replicas; ordinal < current; ordinal++) {
    const name = podName(obs.statefulSet?.metadata?.name ?? '', ordinal);
    const pod = obs.members.find((m) => m.ordinal === ordinal);
    if (!pod || !isServing(pod)) {
      blockers.push(`${name} is not Ready, cannot confirm it has replicated its writes`);
      continue;
    }
    const report = obs.reports.get(name);
    if (!report?.ok) {
      blockers.push(`${name} status unavailable${report && !report.ok ? `: ${report.error}` : ''}`);
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
  }
  return blockers;
}

/** Pods whose /internal/status gates this reconcile: the leaving pods and the next pod to roll. */
export function podsToInspect(fc: FileCluster, spec: ResolvedSpec, sts: V1StatefulSet | undefined, members: readonly MemberPod[]): string[] {
  if (!sts) return [];
  const current = sts.spec?.replicas ?? 0;
  const names = members.filter((m) => isServing(m) && m.ordinal >= spec.replicas && m.ordinal < current).map((m) => m.name);
  const next = nextRolloutOrdinal(fc, spec, sts);
  const nextPod = next === undefined ? undefined : members.find((m) => m.ordinal === next && isServing(m));
  if (nextPod && !names.includes(nextPod.name)) names.push(nextPod.name);
  return names;
}

function nextRolloutOrdinal(fc: FileCluster, spec: ResolvedSpec, sts: V1StatefulSet): number | undefined {
  const hash = templateHash(podTemplate(fc, spec, tokenSecretName(fc, spec).name));
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
): { partition: number; waiting?: { reason: ProgressReason; message: string } } {
  if (!sts) return { partition: 0 };
  if (sts.metadata?.annotations?.[TEMPLATE_HASH_ANNOTATION] !== hash) {
    return { partition: replicas, waiting: { reason: 'RollingUpdate', message: 'pod template changed, starting a rolling update' } };
  }
  const partition = Math.min(sts.spec?.updateStrategy?.rollingUpdate?.partition ?? 0, replicas);
  if (partition === 0) return { partition: 0 };
  const stale = (sts.status?.observedGeneration ?? 0) < (sts.metadata?.generation ?? 0);
  const updateRevision = sts.status?.updateRevision;
  const notDone = obs.members.filter((m) => m.ordinal >= partition && m.ordinal < replicas && (m.revision !== updateRevision || !m.ready || m.terminating));
  if (stale || notDone.length > 0 || obs.members.filter((m) => m.ordinal >= partition && m.ordinal < replicas).length < replicas - partition) {
    const who = notDone.map((m) => m.name).join(', ') || 'the StatefulSet controller';
    return { partition, waiting: { reason: 'RollingUpdate', message: `waiting for ${who} to run the new template and be Ready` } };
  }
  const next = partition - 1;
  const pod = obs.members.find((m) => m.ordinal === next);
  if (pod && isServing(pod)) {
    const report = obs.reports.get(pod.name);
    if (!report?.ok) {
      return { partition, waiting: { reason: 'RollingUpdateWaitingForReplication', message: `${pod.name} status unavailable${report && !report.ok ? `: ${report.error}` : ''}` } };
    }
    const owed = report.peers.filter((p) => p.pendingChanges > 0);
    if (owed.length > 0) {
      const detail = owed.map((p) => `${p.pendingChanges} changes to ${p.id}`).join(', ');
      return { partition, waiting: { reason: 'RollingUpdateWaitingForReplication', message: `${pod.name} owes ${detail} before it restarts` } };
    }
  }
  return {
    partition: next,
    ...(next > 0 ? { waiting: { reason: 'RollingUpdate' as const, message: `updating ${podName(sts.metadata?.name ?? '', next)}` } } : {}),
  };
}

export function planCluster(fc: FileCluster, spec: ResolvedSpec, obs: Observed): Plan {
  const cluster = fc.metadata.name;
  const secret = tokenSecretName(fc, spec);
  const template = podTemplate(fc, spec, secret.name);
  const hash = templateHash(template);
  const sts = obs.statefulSet;
  const current = sts?.spec?.replicas ?? spec.replicas;
  const forced = fc.metadata.annotations?.[FORCE_SCALE_DOWN_ANNOTATION] === 'true';

  let replicas = spec.replicas;
  let progress: Plan['progress'] = { reason: 'Reconciled', message: 'all pods run the desired spec' };
  if (spec.replicas < current) {
    const blockers = scaleDownBlockers(spec, current, obs);
    if (blockers.length > 0 && !forced) {
      replicas = current;
      progress = { reason: 'ScaleDownWaitingForReplication', message: `scale-down from ${current} to ${spec.replicas} waits: ${blockers.join('; ')}` };
    } else {
      progress = { reason: 'ScalingDown', message: `scaling down from ${current} to ${spec.replicas}${blockers.length > 0 ? ' (forced)' : ''}` };
    }
  }
  const roll = rollout(sts, hash, replicas, obs);
  if (progress.reason === 'Reconciled') {
    const ready = obs.members.filter((m) => m.ordinal < spec.replicas && isServing(m)).length;
    if (roll.waiting) progress = roll.waiting;
    else if (!sts) progress = { reason: 'Creating', message: `creating ${spec.replicas} pods` };
    else if (ready < spec.replicas) progress = { reason: 'ScalingUp', message: `${ready}/${spec.replicas} pods Ready` };
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
      // A pod scaled away has handed its data over; a later scale-up starts it empty and it catches up,
      // instead of resurrecting files deleted in between.
      persistentVolumeClaimRetentionPolicy: { whenDeleted: 'Delete', whenScaled: 'Delete' },
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

  const pvcResizes: Plan['pvcResizes'] = [];
  const claimed = volumeClaimTemplate(fc, spec, sts).spec?.resources?.requests?.['storage'] as string;
  const claimedBytes = quantityToBytes(claimed);
  const wantedBytes = quantityToBytes(spec.storage.size);
  if (sts && claimedBytes !== undefined && wantedBytes !== undefined && wantedBytes > claimedBytes) {
    for (let i = 0; i < Math.max(current, replicas); i++) pvcResizes.push({ name: pvcName(cluster, i), size: spec.storage.size });
  }

  const servingLabels = obs.members
    .filter((m) => !m.terminating && m.serving !== m.ordinal < spec.replicas)
    .map((m) => ({ name: m.name, serving: m.ordinal < spec.replicas }));

  return { statefulSet, headlessService, clientService, podDisruptionBudget, tokenSecret: secret, progress, pvcResizes, servingLabels };
}
