import type { ProgressReason } from './plan.ts';

/** Polled: what the reconcile waits for is only seen by asking (pods' replication backlog, failed pushes). */
export const POLL_REQUEUE_MS = 1000;
/**
 * Waiting for pods or the StatefulSet, whose every change arrives through a watch and queues the
 * FileCluster anyway: the requeue is only a safety net. Polling these every second cost two GETs per
 * FileCluster per second while a hundred of them started, on an API server already short of CPU.
 */
export const WATCHED_REQUEUE_MS = 10_000;
/** A missing token Secret or key waits for someone to create it (its watch also queues the FileCluster). */
export const TOKEN_SECRET_REQUEUE_MS = 30_000;

const POLLED: ReadonlySet<ProgressReason> = new Set(['ScaleDownWaitingForReplication', 'RollingUpdateWaitingForReplication']);

export interface RequeueInput {
  /** A pod answered 409 with a newer generation than the one published. */
  conflict: boolean;
  /** A terminal error stopped this reconcile (its condition says which): only a change can help. */
  terminal: boolean;
  degradedReason?: string;
  progress: ProgressReason;
  pushFailures: number;
  acknowledged: number;
  targets: number;
  /** How long a scale-down has waited (0 when none waits). */
  blockedMs: number;
  /** Pods that stay but are not serving yet: whether they caught up is only seen by asking. */
  joining: boolean;
  /**
   * The FileCluster names a token Secret of the user's. Only generated Secrets are watched (no other
   * Secret's data is cached), so a rotation of this one is seen by reading it again.
   */
  userTokenSecret?: boolean;
}

/** The longest a blocked scale-down waits between polls (pod changes still wake it at once). */
export const BLOCKED_MAX_REQUEUE_MS = 30_000;
/** A blocked scale-down is polled every second for this long, then less and less often. */
export const BLOCKED_PATIENCE_MS = 60_000;

/** When to reconcile again without an event; undefined leaves it to the periodic resync. */
export function requeueAfter(r: RequeueInput): number | undefined {
  if (r.conflict) return 0;
  // Retrying would fail the same way; a change to the FileCluster, or to what it owns, queues it again.
  if (r.terminal) return undefined;
  if (r.degradedReason?.startsWith('TokenSecret')) return TOKEN_SECRET_REQUEUE_MS;
  if (r.progress === 'ScaleDownWaitingForReplication' && r.blockedMs > BLOCKED_PATIENCE_MS) {
    return Math.min(BLOCKED_MAX_REQUEUE_MS, Math.max(POLL_REQUEUE_MS, Math.round(r.blockedMs / 20)));
  }
  if (r.degradedReason !== undefined || r.pushFailures > 0 || r.acknowledged !== r.targets || r.joining || POLLED.has(r.progress)) return POLL_REQUEUE_MS;
  if (r.progress !== 'Reconciled') return WATCHED_REQUEUE_MS;
  return r.userTokenSecret ? TOKEN_SECRET_REQUEUE_MS : undefined;
}
