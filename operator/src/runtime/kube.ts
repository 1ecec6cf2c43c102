// Deep imports: the package index would load every generated API and model (see client-node-hooks.ts).
import type { KubeConfig } from '@kubernetes/client-node/dist/config.js';
import { HttpMethod, RequestContext } from '@kubernetes/client-node/dist/gen/http/http.js';
import { IsomorphicFetchHttpLibrary } from '@kubernetes/client-node/dist/gen/http/isomorphic-fetch.js';
import type { Dispatcher } from 'undici';

// A thin JSON client over the kubeconfig's authentication. The generated typed clients do not reach
// subresources with server-side apply and round-trip objects through model classes; the operator
// applies plain objects, so it speaks the REST API directly.

const POOL_MAX_AGE_MS = 5 * 60_000;

export class KubeError extends Error {
  readonly status: number;
  readonly reason: string;
  constructor(status: number, reason: string, message: string) {
    super(message);
    this.name = 'KubeError';
    this.status = status;
    this.reason = reason;
  }
}

export const isNotFound = (e: unknown): boolean => e instanceof KubeError && e.status === 404;
export const isConflict = (e: unknown): boolean => e instanceof KubeError && e.status === 409;
/** The resourceVersion asked for is older than the server still keeps (a watch or a continue token). */
export const isGone = (e: unknown): boolean => e instanceof KubeError && e.status === 410;

export interface RequestOptions {
  body?: unknown;
  contentType?: string;
  query?: Record<string, string | number | boolean | undefined>;
  timeoutMs?: number;
  /** Aborts the request (besides its timeout). */
  signal?: AbortSignal;
}

export interface ListResult<T> {
  metadata?: { resourceVersion?: string; continue?: string };
  items: T[];
}

/** The resource a request path names, subresource included: "pods", "fileclusters/status", "leases". */
export function pathResource(path: string): string {
  const parts = path.split('?')[0]!.split('/').filter(Boolean);
  let rest = parts[0] === 'api' ? parts.slice(2) : parts.slice(3);
  if (rest[0] === 'namespaces' && rest.length >= 3) rest = rest.slice(2);
  return rest.length >= 3 ? `${rest[0]}/${rest[2]}` : (rest[0] ?? '');
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK';

export interface WatchOptions<T> {
  query: Record<string, string | undefined>;
  signal: AbortSignal;
  onOpen: () => void;
  onEvent: (type: WatchEventType, obj: T) => void;
}

/** An API error from its HTTP status and body (a Status object, or any text). */
function statusError(what: string, status: number, text: string): KubeError {
  let reason = 'Unknown';
  let message = text;
  try {
    const parsed = JSON.parse(text) as { reason?: string; message?: string };
    reason = parsed.reason ?? reason;
    message = parsed.message ?? message;
  } catch {
    // not a Status object; keep the raw text
  }
  return new KubeError(status, reason, `${what}: ${status} ${message}`);
}

export class Kube {
  readonly config: KubeConfig;
  /** Told of every request (verb, resource), watches included (see watching). */
  private readonly observe: (verb: string, resource: string) => void;
  private readonly http = new IsomorphicFetchHttpLibrary();
  private readonly server: string;
  /** One connection pool for every request; see pooled(). */
  private pool?: { dispatcher: Dispatcher; at: number };

  constructor(config: KubeConfig, observe: (verb: string, resource: string) => void = () => {}) {
    this.config = config;
    this.observe = observe;
    const cluster = config.getCurrentCluster();
    if (!cluster) throw new Error('the kubeconfig has no current cluster');
    this.server = cluster.server.replace(/\/$/, '');
  }

  /** GET of one object, undefined when it does not exist. */
  async getIfExists<T>(path: string): Promise<T | undefined> {
    try {
      return await this.request<T>('GET', path);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async request<T>(method: keyof typeof HttpMethod, path: string, opts: RequestOptions = {}): Promise<T> {
    this.observe(method, pathResource(path));
    const url = new URL(this.server + path);
    for (const [k, v] of Object.entries(opts.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    const ctx = new RequestContext(url.toString(), HttpMethod[method]);
    await this.config.applySecurityAuthentication(ctx);
    this.pooled(ctx);
    ctx.setHeaderParam('Accept', 'application/json');
    if (opts.body !== undefined) {
      ctx.setHeaderParam('Content-Type', opts.contentType ?? 'application/json');
      ctx.setBody(JSON.stringify(opts.body));
    }
    const timeout = AbortSignal.timeout(opts.timeoutMs ?? 30_000);
    ctx.setSignal(opts.signal ? AbortSignal.any([timeout, opts.signal]) : timeout);
    const res = await this.http.send(ctx).toPromise();
    const text = await res.body.text();
    if (res.httpStatusCode >= 400) throw statusError(`${method} ${path}`, res.httpStatusCode, text);
    return (text ? JSON.parse(text) : {}) as T;
  }

  /**
   * Every page of a LIST (`limit`/`continue`), so the API server never has to build one response
   * holding the whole collection. The pages form one consistent snapshot, at the resourceVersion of
   * the last page. An expired continue token fails the whole list (410): the caller lists again.
   */
  async listAll<T>(path: string, query: Record<string, string | undefined>, pageSize: number, signal?: AbortSignal): Promise<{ items: T[]; resourceVersion: string }> {
    const items: T[] = [];
    let next: string | undefined;
    let resourceVersion = '';
    do {
      const page = await this.request<ListResult<T>>('GET', path, { query: { ...query, limit: pageSize, continue: next }, ...(signal ? { signal } : {}) });
      items.push(...page.items);
      resourceVersion = page.metadata?.resourceVersion ?? '';
      next = page.metadata?.continue || undefined;
    } while (next);
    return { items, resourceVersion };
  }

  /**
   * One watch request: resolves when the server ends the stream (its timeoutSeconds), rejects on
   * any other end (an HTTP error, an ERROR event such as 410 Gone, a cut connection, `signal`).
   * onOpen runs once the server accepted the watch, onEvent for each event in order.
   */
  async watch<T>(path: string, opts: WatchOptions<T>): Promise<void> {
    this.observe('WATCH', pathResource(path));
    const url = new URL(this.server + path);
    url.searchParams.set('watch', 'true');
    for (const [k, v] of Object.entries(opts.query)) if (v !== undefined) url.searchParams.set(k, v);
    const ctx = new RequestContext(url.toString(), HttpMethod.GET);
    await this.config.applySecurityAuthentication(ctx);
    this.pooled(ctx);
    ctx.setHeaderParam('Accept', 'application/json');
    ctx.setSignal(opts.signal);
    const res = await this.http.send(ctx).toPromise();
    if (res.httpStatusCode >= 400) throw statusError(`WATCH ${path}`, res.httpStatusCode, await res.body.text());
    opts.onOpen();
    const body = res.body.stream();
    if (!body) return;
    const decoder = new TextDecoder();
    let pending = '';
    for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
      pending += decoder.decode(chunk, { stream: true });
      for (let end = pending.indexOf('\n'); end >= 0; end = pending.indexOf('\n')) {
        const line = pending.slice(0, end).trim();
        pending = pending.slice(end + 1);
        if (!line) continue;
        const event = JSON.parse(line) as { type: WatchEventType | 'ERROR'; object: unknown };
        if (event.type === 'ERROR') {
          const status = event.object as { code?: number };
          throw statusError(`WATCH ${path}`, status.code ?? 500, JSON.stringify(status));
        }
        opts.onEvent(event.type, event.object as T);
      }
    }
  }

  /**
   * client-node 2.0.1 builds a new undici Agent for every request it authenticates (whenever TLS
   * options exist, as they always do in a cluster): a fresh connection and TLS handshake per request,
   * and idle pools piling up until their keep-alive ends. Requests share one Agent here instead; it is
   * rebuilt every few minutes so rotated client certificates are still picked up. Headers (tokens)
   * still come fresh from the kubeconfig on every request.
   */
  private pooled(ctx: RequestContext): void {
    const fresh = ctx.getDispatcher();
    if (!fresh) return;
    if (!this.pool || Date.now() - this.pool.at > POOL_MAX_AGE_MS) {
      const old = this.pool?.dispatcher;
      this.pool = { dispatcher: fresh, at: Date.now() };
      // close() lets requests in flight finish.
      if (old) void old.close().catch(() => {});
      return;
    }
    ctx.setDispatcher(this.pool.dispatcher);
    void fresh.close().catch(() => {});
  }

  /** Server-side apply: the object as this manager wants it; fields of other managers are kept. */
  apply<T>(path: string, body: unknown, fieldManager: string): Promise<T> {
    return this.request<T>('PATCH', path, {
      body,
      contentType: 'application/apply-patch+yaml',
      query: { fieldManager, force: true },
    });
  }

  /** A JSON merge patch, recorded in managedFields under `fieldManager` like the applies. */
  mergePatch<T>(path: string, body: unknown, fieldManager: string): Promise<T> {
    return this.request<T>('PATCH', path, { body, contentType: 'application/merge-patch+json', query: { fieldManager } });
  }
}

/** REST paths of the resources the operator touches. */
export interface Resource {
  group: string;
  version: string;
  plural: string;
}

export const RESOURCES = {
  fileclusters: { group: 'filecluster.dev', version: 'v1alpha1', plural: 'fileclusters' },
  statefulsets: { group: 'apps', version: 'v1', plural: 'statefulsets' },
  pods: { group: '', version: 'v1', plural: 'pods' },
  services: { group: '', version: 'v1', plural: 'services' },
  secrets: { group: '', version: 'v1', plural: 'secrets' },
  events: { group: '', version: 'v1', plural: 'events' },
  persistentvolumeclaims: { group: '', version: 'v1', plural: 'persistentvolumeclaims' },
  poddisruptionbudgets: { group: 'policy', version: 'v1', plural: 'poddisruptionbudgets' },
  leases: { group: 'coordination.k8s.io', version: 'v1', plural: 'leases' },
} as const satisfies Record<string, Resource>;

export function resourcePath(r: Resource, namespace?: string, name?: string, subresource?: string): string {
  const base = r.group === '' ? `/api/${r.version}` : `/apis/${r.group}/${r.version}`;
  let path = namespace ? `${base}/namespaces/${encodeURIComponent(namespace)}/${r.plural}` : `${base}/${r.plural}`;
  if (name) path += `/${encodeURIComponent(name)}`;
  if (subresource) path += `/${subresource}`;
  return path;
}
