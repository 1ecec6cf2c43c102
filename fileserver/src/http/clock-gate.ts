import { HttpError } from '../errors.ts';
import { clockSkewMessage } from '../replication/clock-skew.ts';
import { CLOCK_PROBE_INTERVAL_MS, type ClockWatch } from '../replication/clock-watch.ts';

/**
 * Refuses a client write with 503 `clock_skew` while the version it would get lies further ahead of most
 * peers' clocks than they take (`judgeClock`): acknowledged, it would stay on this node alone. The
 * answer names the offsets; Retry-After is the time until the clocks are read again.
 */
export async function admitByClock(watch: ClockWatch, maxDriftMs: number): Promise<void> {
  const v = await watch.verdictForWrite();
  if (!v.refuse) return;
  throw new HttpError(
    503,
    'clock_skew',
    clockSkewMessage(v, maxDriftMs),
    { clockOffsetSeconds: Object.fromEntries(v.peers.map((p) => [p.peer, Math.round(p.offsetMs / 1000)])) },
    ['Retry-After', String(CLOCK_PROBE_INTERVAL_MS / 1000)],
  );
}
