/** Retry delay after `failures` consecutive failures: exponential, capped, with jitter in the upper half. */
export function backoffMs(failures: number, random: number, baseMs = 100, capMs = 30_000): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.max(0, failures - 1));
  return ceiling / 2 + (ceiling / 2) * random;
}
