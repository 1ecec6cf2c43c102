import { setTimeout as sleep } from 'node:timers/promises';
import type { KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { isGone, resourcePath, type Kube, type Resource, type WatchEventType } from './kube.ts';
import { ObjectStore, type Change, type EventType } from './store.ts';

export type { EventType } from './store.ts';

/** Objects per LIST page (client-go's pager uses the same). */
const PAGE_SIZE = 500;

/** One list+watch (one namespace, or all) and the store it keeps. */
interface Reflector<T extends KubernetesObject> {
  path: string;
  store: ObjectStore<T>;
  /** Where the watch resumes; '' means the next step is a LIST. */
  resourceVersion: string;
  /** A LIST completed at least once. */
  listed: boolean;
  /** The last request succeeded (a LIST completed or a watch was accepted) and no failure came since. */
  healthy: boolean;
  /** Consecutive failures, for the backoff; reset by any delivered event or completed LIST. */
  failures: number;
  /** When the last event (bookmarks included) or LIST arrived, or the current watch opened. */
  lastDelivery: number;
  /** When the loop last did anything: a delivery, or the end of a failed attempt. */
  lastProgress: number;
  /** The open watch, and why it was closed early: the watchdog found it stalled, or a relist is due. */
  watch?: { abort: AbortController; closedFor?: 'quiet' | 'relist' };
  loop?: Promise<void>;
}

export interface InformerOptions<T extends KubernetesObject = KubernetesObject> {
  resource: Resource;
  /** Namespaces to watch; [] watches all. */
  namespaces: readonly string[];
  labelSelector?: string;
  /**
   * A watch that delivers nothing for this long (no event, no bookmark, not even the server's end of
   * the watch, which comes before this limit) is stalled: it is closed and resumed.
   */
  watchdogMs?: number;
  /**
   * A full (paged) LIST into the same store this often, as a safety net against an event the API
   * server never delivered; only what differs from the store is reported.
   */
  relistMs?: number;
  restartBaseMs?: number;
  restartMaxMs?: number;
  /**
   * What the cache keeps of an object (the fields the caller reads), applied before any handler sees
   * it. Without it only managedFields are dropped.
   */
  transform?: (obj: T) => T;
}

/**
 * A cache of one resource kept by list+watch, the way client-go's Reflector keeps its store: LIST
 * (paged), then WATCH from the list's resourceVersion, resuming each watch where the last one ended.
 * Only when the server no longer has that resourceVersion (410 Gone) does it LIST again, into the
 * same store: the list is compared with what the store holds, so handlers hear only real changes and
 * a deletion only for an object the complete list lacks. Every change is applied to the store before
 * the handlers run, so `get()` inside a handler returns the object reported.
 *
 * What the API server and the network do to it:
 * - a watch ended by the server (it asks for an end before the watchdog's limit) is resumed at once;
 * - a cut stream, a refused connection or an HTTP error: resumed with exponential backoff, and
 *   `synced` is false until a request succeeds again;
 * - a silent stall (nothing delivered for watchdogMs): the watch is closed and resumed;
 * - every relistMs (rare) a paged LIST into the same store, as a safety net;
 * - a handler that throws is logged and the watch goes on.
 */
export class ResilientInformer<T extends KubernetesObject> {
  private readonly kube: Kube;
  private readonly log: Logger;
  private readonly opts: Required<Omit<InformerOptions<T>, 'labelSelector' | 'transform'>> & Pick<InformerOptions<T>, 'labelSelector' | 'transform'>;
  private readonly handlers: Array<(type: EventType, obj: T) => void> = [];
  private readonly reflectors: Array<Reflector<T>> = [];
  private timers: NodeJS.Timeout[] = [];
  private readonly stopping = new AbortController();

  constructor(kube: Kube, log: Logger, opts: InformerOptions<T>) {
    this.kube = kube;
    this.log = log.child({ informer: opts.resource.plural });
    this.opts = {
      watchdogMs: 120_000,
      relistMs: 60 * 60_000,
      restartBaseMs: 500,
      restartMaxMs: 10_000,
      ...opts,
    };
  }

  on(handler: (type: EventType, obj: T) => void): void {
    this.handlers.push(handler);
  }

  /** Every watch has listed once and none is failing now. */
  get synced(): boolean {
    return this.reflectors.length > 0 && this.reflectors.every((r) => r.listed && r.healthy);
  }

  /** Time since the least active loop last made progress; the watchdog keeps it near watchdogMs at most. */
  get lastActivityAgeMs(): number {
    return Math.max(0, ...this.reflectors.map((r) => Date.now() - r.lastProgress));
  }

  list(namespace?: string): T[] {
    return this.reflectors.flatMap((r) => r.store.list(namespace));
  }

  get(name: string, namespace: string): T | undefined {
    for (const r of this.reflectors) {
      const obj = r.store.get(name, namespace);
      if (obj) return obj;
    }
    return undefined;
  }

  /** Starts every list+watch; resolves once each has tried its first LIST (they go on retrying in the background). */
  async start(): Promise<void> {
    if (this.reflectors.length > 0) throw new Error('informer already started');
    const namespaces = this.opts.namespaces.length === 0 ? [undefined] : this.opts.namespaces;
    const firstLists: Array<Promise<void>> = [];
    for (const ns of namespaces) {
      const now = Date.now();
      const r: Reflector<T> = {
        path: resourcePath(this.opts.resource, ns),
        store: new ObjectStore<T>(),
        resourceVersion: '',
        listed: false,
        healthy: false,
        failures: 0,
        lastDelivery: now,
        lastProgress: now,
      };
      this.reflectors.push(r);
      firstLists.push(new Promise((resolve) => (r.loop = this.run(r, resolve))));
    }
    const watchdog = setInterval(() => this.checkWatchdog(), Math.min(this.opts.watchdogMs / 4, 30_000));
    const relist = setInterval(() => {
      for (const r of this.reflectors) this.closeWatch(r, 'relist');
    }, this.opts.relistMs);
    watchdog.unref();
    relist.unref();
    this.timers = [watchdog, relist];
    await Promise.all(firstLists);
  }

  /** Closes every watch and waits for them: no request is made and no handler runs once this resolves. */
  async stop(): Promise<void> {
    this.stopping.abort();
    for (const t of this.timers) clearInterval(t);
    for (const r of this.reflectors) r.watch?.abort.abort();
    await Promise.all(this.reflectors.map((r) => r.loop));
  }

  private get stopped(): boolean {
    return this.stopping.signal.aborted;
  }

  private async run(r: Reflector<T>, firstListTried: () => void): Promise<void> {
    while (!this.stopped) {
      try {
        if (!r.resourceVersion) {
          try {
            await this.relist(r);
          } finally {
            firstListTried();
          }
        }
        if (this.stopped) return;
        await this.watchOnce(r);
        r.lastProgress = Date.now();
      } catch (err) {
        if (this.stopped) return;
        r.lastProgress = Date.now();
        const closedFor = r.watch?.closedFor;
        r.watch = undefined;
        if (closedFor === 'quiet') {
          this.log.warn({ path: r.path, quietMs: Date.now() - r.lastDelivery }, 'watch quiet for too long, resuming it');
          continue;
        }
        if (closedFor === 'relist') {
          this.log.info({ path: r.path }, 'periodic relist');
          r.resourceVersion = '';
          continue;
        }
        if (isGone(err) && r.resourceVersion) {
          this.log.info({ path: r.path, resourceVersion: r.resourceVersion }, 'resourceVersion expired, listing again');
          r.resourceVersion = '';
          continue;
        }
        r.healthy = false;
        const delay = Math.min(this.opts.restartBaseMs * 2 ** r.failures, this.opts.restartMaxMs);
        r.failures++;
        this.log.warn({ path: r.path, err: String(err), retryInMs: delay }, 'watch failed, restarting');
        // Rejects only when stop() aborts the wait; the loop then ends.
        await sleep(delay, undefined, { signal: this.stopping.signal }).catch(() => {});
      }
      r.watch = undefined;
    }
  }

  /** A complete LIST applied to the store: what changed since the store's state is reported. */
  private async relist(r: Reflector<T>): Promise<void> {
    const list = await this.kube.listAll<T>(r.path, { labelSelector: this.opts.labelSelector }, PAGE_SIZE, this.stopping.signal);
    if (this.stopped) return;
    const changes = r.store.replace(list.items.map((obj) => this.slim(obj)));
    r.resourceVersion = list.resourceVersion;
    r.listed = true;
    r.healthy = true;
    r.failures = 0;
    r.lastDelivery = r.lastProgress = Date.now();
    this.emit(changes);
  }

  private async watchOnce(r: Reflector<T>): Promise<void> {
    const watch: NonNullable<Reflector<T>['watch']> = { abort: new AbortController() };
    r.watch = watch;
    // The watchdog gives each watch its own full window before it must deliver something.
    r.lastDelivery = Date.now();
    // The server ends each watch after a random half to three quarters of the watchdog's limit, so a
    // quiet watch ends cleanly before the watchdog would take it for stalled: the API server may send
    // a quiet watch its first bookmark only after about two minutes, the watchdog's default limit.
    // The randomness spreads the informers' reconnects.
    const timeoutS = Math.max(1, Math.round((this.opts.watchdogMs / 1000) * (0.5 + Math.random() / 4)));
    await this.kube.watch<T>(r.path, {
      query: {
        resourceVersion: r.resourceVersion,
        labelSelector: this.opts.labelSelector,
        allowWatchBookmarks: 'true',
        timeoutSeconds: String(timeoutS),
      },
      signal: watch.abort.signal,
      onOpen: () => {
        r.healthy = true;
      },
      onEvent: (type, obj) => this.deliver(r, type, obj),
    });
  }

  private deliver(r: Reflector<T>, type: WatchEventType, obj: T): void {
    if (this.stopped) return;
    r.lastDelivery = r.lastProgress = Date.now();
    r.failures = 0;
    const resourceVersion = obj.metadata?.resourceVersion;
    let change: Change<T> | undefined;
    if (type === 'DELETED') change = r.store.remove(this.slim(obj));
    else if (type === 'ADDED' || type === 'MODIFIED') change = r.store.upsert(this.slim(obj));
    if (resourceVersion) r.resourceVersion = resourceVersion;
    if (change) this.emit([change]);
  }

  /** Calls every handler for every change; a handler that throws is logged and the others still run. */
  private emit(changes: ReadonlyArray<Change<T>>): void {
    for (const { type, obj } of changes) {
      for (const h of this.handlers) {
        try {
          h(type, obj);
        } catch (err) {
          this.log.error(
            { type, namespace: obj.metadata?.namespace, name: obj.metadata?.name, err: err instanceof Error ? err.message : String(err) },
            'event handler failed',
          );
        }
      }
    }
  }

  /** What the store keeps of an object. managedFields are often its largest part, and nothing reads them. */
  private slim(obj: T): T {
    if (this.opts.transform) return this.opts.transform(obj);
    if (obj.metadata?.managedFields) delete obj.metadata.managedFields;
    return obj;
  }

  private checkWatchdog(): void {
    for (const r of this.reflectors) if (Date.now() - r.lastDelivery > this.opts.watchdogMs) this.closeWatch(r, 'quiet');
  }

  /** Ends the open watch early; the loop then resumes it, or lists first for a relist. */
  private closeWatch(r: Reflector<T>, why: 'quiet' | 'relist'): void {
    if (!r.watch || r.watch.closedFor) return;
    r.watch.closedFor = why;
    r.watch.abort.abort();
  }
}
