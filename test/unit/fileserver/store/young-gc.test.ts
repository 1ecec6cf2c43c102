import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { constants, PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks';
import { receivedBytes, SCAVENGE_EVERY_BYTES } from '../../../../fileserver/src/store/young-gc.ts';

function minorGcsDuring(fn: () => void): Promise<number> {
  return new Promise((resolve) => {
    const seen: PerformanceEntry[] = [];
    const obs = new PerformanceObserver((list) => seen.push(...list.getEntries()));
    obs.observe({ entryTypes: ['gc'] });
    fn();
    // GC entries are delivered asynchronously.
    setTimeout(() => {
      obs.disconnect();
      resolve(seen.filter((e) => (e as PerformanceEntry & { detail: { kind: number } }).detail.kind === constants.NODE_PERFORMANCE_GC_MINOR).length);
    }, 100);
  });
}

describe('young-generation collection while bodies stream in', () => {
  it('collects the young generation once per few MiB received, without --expose-gc on the command line', async () => {
    assert.equal(typeof (globalThis as { gc?: unknown }).gc, 'undefined', 'the test must run without a global gc');
    const chunk = 64 * 1024;
    const rounds = 5;
    const n = await minorGcsDuring(() => {
      for (let sent = 0; sent < rounds * SCAVENGE_EVERY_BYTES; sent += chunk) receivedBytes(chunk);
    });
    assert.ok(n >= rounds, `expected at least ${rounds} minor GCs, saw ${n}`);
  });
});
