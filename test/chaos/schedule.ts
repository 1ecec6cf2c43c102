// A chaos run's schedule: client operations and faults as one list of steps, generated from a seed by
// fast-check, so the same seed gives the same schedule and a failing schedule can be shrunk.
import fc from 'fast-check';
import type { AckMode, OpKind } from './history.ts';

export const FAULT_KINDS = ['kill', 'pause', 'remove', 'skew', 'partition', 'corrupt', 'full', 'roll'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/** Faults of the operator mode, on pods of a FileCluster that the operator runs (see operator-cluster.ts). */
export const OPERATOR_FAULT_KINDS = ['scale', 'leader', 'api', 'delete', 'kill', 'pause'] as const;
export type OperatorFaultKind = (typeof OPERATOR_FAULT_KINDS)[number];

export interface OpSpec {
  kind: OpKind;
  key: number;
  /** Which current member the client sends to (modulo the member count). */
  node: number;
  ack: AckMode;
  size: number;
}

export type Step =
  /** Starts operations concurrently, without waiting for them: faults that follow hit them in flight. */
  | { t: 'ops'; ops: OpSpec[] }
  /** Waits until every operation started so far has completed. */
  | { t: 'settle' }
  | { t: 'sleep'; ms: number }
  /** kill -9; `restart` brings it back on the same data directory and address. */
  | { t: 'kill'; node: number }
  | { t: 'restart'; node: number }
  /** SIGSTOP / SIGCONT, a frozen pod. */
  | { t: 'pause'; node: number }
  | { t: 'resume'; node: number }
  /** A new peer-list generation without the node (as the operator does for a NotReady pod), and back. */
  | { t: 'remove'; node: number }
  | { t: 'readd'; node: number }
  /** Restarts the node with its wall clock off by `ms` (kill -9 first), and back with the true clock. */
  | { t: 'skew'; node: number; ms: number }
  | { t: 'unskew'; node: number }
  /** Cuts every peer connection to and from the node (a network partition isolating it), and restores them. */
  | { t: 'partition'; node: number }
  | { t: 'connect'; node: number }
  /** Zeroes a byte in the middle of one stored body on the node (bit rot): `pick` chooses which. */
  | { t: 'corrupt'; node: number; pick: number }
  /** Fills the node's data volume to the last byte with a file of its own, and removes that file. */
  | { t: 'fill'; node: number }
  | { t: 'drain'; node: number }
  /** Restarts every node one by one, starting at `node`, each waiting for the last to be ready (a rolling upgrade). */
  | { t: 'roll'; node: number }
  /** Sets the FileCluster's spec.replicas (operator mode). */
  | { t: 'scale'; replicas: number }
  /** SIGKILL of the operator replica holding the Lease, and a new replica started in its place (operator mode). */
  | { t: 'kill-leader' }
  /** Stops the API server and starts it again (operator mode). */
  | { t: 'restart-api' }
  /** Deletes the pod of ordinal `node`, which its StatefulSet makes again (operator mode). */
  | { t: 'delete-pod'; node: number };

export interface ScheduleOptions {
  nodes: number;
  keys: number;
  maxSteps: number;
  faults: readonly FaultKind[];
  kinds: readonly OpKind[];
  /** The largest clock offset a skew fault gives a node (a clock years off is among them unless bounded). */
  maxSkewMs?: number;
}

const SKEWS_MS = [-30_000, -2_000, 2_000, 30_000, 10 * 365 * 86_400_000];
const SIZES = [16, 200, 3000, 70 * 1024, 300 * 1024];

export function opArbitrary(o: ScheduleOptions): fc.Arbitrary<OpSpec> {
  return fc.record({
    kind: fc.constantFrom(...o.kinds),
    key: fc.nat({ max: o.keys - 1 }),
    node: fc.nat({ max: o.nodes - 1 }),
    ack: fc.constantFrom<AckMode>('local', 'local', 'majority', 'all'),
    size: fc.constantFrom(...SIZES, 16, 200, 200),
  });
}

export function stepArbitrary(o: ScheduleOptions): fc.Arbitrary<Step> {
  const node = fc.nat({ max: o.nodes - 1 });
  const faults: Array<fc.Arbitrary<Step>> = [];
  if (o.faults.includes('kill'))
    faults.push(
      node.map((n) => ({ t: 'kill', node: n })),
      node.map((n) => ({ t: 'restart', node: n })),
    );
  if (o.faults.includes('pause'))
    faults.push(
      node.map((n) => ({ t: 'pause', node: n })),
      node.map((n) => ({ t: 'resume', node: n })),
    );
  if (o.faults.includes('skew')) {
    const offset = fc.constantFrom(...SKEWS_MS.filter((ms) => Math.abs(ms) <= (o.maxSkewMs ?? Number.POSITIVE_INFINITY)));
    faults.push(
      fc.tuple(node, offset).map(([n, ms]) => ({ t: 'skew', node: n, ms })),
      node.map((n) => ({ t: 'unskew', node: n })),
    );
  }
  if (o.faults.includes('remove'))
    faults.push(
      node.map((n) => ({ t: 'remove', node: n })),
      node.map((n) => ({ t: 'readd', node: n })),
    );
  if (o.faults.includes('partition'))
    faults.push(
      node.map((n) => ({ t: 'partition', node: n })),
      node.map((n) => ({ t: 'connect', node: n })),
    );
  if (o.faults.includes('corrupt')) faults.push(fc.tuple(node, fc.nat({ max: 1000 })).map(([n, pick]) => ({ t: 'corrupt', node: n, pick })));
  if (o.faults.includes('full'))
    faults.push(
      node.map((n) => ({ t: 'fill', node: n })),
      node.map((n) => ({ t: 'drain', node: n })),
    );
  if (o.faults.includes('roll')) faults.push(node.map((n) => ({ t: 'roll', node: n })));
  return withCalmSteps(o, faults);
}

/** Client operations, settles and sleeps, with `faults` (each equally likely) `faultWeight` times in 9 + `faultWeight`. */
function withCalmSteps(o: ScheduleOptions, faults: Array<fc.Arbitrary<Step>>, faultWeight = 3): fc.Arbitrary<Step> {
  const ops: fc.Arbitrary<Step> = fc.array(opArbitrary(o), { minLength: 1, maxLength: 8, size: 'max' }).map((list) => ({ t: 'ops', ops: list }));
  const calm: Array<fc.WeightedArbitrary<Step>> = [
    { arbitrary: ops, weight: 6 },
    { arbitrary: fc.constant<Step>({ t: 'settle' }), weight: 1 },
    { arbitrary: fc.integer({ min: 10, max: 1500 }).map<Step>((ms) => ({ t: 'sleep', ms })), weight: 2 },
  ];
  if (faults.length === 0) return fc.oneof(...calm);
  return fc.oneof(...calm, { arbitrary: fc.oneof(...faults), weight: faultWeight });
}

export interface OperatorScheduleOptions {
  /** The most pods a scale step asks for; `node` of a pod fault is an ordinal below it. */
  maxReplicas: number;
  keys: number;
  maxSteps: number;
  faults: readonly OperatorFaultKind[];
  kinds: readonly OpKind[];
}

/**
 * Steps against a FileCluster run by the operator. An operation's `node` picks among the pods that exist
 * when it starts (a leaving pod among them); a fault's `node` names an ordinal, and does nothing while no
 * pod has it. Faults are two steps in five, scale steps twice as often as any other fault, so
 * scale-downs meet frozen and restarting pods and a changing leader.
 */
export function operatorStepArbitrary(o: OperatorScheduleOptions): fc.Arbitrary<Step> {
  const ordinal = fc.nat({ max: o.maxReplicas - 1 });
  const faults: Array<fc.Arbitrary<Step>> = [];
  if (o.faults.includes('scale')) {
    const scale = fc.integer({ min: 1, max: o.maxReplicas }).map<Step>((replicas) => ({ t: 'scale', replicas }));
    faults.push(scale, scale);
  }
  if (o.faults.includes('leader')) faults.push(fc.constant<Step>({ t: 'kill-leader' }));
  if (o.faults.includes('api')) faults.push(fc.constant<Step>({ t: 'restart-api' }));
  if (o.faults.includes('delete')) faults.push(ordinal.map<Step>((n) => ({ t: 'delete-pod', node: n })));
  if (o.faults.includes('kill')) faults.push(ordinal.map<Step>((n) => ({ t: 'kill', node: n })));
  if (o.faults.includes('pause'))
    faults.push(
      ordinal.map<Step>((n) => ({ t: 'pause', node: n })),
      ordinal.map<Step>((n) => ({ t: 'resume', node: n })),
    );
  return withCalmSteps({ nodes: o.maxReplicas, keys: o.keys, maxSteps: o.maxSteps, faults: [], kinds: o.kinds }, faults, 6);
}

export function operatorScheduleArbitrary(o: OperatorScheduleOptions): fc.Arbitrary<Step[]> {
  return fc.array(operatorStepArbitrary(o), { minLength: Math.ceil(o.maxSteps / 2), maxLength: o.maxSteps, size: 'max' });
}

export function scheduleArbitrary(o: ScheduleOptions): fc.Arbitrary<Step[]> {
  return fc.array(stepArbitrary(o), { minLength: Math.ceil(o.maxSteps / 2), maxLength: o.maxSteps, size: 'max' });
}

/** The schedule a seed gives, without running anything (for printing and replay). */
export function scheduleFor(seed: number, schedules: fc.Arbitrary<Step[]>): Step[] {
  return fc.sample(schedules, { seed, numRuns: 1 })[0]!;
}
