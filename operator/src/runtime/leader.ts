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

/**
 * Leader election on a coordination.k8s.io Lease, the client-go algorithm: a candidate takes the Lease
 * when its holder has not renewed it for a lease duration, measured on the candidate's own clock from
 * when it last saw the record change (so clocks need not agree); the leader renews every retry period
 * and steps down if it could not renew within the renew deadline, before anyone else may take over.
 */
export class LeaderElector {
  private readonly kube: Kube;
  private readonly log: Logger;
  private readonly opts: LeaseOptions;
  private readonly onStart: () => void;
  private readonly onStop: () => void;
  private observed?: { key: string; at: number };
  /** The Lease as our last successful write returned it; the leader renews from it without a GET. */
  private held?: Lease;
  private leader = false;
  private lastRenew = 0;
  private stopped = false;
  private timer?: NodeJS.Timeout;

  constructor(kube: Kube, log: Logger, opts: LeaseOptions, callbacks: { onStartedLeading: () => void; onStoppedLeading: () => void }) {
    this.kube = kube;
    this.log = log.child({ lease: `${opts.namespace}/${opts.name}`, identity: opts.identity });
    this.opts = opts;
    this.onStart = callbacks.onStartedLeading;
    this.onStop = callbacks.onStoppedLeading;
  }

  get isLeader(): boolean {
    return this.leader;
  }

  run(): void {
    const tick = async (): Promise<void> => {
      if (this.stopped) return;
      let ok = false;
      try {
        ok = await this.tryAcquireOrRenew();
      } catch (err) {
        this.log.warn({ err: String(err) }, 'lease update failed');
      }
      if (this.stopped) return;
      if (ok) {
        this.lastRenew = Date.now();
        if (!this.leader) {
          this.leader = true;
          this.log.info('became leader');
          this.onStart();
        }
      } else if (this.leader && Date.now() - this.lastRenew > this.opts.renewDeadlineMs) {
        this.leader = false;
        this.log.warn('lost the lease (renew deadline passed)');
        this.onStop();
      }
      const jitter = this.leader ? 0 : Math.random() * this.opts.retryPeriodMs * 0.2;
      this.timer = setTimeout(() => void tick(), this.opts.retryPeriodMs + jitter);
    };
    void tick();
  }

  /** Stops campaigning; a leader hands the Lease back so a successor need not wait for it to expire. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.held = undefined;
    if (!this.leader) return;
    this.leader = false;
    this.onStop();
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

  private async tryAcquireOrRenew(): Promise<boolean> {
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
        return this.wrote(await this.kube.request<Lease>('PUT', this.path(), { body: { ...held, spec: { ...held.spec, renewTime: microTime(now) } }, timeoutMs: this.opts.retryPeriodMs * 2 }));
      } catch (err) {
        this.log.debug({ err: String(err) }, 'optimistic lease renewal failed, reading the lease');
      }
    }
    let lease: Lease;
    try {
      lease = await this.kube.request<Lease>('GET', this.path(), { timeoutMs: this.opts.retryPeriodMs * 2 });
    } catch (err) {
      if (!isNotFound(err)) throw err;
      try {
        const created = await this.kube.request<Lease>('POST', resourcePath(RESOURCES.leases, this.opts.namespace), {
          body: {
            apiVersion: 'coordination.k8s.io/v1',
            kind: 'Lease',
            metadata: { name: this.opts.name, namespace: this.opts.namespace },
            spec: { holderIdentity: this.opts.identity, leaseDurationSeconds: durationSeconds, acquireTime: microTime(now), renewTime: microTime(now), leaseTransitions: 0 },
          },
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
      const updated = await this.kube.request<Lease>('PUT', this.path(), { body, timeoutMs: this.opts.retryPeriodMs * 2 });
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
