/**
 * A small JSON client for the Kubernetes REST API, used by the process node and the volume provisioner:
 * plain objects in and out (no generated models), and list+watch with automatic relisting.
 */
import https from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';
import { sleep } from './wait.ts';

export type KubeObject = {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    deletionTimestamp?: string;
    deletionGracePeriodSeconds?: number;
    [key: string]: unknown;
  };
  // Kubernetes objects are open-ended; callers narrow what they read.
  [key: string]: any;
};

export class KubeError extends Error {
  readonly status: number;
  readonly reason: string;
  constructor(status: number, method: string, path: string, body: string) {
    let message = body;
    let reason = '';
    try {
      const parsed = JSON.parse(body) as { message?: string; reason?: string };
      message = parsed.message ?? body;
      reason = parsed.reason ?? '';
    } catch {
      // not a Status object
    }
    super(`${method} ${path}: ${status} ${message}`);
    this.status = status;
    this.reason = reason;
  }
}

export type PatchType = 'merge' | 'strategic' | 'json';
const PATCH_CONTENT_TYPES: Record<PatchType, string> = {
  merge: 'application/merge-patch+json',
  strategic: 'application/strategic-merge-patch+json',
  json: 'application/json-patch+json',
};

export interface WatchEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: KubeObject;
}

export class KubeRest {
  readonly server: URL;
  private readonly agent: https.Agent;
  private readonly headers: Record<string, string>;

  private constructor(server: URL, agent: https.Agent, headers: Record<string, string>) {
    this.server = server;
    this.agent = agent;
    this.headers = headers;
  }

  static async fromKubeConfig(kc: KubeConfig): Promise<KubeRest> {
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new Error('kubeconfig has no current cluster');
    const opts: https.RequestOptions = {};
    await kc.applyToHTTPSOptions(opts);
    const agent = new https.Agent({
      keepAlive: true,
      maxSockets: 16,
      ca: opts.ca,
      cert: opts.cert,
      key: opts.key,
      rejectUnauthorized: opts.rejectUnauthorized ?? true,
    });
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(opts.headers ?? {})) {
      if (typeof value === 'string') headers[name] = value;
    }
    return new KubeRest(new URL(cluster.server), agent, headers);
  }

  close(): void {
    this.agent.destroy();
  }

  private send(method: string, path: string, body: unknown, contentType: string, signal?: AbortSignal): Promise<import('node:http').IncomingMessage> {
    return new Promise((resolve, reject) => {
      const payload = body === undefined ? undefined : JSON.stringify(body);
      const req = https.request(
        new URL(path, this.server),
        {
          method,
          agent: this.agent,
          headers: {
            ...this.headers,
            Accept: 'application/json',
            ...(payload !== undefined ? { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(payload) } : {}),
          },
          signal,
        },
        resolve,
      );
      req.on('error', reject);
      req.end(payload);
    });
  }

  async request<T = KubeObject>(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<T> {
    const res = await this.send(method, path, body, contentType);
    const chunks: Buffer[] = [];
    for await (const chunk of res) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    if ((res.statusCode ?? 0) >= 300) throw new KubeError(res.statusCode ?? 0, method, path, text);
    return (text ? JSON.parse(text) : {}) as T;
  }

  get<T = KubeObject>(path: string): Promise<T> {
    return this.request<T>('GET', path);
  }

  /** GET that answers undefined for 404. */
  async find<T = KubeObject>(path: string): Promise<T | undefined> {
    try {
      return await this.get<T>(path);
    } catch (err) {
      if (err instanceof KubeError && err.status === 404) return undefined;
      throw err;
    }
  }

  post<T = KubeObject>(path: string, body: unknown): Promise<T> {
    return this.request<T>('POST', path, body);
  }

  patch<T = KubeObject>(path: string, body: unknown, type: PatchType = 'merge'): Promise<T> {
    return this.request<T>('PATCH', path, body, PATCH_CONTENT_TYPES[type]);
  }

  delete<T = KubeObject>(path: string, body?: unknown): Promise<T> {
    return this.request<T>('DELETE', path, body);
  }

  /**
   * Streams watch events of `listPath` from `resourceVersion` until the server ends the stream or
   * `signal` aborts. Resolves on a normal end; rejects on errors (including 410 Gone).
   */
  async watch(listPath: string, resourceVersion: string, onEvent: (event: WatchEvent) => void, signal: AbortSignal): Promise<void> {
    const url = new URL(listPath, this.server);
    url.searchParams.set('watch', '1');
    url.searchParams.set('resourceVersion', resourceVersion);
    url.searchParams.set('allowWatchBookmarks', 'true');
    url.searchParams.set('timeoutSeconds', '300');
    const res = await this.send('GET', url.pathname + url.search, undefined, '', signal);
    if ((res.statusCode ?? 0) >= 300) {
      res.resume();
      throw new KubeError(res.statusCode ?? 0, 'WATCH', listPath, '');
    }
    let buffered = '';
    for await (const chunk of res) {
      buffered += (chunk as Buffer).toString('utf8');
      for (let newline = buffered.indexOf('\n'); newline >= 0; newline = buffered.indexOf('\n')) {
        const line = buffered.slice(0, newline).trim();
        buffered = buffered.slice(newline + 1);
        if (!line) continue;
        const event = JSON.parse(line) as WatchEvent;
        if (event.type === 'ERROR') throw new KubeError(Number(event.object['code']) || 500, 'WATCH', listPath, JSON.stringify(event.object));
        onEvent(event);
      }
    }
  }
}

/**
 * Keeps an up-to-date map of the objects under a list path (list, then watch, relist on any error)
 * and calls `onChange` after each change and every `resyncMs`, never concurrently.
 */
export class Informer {
  private readonly objects = new Map<string, KubeObject>();
  private readonly abort = new AbortController();
  private running: Promise<void> | undefined;
  private synced = false;
  private pending = false;
  private handling: Promise<void> | undefined;
  private resyncTimer: NodeJS.Timeout | undefined;
  private readonly rest: KubeRest;
  private readonly listPath: string;
  private readonly onChange: (objects: KubeObject[]) => Promise<void>;
  private readonly onError: (err: unknown) => void;
  private readonly resyncMs: number;

  constructor(rest: KubeRest, listPath: string, onChange: (objects: KubeObject[]) => Promise<void>, onError: (err: unknown) => void, resyncMs = 5000) {
    this.resyncMs = resyncMs;
    this.rest = rest;
    this.listPath = listPath;
    this.onChange = onChange;
    this.onError = onError;
  }

  start(): void {
    this.running = this.loop();
    this.resyncTimer = setInterval(() => this.kick(), this.resyncMs);
  }

  async stop(): Promise<void> {
    clearInterval(this.resyncTimer);
    this.abort.abort();
    await this.running;
    await this.handling;
  }

  list(): KubeObject[] {
    return [...this.objects.values()];
  }

  /** Runs onChange now (or right after the run in progress). */
  kick(): void {
    if (!this.synced || this.abort.signal.aborted) return;
    if (this.handling) {
      this.pending = true;
      return;
    }
    this.handling = (async () => {
      do {
        this.pending = false;
        try {
          await this.onChange(this.list());
        } catch (err) {
          this.onError(err);
        }
      } while (this.pending && !this.abort.signal.aborted);
      this.handling = undefined;
    })();
  }

  private async loop(): Promise<void> {
    while (!this.abort.signal.aborted) {
      try {
        const list = await this.rest.get<{ metadata: { resourceVersion: string }; items: KubeObject[] }>(this.listPath);
        this.objects.clear();
        for (const item of list.items) this.objects.set(item.metadata.uid ?? item.metadata.name, item);
        this.synced = true;
        this.kick();
        let resourceVersion = list.metadata.resourceVersion;
        for (;;) {
          await this.rest.watch(
            this.listPath,
            resourceVersion,
            (event) => {
              resourceVersion = event.object.metadata.resourceVersion ?? resourceVersion;
              if (event.type === 'BOOKMARK') return;
              const key = event.object.metadata.uid ?? event.object.metadata.name;
              if (event.type === 'DELETED') this.objects.delete(key);
              else this.objects.set(key, event.object);
              this.kick();
            },
            this.abort.signal,
          );
          if (this.abort.signal.aborted) return;
        }
      } catch (err) {
        if (this.abort.signal.aborted) return;
        if (!(err instanceof KubeError && err.status === 410)) this.onError(err);
        await sleep(500);
      }
    }
  }
}
