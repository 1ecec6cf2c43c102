// What a chaos run records: every client call as an invocation and its completion, Jepsen-style. A call
// that timed out or lost its connection after sending is `info` (it may or may not have taken effect),
// never `fail`; `fail` means the server definitely did not apply it.
import type { Step } from './schedule.ts';

export type AckMode = 'local' | 'majority' | 'all';

export type OpKind = 'put' | 'delete' | 'get' | 'create' | 'swap';

export interface Op {
  id: number;
  kind: OpKind;
  key: string;
  node: string;
  ack?: AckMode;
  /** For writes: the id of the value written (the body starts with it). */
  value?: string;
  /** For `swap`: the version the write is conditional on (`If-Match`). */
  ifMatch?: string;
}

export type Outcome = 'ok' | 'fail' | 'info';

export interface Completion {
  outcome: Outcome;
  status?: number;
  /** The version the server assigned (writes, also on a 504 ack timeout) or returned (reads). */
  version?: string;
  /** For reads: the value id read, or null for 404. */
  read?: string | null;
  /** For reads: false when the body was not byte-for-byte the value its prefix names. */
  intact?: boolean;
  error?: string;
}

export interface Call {
  op: Op;
  invokedAt: number;
  completedAt: number;
  done: Completion;
}

/** One node's view of one key after the cluster has healed. */
export interface FinalRead {
  node: string;
  key: string;
  status: number;
  version?: string;
  value?: string;
  intact?: boolean;
}

export class History {
  readonly calls: Call[] = [];
  private nextId = 1;
  private readonly started = performance.now();

  newId(): number {
    return this.nextId++;
  }

  now(): number {
    return performance.now() - this.started;
  }

  /** Runs `perform` as one recorded call. */
  async record(op: Op, perform: () => Promise<Completion>): Promise<Completion> {
    const invokedAt = this.now();
    const done = await perform();
    this.calls.push({ op, invokedAt, completedAt: this.now(), done });
    return done;
  }
}

/** A span of history time, `to` open (Infinity) until the fault ends. */
export interface FaultWindow {
  node: string;
  from: number;
  to: number;
}

/** What the nemesis did that the checker needs to judge the history (times as in `Call`). */
export interface FaultLog {
  /** A node that could reach no other node (its peer connections cut both ways). */
  isolated: FaultWindow[];
  /**
   * A node whose peer list named no other member (the others removed, as the operator leaves out pods
   * that are not Ready). Acknowledgement levels count the list's members, so it meets them alone.
   */
  alone: FaultWindow[];
  /** A node whose data volume was full. */
  full: FaultWindow[];
  /** A stored body damaged on one node, named by the value it held. */
  damaged: Array<{ node: string; value: string; at: number }>;
}

/** One action of the nemesis, with what it did in the state it met. */
export interface FaultEvent {
  at: number;
  step: Step | { t: 'heal' };
  effect: string;
}
