/**
 * This node's peer-list generation and the newest one any peer has shown it. Every peer request and
 * answer carries the sender's generation (`GENERATION_HEADER`): the operator pushes a new list node by
 * node, so a peer showing a newer generation means this node's list is already outdated, and it must not
 * act as a path's owner until its own list catches up (see `ownerRefusal`).
 */
export class GenerationWatch {
  private readonly own: () => number;
  private newest = 0;

  constructor(own: () => number) {
    this.own = own;
  }

  /** This node's generation. */
  get current(): number {
    return this.own();
  }

  /** The newest generation seen: a peer's, or this node's own when that is newer. */
  get newestSeen(): number {
    return Math.max(this.newest, this.own());
  }

  observe(generation: number): void {
    if (generation > this.newest) this.newest = generation;
  }
}
