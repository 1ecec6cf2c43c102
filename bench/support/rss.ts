// The resident memory of another process, read from the kernel (/proc/PID/status), so a benchmark sees
// what a pod's memory limit would see: the whole process, V8 heap, native allocations and mapped pages.
import { readFileSync } from 'node:fs';

const MIB = 1024;

function statusKiB(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const kib = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  if (kib === undefined) throw new Error(`/proc/${pid}/status has no ${field}`);
  return Number(kib);
}

/** Resident memory now, in MiB. */
export const rssMiB = (pid: number): number => statusKiB(pid, 'VmRSS') / MIB;

/** The most resident memory the process has held since it started (the kernel's high-water mark), in MiB. */
export const peakRssMiB = (pid: number): number => statusKiB(pid, 'VmHWM') / MIB;

/** Samples the resident memory of processes every `everyMs` until stopped; keeps the highest per process. */
export class RssSampler {
  readonly max = new Map<number, number>();
  private readonly pids: number[];
  private readonly timer: NodeJS.Timeout;

  constructor(pids: number[], everyMs = 100) {
    this.pids = pids;
    this.sample();
    this.timer = setInterval(() => this.sample(), everyMs);
  }

  private sample(): void {
    for (const pid of this.pids) this.max.set(pid, Math.max(this.max.get(pid) ?? 0, rssMiB(pid)));
  }

  /** Stops sampling (after one last sample) and returns the highest RSS in MiB per process, in the order given. */
  stop(): number[] {
    clearInterval(this.timer);
    this.sample();
    return this.pids.map((p) => this.max.get(p)!);
  }
}
