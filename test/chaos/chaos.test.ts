// The bounded chaos run of every test run: fresh seeds each time (printed, so a failure replays with
// `npm run chaos -- --seed N --seeds 1 --faults <the faults below>`), real file-server processes, kill -9,
// SIGSTOP, peer-list changes, skewed clocks, partitions, bit rot, a full volume (as root) and rolling restarts,
// and the checker's verdict. Long runs: `npm run chaos -- --minutes 60`.
import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { FULL_VOLUME_BYTES } from './cluster.ts';
import { explore } from './explore.ts';
import type { OpKind } from './history.ts';
import { runSchedule } from './run-schedule.ts';
import { type FaultKind, type OpSpec, type ScheduleOptions, scheduleArbitrary, type Step } from './schedule.ts';

const KINDS: OpKind[] = ['put', 'put', 'delete', 'get'];
// Clocks stay within the file servers' drift bound (60 s): a node restarted with a clock years ahead
// while none of its peers answers has no clock to compare with and acknowledges local writes its peers
// then refuse (a known limit, see docs/fileserver-api.md#clock-skew). The test below holds the case where
// it can read them.
// `full` mounts a tmpfs per node: root only.
const root = process.getuid?.() === 0;
const FAULTS: FaultKind[] = ['kill', 'pause', 'remove', 'skew', 'partition', 'corrupt', 'roll', ...(root ? (['full'] as const) : [])];
const schedule: ScheduleOptions = { nodes: 3, keys: 6, maxSteps: 50, faults: FAULTS, kinds: KINDS, maxSkewMs: 30_000 };
const outDir = join(tmpdir(), 'filecluster-chaos');

describe('chaos', () => {
  // What seed 263139136 found (`npm run chaos -- --seed 263139136 --steps 50`), as a fixed schedule: a node
  // 10 years fast acknowledged local writes that its peers refused, stranded on it for good.
  it('a node 10 years fast among two right ones acknowledges no write that its peers refuse', { timeout: 300_000 }, async () => {
    const op = (kind: OpKind, key: number, node: number): OpSpec => ({ kind, key, node, ack: 'local', size: 200 });
    const steps: Step[] = [
      { t: 'skew', node: 2, ms: 10 * 365 * 86_400_000 },
      { t: 'ops', ops: [op('put', 0, 2), op('put', 1, 2), op('put', 2, 0), op('put', 3, 1)] },
      { t: 'settle' },
      { t: 'ops', ops: [op('delete', 1, 2), op('put', 0, 0), op('get', 2, 2)] },
      { t: 'settle' },
      { t: 'unskew', node: 2 },
      { t: 'ops', ops: [op('put', 4, 2), op('put', 3, 2)] },
      { t: 'settle' },
    ];
    const result = await runSchedule(steps, { nodes: 3, keys: 6, retentionSeconds: 86_400, quiesceMs: 60_000 });
    assert.deepEqual(
      result.violations.map((v) => `${v.property}: ${v.message}`),
      [],
    );
    const onFast = result.calls.filter((c) => c.op.node === 'n3' && c.op.kind !== 'get');
    const refused = onFast.filter((c) => c.done.status === 503);
    assert.equal(refused.length, 3, 'the writes to the fast node are refused');
    assert.ok(
      onFast.filter((c) => c.done.status !== 503).every((c) => c.done.outcome === 'ok'),
      'and taken once its clock is right',
    );
  });

  it('random schedules of writes, deletes and reads under process, network, clock and volume faults keep every guarantee', { timeout: 600_000 }, async () => {
    const firstSeed = Number(process.env.FC_CHAOS_SEED ?? Math.floor(Math.random() * 2 ** 31));
    console.log(`chaos: first seed ${firstSeed}, faults ${FAULTS.join(',')}`);
    const result = await explore({
      firstSeed,
      maxSeeds: 8,
      budgetMs: 120_000,
      // No shrinking here: one candidate can run for minutes, so a failure would end in this test's
      // timeout instead of its seed and violations. `npm run chaos -- --seed N --seeds 1` shrinks it.
      shrinkMs: 0,
      outDir,
      schedules: scheduleArbitrary(schedule),
      run: (steps) => runSchedule(steps, { nodes: 3, keys: 6, retentionSeconds: 86_400, quiesceMs: 60_000, ...(root ? { volumeBytes: FULL_VOLUME_BYTES } : {}) }),
      log: (l) => console.log(l),
    });
    // Most seeds take seconds; one whose writes wait out acknowledgement timeouts behind a partition can
    // take the whole budget (seed 1079873467: 196 s), so one seed is the least a run checks.
    assert.ok(result.seeds.length >= 1, 'no seed ran');
    const report = result.failures.map((f) => `seed ${f.seed} (${f.dir}): ${f.result.violations.map((v) => `${v.property}: ${v.message}`).join('; ')}`);
    assert.deepEqual(report, []);
  });
});
