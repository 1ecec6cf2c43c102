import type { ManifestItem } from './catchup-wire.ts';
import type { Version } from '../store/version.ts';

// Tombstones are collected after the retention (from their receipt), and a collected tombstone leaves no
// trace: afterwards "no entry" cannot tell a file deleted long ago from one never received. Two facts
// keep a collected delete from coming back (Cassandra's gc_grace rule, without its manual repair step):
//
// - The horizon: the highest version among the tombstones a node has collected, or adopted from a peer
//   it caught up from. A file it lacks whose version lies below its horizon may be one it deleted, so a
//   node never pulls one from a peer; a newer one cannot be, as its tombstone would still be held.
// - Staleness: a node that has not finished a catch-up round for half the retention may have missed
//   deletes whose tombstones are gone everywhere. When it next catches up from a peer that is not stale,
//   it takes that peer's word: it pulls what it lacks whatever its age, and forgets its own files the
//   peer lacks below the peer's horizon, unless it still owes them to that peer (a write of its own the
//   peer never received, which the push delivers).
//
// Coordinating collection across members instead (every member acknowledges every tombstone) would keep
// tombstones for ever once a member is lost, and a member removed and re-added would still be missed.

/** A node is stale once it has gone this fraction of the retention without finishing a catch-up round. */
const STALE_FRACTION = 0.5;

/**
 * Whether this node must defer to its peers' view of what was deleted: it has peers, and its last
 * complete catch-up round started longer ago than half the retention (or it never finished one).
 */
export function isStale(syncedAtMs: number | undefined, nowMs: number, retentionMs: number, hasPeers: boolean): boolean {
  if (!hasPeers) return false;
  return syncedAtMs === undefined || nowMs - syncedAtMs > retentionMs * STALE_FRACTION;
}

export interface AbsentRule {
  /** This node's horizon ('' when it never collected a tombstone). */
  horizon: Version | '';
  /** This node is stale and the peer is not: what the peer holds counts whatever its age. */
  trustPeer: boolean;
  /** Set aside as damaged here, so pulled again whatever its age. */
  wanted(path: string): boolean;
}

/**
 * Whether a peer's entry for a path this node holds nothing for may be pulled: tombstones always; a
 * file if it is newer than the horizon, or the node defers to the peer, or it is a damaged file's repair.
 */
export function mayPullAbsent(item: ManifestItem, rule: AbsentRule): boolean {
  return item.deleted || item.version > rule.horizon || rule.trustPeer || rule.wanted(item.path);
}

export interface ForgetRule {
  /** The peer's horizon ('' for none, or a peer of an earlier release). */
  peerHorizon: Version | '';
  /** This node still owes `path` to the peer: the peer never received it. */
  owedToPeer(path: string): boolean;
}

/**
 * Of this node's entries in a range the peer's manifest covered, the files a stale node forgets: those
 * the peer lacks below its horizon and that this node does not owe it. Call only when deferring to the peer.
 */
export function entriesToForget(local: Iterable<ManifestItem>, remotePaths: ReadonlySet<string>, rule: ForgetRule): ManifestItem[] {
  const out: ManifestItem[] = [];
  for (const l of local) {
    if (l.deleted || remotePaths.has(l.path) || !(l.version < rule.peerHorizon)) continue;
    if (!rule.owedToPeer(l.path)) out.push(l);
  }
  return out;
}
