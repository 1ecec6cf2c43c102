import type { ResolvedSpec } from '../../api/v1alpha1/defaults.ts';
import type { Condition, ConditionStatus, ConditionType, FileCluster, FileClusterStatus, Peer } from '../../api/v1alpha1/types.ts';
import { isServing, type MemberPod } from './membership.ts';
import type { Plan } from './plan.ts';
import { selectorString } from './names.ts';

export interface PushSummary {
  /** Pods that must hold the list (every running pod). */
  targets: number;
  /** Of those, how many answered with the current generation. */
  acknowledged: number;
  failures: Array<{ pod: string; ready: boolean; error: string }>;
}

export interface StatusInput {
  fc: FileCluster;
  spec: ResolvedSpec;
  members: readonly MemberPod[];
  peers: readonly Peer[];
  peerGeneration: number;
  secretName: string;
  push: PushSummary;
  /** Pods that hold the current generation. */
  acknowledged: ReadonlySet<string>;
  progress: Plan['progress'];
  scaleDownBlockedSince?: string;
  forcedScaleDown?: { replicas: number; generation: number };
  /**
   * The status written with a new generation before it is pushed: Ready keeps what it said, since the
   * pods cannot hold the new list yet (the status after the pushes decides).
   */
  publishing?: boolean;
  /** Set when the spec cannot work as given (missing Secret, rejected apply...). */
  degraded?: { reason: string; message: string };
  now: Date;
}

function condition(
  old: readonly Condition[],
  type: ConditionType,
  status: ConditionStatus,
  reason: string,
  message: string,
  generation: number | undefined,
  now: Date,
): Condition {
  const prev = old.find((c) => c.type === type);
  // The transition time moves only when the status flips, as the Kubernetes API conventions ask.
  const lastTransitionTime = prev && prev.status === status ? prev.lastTransitionTime : now.toISOString().replace(/\.\d{3}Z$/, 'Z');
  const c: Condition = { type, status, reason, message, lastTransitionTime };
  if (generation !== undefined) c.observedGeneration = generation;
  return c;
}

export function computeStatus(input: StatusInput): FileClusterStatus {
  const { fc, spec, members, push, progress, degraded, now } = input;
  const old = fc.status?.conditions ?? [];
  const gen = fc.metadata.generation;
  const live = members.filter((m) => !m.terminating);
  const ready = live.filter((m) => m.ordinal < spec.replicas && isServing(m)).length;

  const synced = push.targets > 0 && push.acknowledged === push.targets;
  const peersSynced = synced
    ? condition(
        old,
        'PeersSynced',
        'True',
        'AllPodsAcknowledged',
        `${push.acknowledged}/${push.targets} running pods hold peer list generation ${input.peerGeneration}`,
        gen,
        now,
      )
    : condition(
        old,
        'PeersSynced',
        'False',
        push.failures.length > 0 ? 'PeerPushFailed' : push.targets === 0 ? 'NoRunningPods' : 'PeerPushPending',
        push.targets === 0
          ? 'no running pod to hold the peer list yet'
          : `${push.acknowledged}/${push.targets} running pods hold peer list generation ${input.peerGeneration}` +
              (push.failures.length > 0 ? `; ${push.failures.map((f) => `${f.pod}: ${f.error}`).join('; ')}` : ''),
        gen,
        now,
      );

  const degradedCond = degraded
    ? condition(old, 'Degraded', 'True', degraded.reason, degraded.message, gen, now)
    : condition(old, 'Degraded', 'False', 'AsExpected', 'the spec is usable', gen, now);

  const steady = progress.reason === 'Reconciled';
  const progressing = condition(old, 'Progressing', steady ? 'False' : 'True', progress.reason, progress.message, gen, now);

  // Ready means the cluster serves and its serving pods agree on the peer list; scaling and rollouts
  // show in Progressing, so a serving cluster in motion does not look broken to health checks.
  const serving = live.filter((m) => m.serving && m.ordinal < spec.replicas && isServing(m));
  const behind = serving.filter((m) => !input.acknowledged.has(m.name)).map((m) => m.name);
  const previousReady = old.find((c) => c.type === 'Ready');
  let readyCond: Condition;
  if (input.publishing && previousReady && !degraded) readyCond = previousReady;
  else if (degraded) readyCond = condition(old, 'Ready', 'False', degraded.reason, degraded.message, gen, now);
  else if (serving.length === 0) readyCond = condition(old, 'Ready', 'False', 'NoPodServing', `no pod serves yet (${ready}/${spec.replicas} Ready)`, gen, now);
  else if (behind.length > 0)
    readyCond = condition(
      old,
      'Ready',
      'False',
      'PeersNotSynced',
      `${behind.join(', ')} ${behind.length === 1 ? 'does' : 'do'} not hold peer list generation ${input.peerGeneration} yet`,
      gen,
      now,
    );
  else readyCond = condition(old, 'Ready', 'True', 'ClusterReady', `${serving.length}/${spec.replicas} pods serving and in sync`, gen, now);

  const status: FileClusterStatus = {
    replicas: live.length,
    readyReplicas: ready,
    selector: selectorString(fc.metadata.name),
    tokenSecretName: input.secretName,
    image: spec.image,
    peerGeneration: input.peerGeneration,
    peersAcknowledged: push.acknowledged,
    peers: [...input.peers],
    ...(input.scaleDownBlockedSince ? { scaleDownBlockedSince: input.scaleDownBlockedSince } : {}),
    ...(input.forcedScaleDown ? { forcedScaleDown: input.forcedScaleDown } : {}),
    conditions: [readyCond, progressing, peersSynced, degradedCond],
  };
  if (gen !== undefined) status.observedGeneration = gen;
  return status;
}
