import type { NodeStatus } from '../../../contract/peer-api.ts';

/** How the last catch-up attempt with a peer ended. */
export type CatchUpState = NodeStatus['peers'][number]['catchup'];

/**
 * Whether a catch-up pass makes the node ready: every peer of the pass was either caught up from
 * completely or did not answer at all. A peer that answered and then failed (an error status, a cut
 * stream, a malformed page) holds the data this node was about to pull, so the pass is retried. A peer
 * that does not answer is named and passed over: what only it holds cannot be served by anyone while it
 * is away, so waiting would make this node unavailable too without making anything readable, and a
 * whole cluster starting at once (every node waiting for the others) or the operator dropping NotReady
 * pods from the peer list would never get going again. With no peers the first pass is already complete.
 */
export function passMakesReady(states: readonly CatchUpState[]): boolean {
  return states.every((s) => s === 'complete' || s === 'unreachable');
}

/**
 * Whether a pass ends the proxying of reads this node misses: it would make the node ready, and at least
 * one peer was caught up from. A node that starts with no peers (a new pod before the operator's first
 * push) is ready after an empty pass, so its real join is the first pass with a peer that answers; reads of
 * what it has not pulled yet are served by a peer until then. Later (periodic) passes never proxy: a node that has
 * caught up answers 404 for what it lacks, instead of 200 while a pass runs and 404 between passes.
 */
export function passEndsProxying(states: readonly CatchUpState[]): boolean {
  return passMakesReady(states) && states.includes('complete');
}
