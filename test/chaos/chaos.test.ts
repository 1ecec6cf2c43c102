// The bounded chaos run of every test run: fresh seeds each time (printed, so a failure replays with
// `npm run chaos -- --seed N --seeds 1`), real file-server processes, kill -9, SIGSTOP and peer-list
// changes, and the checker's verdict. Long runs: `npm run chaos -- --minutes 60`.
import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { explore } from './explore.ts';
import type { OpKind } from './history.ts';
import { FAULT_KINDS, type ScheduleOptions } from './schedule.ts';

const KINDS: OpKind[] = ['put', 'put', 'delete', 'get'];
// Clocks stay within the file servers' drift bound (60 s): a node whose clock runs years ahead
// acknowledges local writes that its peers then refuse, so the cluster never converges (an open bug that
// `npm run chaos` finds; see docs/testing.md).
const schedule: ScheduleOptions = { nodes: 3, keys: 6, maxSteps: 50, faults: FAULT_KINDS, kinds: KINDS, maxSkewMs: 30_000 };
const outDir = join(tmpdir(), 'filecluster-chaos');

describe('chaos', () => {
  it('random schedules of writes, deletes and reads under kill -9, SIGSTOP and peer-list changes keep every guarantee', { timeout: 600_000 }, async () => {
    const firstSeed = Number(process.env.FC_CHAOS_SEED ?? Math.floor(Math.random() * 2 ** 31));
    console.log(`chaos: first seed ${firstSeed}`);
    const result = await explore({
      firstSeed,
      maxSeeds: 8,
      budgetMs: 120_000,
      shrinkMs: 120_000,
      outDir,
      schedule,
      run: { nodes: 3, keys: 6, retentionSeconds: 86_400, quiesceMs: 60_000 },
      log: (l) => console.log(l),
    });
    assert.ok(result.seeds.length >= 2, `only ${result.seeds.length} seeds ran`);
    const report = result.failures.map((f) => `seed ${f.seed} (${f.dir}): ${f.result.violations.map((v) => `${v.property}: ${v.message}`).join('; ')}`);
    assert.deepEqual(report, []);
  });
});
