// A work queue keyed by object, with the semantics of client-go's: a key waits at most once (adds
// while queued are merged), a key is never processed by two workers at once (an add while processing
// re-queues it after done), failures back off exponentially per key, and a key can be re-added later.

export interface WorkQueueOptions {
  baseDelayMs?: number;
  maxDelayMs?: number;
  onDepth?: (depth: number) => void;
}

export class WorkQueue {
  private readonly queue: string[] = [];
  private readonly dirty = new Set<string>();
  private readonly processing = new Set<string>();
  /** Keys added urgently while being processed: they go to the front when done. */
  private readonly urgent = new Set<string>();
  private readonly failures = new Map<string, number>();
  private readonly timers = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  private readonly waiters: Array<(key: string | undefined) => void> = [];
  private shuttingDown = false;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly onDepth: (depth: number) => void;

  constructor(opts: WorkQueueOptions = {}) {
    this.baseDelayMs = opts.baseDelayMs ?? 200;
    this.maxDelayMs = opts.maxDelayMs ?? 60_000;
    this.onDepth = opts.onDepth ?? (() => {});
  }

  get depth(): number {
    return this.queue.length;
  }

  add(key: string): void {
    this.enqueue(key, false);
  }

  /**
   * Like add, but the key goes to the front of the queue (moving there if it already waits): for
   * changes someone is waiting on, such as a pod joining or leaving a peer list, which should not
   * queue behind a burst of periodic resyncs.
   */
  addUrgent(key: string): void {
    this.enqueue(key, true);
  }

  private enqueue(key: string, urgent: boolean): void {
    if (this.shuttingDown) return;
    if (urgent && this.processing.has(key)) this.urgent.add(key);
    if (this.dirty.has(key)) {
      const at = urgent ? this.queue.indexOf(key) : -1;
      if (at > 0) {
        this.queue.splice(at, 1);
        this.queue.unshift(key);
      }
      return;
    }
    this.dirty.add(key);
    if (this.processing.has(key)) return;
    const waiter = this.waiters.shift();
    if (waiter) {
      this.dirty.delete(key);
      this.processing.add(key);
      waiter(key);
    } else {
      if (urgent) this.queue.unshift(key);
      else this.queue.push(key);
      this.onDepth(this.queue.length);
    }
  }

  /** Adds the key after a delay; an earlier pending delay for the same key wins. */
  addAfter(key: string, delayMs: number): void {
    if (this.shuttingDown) return;
    if (delayMs <= 0) {
      this.add(key);
      return;
    }
    const at = Date.now() + delayMs;
    const pending = this.timers.get(key);
    if (pending && pending.at <= at) return;
    if (pending) clearTimeout(pending.timer);
    const timer = setTimeout(() => {
      this.timers.delete(key);
      this.add(key);
    }, delayMs);
    timer.unref();
    this.timers.set(key, { at, timer });
  }

  /** Re-adds a failed key with exponential backoff: base * 2^failures, capped. */
  addRateLimited(key: string): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    const delay = Math.min(this.baseDelayMs * 2 ** n, this.maxDelayMs);
    this.addAfter(key, delay);
    return delay;
  }

  forget(key: string): void {
    this.failures.delete(key);
  }

  /** The next key to process, or undefined once the queue shuts down. */
  get(): Promise<string | undefined> {
    const key = this.queue.shift();
    if (key !== undefined) {
      this.onDepth(this.queue.length);
      this.dirty.delete(key);
      this.processing.add(key);
      return Promise.resolve(key);
    }
    if (this.shuttingDown) return Promise.resolve(undefined);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  done(key: string): void {
    this.processing.delete(key);
    if (this.dirty.has(key)) {
      this.dirty.delete(key);
      this.enqueue(key, this.urgent.delete(key));
    }
  }

  shutDown(): void {
    this.shuttingDown = true;
    for (const { timer } of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    for (const w of this.waiters.splice(0)) w(undefined);
  }
}

/** Delays that spread `count` adds evenly over a period (the first at once). */
export function spreadOver(count: number, periodMs: number): number[] {
  return Array.from({ length: count }, (_, i) => Math.floor((i * periodMs) / count));
}

export interface HandlerResult {
  requeueAfterMs?: number;
}

/**
 * Runs `concurrency` workers; a slow key occupies one worker only, so one stuck object never blocks the
 * others. A throwing handler re-queues its key with backoff; success forgets the backoff.
 */
export function runWorkers(
  queue: WorkQueue,
  concurrency: number,
  handler: (key: string) => Promise<HandlerResult>,
  onError: (key: string, err: unknown, retryInMs: number) => void,
): Promise<void> {
  const worker = async (): Promise<void> => {
    for (;;) {
      const key = await queue.get();
      if (key === undefined) return;
      try {
        const result = await handler(key);
        queue.forget(key);
        if (result.requeueAfterMs !== undefined) queue.addAfter(key, result.requeueAfterMs);
      } catch (err) {
        onError(key, err, queue.addRateLimited(key));
      } finally {
        queue.done(key);
      }
    }
  };
  return Promise.all(Array.from({ length: concurrency }, worker)).then(() => undefined);
}
