// Decides, from a recorded history and the healed cluster's final state, whether any documented guarantee
// was broken. Pure: no I/O, so every rule is unit-tested on hand-made histories.
//
// Versions are last-writer-wins and compare as strings (see fileserver/src/store/version.ts), and every
// write's answer carries the version it got, so the rules use versions rather than wall-clock order:
// the final state of a key must be at least as new as every acknowledged change of that key.
import type { FileClusterStatus } from '../../operator/src/api/v1alpha1/types.ts';
import type { Call, FaultLog, FaultWindow, FinalRead } from './history.ts';

export type Property =
  | 'converged'
  | 'acknowledged-write-kept'
  | 'acknowledged-delete-kept'
  | 'reads-intact'
  | 'reads-written'
  | 'refused-writes-absent'
  | 'ack-honoured'
  | 'deletes-on-full-volume'
  | 'conditional-writes'
  | 'run-completes'
  | 'status-matches-pods';

export interface Violation {
  property: Property;
  key?: string;
  message: string;
  calls?: Call[];
}

const isWrite = (c: Call) => c.op.kind === 'put' || c.op.kind === 'create' || c.op.kind === 'swap';
const isMutation = (c: Call) => isWrite(c) || c.op.kind === 'delete';
/** A mutation that may have taken effect: acknowledged, or with an unknown outcome. */
const mayHaveApplied = (c: Call) => isMutation(c) && c.done.outcome !== 'fail';

const NO_FAULTS: FaultLog = { isolated: [], alone: [], full: [], damaged: [] };

export function check(calls: Call[], finals: FinalRead[], faults: FaultLog = NO_FAULTS): Violation[] {
  return [
    ...checkConverged(finals),
    ...checkReads(calls, finals),
    ...checkRefusedWrites(calls, finals),
    ...checkFinalState(calls, finals, faults),
    ...checkAcks(calls, faults),
    ...checkFullVolume(calls, faults),
    ...checkConditional(calls),
  ];
}

/** Whether `c` ran from invocation to completion inside a window of its node. */
const within = (c: Call, windows: FaultWindow[]) => windows.some((w) => w.node === c.op.node && w.from <= c.invokedAt && c.completedAt <= w.to);
const overlaps = (c: Call, windows: FaultWindow[]) => windows.some((w) => w.node === c.op.node && w.from <= c.completedAt && c.invokedAt <= w.to);

function byKey<T extends { key: string }>(items: T[]): Map<string, T[]> {
  const m = new Map<string, T[]>();
  for (const it of items) m.set(it.key, [...(m.get(it.key) ?? []), it]);
  return m;
}

const describeFinal = (f: FinalRead) => (f.status === 200 ? `${f.value} at ${f.version}` : `absent (${f.status})`);

export function checkConverged(finals: FinalRead[]): Violation[] {
  const out: Violation[] = [];
  for (const [key, reads] of byKey(finals)) {
    const first = reads[0]!;
    const differing = reads.filter((r) => r.status !== first.status || r.version !== first.version || r.value !== first.value);
    if (differing.length > 0) {
      out.push({ property: 'converged', key, message: `nodes disagree: ${reads.map((r) => `${r.node}=${describeFinal(r)}`).join(', ')}` });
    }
  }
  return out;
}

/** Every read returned 404 or the exact bytes of a write invoked before the read completed. */
export function checkReads(calls: Call[], finals: FinalRead[]): Violation[] {
  const out: Violation[] = [];
  const writtenAt = new Map<string, number>();
  for (const c of calls) if (isWrite(c) && c.op.value !== undefined) writtenAt.set(c.op.value, c.invokedAt);
  for (const c of calls) {
    if (c.op.kind !== 'get' || c.done.outcome !== 'ok' || c.done.read == null) continue;
    if (c.done.intact === false)
      out.push({ property: 'reads-intact', key: c.op.key, message: `read of ${c.op.key} on ${c.op.node} returned damaged bytes for ${c.done.read}`, calls: [c] });
    const at = writtenAt.get(c.done.read);
    if (at === undefined || at > c.completedAt) {
      out.push({
        property: 'reads-written',
        key: c.op.key,
        message: `read of ${c.op.key} on ${c.op.node} returned ${c.done.read}, which no client had written`,
        calls: [c],
      });
    }
  }
  for (const f of finals) {
    if (f.status !== 200) continue;
    if (f.intact === false) out.push({ property: 'reads-intact', key: f.key, message: `${f.node} holds damaged bytes for ${f.key}` });
    if (f.value === undefined || !writtenAt.has(f.value))
      out.push({ property: 'reads-written', key: f.key, message: `${f.node} holds ${f.key} = ${f.value}, which no client wrote` });
  }
  return out;
}

/** A write that failed (refused, or 507: nothing stored) is never read, by a client or from a healed node. */
export function checkRefusedWrites(calls: Call[], finals: FinalRead[]): Violation[] {
  const refused = new Map<string, Call>();
  for (const c of calls) if (isWrite(c) && c.done.outcome === 'fail' && c.op.value !== undefined) refused.set(c.op.value, c);
  const out: Violation[] = [];
  for (const c of calls) {
    const w = c.op.kind === 'get' && c.done.read != null ? refused.get(c.done.read) : undefined;
    if (w)
      out.push({
        property: 'refused-writes-absent',
        key: c.op.key,
        message: `read of ${c.op.key} on ${c.op.node} returned ${c.done.read}, whose write failed (${w.done.status ?? w.done.error})`,
        calls: [w, c],
      });
  }
  for (const f of finals) {
    const w = f.value !== undefined ? refused.get(f.value) : undefined;
    if (w)
      out.push({
        property: 'refused-writes-absent',
        key: f.key,
        message: `${f.node} holds ${f.key} = ${f.value}, whose write failed (${w.done.status ?? w.done.error})`,
        calls: [w],
      });
  }
  return out;
}

/**
 * `ack=majority` and `ack=all` count copies on other nodes: a node cut off from every other node for the
 * whole call cannot acknowledge either (only `ack=local` writes are acknowledged under a partition). The
 * documented exception: the levels count the members of the node's peer list, so a node whose list
 * named no other member during the call meets them alone.
 */
export function checkAcks(calls: Call[], faults: FaultLog): Violation[] {
  const out: Violation[] = [];
  for (const c of calls) {
    if (!isMutation(c) || c.done.outcome !== 'ok' || (c.op.ack !== 'majority' && c.op.ack !== 'all')) continue;
    if (within(c, faults.isolated) && !overlaps(c, faults.alone))
      out.push({
        property: 'ack-honoured',
        key: c.op.key,
        message: `${c.op.kind} ${c.op.id} of ${c.op.key} was acknowledged with ack=${c.op.ack} by ${c.op.node} while it could reach no other node`,
        calls: [c],
      });
  }
  return out;
}

/** A full volume refuses writes with 507, but a delete still commits from the reserved space. */
export function checkFullVolume(calls: Call[], faults: FaultLog): Violation[] {
  return calls
    .filter((c) => c.op.kind === 'delete' && c.done.status === 507 && within(c, faults.full))
    .map((c) => ({ property: 'deletes-on-full-volume', key: c.op.key, message: `delete ${c.op.id} of ${c.op.key} on the full ${c.op.node} answered 507`, calls: [c] }));
}

/**
 * The final state of each key is at least as new as its newest acknowledged change: an acknowledged write is
 * only ever replaced by a newer change, and an acknowledged delete is never undone by an older write. An
 * `ack=local` write is excused when the nemesis damaged the stored bytes of that write or of a later
 * write to its key (acknowledged or not): the damaged file may have been the key's only current copy.
 */
export function checkFinalState(calls: Call[], finals: FinalRead[], faults: FaultLog = NO_FAULTS): Violation[] {
  const out: Violation[] = [];
  const damagedValues = new Set(faults.damaged.map((d) => d.value));
  const damaged = calls.filter((c) => c.op.value !== undefined && damagedValues.has(c.op.value));
  const rotAtOrAfter = (w: Call) => damaged.some((d) => d.op.key === w.op.key && (d === w || d.done.version === undefined || d.done.version >= w.done.version!));
  const mutations = byKey(calls.filter(isMutation).map((c) => ({ key: c.op.key, c })));
  for (const f of finals) {
    const own = (mutations.get(f.key) ?? []).map((m) => m.c);
    const acked = own.filter((c) => c.done.outcome === 'ok' && c.done.version !== undefined);
    const newest = acked.reduce<Call | undefined>((a, c) => (a === undefined || c.done.version! > a.done.version! ? c : a), undefined);
    if (!newest) continue;
    if (newest.op.ack === 'local' && newest.op.kind !== 'delete' && rotAtOrAfter(newest)) continue;
    const v = newest.done.version!;
    const what = newest.op.kind === 'delete' ? 'delete' : 'write';
    const property: Property = newest.op.kind === 'delete' ? 'acknowledged-delete-kept' : 'acknowledged-write-kept';
    if (f.status === 200) {
      if (f.version === undefined || f.version < v || (f.version === v && newest.op.kind === 'delete')) {
        out.push({
          property,
          key: f.key,
          message: `${f.node} serves ${f.key} at ${f.version} (${f.value}), older than the acknowledged ${what} ${newest.op.id} at ${v}`,
          calls: [newest],
        });
      }
      continue;
    }
    if (newest.op.kind === 'delete') continue;
    // Absent: only a delete that may have applied, with a version that can be newer, explains it.
    const explained = own.some((c) => c.op.kind === 'delete' && mayHaveApplied(c) && (c.done.version === undefined || c.done.version > v));
    if (!explained) {
      out.push({
        property,
        key: f.key,
        message: `${f.node} has no ${f.key}, but write ${newest.op.id} (${newest.op.value}) was acknowledged at ${v} and no later delete may have applied`,
        calls: [newest],
      });
    }
  }
  return out;
}

/**
 * Conditional writes are compare-and-swap: two acknowledged swaps from one version, or two acknowledged
 * create-only writes with no delete that may have applied between them, mean one of them was lost.
 */
export function checkConditional(calls: Call[]): Violation[] {
  const out: Violation[] = [];
  const okSwaps = new Map<string, Call[]>();
  for (const c of calls) {
    if (c.op.kind !== 'swap' || c.done.outcome !== 'ok') continue;
    const k = `${c.op.key} ${c.op.ifMatch}`;
    okSwaps.set(k, [...(okSwaps.get(k) ?? []), c]);
  }
  for (const group of okSwaps.values()) {
    if (group.length > 1) {
      out.push({
        property: 'conditional-writes',
        key: group[0]!.op.key,
        message: `${group.length} acknowledged swaps of ${group[0]!.op.key} from version ${group[0]!.op.ifMatch}`,
        calls: group,
      });
    }
  }
  for (const [key, own] of byKey(calls.map((c) => ({ key: c.op.key, c })))) {
    const creates = own.map((m) => m.c).filter((c) => c.op.kind === 'create' && c.done.outcome === 'ok' && c.done.version !== undefined);
    creates.sort((a, b) => (a.done.version! < b.done.version! ? -1 : 1));
    const deletes = own.map((m) => m.c).filter((c) => c.op.kind === 'delete' && mayHaveApplied(c));
    for (let i = 1; i < creates.length; i++) {
      const lo = creates[i - 1]!.done.version!;
      const hi = creates[i]!.done.version!;
      const between = deletes.some((d) => d.done.version === undefined || (d.done.version > lo && d.done.version < hi));
      if (!between) {
        out.push({
          property: 'conditional-writes',
          key,
          message: `two acknowledged create-only writes of ${key} (${lo}, ${hi}) with no delete between`,
          calls: [creates[i - 1]!, creates[i]!],
        });
      }
    }
  }
  return out;
}

/** A healed FileCluster as the API server shows it, and what each of its pods says of itself. */
export interface ObservedFileCluster {
  /** metadata.generation and spec.replicas. */
  generation: number;
  replicas: number;
  status: FileClusterStatus;
  pods: Array<{
    name: string;
    /** The pod's file-server URL (where the peer list must point). */
    url: string;
    ready: boolean;
    serving: boolean;
    /** The peer-list generation the pod holds (GET /internal/peers), undefined when it did not answer. */
    peerGeneration?: number;
  }>;
}

/**
 * Once every fault has ended, the FileCluster's status and conditions describe its pods: as many pods as
 * the spec asks, all Ready and serving, each holding the published peer list, which names exactly them;
 * the counts agree; Ready and PeersSynced are True, Progressing and Degraded False, for this generation.
 */
export function checkStatus(o: ObservedFileCluster): Violation[] {
  const wrong: string[] = [];
  const { status, pods } = o;
  const names = pods.map((p) => p.name).sort();
  if (status.observedGeneration !== o.generation) wrong.push(`observedGeneration ${status.observedGeneration} is not the spec's generation ${o.generation}`);
  if (pods.length !== o.replicas) wrong.push(`${pods.length} pods (${names.join(', ')}) where the spec asks for ${o.replicas}`);
  const notReady = pods.filter((p) => !p.ready || !p.serving).map((p) => p.name);
  if (notReady.length > 0) wrong.push(`${notReady.join(', ')} not Ready and serving`);
  if (status.replicas !== pods.length) wrong.push(`status.replicas ${status.replicas} but ${pods.length} pods`);
  const ready = pods.filter((p) => p.ready).length;
  if (status.readyReplicas !== ready) wrong.push(`status.readyReplicas ${status.readyReplicas} but ${ready} Ready pods`);
  const peers = (status.peers ?? []).map((p) => `${p.id}=${p.url}`).sort();
  const expected = pods.map((p) => `${p.name}=${p.url}`).sort();
  if (peers.join(' ') !== expected.join(' ')) wrong.push(`status.peers [${peers.join(', ')}] are not the pods [${expected.join(', ')}]`);
  if (status.peersAcknowledged !== pods.length) wrong.push(`status.peersAcknowledged ${status.peersAcknowledged} but ${pods.length} pods`);
  const behind = pods.filter((p) => p.peerGeneration !== status.peerGeneration).map((p) => `${p.name} holds ${p.peerGeneration ?? 'nothing'}`);
  if (behind.length > 0) wrong.push(`status.peerGeneration ${status.peerGeneration}, but ${behind.join(', ')}`);
  const expectedConditions: Record<string, string> = { Ready: 'True', PeersSynced: 'True', Progressing: 'False', Degraded: 'False' };
  for (const [type, want] of Object.entries(expectedConditions)) {
    const c = status.conditions?.find((x) => x.type === type);
    if (!c) wrong.push(`no ${type} condition`);
    else if (c.status !== want) wrong.push(`${type} is ${c.status} (${c.reason}: ${c.message})`);
    else if (c.observedGeneration !== undefined && c.observedGeneration !== o.generation)
      wrong.push(`${type} was set for generation ${c.observedGeneration}, not ${o.generation}`);
  }
  return wrong.length === 0 ? [] : [{ property: 'status-matches-pods', message: `the FileCluster's status does not describe its pods: ${wrong.join('; ')}` }];
}
