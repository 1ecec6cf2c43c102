// The chaos checker's command: `npm run chaos -- --minutes 60 --seed N`. Runs seeds N, N+1, ... until the
// time is up, prints every seed and its verdict, and exits 1 if any seed broke a guarantee.
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { FULL_VOLUME_BYTES } from './cluster.ts';
import { explore } from './explore.ts';
import { runSchedule } from './run-schedule.ts';
import { FAULT_KINDS, type FaultKind, type Step } from './schedule.ts';
import type { OpKind } from './history.ts';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '5' },
    seed: { type: 'string' },
    seeds: { type: 'string', default: String(Number.MAX_SAFE_INTEGER) },
    nodes: { type: 'string', default: '3' },
    keys: { type: 'string', default: '6' },
    steps: { type: 'string', default: '60' },
    faults: { type: 'string', default: FAULT_KINDS.join(',') },
    retention: { type: 'string', default: '86400' },
    cas: { type: 'boolean', default: false },
    'shrink-minutes': { type: 'string', default: '5' },
    out: { type: 'string', default: join(tmpdir(), 'filecluster-chaos') },
    schedule: { type: 'string' },
    'max-skew-seconds': { type: 'string' },
  },
});

function positive(name: string, v: string | undefined): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} must be a non-negative number, got ${v}`);
  return n;
}

const faults = values.faults!.split(',').filter(Boolean);
for (const f of faults) if (!(FAULT_KINDS as readonly string[]).includes(f)) throw new Error(`--faults: unknown fault ${f} (known: ${FAULT_KINDS.join(', ')})`);
const kinds: OpKind[] = ['put', 'put', 'delete', 'get', ...(values.cas ? (['create', 'swap'] as const) : [])];
const firstSeed = values.seed !== undefined ? positive('seed', values.seed) : Math.floor(Math.random() * 2 ** 31);
const nodes = positive('nodes', values.nodes);
const keys = positive('keys', values.keys);

const runOptions = {
  nodes,
  keys,
  retentionSeconds: positive('retention', values.retention),
  quiesceMs: 60_000,
  ...(faults.includes('full') ? { volumeBytes: FULL_VOLUME_BYTES } : {}),
};
if (values.schedule !== undefined) {
  // Replays one schedule as written (e.g. the schedule.json of a failing run), without shrinking.
  const steps = JSON.parse(await readFile(values.schedule, 'utf8')) as Step[];
  const result = await runSchedule(steps, steps.some((s) => s.t === 'fill') ? { ...runOptions, volumeBytes: FULL_VOLUME_BYTES } : runOptions);
  for (const v of result.violations) console.log(`${v.property}: ${v.message}`);
  console.log(`${steps.length} steps, ${result.calls.length} calls: ${result.violations.length} violations`);
  process.exit(result.violations.length > 0 ? 1 : 0);
}

console.log(
  `chaos: first seed ${firstSeed}, ${nodes} nodes, ${keys} keys, faults ${faults.join(',') || 'none'}, retention ${values.retention} s${values.cas ? ', conditional writes' : ''}`,
);
const result = await explore({
  firstSeed,
  maxSeeds: positive('seeds', values.seeds),
  budgetMs: positive('minutes', values.minutes) * 60_000,
  shrinkMs: positive('shrink-minutes', values['shrink-minutes']) * 60_000,
  outDir: values.out!,
  schedule: {
    nodes,
    keys,
    maxSteps: positive('steps', values.steps),
    faults: faults as FaultKind[],
    kinds,
    ...(values['max-skew-seconds'] !== undefined ? { maxSkewMs: positive('max-skew-seconds', values['max-skew-seconds']) * 1000 } : {}),
  },
  run: runOptions,
  log: (l) => console.log(l),
});

console.log('');
console.log('| seeds run | failed | minutes |');
console.log('|---|---|---|');
console.log(`| ${result.seeds.length} (${result.seeds[0]}..${result.seeds.at(-1)}) | ${result.failures.length} | ${(result.elapsedMs / 60_000).toFixed(1)} |`);
for (const f of result.failures)
  console.log(
    `failing seed ${f.seed}: ${[...new Set(f.result.violations.map((v) => v.property))].join(', ')}; replay with --seed ${f.seed} --seeds 1; details in ${f.dir}`,
  );
process.exitCode = result.failures.length > 0 ? 1 : 0;
