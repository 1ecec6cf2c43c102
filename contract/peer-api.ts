// The file server's peer API as both its clients speak it: the operator pushes peer lists
// (PUT /internal/peers) and reads each node's status (GET /internal/status); the file server serves
// both. This module and its neighbours are the only code operator/ and fileserver/ both import.
import { z } from 'zod';

/** A node's id (its pod name): DNS-label-like, so it fits in URLs, metric labels and file names. */
export const NODE_ID_RE = /^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$/;

/**
 * The sender's peer-list generation, on every request and answer between file servers (optional from the
 * operator). A node that sees a newer generation than its own stops acting as any path's owner for
 * conditional writes until its own list catches up.
 */
export const GENERATION_HEADER = 'x-filecluster-generation';

/** A generation header's value as a number, or undefined when it is not a non-negative safe integer. */
export function parseGeneration(v: string): number | undefined {
  if (!/^\d{1,16}$/.test(v)) return undefined;
  const n = Number(v);
  return Number.isSafeInteger(n) ? n : undefined;
}

export interface Peer {
  id: string;
  url: string;
}

/** The body of PUT /internal/peers and the answer of GET /internal/peers. */
export interface PeerList {
  generation: number;
  peers: Peer[];
}

/** The answer of GET /internal/clock: the node's wall clock as it answered, for its peers to compare with theirs. */
export interface PeerClock {
  nodeId: string;
  clockMs: number;
}

/** The answer of GET /internal/status: the node's state and what it still owes each peer. */
export interface NodeStatus {
  nodeId: string;
  ready: boolean;
  catchingUp: boolean;
  /** Reads of files this node lacks are still forwarded to peers (until its first catch-up from one). */
  proxyingMisses: boolean;
  /** Fenced for a scale-down: client writes are refused while the backlog drains. */
  leaving: boolean;
  generation: number;
  /** The generation of the last catch-up pass that reached every peer. */
  syncedGeneration: number;
  /** No complete catch-up round for half the tombstone retention: the node defers to its peers about deletes. */
  stale: boolean;
  /** The highest version among the tombstones the node collected or adopted ('' for none). */
  horizon: string;
  /** Whether client writes are refused because this node's clock is ahead of its peers' (see `/internal/clock`). */
  clock?: {
    refusingWrites: boolean;
    /** How far the next version made here lies ahead of this node's own wall clock (> 0: it holds versions from its future). */
    versionAheadOfWallSeconds: number;
  };
  peers: PeerReplicationStatus[];
}

/** What a node still owes one peer, and how replication with it stands. */
export interface PeerReplicationStatus {
  id: string;
  url: string;
  pendingChanges: number;
  pendingBytes: number;
  lagSeconds: number;
  up: boolean;
  /** How the last catch-up with this peer ended. */
  catchup: 'pending' | 'complete' | 'unreachable' | 'failed';
  catchupError?: string;
  /** The peer's wall clock minus this node's, from the last reading; absent until the peer has answered one. */
  clockOffsetSeconds?: number;
}

const MAX_PEERS = 1000;

const PeerSchema = z.object({
  id: z.string().regex(NODE_ID_RE, 'peer id must be a DNS-label-like name'),
  url: z
    .string()
    .max(2048)
    .refine((u) => URL.canParse(u) && ['http:', 'https:'].includes(new URL(u).protocol), 'peer url must be an http(s) URL'),
});

const PeerListSchema = z
  .object({
    generation: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
    peers: z.array(PeerSchema).max(MAX_PEERS),
  })
  .strict()
  .refine((l) => new Set(l.peers.map((p) => p.id)).size === l.peers.length, 'peer ids must be unique');

export type PeerListCheck = { ok: true; list: PeerList } | { ok: false; message: string };

function normalize(list: PeerList, selfId: string): PeerList {
  return {
    generation: list.generation,
    peers: list.peers
      .filter((p) => p.id !== selfId)
      .map((p) => ({ id: p.id, url: p.url.replace(/\/+$/, '') }))
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)),
  };
}

/** Validates a peer list as a node receives it; the node's own entry is dropped. */
export function parsePeerList(body: unknown, selfId: string): PeerListCheck {
  const r = PeerListSchema.safeParse(body);
  if (!r.success) return { ok: false, message: r.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ') };
  return { ok: true, list: normalize(r.data, selfId) };
}
