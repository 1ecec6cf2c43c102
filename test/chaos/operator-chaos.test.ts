// The operator mode's bounded run: one fresh seed (printed, so a failure replays with
// `npm run chaos -- --operator --seed N --seeds 1 --steps 20 --faults scale,leader,delete,kill,pause`) against a FileCluster that two operator
// replicas run on the harness's local cluster, with scale-ups and scale-downs, SIGKILL of the leader, API
// server restarts (in long runs only), pod deletions, kill -9 and frozen pods, and the checker's verdict, the FileCluster's
// status included. Long runs: `npm run chaos -- --operator --minutes 60`.
import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Cluster } from '../harness/index.ts';
import { runSeed } from './explore.ts';
import { runOperatorSchedule, startKubernetes } from './operator-cluster.ts';
import { OPERATOR_FAULT_KINDS, operatorScheduleArbitrary, type Step } from './schedule.ts';

const RUN = { keys: 6, replicas: 3, quiesceMs: 180_000 };
// Without `api`: after an API server restart, pods created later could stay in CreateContainerConfigError
// on the harness's process node (seen in a long run, not yet explained), so that fault runs only in
// `npm run chaos -- --operator`.
const FAULTS = OPERATOR_FAULT_KINDS.filter((f) => f !== 'api');

describe('operator chaos', () => {
  let k8s: Cluster;
  before(async () => {
    k8s = await startKubernetes();
  });
  after(() => k8s?.close());

  // What seed 1842788411 found, as a fixed schedule: a scale-up, at once a scale-down, the leader killed,
  // and writes sent straight to the new pod. While no operator led, the new pod, never given a peer list
  // and never fenced, acknowledged writes as a node with no peers; the next leader gave it its first list
  // and shrank the StatefulSet in the same pass, deciding on its claim as never joined, so no drain.
  it('a pod scaled up and at once away acknowledges no write that it alone holds', { timeout: 600_000 }, async () => {
    const steps: Step[] = [{ t: 'scale', replicas: 4 }, { t: 'sleep', ms: 300 }, { t: 'scale', replicas: 1 }, { t: 'kill-leader' }];
    // Each write to a key of its own, so no later write supersedes one the new pod acknowledged.
    const rounds = 40;
    for (let round = 0; round < rounds; round++) {
      const put = (key: number) => ({ kind: 'put' as const, key, node: 3, ack: 'local' as const, size: 200 });
      steps.push({ t: 'ops', ops: [put(2 * round), put(2 * round + 1)] }, { t: 'sleep', ms: 150 });
    }
    const result = await runOperatorSchedule(k8s, steps, { ...RUN, keys: 2 * rounds });
    const toNewPod = result.calls.filter((c) => c.op.node === 'chaos-3');
    const answers = new Map<string, number>();
    for (const c of toNewPod) {
      const answer = String(c.done.status ?? c.done.outcome);
      answers.set(answer, (answers.get(answer) ?? 0) + 1);
    }
    console.log(`writes sent to chaos-3, by answer: ${JSON.stringify(Object.fromEntries(answers))}`);
    assert.ok(
      toNewPod.some((c) => c.done.status !== undefined),
      'the new pod answered none of the writes, so the schedule did not reach the window it is for',
    );
    assert.deepEqual(
      result.violations.map((v) => `${v.property}: ${v.message}`),
      [],
    );
  });

  it('a random schedule of scaling, leader kills, API server restarts and pod faults keeps every guarantee', { timeout: 600_000 }, async () => {
    const seed = Number(process.env.FC_CHAOS_SEED ?? Math.floor(Math.random() * 2 ** 31));
    console.log(`operator chaos: seed ${seed}, faults ${FAULTS.join(',')}`);
    const failure = await runSeed(seed, {
      // One schedule takes a minute or two here; shrinking is for `npm run chaos -- --operator`.
      shrinkMs: 0,
      outDir: join(tmpdir(), 'filecluster-chaos-operator'),
      schedules: operatorScheduleArbitrary({ maxReplicas: 4, keys: RUN.keys, maxSteps: 20, faults: FAULTS, kinds: ['put', 'put', 'delete', 'get'] }),
      run: (steps) => runOperatorSchedule(k8s, steps, RUN),
      log: (l) => console.log(l),
    });
    assert.deepEqual(
      failure?.result.violations.map((v) => `${v.property}: ${v.message}`),
      undefined,
      `seed ${seed} failed; its history, schedule and logs are in ${failure?.dir}`,
    );
  });
});
