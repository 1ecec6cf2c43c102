// The chaos checker's command: `npm run chaos -- --minutes 60 --seed N`. Runs seeds N, N+1, ... until the
// time is up, prints every seed and its verdict, and exits 1 if any seed broke a guarantee. With
// --operator the schedules run against FileClusters that the operator runs on the harness's local
// Kubernetes cluster (one namespace and two operator replicas per seed), with the operator-level faults.
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { FULL_VOLUME_BYTES } from './cluster.ts';
import { explore } from './explore.ts';
import { runOperatorSchedule, startKubernetes } from './operator-cluster.ts';
import { runSchedule, saveRun } from './run-schedule.ts';
import { FAULT_KINDS, type FaultKind, OPERATOR_FAULT_KINDS, type OperatorFaultKind, operatorScheduleArbitrary, scheduleArbitrary, type Step } from './schedule.ts';
import type { OpKind } from './history.ts';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '5' },
    seed: { type: 'string' },
    seeds: { type: 'string', default: String(Number.MAX_SAFE_INTEGER) },
    nodes: { type: 'string', default: '3' },
    keys: { type: 'string', default: '6' },
    steps: { type: 'string', default: '60' },
    faults: { type: 'string' },
    operator: { type: 'boolean', default: false },
    'max-replicas': { type: 'string', default: '4' },
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

const known: readonly string[] = values.operator ? OPERATOR_FAULT_KINDS : FAULT_KINDS;
const faults = (values.faults ?? known.join(',')).split(',').filter(Boolean);
for (const f of faults) if (!known.includes(f)) throw new Error(`--faults: unknown fault ${f} (known: ${known.join(', ')})`);
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
// The operator mode shares one Kubernetes cluster between its seeds; each seed gets a namespace.
const k8s = values.operator ? await startKubernetes() : undefined;
const operatorOptions = { keys, replicas: nodes, quiesceMs: 180_000 };
const run = (steps: Step[]) =>
  k8s
    ? runOperatorSchedule(k8s, steps, operatorOptions)
    : runSchedule(steps, steps.some((s) => s.t === 'fill') ? { ...runOptions, volumeBytes: FULL_VOLUME_BYTES } : runOptions);
try {
  await main();
} finally {
  await k8s?.close();
}

async function main(): Promise<void> {
  if (values.schedule !== undefined) {
    // Replays one schedule as written (e.g. the schedule.json of a failing run), without shrinking.
    const steps = JSON.parse(await readFile(values.schedule, 'utf8')) as Step[];
    const result = await run(steps);
    for (const v of result.violations) console.log(`${v.property}: ${v.message}`);
    console.log(`${steps.length} steps, ${result.calls.length} calls: ${result.violations.length} violations`);
    if (result.violations.length > 0) {
      const dir = join(values.out!, `replay-${Date.now()}`);
      await saveRun(dir, firstSeed, steps, result);
      console.log(`history, schedule and logs: ${dir}`);
    }
    process.exitCode = result.violations.length > 0 ? 1 : 0;
    return;
  }

  console.log(
    `chaos: first seed ${firstSeed}, ${values.operator ? 'operator mode, ' : ''}${nodes} nodes, ${keys} keys, faults ${faults.join(',') || 'none'}, retention ${values.retention} s${values.cas ? ', conditional writes' : ''}`,
  );
  const result = await explore({
    firstSeed,
    maxSeeds: positive('seeds', values.seeds),
    budgetMs: positive('minutes', values.minutes) * 60_000,
    shrinkMs: positive('shrink-minutes', values['shrink-minutes']) * 60_000,
    outDir: values.out!,
    schedules: values.operator
      ? operatorScheduleArbitrary({
          maxReplicas: positive('max-replicas', values['max-replicas']),
          keys,
          maxSteps: positive('steps', values.steps),
          faults: faults as OperatorFaultKind[],
          kinds,
        })
      : scheduleArbitrary({
          nodes,
          keys,
          maxSteps: positive('steps', values.steps),
          faults: faults as FaultKind[],
          kinds,
          ...(values['max-skew-seconds'] !== undefined ? { maxSkewMs: positive('max-skew-seconds', values['max-skew-seconds']) * 1000 } : {}),
        }),
    run,
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
}
