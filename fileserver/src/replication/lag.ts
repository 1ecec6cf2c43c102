import type { AckMode } from '../../../contract/fileserver-settings.ts';

/**
 * Replication lag for a peer: how long the oldest change it has not acknowledged has been waiting.
 * Nothing pending means exactly 0, so an idle cluster never shows growing lag.
 */
export function lagSeconds(oldestUnackedSinceMs: number | undefined, nowMs: number): number {
  return oldestUnackedSinceMs === undefined ? 0 : Math.max(0, nowMs - oldestUnackedSinceMs) / 1000;
}

/** How many peer acknowledgements a write needs before it is answered. */
export function requiredAcks(mode: AckMode, peerCount: number): number {
  if (mode === 'local') return 0;
  if (mode === 'all') return peerCount;
  // A majority of the whole cluster (peers + this node), this node counting as one.
  return Math.floor((peerCount + 1) / 2);
}
