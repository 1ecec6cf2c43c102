import type { Informer, KubernetesObject, ObjectCache } from '@kubernetes/client-node';
// A deep import: the package index would load every generated API and model (see client-node-hooks.ts).
import { makeInformer } from '@kubernetes/client-node/dist/informer.js';
import type { Logger } from 'pino';
import type { Kube, ListResult, Resource } from './kube.ts';
import { resourcePath } from './kube.ts';

export type EventType = 'add' | 'update' | 'delete';
type ListWatch<T extends KubernetesObject> = Informer<T> & ObjectCache<T>;

interface Slot<T extends KubernetesObject> {
  path: string;
  /** The informer reads are served from. */
  lw: ListWatch<T>;
  /** A fresh informer listing before it replaces lw (reads stay on the old cache until then). */
  next?: ListWatch<T>;
  nextFailed?: boolean;
  lastActivity: number;
  failures: number;
  restart?: NodeJS.Timeout;
  synced: boolean;
}

export interface InformerOptions<T extends KubernetesObject = KubernetesObject> {
  resource: Resource;
  /** Namespaces to watch; [] watches all. */
  namespaces: readonly string[];
  labelSelector?: string;
  /** A watch with no event and no reconnect for this long is considered stalled and replaced. */
  watchdogMs?: number;
  /** A full relist (a fresh informer) this often, as a safety net against missed events. */
  relistMs?: number;
  restartBaseMs?: number;
  restartMaxMs?: number;
  /**
   * What the cache keeps of an object (the fields the caller reads), applied before any handler sees
   * it. Without it only managedFields are dropped.
   */
  transform?: (obj: T) => T;
}

/** Makes `obj` hold exactly the fields of `slim` (the cache keeps its reference to `obj`). */
function slimInPlace<T extends object>(obj: T, slim: T): void {
  for (const key of Object.keys(obj)) if (!Object.hasOwn(slim, key)) delete (obj as Record<string, unknown>)[key];
  Object.assign(obj, slim);
}

/**
 * One informer per namespace (or one for all) built on client-node's makeInformer, made to survive
 * what the API server does:
 * - 410 Gone / expired resource versions: the library relists by itself;
 * - a closed stream or the library's 30 s idle timeout: the library reconnects by itself;
 * - any other error: client-node 2.0.1's ListWatch calls the error handlers and stops for good, so it
 *   is restarted here with exponential backoff (a failing list before any watch included);
 * - a silent stall (no event and no reconnect for watchdogMs): the informer is replaced by a fresh one;
 * - periodically the informer is replaced by a fresh one anyway (full relist), and objects that
 *   vanished unseen are reported as deleted.
 */
export class ResilientInformer<T extends KubernetesObject> {
  private readonly kube: Kube;
  private readonly log: Logger;
  private readonly opts: Required<Omit<InformerOptions<T>, 'labelSelector' | 'transform'>> & Pick<InformerOptions<T>, 'labelSelector' | 'transform'>;
  private readonly handlers: Array<(type: EventType, obj: T) => void> = [];
  private readonly slots: Slot<T>[] = [];
  private timers: NodeJS.Timeout[] = [];
  private stopped = false;

  constructor(kube: Kube, log: Logger, opts: InformerOptions<T>) {
    this.kube = kube;
    this.log = log.child({ informer: opts.resource.plural });
    this.opts = {
      watchdogMs: 120_000,
      relistMs: 10 * 60_000,
      restartBaseMs: 500,
      restartMaxMs: 10_000,
      ...opts,
    };
  }

  on(handler: (type: EventType, obj: T) => void): void {
    this.handlers.push(handler);
  }

  get synced(): boolean {
    return this.slots.length > 0 && this.slots.every((s) => s.synced);
  }

  /** Time since the quietest watch last showed life; the watchdog keeps it below its limit. */
  get lastActivityAgeMs(): number {
    return Math.max(0, ...this.slots.map((s) => Date.now() - s.lastActivity));
  }

  list(namespace?: string): T[] {
    return this.slots.flatMap((s) => [...s.lw.list(namespace)]);
  }

  get(name: string, namespace: string): T | undefined {
    for (const s of this.slots) {
      const obj = s.lw.get(name, namespace);
      if (obj) return obj;
    }
    return undefined;
  }

  /** Starts every watch; resolves once each has listed once (or keeps retrying in the background). */
  async start(): Promise<void> {
    const namespaces = this.opts.namespaces.length === 0 ? [undefined] : this.opts.namespaces;
    for (const ns of namespaces) {
      const path = resourcePath(this.opts.resource, ns);
      const slot: Slot<T> = { path, lw: this.create(path), lastActivity: Date.now(), failures: 0, synced: false };
      this.slots.push(slot);
      this.wire(slot, slot.lw);
    }
    await Promise.all(this.slots.map((s) => this.startSlot(s)));
    const watchdog = setInterval(() => this.checkWatchdog(), Math.min(this.opts.watchdogMs / 4, 30_000));
    const relist = setInterval(() => {
      for (const s of this.slots) void this.replace(s, 'periodic relist');
    }, this.opts.relistMs);
    watchdog.unref();
    relist.unref();
    this.timers = [watchdog, relist];
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    for (const s of this.slots) {
      if (s.restart) clearTimeout(s.restart);
      await s.lw.stop();
    }
  }

  private create(path: string): ListWatch<T> {
    const listFn = async () => {
      const list = await this.kube.request<ListResult<T>>('GET', path, { query: { labelSelector: this.opts.labelSelector } });
      // The list's items carry no apiVersion/kind; the cache does not need them, handlers get them back.
      return { metadata: list.metadata ?? {}, items: list.items } as never;
    };
    return makeInformer<T>(this.kube.config, path, listFn, this.opts.labelSelector);
  }

  private wire(slot: Slot<T>, lw: ListWatch<T>): void {
    const live = (): boolean => slot.lw === lw || slot.next === lw;
    const touch = (): void => {
      if (live()) slot.lastActivity = Date.now();
    };
    const emit = (type: EventType) => (obj: T) => {
      // The cache holds the very object handed to the handlers (every object it stores passes through
      // an add or update here): slimming it in place keeps the rest out of memory. managedFields are
      // often the largest part of an object, and nothing here reads them.
      if (this.opts.transform) slimInPlace(obj, this.opts.transform(obj));
      else if (obj.metadata?.managedFields) delete obj.metadata.managedFields;
      if (!live()) return;
      touch();
      slot.failures = 0;
      for (const h of this.handlers) h(type, obj);
    };
    lw.on('add', emit('add'));
    lw.on('update', emit('update'));
    lw.on('delete', emit('delete'));
    lw.on('connect', () => {
      // client-node's ListWatch announces every (re)connect, before its list (if any) and its watch.
      this.kube.watching(slot.path);
      touch();
    });
    lw.on('error', (err: unknown) => {
      if (slot.next === lw) slot.nextFailed = true;
      if (slot.lw !== lw || this.stopped) return;
      this.scheduleRestart(slot, err);
    });
  }

  private async startSlot(slot: Slot<T>): Promise<void> {
    const lw = slot.lw;
    try {
      await lw.start();
      // start() resolves even when its list failed (the error handler ran and scheduled a restart).
      if (slot.lw === lw && !slot.restart) {
        slot.synced = true;
        slot.lastActivity = Date.now();
      }
    } catch (err) {
      if (slot.lw === lw && !this.stopped) this.scheduleRestart(slot, err);
    }
  }

  private scheduleRestart(slot: Slot<T>, err: unknown): void {
    if (slot.restart) return;
    const delay = Math.min(this.opts.restartBaseMs * 2 ** slot.failures, this.opts.restartMaxMs);
    slot.failures++;
    this.log.warn({ path: slot.path, err: String(err), retryInMs: delay }, 'watch failed, restarting');
    slot.restart = setTimeout(() => {
      slot.restart = undefined;
      if (this.stopped) return;
      slot.lastActivity = Date.now();
      void this.startSlot(slot);
    }, delay);
    slot.restart.unref();
  }

  private checkWatchdog(): void {
    for (const s of this.slots) {
      if (!s.restart && Date.now() - s.lastActivity > this.opts.watchdogMs) void this.replace(s, 'watch quiet for too long');
    }
  }

  /** Swaps in a fresh informer once it has listed, reporting objects only the old one held as deleted. */
  private async replace(slot: Slot<T>, why: string): Promise<void> {
    if (this.stopped || slot.next) return;
    this.log.info({ path: slot.path, why }, 'replacing informer with a fresh list');
    const fresh = this.create(slot.path);
    slot.next = fresh;
    slot.nextFailed = false;
    slot.lastActivity = Date.now();
    this.wire(slot, fresh);
    let failure: unknown;
    try {
      await fresh.start();
    } catch (err) {
      failure = err;
    }
    if (failure !== undefined || slot.nextFailed) {
      slot.next = undefined;
      await fresh.stop();
      this.log.warn({ path: slot.path, err: String(failure ?? 'list failed') }, 'fresh list failed, keeping the current informer');
      return;
    }
    if (this.stopped || slot.next !== fresh) return;
    const old = slot.lw;
    slot.lw = fresh;
    slot.next = undefined;
    slot.synced = true;
    slot.failures = 0;
    if (slot.restart) {
      clearTimeout(slot.restart);
      slot.restart = undefined;
    }
    await old.stop();
    for (const obj of old.list()) {
      const m = obj.metadata;
      if (m?.name && !fresh.get(m.name, m.namespace)) for (const h of this.handlers) h('delete', obj);
    }
  }
}
