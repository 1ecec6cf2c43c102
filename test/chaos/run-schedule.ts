// Runs one schedule against a fresh cluster: client operations and faults as the schedule says, then heal,
// wait for quiescence, read every key from every node and check the history.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { check, type Violation } from './checker.ts';
import { ChaosCluster } from './cluster.ts';
import { perform, recorded } from './client.ts';
import { History, type Call, type FaultLog, type FinalRead, type Op } from './history.ts';
import type { OpSpec, Step } from './schedule.ts';

export interface RunOptions {
  nodes: number;
  keys: number;
  retentionSeconds: number;
  /** How long healed nodes get to converge before that counts as a failure. */
  quiesceMs: number;
  /** Each node's data directory on a tmpfs of this size (for the fill fault). */
  volumeBytes?: number;
}

export interface RunResult {
  violations: Violation[];
  calls: Call[];
  events: ChaosCluster['events'];
  finals: FinalRead[];
  faults: FaultLog;
  logs: Record<string, string[]>;
}

const keyName = (k: number) => `k${k}`;

export async function runSchedule(schedule: Step[], o: RunOptions): Promise<RunResult> {
  const cluster = await ChaosCluster.start({
    nodes: o.nodes,
    retentionSeconds: o.retentionSeconds,
    ...(o.volumeBytes !== undefined ? { volumeBytes: o.volumeBytes } : {}),
  });
  const history = new History();
  const inFlight = new Set<Promise<unknown>>();
  try {
    const launch = (spec: OpSpec) => {
      const members = cluster.members;
      const node = members[spec.node % members.length]!;
      const p = runOp(history, node, spec).finally(() => inFlight.delete(p));
      inFlight.add(p);
    };
    const result = (violations: Violation[], finals: FinalRead[]): RunResult => ({
      violations,
      calls: history.calls,
      events: cluster.events,
      finals,
      faults: cluster.faults,
      logs: Object.fromEntries(cluster.nodes.map((n) => [n.id, n.logs])),
    });
    try {
      for (const step of schedule) {
        if (step.t === 'ops') step.ops.forEach(launch);
        else if (step.t === 'settle') await Promise.all(inFlight);
        else if (step.t === 'sleep') await new Promise((r) => setTimeout(r, step.ms));
        else await cluster.apply(step, history.now());
      }
      await Promise.all(inFlight);
      await cluster.heal(history.now());
    } catch (err) {
      // A node that exits while (re)starting, or stops answering the harness, is a finding like any
      // other: reported with the history and the logs so far, and shrunk like any failing schedule.
      await Promise.allSettled(inFlight);
      const cause = (err as Error).cause instanceof Error ? ` (${((err as Error).cause as Error).message})` : '';
      return result([{ property: 'run-completes', message: `the schedule stopped: ${(err as Error).message}${cause}` }], []);
    }
    const quiet = await cluster.quiesce(o.quiesceMs);
    const finals = await readAll(cluster, o.keys);
    const violations = check(history.calls, finals, cluster.faults);
    if (!quiet) violations.unshift({ property: 'converged', message: `the healed cluster did not converge with an empty backlog within ${o.quiesceMs} ms` });
    return result(violations, finals);
  } finally {
    await cluster.close();
  }
}

/** One client operation; a swap reads the current version first (that read is recorded too). */
async function runOp(history: History, node: ChaosCluster['nodes'][number], spec: OpSpec): Promise<void> {
  const id = history.newId();
  const key = keyName(spec.key);
  const base = { id, key, node: node.id };
  const value = `w${id}s${spec.size}`;
  let op: Op;
  switch (spec.kind) {
    case 'get':
      op = { ...base, kind: 'get' };
      break;
    case 'delete':
      op = { ...base, kind: 'delete', ack: spec.ack };
      break;
    case 'swap': {
      const read = await recorded(history, node, { id: history.newId(), kind: 'get', key, node: node.id });
      if (read.outcome !== 'ok' || read.version === undefined) return;
      op = { ...base, kind: 'swap', ack: spec.ack, value, ifMatch: read.version };
      break;
    }
    default:
      op = { ...base, kind: spec.kind, ack: spec.ack, value };
  }
  await recorded(history, node, op, spec.size);
}

async function readAll(cluster: ChaosCluster, keys: number): Promise<FinalRead[]> {
  const finals: FinalRead[] = [];
  for (const n of cluster.nodes) {
    for (let k = 0; k < keys; k++) {
      const key = keyName(k);
      const done = await perform(n, { id: 0, kind: 'get', key, node: n.id }, 0);
      if (done.outcome !== 'ok') throw new Error(`final read of ${key} on healed node ${n.id} failed: ${done.status ?? done.error}`);
      finals.push({
        node: n.id,
        key,
        status: done.status!,
        ...(done.version !== undefined ? { version: done.version } : {}),
        ...(done.read != null ? { value: done.read } : {}),
        ...(done.intact !== undefined ? { intact: done.intact } : {}),
      });
    }
  }
  return finals;
}

/** Writes a failing run's schedule, history, violations and node logs into `dir`. */
export async function saveRun(dir: string, seed: number, schedule: Step[], r: RunResult): Promise<void> {
  await mkdir(join(dir, 'logs'), { recursive: true });
  await writeFile(join(dir, 'seed.txt'), `${seed}\n`);
  await writeFile(join(dir, 'schedule.json'), JSON.stringify(schedule, null, 1));
  await writeFile(join(dir, 'violations.json'), JSON.stringify(r.violations, null, 1));
  await writeFile(join(dir, 'history.json'), JSON.stringify({ calls: r.calls, faults: r.events, faultLog: r.faults, finals: r.finals }, null, 1));
  for (const [id, lines] of Object.entries(r.logs)) await writeFile(join(dir, 'logs', `${id}.log`), `${lines.join('\n')}\n`);
}
