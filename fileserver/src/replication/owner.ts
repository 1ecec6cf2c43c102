import { createHash } from 'node:crypto';

// Who decides a path's conditional writes (If-Match, If-None-Match), and when that node may act on them.
// A precondition checked on one replica only lets two nodes accept two writes from one version; routing
// every conditional write of a path through one node, which checks and commits them in turn, makes them a
// compare-and-swap across the cluster.

/** The HRW score of `node` for `path`: the first 8 bytes of SHA-256(node, NUL, path). */
function score(node: string, path: string): bigint {
  return createHash('sha256').update(node).update('\0').update(path).digest().readBigUInt64BE(0);
}

/**
 * The owner of `path` among `members` (this node included) by rendezvous (highest random weight)
 * hashing: the member with the highest score. Every node holding the same list picks the same owner,
 * whatever the list's order, and a list change moves only the paths whose owner joined or left.
 */
export function ownerOf(path: string, members: readonly string[]): string {
  let best: string | undefined;
  let bestScore = -1n;
  for (const m of members) {
    const s = score(m, path);
    // Ties (astronomically unlikely) go to the smaller id, so the choice never depends on list order.
    if (s > bestScore || (s === bestScore && best !== undefined && m < best)) {
      best = m;
      bestScore = s;
    }
  }
  if (best === undefined) throw new Error('ownerOf needs at least one member');
  return best;
}

/** What a node knows when it is asked to act as a path's owner. */
export interface OwnerView {
  self: string;
  /** The owner of the path under this node's current list. */
  owner: string;
  /** This node's peer-list generation. */
  generation: number;
  /** The newest generation any peer has shown this node (in a request or an answer). */
  newestSeen: number;
  /** The generation of this node's last catch-up pass that completed with every peer of that list; undefined before the first. */
  syncedGeneration: number | undefined;
}

export type OwnerRefusal = { reason: 'not_owner' | 'list_behind' | 'not_caught_up'; message: string };

/**
 * Whether this node may check and commit a conditional write of a path now; undefined when it may. It
 * must be the owner under its current list; no peer may have shown a newer generation (the operator
 * pushes a list node by node, so a newer list may already name another owner, which must not act beside
 * this one); and it must have caught up from every peer of its current list, so it holds every
 * conditional write the owners under earlier lists committed (each was acknowledged by every peer of
 * its list before it was answered).
 */
export function ownerRefusal(v: OwnerView): OwnerRefusal | undefined {
  if (v.owner !== v.self) return { reason: 'not_owner', message: `${v.self} is not the owner of this path at generation ${v.generation} (${v.owner} is)` };
  if (v.newestSeen > v.generation) {
    return {
      reason: 'list_behind',
      message: `a peer holds peer-list generation ${v.newestSeen}, newer than ${v.self}'s ${v.generation}; conditional writes wait for the new list`,
    };
  }
  if (v.syncedGeneration === undefined || v.syncedGeneration < v.generation) {
    return { reason: 'not_caught_up', message: `${v.self} has not yet caught up from every peer of generation ${v.generation}` };
  }
  return undefined;
}
