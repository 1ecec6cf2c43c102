/**
 * One reading of a peer's clock: the peer's wall time as it answered, and this node's monotonic time
 * when the question left and when the answer came back. The peer read its clock somewhere in between.
 */
export interface ClockSample {
  peer: string;
  peerClockMs: number;
  sentMonoMs: number;
  answeredMonoMs: number;
}

/** This node's clocks now: the time its next version would carry (the hybrid clock), its wall and monotonic time. */
export interface LocalClock {
  nextVersionMs: number;
  wallMs: number;
  monoMs: number;
}

export interface PeerClockView {
  peer: string;
  /** The peer's wall clock minus this node's (middle of the reading's uncertainty). */
  offsetMs: number;
  /** At least this much would the next version made here lie ahead of the peer's clock. */
  leadMs: number;
}

export interface ClockVerdict {
  /** True when client writes must be refused: their versions would be refused by most of the peers whose clocks are known. */
  refuse: boolean;
  /** Every peer whose clock is known. */
  peers: PeerClockView[];
  /** The peers that would refuse a version made now. */
  aheadOf: PeerClockView[];
  /** How far the next version's time lies ahead of this node's own wall clock (> 0: it holds or saw versions from its future). */
  versionAheadOfWallMs: number;
}

/**
 * Where a peer's clock stands now, from an earlier reading: it read `peerClockMs` no earlier than the
 * question left, so it now reads at most that plus the monotonic time elapsed since (the bound that
 * makes `leadMs` safe to refuse on: a slow answer or a pause of this node cannot make it look ahead).
 * Monotonic time, unlike the wall clock, does not jump when this node's clock is set.
 */
export function peerClockView(s: ClockSample, now: LocalClock): PeerClockView {
  const peerNowAtMost = s.peerClockMs + (now.monoMs - s.sentMonoMs);
  const peerNowMiddle = s.peerClockMs + (now.monoMs - (s.sentMonoMs + s.answeredMonoMs) / 2);
  return { peer: s.peer, offsetMs: peerNowMiddle - now.wallMs, leadMs: now.nextVersionMs - peerNowAtMost };
}

/**
 * Whether this node may acknowledge client writes: a peer refuses a version more than `maxDriftMs`
 * ahead of its own clock (until its clock gets there), so a version made now must not be that far
 * ahead of most peers. Most, not any: one peer whose clock is far behind would otherwise stop every
 * other node's writes; that peer refuses everyone's versions, and it is its own status that shows it.
 * Peers never heard from count for nothing: with none known, nothing can be told and writes go on.
 * The last reading of each peer stands until a newer one: a paused or unreachable peer's clock offset
 * does not change by being out of reach.
 */
export function judgeClock(samples: readonly ClockSample[], now: LocalClock, maxDriftMs: number): ClockVerdict {
  const peers = samples.map((s) => peerClockView(s, now));
  const aheadOf = peers.filter((p) => p.leadMs > maxDriftMs);
  return { refuse: aheadOf.length * 2 > peers.length, peers, aheadOf, versionAheadOfWallMs: Math.max(0, now.nextVersionMs - now.wallMs) };
}

/** The message a refused client write gets, naming the offset. */
export function clockSkewMessage(v: ClockVerdict, maxDriftMs: number): string {
  const lead = Math.min(...v.aheadOf.map((p) => p.leadMs));
  const own =
    v.versionAheadOfWallMs > maxDriftMs
      ? ` This node holds versions ${seconds(v.versionAheadOfWallMs)} s ahead of its own clock, written while its clock was wrong; see docs/fileserver-api.md on clock skew.`
      : '';
  return (
    `this node's clock is at least ${seconds(lead)} s ahead of ${v.aheadOf.length} of the ${v.peers.length} peers whose clocks it knows ` +
    `(${v.aheadOf.map((p) => p.peer).join(', ')}); they refuse versions more than ${seconds(maxDriftMs)} s ahead of theirs ` +
    `(FC_MAX_CLOCK_DRIFT_SECONDS), so a write here would stay on this node alone until their clocks caught up.${own}`
  );
}

function seconds(ms: number): number {
  return Math.round(ms / 1000);
}
