// Explores seeds: each seed gives one schedule, run on a fresh cluster. A failing schedule is shrunk by
// fast-check (fewer steps, fewer operations, smaller values) for as long as the budget allows, and the
// smallest failing run's history, schedule and logs are written to a directory named after the seed.
import fc from 'fast-check';
import { join } from 'node:path';
import { saveRun, type RunResult } from './run-schedule.ts';
import { scheduleFor, type Step } from './schedule.ts';

export interface ExploreOptions {
  firstSeed: number;
  /** Stop starting new seeds after this many. */
  maxSeeds: number;
  /** Stop starting new seeds after this long. */
  budgetMs: number;
  /** Time one failing seed may spend shrinking. */
  shrinkMs: number;
  outDir: string;
  /** The schedules a seed draws from. */
  schedules: fc.Arbitrary<Step[]>;
  /** Runs one schedule on a fresh cluster. */
  run: (schedule: Step[]) => Promise<RunResult>;
  log: (line: string) => void;
}

export interface SeedFailure {
  seed: number;
  schedule: Step[];
  result: RunResult;
  dir: string;
  shrinks: number;
}

export interface ExploreResult {
  seeds: number[];
  failures: SeedFailure[];
  elapsedMs: number;
}

/** Runs one seed (and shrinks it if it fails); undefined when the schedule passed. */
export async function runSeed(seed: number, o: Omit<ExploreOptions, 'firstSeed' | 'maxSeeds' | 'budgetMs'>): Promise<SeedFailure | undefined> {
  let smallest: { schedule: Step[]; result: RunResult } | undefined;
  let shrinkUntil = Number.POSITIVE_INFINITY;
  const details = await fc.check(
    fc.asyncProperty(o.schedules, async (schedule) => {
      // Past the shrink budget every candidate passes at once, which ends the shrink. (fast-check's own
      // time limit would also cut the first run, and an interrupted run counts as passed.)
      if (Date.now() > shrinkUntil) return true;
      let result: RunResult;
      try {
        result = await o.run(schedule);
      } catch (err) {
        // A cluster that could not be set up fails the seed; it must not start an unbounded shrink.
        if (shrinkUntil === Number.POSITIVE_INFINITY) shrinkUntil = Date.now() + o.shrinkMs;
        throw err;
      }
      if (result.violations.length === 0) return true;
      // fast-check only tries a smaller schedule after a failure, so the last failing run is the smallest so far.
      smallest = { schedule, result };
      if (shrinkUntil === Number.POSITIVE_INFINITY) shrinkUntil = Date.now() + o.shrinkMs;
      return false;
    }),
    { seed, numRuns: 1 },
  );
  if (!details.failed || !smallest) return undefined;
  const dir = join(o.outDir, `seed-${seed}`);
  await saveRun(dir, seed, smallest.schedule, smallest.result);
  return { seed, schedule: smallest.schedule, result: smallest.result, dir, shrinks: details.numShrinks };
}

export async function explore(o: ExploreOptions): Promise<ExploreResult> {
  const started = Date.now();
  const seeds: number[] = [];
  const failures: SeedFailure[] = [];
  for (let seed = o.firstSeed; seeds.length < o.maxSeeds && Date.now() - started < o.budgetMs; seed++) {
    seeds.push(seed);
    const t0 = Date.now();
    const failure = await runSeed(seed, o);
    if (failure) {
      failures.push(failure);
      o.log(`seed ${seed}: FAILED (${failure.result.violations.length} violations after ${failure.shrinks} shrinks; ${failure.schedule.length} steps) -> ${failure.dir}`);
      for (const v of failure.result.violations.slice(0, 10)) o.log(`  ${v.property}: ${v.message}`);
    } else {
      const steps = scheduleFor(seed, o.schedules);
      const ops = steps.reduce((n, s) => n + (s.t === 'ops' ? s.ops.length : 0), 0);
      const faults = steps.filter((s) => !['ops', 'settle', 'sleep'].includes(s.t)).length;
      o.log(`seed ${seed}: ok (${steps.length} steps, ${ops} operations, ${faults} fault steps; ${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    }
  }
  return { seeds, failures, elapsedMs: Date.now() - started };
}
