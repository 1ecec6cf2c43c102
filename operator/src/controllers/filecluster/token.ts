import type { V1Secret, V1StatefulSet } from '@kubernetes/client-node';
import { TEMPLATE_HASH_ANNOTATION } from './names.ts';

// The peer token the pods hold, and how a rotation rolls through them. Pods read their token from the
// environment when they start, so a token changed in the Secret reaches them only through a restart;
// the operator keeps what the pods were given in a Secret of its own and moves it in two steps, each
// followed by the usual gated rolling update:
//   1. {token: new, previous: old}: restarted pods send the new token (falling back to the previous one
//      for a peer that refuses it) and accept both; pods not yet restarted know only the old one.
//   2. {token: new}: once every pod accepts both, the previous token is dropped and pods roll again.
// Each step starts only when the rollout of the step before has finished, so no two pods ever share no
// token, and the operator's own requests use the one token every pod accepts.

export const PEER_TOKEN_KEY = 'token';
export const PREVIOUS_TOKEN_KEY = 'previous';
/** On the operator's Secret, and on the pod template: a new value restarts the pods. */
export const TOKEN_VERSION_LABEL = 'filecluster.dev/token-version';

export interface PeerTokens {
  token: string;
  previous?: string;
  /** Moves with every change, so the pod template (and with it a rollout) changes too. */
  version: number;
}

export type TokenStep =
  | { change: false; waiting: boolean }
  | { change: true; reason: 'TokenInitialized' | 'TokenRotationStarted' | 'TokenRotationFinished'; tokens: PeerTokens };

/**
 * What the operator's Secret must hold next, given the token the user's (or generated) Secret holds
 * now, what the pods were last given, and whether every pod already runs the template of `inUse`.
 * `waiting`: the Secret holds a token the pods are not moving to yet (a rollout must finish first).
 */
export function nextPeerTokens(source: string, inUse: PeerTokens | undefined, rolledOut: boolean): TokenStep {
  if (!inUse) return { change: true, reason: 'TokenInitialized', tokens: { token: source, version: 1 } };
  if (inUse.previous !== undefined) {
    if (!rolledOut) return { change: false, waiting: inUse.token !== source };
    return { change: true, reason: 'TokenRotationFinished', tokens: { token: inUse.token, version: inUse.version + 1 } };
  }
  if (inUse.token === source) return { change: false, waiting: false };
  if (!rolledOut) return { change: false, waiting: true };
  return { change: true, reason: 'TokenRotationStarted', tokens: { token: source, previous: inUse.token, version: inUse.version + 1 } };
}

/** The token to call the pods with: every pod accepts the previous one while it is set. */
export function clientToken(t: PeerTokens): string {
  return t.previous ?? t.token;
}

export function readPeerTokens(secret: V1Secret | undefined): PeerTokens | undefined {
  const decode = (key: string): string | undefined => {
    const raw = secret?.data?.[key];
    const text = raw === undefined ? undefined : Buffer.from(raw, 'base64').toString('utf8');
    return text ? text : undefined;
  };
  const token = decode(PEER_TOKEN_KEY);
  const version = Number(secret?.metadata?.labels?.[TOKEN_VERSION_LABEL]);
  if (!token || !Number.isSafeInteger(version) || version < 1) return undefined;
  const previous = decode(PREVIOUS_TOKEN_KEY);
  return previous === undefined ? { token, version } : { token, previous, version };
}

/** The Secret's data for `t` (base64, as the API stores it). */
export function peerTokensData(t: PeerTokens): Record<string, string> {
  const data: Record<string, string> = { [PEER_TOKEN_KEY]: Buffer.from(t.token).toString('base64') };
  if (t.previous !== undefined) data[PREVIOUS_TOKEN_KEY] = Buffer.from(t.previous).toString('base64');
  return data;
}

/**
 * Whether every pod of the StatefulSet runs the pod template with this hash: the StatefulSet carries it,
 * its controller has seen it, and every pod is updated and Ready (the controller moves currentRevision
 * only then).
 */
export function templateRolledOut(sts: V1StatefulSet, hash: string): boolean {
  const s = sts.status;
  return (
    sts.metadata?.annotations?.[TEMPLATE_HASH_ANNOTATION] === hash &&
    (s?.observedGeneration ?? 0) >= (sts.metadata?.generation ?? 0) &&
    s?.updateRevision !== undefined &&
    s.currentRevision === s.updateRevision &&
    (s.updatedReplicas ?? 0) === (s.replicas ?? 0)
  );
}
