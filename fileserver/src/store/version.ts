// A version is (hybrid logical clock timestamp, origin node id), encoded so that plain string
// comparison orders versions: 12 hex digits of milliseconds, 4 hex digits of logical counter, '-', node id.
export type Version = string;

const VERSION_RE = /^([0-9a-f]{12})([0-9a-f]{4})-([A-Za-z0-9._-]{1,63})$/;
const MAX_COUNTER = 0xffff;

export interface VersionParts {
  ms: number;
  counter: number;
  nodeId: string;
}

export function encodeVersion(parts: VersionParts): Version {
  return `${parts.ms.toString(16).padStart(12, '0')}${parts.counter.toString(16).padStart(4, '0')}-${parts.nodeId}`;
}

export function parseVersion(v: string): VersionParts | undefined {
  const m = VERSION_RE.exec(v);
  if (!m) return undefined;
  return { ms: parseInt(m[1]!, 16), counter: parseInt(m[2]!, 16), nodeId: m[3]! };
}

export function isVersion(v: unknown): v is Version {
  return typeof v === 'string' && VERSION_RE.test(v);
}

export function compareVersions(a: Version, b: Version): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The conflict rule: an incoming change wins if its version is higher than what is held. One version
 * with other content (`''` for a delete, else the SHA-256 of the bytes) means two writes were given the
 * same version (a duplicated node id, a wiped node issuing its versions again); the higher content then
 * wins, so that every replica settles on the same one. Content that is not known (a peer of an earlier
 * release does not send it) leaves an equal version stale, as before.
 */
export function resolveIncoming(local: Version | undefined, incoming: Version, localContent?: string, incomingContent?: string): 'apply' | 'stale' {
  if (local === undefined) return 'apply';
  const order = compareVersions(incoming, local);
  if (order !== 0) return order > 0 ? 'apply' : 'stale';
  return localContent !== undefined && incomingContent !== undefined && incomingContent > localContent ? 'apply' : 'stale';
}

export function versionTimeMs(v: Version): number {
  return parseVersion(v)?.ms ?? 0;
}

/**
 * How far a remote version lies ahead of the local wall clock, when by more than `maxDriftMs`; undefined
 * when it is close enough (or behind). Such a version is refused: taking it would move the clock, and so
 * every version this node issues from then on, with it, and retention would wait for that future time.
 */
export function aheadBeyondDrift(v: Version, wallMs: number, maxDriftMs: number): number | undefined {
  const ahead = versionTimeMs(v) - wallMs;
  return ahead > maxDriftMs ? ahead : undefined;
}

/** Hybrid logical clock: never goes backwards, stays close to wall time, moves past every version it sees. */
export class HybridClock {
  readonly nodeId: string;
  private readonly wallMs: () => number;
  private readonly maxDriftMs: number;
  private ms = 0;
  private counter = 0;

  /** `maxDriftMs`: how far ahead of this node's wall clock a remote version may be and still be taken. */
  constructor(nodeId: string, wallMs: () => number = Date.now, maxDriftMs = Number.POSITIVE_INFINITY) {
    this.nodeId = nodeId;
    this.wallMs = wallMs;
    this.maxDriftMs = maxDriftMs;
  }

  /** See `aheadBeyondDrift`: the milliseconds a remote version is too far ahead by, or undefined. */
  tooFarAhead(v: Version): number | undefined {
    return aheadBeyondDrift(v, this.wallMs(), this.maxDriftMs);
  }

  /** The milliseconds the next version will carry: the wall clock, or a later version already made or seen. */
  nextMs(): number {
    return Math.max(this.wallMs(), this.ms);
  }

  now(): Version {
    const wall = this.wallMs();
    if (wall > this.ms) {
      this.ms = wall;
      this.counter = 0;
    } else if (this.counter < MAX_COUNTER) {
      this.counter++;
    } else {
      this.ms++;
      this.counter = 0;
    }
    return encodeVersion({ ms: this.ms, counter: this.counter, nodeId: this.nodeId });
  }

  observe(v: Version): void {
    const p = parseVersion(v);
    if (!p) return;
    if (p.ms > this.ms || (p.ms === this.ms && p.counter > this.counter)) {
      this.ms = p.ms;
      this.counter = p.counter;
    }
  }
}
