import type { Peer, PeerClock } from '../../../contract/peer-api.ts';
import type { Logger } from '../logger.ts';
import type { HybridClock } from '../store/version.ts';
import { clockSkewMessage, judgeClock, type ClockSample, type ClockVerdict } from './clock-skew.ts';
import { peerJson, type PeerTokens } from './peer-client.ts';

/** How often each peer's clock is read; also the Retry-After of a write refused for clock skew. */
export const CLOCK_PROBE_INTERVAL_MS = 5_000;
const PROBE_TIMEOUT_MS = 5_000;

export interface ClockWatchOptions {
  peers: () => readonly Peer[];
  tokens: PeerTokens;
  clock: HybridClock;
  maxDriftMs: number;
  logger: Logger;
}

/**
 * Reads every peer's clock (GET /internal/clock) every few seconds and judges from the readings
 * (`judgeClock`) whether a version made here now would be taken by the peers. Client writes wait for
 * the first reading of a peer never asked yet, so a node that starts with a wrong clock, or is given new
 * peers, does not acknowledge a write before it has compared clocks.
 */
export class ClockWatch {
  private readonly o: ClockWatchOptions;
  private readonly samples = new Map<string, ClockSample>();
  private readonly inFlight = new Map<string, Promise<void>>();
  /** Peers asked at least once (answered or not). */
  private readonly asked = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private refusing = false;

  constructor(o: ClockWatchOptions) {
    this.o = o;
  }

  start(): void {
    this.probeAll();
    this.timer = setInterval(() => this.probeAll(), CLOCK_PROBE_INTERVAL_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** The verdict for a client write; first waits for the first reading of each peer not asked yet. */
  async verdictForWrite(): Promise<ClockVerdict> {
    const first = this.o.peers().filter((p) => !this.asked.has(p.id));
    if (first.length > 0) await Promise.all(first.map((p) => this.ask(p)));
    return this.verdict();
  }

  /** The verdict now, from the latest reading of each peer in the list; a peer new to the list is asked at once. */
  verdict(): ClockVerdict {
    const samples: ClockSample[] = [];
    for (const p of this.o.peers()) {
      const s = this.samples.get(p.id);
      if (s) samples.push(s);
      else if (!this.asked.has(p.id)) void this.ask(p);
    }
    return judgeClock(samples, { nextVersionMs: this.o.clock.nextMs(), wallMs: Date.now(), monoMs: performance.now() }, this.o.maxDriftMs);
  }

  private probeAll(): void {
    for (const p of this.o.peers()) void this.ask(p);
    for (const id of this.samples.keys()) if (!this.o.peers().some((p) => p.id === id)) this.samples.delete(id);
  }

  private ask(peer: Peer): Promise<void> {
    let running = this.inFlight.get(peer.id);
    if (!running) {
      running = this.probe(peer).finally(() => {
        this.inFlight.delete(peer.id);
        this.asked.add(peer.id);
        this.report();
      });
      this.inFlight.set(peer.id, running);
    }
    return running;
  }

  private async probe(peer: Peer): Promise<void> {
    const sentMonoMs = performance.now();
    try {
      const answer = await peerJson<Partial<PeerClock>>(peer, this.o.tokens, { method: 'GET', path: '/internal/clock', timeoutMs: PROBE_TIMEOUT_MS });
      const answeredMonoMs = performance.now();
      if (typeof answer.clockMs !== 'number' || !Number.isFinite(answer.clockMs)) throw new Error(`peer ${peer.id} answered /internal/clock without a clockMs`);
      this.samples.set(peer.id, { peer: peer.id, peerClockMs: answer.clockMs, sentMonoMs, answeredMonoMs });
    } catch (err) {
      // The last reading stands (see `judgeClock`); an unreachable peer is reported by replication already.
      this.o.logger.debug({ peer: peer.id, err: (err as Error).message }, 'could not read the clock of a peer');
    }
  }

  /** Logs when client writes start or stop being refused. */
  private report(): void {
    const v = this.verdict();
    if (v.refuse === this.refusing) return;
    this.refusing = v.refuse;
    const offsets = Object.fromEntries(v.peers.map((p) => [p.peer, Math.round(p.offsetMs / 1000)]));
    if (v.refuse) this.o.logger.error({ peerClockOffsetSeconds: offsets }, `refusing client writes: ${clockSkewMessage(v, this.o.maxDriftMs)}`);
    else this.o.logger.info({ peerClockOffsetSeconds: offsets }, "taking client writes again: this node's clock is within the drift bound of its peers'");
  }
}
