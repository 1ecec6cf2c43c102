import type { Version } from './version.ts';

/** One path a peer is owed: only its latest version is kept, so repeated writes while a peer is down send once. */
export interface Pending {
  version: Version;
  /** Accept time (ms) of the oldest change to this path the peer has not acknowledged. */
  since: number;
  /** Accept time (ms) of the latest version. */
  at: number;
  bytes: number;
}

/**
 * What each peer still owes. Map insertion order is kept sorted by `since` (entries only ever move to
 * the end with a newer `since`), so the oldest unacknowledged change is always the first entry.
 */
export class Outbox {
  private readonly byPeer = new Map<string, Map<string, Pending>>();
  private readonly bytes = new Map<string, number>();

  add(peer: string, path: string, version: Version, at: number, bytes: number): void {
    const q = this.queue(peer);
    const cur = q.get(path);
    if (cur) {
      if (version <= cur.version) return;
      this.bytes.set(peer, (this.bytes.get(peer) ?? 0) - cur.bytes + bytes);
      cur.version = version;
      cur.at = at;
      cur.bytes = bytes;
      return;
    }
    q.set(path, { version, since: at, at, bytes });
    this.bytes.set(peer, (this.bytes.get(peer) ?? 0) + bytes);
  }

  /** Records that `peer` holds `version` (or newer) of `path`; returns the entry if it was fully acknowledged. */
  ack(peer: string, path: string, version: Version): Pending | undefined {
    const q = this.byPeer.get(peer);
    const cur = q?.get(path);
    if (!q || !cur) return undefined;
    if (version >= cur.version) {
      q.delete(path);
      this.bytes.set(peer, (this.bytes.get(peer) ?? 0) - cur.bytes);
      return cur;
    }
    // An older version arrived; the peer is now behind only since the newer one was accepted.
    q.delete(path);
    cur.since = cur.at;
    q.set(path, cur);
    return undefined;
  }

  keepOnly(peers: Iterable<string>): void {
    const keep = new Set(peers);
    for (const peer of [...this.byPeer.keys()]) {
      if (!keep.has(peer)) {
        this.byPeer.delete(peer);
        this.bytes.delete(peer);
      }
    }
  }

  queue(peer: string): Map<string, Pending> {
    let q = this.byPeer.get(peer);
    if (!q) {
      q = new Map();
      this.byPeer.set(peer, q);
    }
    return q;
  }

  size(peer: string): number {
    return this.byPeer.get(peer)?.size ?? 0;
  }

  pendingBytes(peer: string): number {
    return this.bytes.get(peer) ?? 0;
  }

  oldestSince(peer: string): number | undefined {
    const first = this.byPeer.get(peer)?.values().next();
    return first && !first.done ? first.value.since : undefined;
  }

  isPendingAnywhere(path: string): boolean {
    for (const q of this.byPeer.values()) if (q.has(path)) return true;
    return false;
  }

  /** First `limit` entries of a peer's queue, oldest first. */
  take(peer: string, limit: number): Array<[string, Pending]> {
    const out: Array<[string, Pending]> = [];
    for (const e of this.byPeer.get(peer) ?? []) {
      if (out.length >= limit) break;
      out.push([e[0], { ...e[1] }]);
    }
    return out;
  }

  toJSON(): Record<string, Array<[string, Version, number, number, number]>> {
    const out: Record<string, Array<[string, Version, number, number, number]>> = {};
    for (const [peer, q] of this.byPeer) out[peer] = [...q].map(([path, p]) => [path, p.version, p.since, p.at, p.bytes]);
    return out;
  }

  load(data: Record<string, Array<[string, Version, number, number, number]>>): void {
    for (const [peer, items] of Object.entries(data)) {
      const q = this.queue(peer);
      let total = 0;
      for (const [path, version, since, at, bytes] of items) {
        q.set(path, { version, since, at, bytes });
        total += bytes;
      }
      this.bytes.set(peer, total);
    }
  }
}
