import type { AckMode } from '../../../contract/fileserver-settings.ts';
import type { Peer, PeerList, PeerReplicationStatus } from '../../../contract/peer-api.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import type { Store } from '../store/store.ts';
import type { Version } from '../store/version.ts';
import { backoffMs } from './backoff.ts';
import { catchUpFrom, PeerUnreachableError } from './catchup.ts';
import { isStale } from './gc-horizon.ts';
import type { GenerationWatch } from './generation-watch.ts';
import { lagSeconds, requiredAcks } from './lag.ts';
import { ownerOf, ownerRefusal, type OwnerRefusal } from './owner.ts';
import type { PeerTokens } from './peer-client.ts';
import { decidePeerList, type PeerListDecision } from './peers.ts';
import { passEndsProxying, passMakesReady, type CatchUpState } from './readiness.ts';
import { PeerSender } from './sender.ts';

export interface ReplicatorOptions {
  store: Store;
  nodeId: string;
  tokens: PeerTokens;
  generations: GenerationWatch;
  metrics: Metrics;
  logger: Logger;
  catchupIntervalMs: number;
  tombstoneRetentionMs: number;
}

/** A peer's replication status as GET /internal/status reports it, with what the metrics read too. */
export interface PeerStatus extends Omit<PeerReplicationStatus, 'catchupError'> {
  lastSuccessMs: number | undefined;
  /** Why the last catch-up attempt with the peer failed. */
  catchupError: string | undefined;
}

interface AckWaiter {
  version: Version;
  peers: Set<string>;
  need: number;
  resolve(acked: number): void;
}

/** Owns the peer list, one push loop per peer, write-ack waiting, and catch-up scheduling. */
export class Replicator {
  private readonly o: ReplicatorOptions;
  private readonly senders = new Map<string, PeerSender>();
  private readonly contact = new Map<string, { up: boolean; lastSuccessMs: number | undefined }>();
  private readonly catchups = new Map<string, { state: CatchUpState; error: string | undefined }>();
  private readonly waiters = new Map<string, Set<AckWaiter>>();
  private peerListLock: Promise<unknown> = Promise.resolve();
  private catchupRunning: Promise<void> | undefined;
  private catchupAgain = false;
  /** Passes in a row that did not make the node ready: they are retried sooner than the interval. */
  private unreadyPasses = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** True once a catch-up pass completed with every peer that answered (see `passMakesReady`); it stays true. */
  ready = false;
  /** Reads of files this node lacks go to peers until its first catch-up from one (see `passEndsProxying`). */
  proxyingMisses = true;
  /** A catch-up pass is running. */
  catchingUp = true;
  /**
   * The peer-list generation of the last catch-up pass that reached every peer of that list (0 for
   * none): a node holds what its peers held once this reaches the generation it was given.
   */
  syncedGeneration = 0;
  /** Like `syncedGeneration`, but undefined until such a pass has run (generation 0 is a real list: the static one). */
  private completePassGeneration: number | undefined;

  constructor(o: ReplicatorOptions) {
    this.o = o;
  }

  start(): void {
    this.reconcileSenders();
    this.requestCatchUp();
  }

  peerList(): PeerList {
    return this.o.store.peerList();
  }

  /** Applies a pushed peer list (already validated) unless it is stale; changes are durable before the answer. */
  setPeerList(list: PeerList): Promise<PeerListDecision> {
    const run = this.peerListLock.then(async () => {
      const decision = decidePeerList(this.peerList(), list);
      if (decision !== 'accept') return decision;
      await this.o.store.setPeers(list);
      this.o.logger.info({ generation: list.generation, peers: list.peers.map((p) => p.id) }, 'peer list updated');
      this.reconcileSenders();
      this.requestCatchUp();
      return decision;
    });
    this.peerListLock = run.catch(() => undefined);
    return run;
  }

  private reconcileSenders(): void {
    const list = this.peerList();
    const ids = new Set(list.peers.map((p) => p.id));
    for (const [id, s] of this.senders) {
      if (!ids.has(id)) {
        this.senders.delete(id);
        this.contact.delete(id);
        this.catchups.delete(id);
        // Once its loop has ended, so a push still in flight cannot bring the series back; unless the
        // peer has rejoined meanwhile and owns them again.
        void s.stop().then(() => {
          if (!this.senders.has(id)) this.o.metrics.removePeer(id);
        });
      }
    }
    for (const peer of list.peers) {
      const existing = this.senders.get(peer.id);
      if (existing) {
        existing.peer = peer;
        continue;
      }
      this.o.metrics.addPeer(peer.id);
      this.senders.set(
        peer.id,
        new PeerSender(peer, {
          store: this.o.store,
          tokens: this.o.tokens,
          metrics: this.o.metrics,
          logger: this.o.logger,
          onAcked: (p, items) => this.onAcked(p, items),
          onContact: (p, ok) => this.onContact(p, ok),
        }),
      );
    }
    // Waiters count acknowledgements against the list they started with; a removed peer never answers.
  }

  private onContact(peer: string, ok: boolean): void {
    const prev = this.contact.get(peer);
    this.contact.set(peer, { up: ok, lastSuccessMs: ok ? Date.now() : prev?.lastSuccessMs });
    if (ok) this.senders.get(peer)?.peerAnswered();
  }

  /** The node that decides `path`'s conditional writes under the current list: undefined for this node, else the peer. */
  conditionalOwner(path: string): Peer | undefined {
    const { peers } = this.peerList();
    const owner = ownerOf(path, [this.o.nodeId, ...peers.map((p) => p.id)]);
    return owner === this.o.nodeId ? undefined : peers.find((p) => p.id === owner);
  }

  /** Why this node may not check and commit a conditional write of `path` now (see `ownerRefusal`); undefined when it may. */
  ownerRefusal(path: string): OwnerRefusal | undefined {
    const { peers, generation } = this.peerList();
    return ownerRefusal({
      self: this.o.nodeId,
      owner: ownerOf(path, [this.o.nodeId, ...peers.map((p) => p.id)]),
      generation,
      newestSeen: this.o.generations.newestSeen,
      syncedGeneration: this.completePassGeneration,
    });
  }

  /** Wakes every push loop after a local write. */
  notifyLocalWrite(): void {
    for (const s of this.senders.values()) s.wake();
  }

  /** Waits until enough peers hold `version` of `path` (or newer); resolves with how many did. */
  waitForAcks(path: string, version: Version, mode: AckMode, timeoutMs: number): Promise<{ acked: number; required: number }> {
    const required = requiredAcks(mode, this.peerList().peers.length);
    if (required === 0) return Promise.resolve({ acked: 0, required });
    return new Promise((resolve) => {
      let set = this.waiters.get(path);
      if (!set) {
        set = new Set();
        this.waiters.set(path, set);
      }
      const waiters = set;
      const finish = (acked: number) => {
        clearTimeout(timer);
        waiters.delete(w);
        if (waiters.size === 0 && this.waiters.get(path) === waiters) this.waiters.delete(path);
        resolve({ acked, required });
      };
      const w: AckWaiter = { version, peers: new Set(), need: required, resolve: finish };
      const timer = setTimeout(() => finish(w.peers.size), timeoutMs);
      waiters.add(w);
    });
  }

  private onAcked(peer: string, items: Array<[string, Version]>): void {
    for (const [path, version] of items) {
      for (const w of this.waiters.get(path) ?? []) {
        if (version < w.version) continue;
        w.peers.add(peer);
        if (w.peers.size >= w.need) w.resolve(w.peers.size);
      }
    }
  }

  /** Runs catch-up now, or once more after the run in progress. */
  requestCatchUp(): void {
    if (this.stopped) return;
    if (this.catchupRunning) {
      this.catchupAgain = true;
      return;
    }
    this.catchupRunning = this.catchUpLoop().finally(() => {
      this.catchupRunning = undefined;
    });
  }

  private async catchUpLoop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    do {
      this.catchupAgain = false;
      this.catchingUp = true;
      const peers = await this.catchUpOnce();
      this.catchingUp = false;
      if (this.stopped) break;
      const states = peers.map((p) => p.state);
      if (this.proxyingMisses && passEndsProxying(states)) this.proxyingMisses = false;
      if (this.ready) continue;
      if (passMakesReady(states)) {
        this.ready = true;
        const unreachable = peers.filter((p) => p.state === 'unreachable').map((p) => p.peer);
        if (unreachable.length > 0) this.o.logger.warn({ unreachable }, 'first complete catch-up finished without the unreachable peers; ready');
        else this.o.logger.info('first complete catch-up finished; ready');
      } else {
        this.unreadyPasses++;
      }
    } while (this.catchupAgain && !this.stopped);
    await this.collectTombstones();
    if (!this.stopped) {
      const interval = this.o.catchupIntervalMs;
      const delay = this.ready ? interval * (0.8 + 0.4 * Math.random()) : backoffMs(this.unreadyPasses, Math.random(), 1000, interval);
      this.timer = setTimeout(() => this.requestCatchUp(), delay);
      this.timer.unref();
    }
  }

  /** Whether this node must defer to its peers about what was deleted (replication/gc-horizon.ts). */
  stale(now = Date.now()): boolean {
    return isStale(this.o.store.syncedAt(), now, this.o.tombstoneRetentionMs, this.peerList().peers.length > 0);
  }

  /** One catch-up with every peer in turn; returns how each ended. */
  private async catchUpOnce(): Promise<Array<{ peer: string; state: CatchUpState }>> {
    const { metrics, logger, store, tokens } = this.o;
    const states: Array<{ peer: string; state: CatchUpState }> = [];
    const list = this.peerList();
    const startedAt = Date.now();
    const stale = this.stale(startedAt);
    if (stale && list.peers.length > 0)
      logger.warn({ syncedAt: store.syncedAt() }, 'no complete catch-up for half the tombstone retention: deferring to peers about what was deleted');
    for (const peer of list.peers) {
      if (this.stopped) break;
      let state: CatchUpState;
      try {
        const r = await catchUpFrom(peer, tokens, store, metrics, { stale });
        state = 'complete';
        this.catchups.set(peer.id, { state, error: undefined });
        metrics.catchupRuns.inc({ result: 'success' });
        this.onContact(peer.id, true);
        if (r.repaired > 0) logger.info({ peer: peer.id, repaired: r.repaired }, 'catch-up pulled changes');
        if (r.forgotten > 0) logger.warn({ peer: peer.id, forgotten: r.forgotten }, 'forgot files the peer deleted and collected while this node was away');
        if (r.refused > 0) {
          logger.warn(
            { peer: peer.id, refused: r.refused, horizon: store.horizon() },
            "did not pull the peer's files this node lacks below its tombstone horizon (deleted here long ago, or kept by a node away longer than the retention)",
          );
        }
      } catch (err) {
        state = err instanceof PeerUnreachableError ? 'unreachable' : 'failed';
        const message = (err as Error).message;
        this.catchups.set(peer.id, { state, error: message });
        metrics.catchupRuns.inc({ result: state === 'unreachable' ? 'unreachable' : 'failure' });
        this.onContact(peer.id, false);
        logger.warn({ peer: peer.id, err: message }, state === 'unreachable' ? 'catch-up could not reach peer' : 'catch-up with peer failed');
      }
      states.push({ peer: peer.id, state });
    }
    if (!this.stopped && states.every((s) => s.state === 'complete')) {
      this.syncedGeneration = Math.max(this.syncedGeneration, list.generation);
      this.completePassGeneration = Math.max(this.completePassGeneration ?? 0, list.generation);
    }
    if (!this.stopped && passEndsProxying(states.map((s) => s.state))) store.markSynced(startedAt);
    return states;
  }

  private async collectTombstones(): Promise<void> {
    try {
      const removed = await this.o.store.collectTombstones(Date.now(), this.o.tombstoneRetentionMs);
      if (removed > 0) this.o.logger.info({ removed }, 'collected tombstones');
    } catch (err) {
      this.o.logger.warn({ err: (err as Error).message }, 'tombstone collection failed');
    }
  }

  status(): PeerStatus[] {
    const now = Date.now();
    return this.peerList().peers.map((p) => {
      const c = this.contact.get(p.id);
      const outbox = this.o.store.outboxStatus(p.id);
      const catchup = this.catchups.get(p.id);
      return {
        id: p.id,
        url: p.url,
        pendingChanges: outbox.changes,
        pendingBytes: outbox.bytes,
        lagSeconds: lagSeconds(outbox.oldestSince, now),
        up: c?.up ?? false,
        lastSuccessMs: c?.lastSuccessMs,
        catchup: catchup?.state ?? 'pending',
        catchupError: catchup?.error,
      };
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await Promise.all([...this.senders.values()].map((s) => s.stop()));
    await this.catchupRunning;
  }
}
