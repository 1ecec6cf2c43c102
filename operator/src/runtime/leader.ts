import type { Logger } from 'pino';
import { isConflict, isNotFound, RESOURCES, resourcePath, type Kube } from './kube.ts';

export interface LeaseOptions {
  namespace: string;
  name: string;
  identity: string;
  durationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
}

interface Lease {
  metadata: { name: string; namespace: string; resourceVersion?: string };
  spec?: {
    holderIdentity?: string | null;
    leaseDurationSeconds?: number;
    acquireTime?: string | null;
    renewTime?: string | null;
    leaseTransitions?: number;
  };
}

/** MicroTime as the API server formats it (six fractional digits). */
function microTime(d: Date): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

export interface LeaderCallbacks {
  onStartedLeading: () => void;
  /** A graceful stop: awaited while the Lease is still held and renewed, then the Lease is released. */
  onStoppedLeading: () => Promise<void>;
  /**
   * No renewal succeeded within the renew deadline: another replica may lead once the lease duration
   * passes, so every piece of work of this term must stop now. Called at most once; the elector never
   * campaigns again afterwards (a new term needs a new process, as with controller-runtime).
   */
  onLostLeadership: () => void;
}

/**
 * Leader election on a coordination.k8s.io Lease, the client-go algorithm: a candidate takes the Lease
 * when its holder has not renewed it for a lease duration, measured on the candidate's own clock from
 * when it last saw the record change (so clocks need not agree); the leader renews every retry period
 * and steps down if it could not renew within the renew deadline, before anyone else may take over.
 * The renew deadline is counted from when the last successful renewal was sent, every request of a
 * renewal is cut off at that deadline, and a timer ends the term at the deadline even while a request
 * hangs.
 */
export class LeaderElector {
  private readonly kube: Kube;
  private readonly log: Logger;
  private readonly opts: LeaseOptions;
  private readonly callbacks: LeaderCallbacks;
  private observed?: { key: string; at: number };
  /** The Lease as our last successful write returned it; the leader renews from it without a GET. */
  private held?: Lease;
  private leader = false;
  /** When the last successful renewal was sent (epoch ms). */
  private lastRenew = 0;
  /** A graceful stop is under way: renew while the work of this term finishes, but never acquire. */
  private stopping = false;
  private stopped = false;
  private timer?: NodeJS.Timeout;
  private deadline?: NodeJS.Timeout;

  constructor(kube: Kube, log: Logger, opts: LeaseOptions, callbacks: LeaderCallbacks) {
    this.kube = kube;
    this.log = log.child({ lease: `${opts.namespace}/${opts.name}`, identity: opts.identity });
    this.opts = opts;
    this.callbacks = callbacks;
  }

  get isLeader(): boolean {
    return this.leader;
  }

  run(): void {
    const tick = async (): Promise<void> => {
      if (this.stopped || (this.stopping && !this.leader)) return;
      const sent = Date.now();
      // A leader's renewal may not outlive its term, nor a candidate's attempt the term it would start.
      const until = this.leader ? this.lastRenew + this.opts.renewDeadlineMs : sent + Math.min(this.opts.retryPeriodMs * 2, this.opts.renewDeadlineMs);
      let ok = false;
      try {
        ok = await this.tryAcquireOrRenew(until);
      } catch (err) {
        this.log.warn({ err: String(err) }, 'lease update failed');
      }
      if (this.stopped) return;
      if (ok) {
        this.lastRenew = sent;
        this.armDeadline();
        if (!this.leader) {
          this.leader = true;
          this.log.info('became leader');
          this.callbacks.onStartedLeading();
        }
      } else if (this.leader && Date.now() >= this.lastRenew + this.opts.renewDeadlineMs) {
        this.lose();
        return;
      }
      const jitter = this.leader ? 0 : Math.random() * this.opts.retryPeriodMs * 0.2;
      this.timer = setTimeout(() => void tick(), this.opts.retryPeriodMs + jitter);
    };
    void tick();
  }

  /** Ends the term at the renew deadline unless a renewal moves it first. */
  private armDeadline(): void {
    if (this.deadline) clearTimeout(this.deadline);
    this.deadline = setTimeout(() => this.lose(), this.lastRenew + this.opts.renewDeadlineMs - Date.now());
  }

  private lose(): void {
    if (!this.leader || this.stopped) return;
    this.leader = false;
    this.stopped = true;
    this.held = undefined;
    if (this.timer) clearTimeout(this.timer);
    if (this.deadline) clearTimeout(this.deadline);
    this.log.error({ renewDeadlineMs: this.opts.renewDeadlineMs }, 'lost the lease: no renewal within the renew deadline');
    this.callbacks.onLostLeadership();
  }

  /**
   * Stops campaigning. A leader first lets the work of its term finish (still renewing, so the term
   * cannot pass to another replica meanwhile), then hands the Lease back so a successor need not wait
   * for it to expire.
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopping = true;
    if (this.leader) await this.callbacks.onStoppedLeading();
    if (this.stopped) return;
    const wasLeader = this.leader;
    this.stopped = true;
    this.leader = false;
    this.held = undefined;
    if (this.timer) clearTimeout(this.timer);
    if (this.deadline) clearTimeout(this.deadline);
    if (!wasLeader) return;
    try {
      const lease = await this.kube.request<Lease>('GET', this.path());
      if (lease.spec?.holderIdentity !== this.opts.identity) return;
      await this.kube.request('PUT', this.path(), {
        body: { ...lease, spec: { ...lease.spec, holderIdentity: null, leaseDurationSeconds: 1, renewTime: microTime(new Date()) } },
        timeoutMs: 5000,
      });
      this.log.info('released the lease');
    } catch (err) {
      this.log.warn({ err: String(err) }, 'could not release the lease');
    }
  }

  private path(name?: string): string {
    return resourcePath(RESOURCES.leases, this.opts.namespace, name ?? this.opts.name);
  }

  /** Milliseconds a request may take so that it ends by `until`; throws once that has passed. */
  private budget(until: number): number {
    const left = Math.min(until - Date.now(), this.opts.retryPeriodMs * 2);
    if (left <= 0) throw new Error('renew deadline passed');
    return left;
  }

  private async tryAcquireOrRenew(until: number): Promise<boolean> {
    const now = new Date();
    const durationSeconds = Math.ceil(this.opts.durationMs / 1000);
    // The fast path, as client-go takes it: a leader whose last renewal is still valid writes the renewal
    // straight onto the Lease it last wrote. The resourceVersion makes the write conditional, so a Lease
    // changed by anyone else fails with a conflict and the full read-then-write below decides. This halves
    // the leader's steady Lease traffic (one request per retry period instead of two).
    const held = this.held;
    this.held = undefined;
    if (this.leader && held?.spec && Date.now() - this.lastRenew < this.opts.durationMs) {
      try {
        return this.wrote(
          await this.kube.request<Lease>('PUT', this.path(), { body: { ...held, spec: { ...held.spec, renewTime: microTime(now) } }, timeoutMs: this.budget(until) }),
        );
      } catch (err) {
        this.log.debug({ err: String(err) }, 'optimistic lease renewal failed, reading the lease');
      }
    }
    let lease: Lease;
    try {
      lease = await this.kube.request<Lease>('GET', this.path(), { timeoutMs: this.budget(until) });
    } catch (err) {
      if (!isNotFound(err)) throw err;
      try {
        const created = await this.kube.request<Lease>('POST', resourcePath(RESOURCES.leases, this.opts.namespace), {
          body: {
            apiVersion: 'coordination.k8s.io/v1',
            kind: 'Lease',
            metadata: { name: this.opts.name, namespace: this.opts.namespace },
            spec: {
              holderIdentity: this.opts.identity,
              leaseDurationSeconds: durationSeconds,
              acquireTime: microTime(now),
              renewTime: microTime(now),
              leaseTransitions: 0,
            },
          },
          timeoutMs: this.budget(until),
        });
        return this.wrote(created);
      } catch (createErr) {
        if (isConflict(createErr)) return false;
        throw createErr;
      }
    }
    const spec = lease.spec ?? {};
    const holder = spec.holderIdentity ?? '';
    const key = `${holder}\u0000${spec.renewTime ?? ''}\u0000${lease.metadata.resourceVersion ?? ''}`;
    if (!this.observed || this.observed.key !== key) this.observed = { key, at: Date.now() };
    const heldByOther = holder !== '' && holder !== this.opts.identity;
    const otherDuration = (spec.leaseDurationSeconds ?? durationSeconds) * 1000;
    if (heldByOther && Date.now() - this.observed.at < otherDuration) return false;

    const renewing = holder === this.opts.identity;
    const body: Lease = {
      ...lease,
      spec: {
        holderIdentity: this.opts.identity,
        leaseDurationSeconds: durationSeconds,
        acquireTime: renewing ? (spec.acquireTime ?? microTime(now)) : microTime(now),
        renewTime: microTime(now),
        leaseTransitions: (spec.leaseTransitions ?? 0) + (renewing ? 0 : 1),
      },
    };
    try {
      const updated = await this.kube.request<Lease>('PUT', this.path(), { body, timeoutMs: this.budget(until) });
      if (!renewing) this.log.info({ previousHolder: holder || null }, 'acquired the lease');
      return this.wrote(updated);
    } catch (err) {
      if (isConflict(err)) return false;
      throw err;
    }
  }

  /** Records a Lease this replica just wrote as held and observed. */
  private wrote(lease: Lease): true {
    this.held = lease;
    this.observed = { key: `${this.opts.identity}\u0000${lease.spec?.renewTime ?? ''}\u0000${lease.metadata.resourceVersion ?? ''}`, at: Date.now() };
    return true;
  }
}
