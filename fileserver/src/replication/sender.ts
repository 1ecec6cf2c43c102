import type { FileHandle } from 'node:fs/promises';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import type { Store } from '../store/store.ts';
import type { Version } from '../store/version.ts';
import { backoffMs } from './backoff.ts';
import { encodeChanges, type AppliedChange, type OutgoingChange } from './frames.ts';
import { closeAll, outgoingChange } from './outgoing.ts';
import { peerJson, type PeerTokens } from './peer-client.ts';
import type { Peer } from '../../../contract/peer-api.ts';

const BATCH_CHANGES = 256;
const BATCH_BYTES = 8 * 1024 * 1024;

export interface SenderDeps {
  store: Store;
  tokens: PeerTokens;
  metrics: Metrics;
  logger: Logger;
  onAcked(peer: string, items: Array<[string, Version]>): void;
  onContact(peer: string, ok: boolean): void;
}

/**
 * Pushes what one peer is owed, oldest first, in batches. The queue itself lives in the store (on disk);
 * this loop only reads it, so a crash or restart just resumes from the durable state.
 */
export class PeerSender {
  peer: Peer;
  private readonly deps: SenderDeps;
  private stopped = false;
  private failures = 0;
  private backingOff = false;
  /** Whether a catch-up answer already cut the current series of failures short. */
  private earlyRetryUsed = false;
  private wakeUp: (() => void) | undefined;
  private readonly done: Promise<void>;

  constructor(peer: Peer, deps: SenderDeps) {
    this.peer = peer;
    this.deps = deps;
    this.done = this.loop();
  }

  wake(): void {
    // A local write must not cut a back-off short, or a peer that is down is retried once per write.
    if (this.backingOff && !this.stopped) return;
    this.release();
  }

  /**
   * The peer answered another exchange (a catch-up): a loop backing off from it retries now instead of
   * waiting out a delay of up to 30 s while the peer is back. Once per series of failures, and the
   * failure count stays: if that retry fails too, the fault lies in what is pushed (the peer refuses the
   * batch), not in reaching the peer, and catch-ups that come every few hundred ms must not turn the
   * back-off into a retry each. Only a successful push starts the delays from the shortest again.
   */
  peerAnswered(): void {
    if (!this.backingOff || this.stopped || this.earlyRetryUsed) return;
    this.earlyRetryUsed = true;
    this.release();
  }

  private release(): void {
    const w = this.wakeUp;
    this.wakeUp = undefined;
    w?.();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake();
    await this.done;
  }

  private sleep(ms: number | undefined): Promise<void> {
    return new Promise((resolve) => {
      const timer = ms === undefined ? undefined : setTimeout(() => this.release(), ms);
      this.wakeUp = () => {
        if (timer) clearTimeout(timer);
        resolve();
      };
    });
  }

  private async loop(): Promise<void> {
    const { store, metrics, logger } = this.deps;
    while (!this.stopped) {
      const batch = this.takeBatch();
      if (batch.length === 0) {
        await this.sleep(undefined);
        continue;
      }
      let failure: string;
      try {
        const { held, givenUp, refused } = await this.push(batch);
        // Both leave the queue; only what the peer holds counts towards a write's acknowledgements.
        store.ack(this.peer.id, givenUp.length === 0 ? held : [...givenUp, ...held]);
        this.deps.onAcked(this.peer.id, held);
        this.deps.onContact(this.peer.id, true);
        if (refused === 0) {
          metrics.attempts.inc({ peer: this.peer.id, result: 'success' });
          this.failures = 0;
          this.earlyRetryUsed = false;
          continue;
        }
        // They stay queued, first in line: sent again after a back-off, they are taken once the peer's
        // clock has caught up with their versions.
        failure = `the peer refused ${refused} changes whose versions lie further ahead of its clock than it allows; is this node's clock fast?`;
      } catch (err) {
        if (this.stopped) break;
        this.deps.onContact(this.peer.id, false);
        failure = (err as Error).message;
      }
      this.failures++;
      metrics.attempts.inc({ peer: this.peer.id, result: 'failure' });
      const delay = backoffMs(this.failures, Math.random());
      logger.warn({ peer: this.peer.id, err: failure, retryInMs: Math.round(delay) }, 'push to peer failed');
      this.backingOff = true;
      await this.sleep(delay);
      this.backingOff = false;
    }
  }

  private takeBatch(): Array<[string, Version]> {
    const out: Array<[string, Version]> = [];
    let bytes = 0;
    for (const p of this.deps.store.outboxTake(this.peer.id, BATCH_CHANGES)) {
      if (out.length > 0 && bytes + p.bytes > BATCH_BYTES) break;
      bytes += p.bytes;
      out.push([p.path, p.version]);
    }
    return out;
  }

  /**
   * Sends the current state of each path (reading bytes now, so the latest version goes). Returns what
   * the peer holds, apart from it what was given up without reaching the peer, and how many changes the
   * peer refused for now (their versions lie too far ahead of its clock).
   */
  private async push(batch: Array<[string, Version]>): Promise<{ held: Array<[string, Version]>; givenUp: Array<[string, Version]>; refused: number }> {
    const { store, metrics, tokens, logger } = this.deps;
    const givenUp: Array<[string, Version]> = [];
    const opened: FileHandle[] = [];
    const peerId = this.peer.id;
    // The object file of the current version cannot be read (damaged volume): this change cannot be
    // sent. Giving it up keeps the rest of the queue moving; catch-up can still repair it from a peer.
    const drop = (path: string, version: Version, err: unknown) => {
      metrics.dropped.inc({ peer: peerId });
      logger.error({ peer: peerId, path, err: (err as Error).message }, 'dropping a change whose bytes cannot be read');
      givenUp.push([path, version]);
    };
    async function* changes(): AsyncGenerator<OutgoingChange> {
      for (const [path, version] of batch) {
        const e = store.get(path);
        if (!e || e.version < version) {
          // The queued version is no longer here, so it cannot be sent: its tombstone was collected (only
          // after every peer had it), or its bytes were set aside as damaged, and an older copy may have
          // been pulled back since. Sending that copy would be acknowledged at its own version, never the
          // queued one, and the queue would stop at it for ever.
          givenUp.push([path, version]);
          continue;
        }
        let change: OutgoingChange | undefined;
        try {
          change = await outgoingChange(store, path, e, opened);
        } catch (err) {
          drop(path, version, err);
          continue;
        }
        if (!change) continue;
        if (!change.header.deleted) metrics.sentBytes.inc({ peer: peerId }, change.header.size);
        yield change;
      }
    }
    let res: { results: AppliedChange[] };
    try {
      res = await peerJson<{ results: AppliedChange[] }>(this.peer, tokens, {
        method: 'POST',
        path: '/internal/replicate',
        stream: encodeChanges(changes()),
        timeoutMs: 60_000,
      });
    } finally {
      await closeAll(opened);
    }
    const held: Array<[string, Version]> = [];
    for (const r of res.results) if (r.result !== 'clock_ahead') held.push([r.path, r.version]);
    return { held, givenUp, refused: res.results.length - held.length };
  }
}
