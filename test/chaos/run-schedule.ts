// Runs one schedule against a cluster: client operations and faults as the schedule says, then heal,
// wait for quiescence, read every key from every node and check the history.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { check, type Violation } from './checker.ts';
import { ChaosCluster } from './cluster.ts';
import { type Endpoint, perform, recorded } from './client.ts';
import { History, type Call, type FaultEvent, type FaultLog, type FinalRead, type Op } from './history.ts';
import type { OpSpec, Step } from './schedule.ts';

const FINAL_READ_RETRY_MS = 30_000;

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
  events: FaultEvent[];
  finals: FinalRead[];
  faults: FaultLog;
  logs: Record<string, string[]>;
}

/** A cluster a schedule runs against: the bare file servers (cluster.ts) or a FileCluster run by the operator (operator-cluster.ts). */
export interface ChaosTarget {
  /** The nemesis's actions as they happened, for the failure report. */
  readonly events: FaultEvent[];
  readonly faults: FaultLog;
  /** The servers a client operation may go to now, in the order an operation's `node` picks from. */
  endpoints(): Endpoint[];
  /** Applies one fault step; a step that does not apply in the current state does nothing. */
  apply(step: Step, at: number): Promise<void>;
  /**
   * Ends every fault and waits, up to `timeoutMs`, for the healed servers to converge with nothing owed;
   * returns what did not come right (an empty list once everything did).
   */
  heal(at: number, timeoutMs: number): Promise<Violation[]>;
  /** The healed servers whose final state is read. */
  readable(): Endpoint[];
  logs(): Promise<Record<string, string[]>>;
}

const keyName = (k: number) => `k${k}`;

export async function runSchedule(schedule: Step[], o: RunOptions): Promise<RunResult> {
  const cluster = await ChaosCluster.start({
    nodes: o.nodes,
    retentionSeconds: o.retentionSeconds,
    ...(o.volumeBytes !== undefined ? { volumeBytes: o.volumeBytes } : {}),
  });
  try {
    return await runOn(cluster, schedule, o);
  } finally {
    await cluster.close();
  }
}

/**
 * Runs client operations and faults as the schedule says on `target`, then heals it, waits for
 * quiescence, reads every key from every healed server and checks the history.
 */
export async function runOn(target: ChaosTarget, schedule: Step[], o: { keys: number; quiesceMs: number }): Promise<RunResult> {
  const history = new History();
  const inFlight = new Set<Promise<unknown>>();
  const launch = (spec: OpSpec, members: Endpoint[]) => {
    if (members.length === 0) return;
    const node = members[spec.node % members.length]!;
    const p = runOp(history, node, spec).finally(() => inFlight.delete(p));
    inFlight.add(p);
  };
  const result = async (violations: Violation[], finals: FinalRead[]): Promise<RunResult> => ({
    violations,
    calls: history.calls,
    events: target.events,
    finals,
    faults: target.faults,
    logs: await target.logs(),
  });
  let unhealed: Violation[];
  let finals: FinalRead[];
  try {
    for (const step of schedule) {
      if (step.t === 'ops') {
        const members = target.endpoints();
        for (const spec of step.ops) launch(spec, members);
      } else if (step.t === 'settle') await Promise.all(inFlight);
      else if (step.t === 'sleep') await new Promise((r) => setTimeout(r, step.ms));
      else await target.apply(step, history.now());
    }
    await Promise.all(inFlight);
    unhealed = await target.heal(history.now(), o.quiesceMs);
    finals = await readAll(target.readable(), o.keys);
  } catch (err) {
    // A node that exits while (re)starting, or stops answering the harness, is a finding like any
    // other: reported with the history and the logs so far, and shrunk like any failing schedule.
    await Promise.allSettled(inFlight);
    const cause = (err as Error).cause instanceof Error ? ` (${((err as Error).cause as Error).message})` : '';
    return result([{ property: 'run-completes', message: `the schedule stopped: ${(err as Error).message}${cause}` }], []);
  }
  return result([...unhealed, ...check(history.calls, finals, target.faults)], finals);
}

/** One client operation; a swap reads the current version first (that read is recorded too). */
async function runOp(history: History, node: Endpoint, spec: OpSpec): Promise<void> {
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

async function readAll(nodes: Endpoint[], keys: number): Promise<FinalRead[]> {
  const finals: FinalRead[] = [];
  for (const n of nodes) {
    for (let k = 0; k < keys; k++) {
      const key = keyName(k);
      // A read that finds damaged bytes (the corrupt fault) ends its answer early, and the node sets the
      // file aside and pulls it again from a peer: the read is made again until that has happened.
      let done = await perform(n, { id: 0, kind: 'get', key, node: n.id }, 0);
      for (const deadline = Date.now() + FINAL_READ_RETRY_MS; done.outcome !== 'ok' && Date.now() < deadline; ) {
        await new Promise((r) => setTimeout(r, 500));
        done = await perform(n, { id: 0, kind: 'get', key, node: n.id }, 0);
      }
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
