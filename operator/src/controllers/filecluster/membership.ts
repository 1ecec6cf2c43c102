import type { V1Pod } from '@kubernetes/client-node';
import type { Peer } from '../../api/v1alpha1/types.ts';
import { SERVING_LABEL, podOrdinal, podUrl } from './names.ts';

// A pod of the cluster, reduced to what membership and gating decide on.
export interface MemberPod {
  name: string;
  uid: string;
  ordinal: number;
  ip?: string;
  ready: boolean;
  /** Phase Running: its containers started, so it can be given a peer list even before it is Ready. */
  running: boolean;
  terminating: boolean;
  /**
   * Whether the client Service routes to it: only once it holds the current peer list and caught up,
   * and no longer once it is leaving or about to restart in a rolling update.
   */
  serving: boolean;
  revision?: string;
  restarts: number;
}

export function isPodReady(pod: V1Pod): boolean {
  return (pod.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');
}

const podRestarts = (pod: V1Pod): number => (pod.status?.containerStatuses ?? []).reduce((n, c) => n + (c.restartCount ?? 0), 0);

/** The cluster's pods (by StatefulSet naming), ordered by ordinal. */
export function memberPods(cluster: string, pods: readonly V1Pod[]): MemberPod[] {
  const out: MemberPod[] = [];
  for (const pod of pods) {
    const name = pod.metadata?.name ?? '';
    const ordinal = podOrdinal(cluster, name);
    if (ordinal === undefined) continue;
    const member: MemberPod = {
      name,
      uid: pod.metadata?.uid ?? '',
      ordinal,
      ready: isPodReady(pod),
      running: pod.status?.phase === 'Running',
      serving: pod.metadata?.labels?.[SERVING_LABEL] === 'true',
      terminating: pod.metadata?.deletionTimestamp !== undefined && pod.metadata?.deletionTimestamp !== null,
      restarts: podRestarts(pod),
    };
    if (pod.status?.podIP) member.ip = pod.status.podIP;
    const revision = pod.metadata?.labels?.['controller-revision-hash'];
    if (revision !== undefined) member.revision = revision;
    out.push(member);
  }
  return out.sort((a, b) => a.ordinal - b.ordinal);
}

/** What a pod's place in the peer list depends on; a change of it is a membership change. */
export function membershipFingerprint(pod: V1Pod): string {
  return `${isPodReady(pod)}/${pod.status?.phase ?? ''}/${pod.status?.podIP ?? ''}/${Boolean(pod.metadata?.deletionTimestamp)}/${podRestarts(pod)}`;
}

/** A pod the operator can talk to: Ready, addressed, not on its way out of the API. */
export function isServing(p: MemberPod): p is MemberPod & { ip: string } {
  return p.ready && !p.terminating && p.ip !== undefined;
}

/**
 * Membership: the Ready pods whose ordinal stays after the desired scale. Pods above it are leaving and
 * are left out first, so the remaining pods stop counting on them before they go.
 */
export function desiredPeers(members: readonly MemberPod[], replicas: number): Peer[] {
  return members.filter((p) => isServing(p) && p.ordinal < replicas).map((p) => ({ id: p.name, url: podUrl(p.ip as string) }));
}

export function samePeers(a: readonly Peer[], b: readonly Peer[]): boolean {
  if (a.length !== b.length) return false;
  const key = (p: Peer): string => `${p.id}\u0000${p.url}`;
  const set = new Set(a.map(key));
  return b.every((p) => set.has(key(p)));
}

/** The generation bumps only when the set of peers changes, so repeated pushes are idempotent. */
export function nextPeerState(
  current: { peers: readonly Peer[]; generation: number },
  desired: readonly Peer[],
): { peers: Peer[]; generation: number; changed: boolean } {
  if (current.generation > 0 && samePeers(current.peers, desired)) {
    return { peers: [...current.peers], generation: current.generation, changed: false };
  }
  return { peers: [...desired], generation: current.generation + 1, changed: true };
}

/** A pod that can be talked to though it may not be Ready yet: running, addressed, not on its way out. */
export function isRunning(p: MemberPod): p is MemberPod & { ip: string } {
  return p.running && !p.terminating && p.ip !== undefined;
}

/**
 * Every pod that must hold the list: all running pods, leaving ones included (they drain to the rest),
 * and new ones before they are Ready (they need the list to catch up from).
 */
export function pushTargets(members: readonly MemberPod[]): Array<MemberPod & { ip: string }> {
  return members.filter(isRunning);
}
