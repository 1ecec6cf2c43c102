import { ManifestDigest } from './digest.ts';
import { Outbox } from './outbox.ts';
import { resolveIncoming, type Version } from './version.ts';
import type { PeerList } from '../replication/peers.ts';

export interface FileEntry {
  path: string;
  version: Version;
  deleted: false;
  size: number;
  sha256: string;
  contentType: string;
  /** Name of the immutable object file under objects/ holding the bytes. */
  blob: string;
}

export interface Tombstone {
  path: string;
  version: Version;
  deleted: true;
  /**
   * Local time (ms) this node committed the delete; retention counts from it, not from the version's
   * time, which another node's clock set. Absent in tombstones written by earlier releases.
   */
  receivedAt?: number;
}

export type Entry = FileEntry | Tombstone;

/** What an entry holds, to tell two entries of one version apart: '' for a delete, else the SHA-256 of the bytes. */
export function contentOf(e: Entry): string {
  return e.deleted ? '' : e.sha256;
}

/** Journal records: every change to durable state is one of these. */
export type JournalRecord =
  | { t: 'put'; e: FileEntry; to: string[]; at: number; inline: boolean }
  | { t: 'del'; e: Tombstone; to: string[]; at: number }
  | { t: 'ack'; peer: string; items: Array<[string, Version]> }
  | { t: 'peers'; list: PeerList }
  | { t: 'gc'; path: string; version: Version };

export interface Snapshot {
  v: 1;
  peers: PeerList;
  entries: Entry[];
  outbox: ReturnType<Outbox['toJSON']>;
}

export interface ApplyResult {
  /** Object file no longer referenced after this record. */
  orphanBlob?: string;
  applied: boolean;
  acked?: Array<{ path: string; version: Version; at: number }>;
}

/** The durable state as a state machine over journal records; the same code serves live writes and replay. */
export class StoreState {
  readonly entries = new Map<string, Entry>();
  readonly outbox = new Outbox();
  readonly digest = new ManifestDigest();
  peers: PeerList;
  liveBytes = 0;
  liveFiles = 0;
  tombstones = 0;
  private sortedPaths: string[] | undefined;

  constructor(initialPeers: PeerList) {
    this.peers = initialPeers;
  }

  apply(rec: JournalRecord): ApplyResult {
    switch (rec.t) {
      case 'put':
      case 'del': {
        const cur = this.entries.get(rec.e.path);
        if (cur && resolveIncoming(cur.version, rec.e.version, contentOf(cur), contentOf(rec.e)) === 'stale') {
          return { applied: false, ...(rec.e.deleted ? {} : { orphanBlob: rec.e.blob }) };
        }
        this.setEntry(rec.e, cur);
        const bytes = rec.e.deleted ? 0 : rec.e.size;
        for (const peer of rec.to) this.outbox.add(peer, rec.e.path, rec.e.version, rec.at, bytes);
        return { applied: true, ...(cur && !cur.deleted ? { orphanBlob: cur.blob } : {}) };
      }
      case 'ack': {
        const acked: Array<{ path: string; version: Version; at: number }> = [];
        for (const [path, version] of rec.items) {
          const done = this.outbox.ack(rec.peer, path, version);
          if (done) acked.push({ path, version: done.version, at: done.at });
        }
        return { applied: true, acked };
      }
      case 'peers': {
        this.peers = rec.list;
        this.outbox.keepOnly(rec.list.peers.map((p) => p.id));
        return { applied: true };
      }
      case 'gc': {
        const cur = this.entries.get(rec.path);
        if (!cur || !cur.deleted || cur.version !== rec.version) return { applied: false };
        this.removeEntry(cur);
        return { applied: true };
      }
    }
  }

  private setEntry(e: Entry, cur: Entry | undefined): void {
    if (cur) this.unaccount(cur);
    else this.sortedPaths = undefined;
    this.entries.set(e.path, e);
    this.digest.toggle(e.path, e.version, contentOf(e));
    if (e.deleted) this.tombstones++;
    else {
      this.liveFiles++;
      this.liveBytes += e.size;
    }
  }

  private unaccount(e: Entry): void {
    this.digest.toggle(e.path, e.version, contentOf(e));
    if (e.deleted) this.tombstones--;
    else {
      this.liveFiles--;
      this.liveBytes -= e.size;
    }
  }

  private removeEntry(e: Entry): void {
    this.unaccount(e);
    this.entries.delete(e.path);
    this.sortedPaths = undefined;
  }

  /** Paths in order; rebuilt lazily only when the set of paths changed. */
  paths(): string[] {
    this.sortedPaths ??= [...this.entries.keys()].sort();
    return this.sortedPaths;
  }

  snapshot(): Snapshot {
    return { v: 1, peers: this.peers, entries: [...this.entries.values()], outbox: this.outbox.toJSON() };
  }

  load(s: Snapshot): void {
    this.peers = s.peers;
    for (const e of s.entries) this.setEntry(e, this.entries.get(e.path));
    this.outbox.load(s.outbox);
  }
}
