import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

// Every socket read gets a fresh buffer outside the V8 heap, but V8 starts a scavenge only when its young
// generation fills with JS objects, and a streamed body makes few of those: dead read buffers pile up
// between scavenges, and RSS with them. A scavenge each few MiB received frees them while they are few;
// with almost nothing alive in the young generation it costs well under a millisecond. Lowering V8's
// scavenge trigger for everything (--minor-gc-task-trigger) would free them too, but slows small writes,
// whose requests would then be scavenged while still alive (docs/design-notes.md).
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as (opts: { type: 'minor' }) => void;
setFlagsFromString('--no-expose-gc');

export const SCAVENGE_EVERY_BYTES = 4 * 1024 * 1024;
let received = 0;

/** Counts bytes of a streamed body; every few MiB, collects the young generation. */
export function receivedBytes(n: number): void {
  received += n;
  if (received < SCAVENGE_EVERY_BYTES) return;
  received = 0;
  gc({ type: 'minor' });
}
