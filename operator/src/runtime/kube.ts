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

export interface RequestOptions {
  body?: unknown;
  contentType?: string;
  query?: Record<string, string | number | boolean | undefined>;
  timeoutMs?: number;
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
    ctx.setSignal(AbortSignal.timeout(opts.timeoutMs ?? 30_000));
    const res = await this.http.send(ctx).toPromise();
    const text = await res.body.text();
    if (res.httpStatusCode >= 400) {
      let reason = 'Unknown';
      let message = text;
      try {
        const status = JSON.parse(text) as { reason?: string; message?: string };
        reason = status.reason ?? reason;
        message = status.message ?? message;
      } catch {
        // not a Status object; keep the raw text
      }
      throw new KubeError(res.httpStatusCode, reason, `${method} ${path}: ${res.httpStatusCode} ${message}`);
    }
    return (text ? JSON.parse(text) : {}) as T;
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

  /** A watch (made by client-node's informer, not through request) is opened on path. */
  watching(path: string): void {
    this.observe('WATCH', pathResource(path));
  }

  /** Server-side apply: the object as this manager wants it; fields of other managers are kept. */
  apply<T>(path: string, body: unknown, fieldManager: string): Promise<T> {
    return this.request<T>('PATCH', path, {
      body,
      contentType: 'application/apply-patch+yaml',
      query: { fieldManager, force: true },
    });
  }

  mergePatch<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('PATCH', path, { body, contentType: 'application/merge-patch+json' });
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
