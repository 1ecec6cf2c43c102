import http from 'node:http';
import type { NodeStatus, PeerList } from '../../../../contract/peer-api.ts';
import type { NodeReport } from './plan.ts';

// The operator's side of the file server's peer API (PUT /internal/peers, GET /internal/status).
// Plain node:http rather than fetch: the global fetch loads a second copy of undici (about 20 MiB of
// resident memory) for requests this simple.

export type PushResult = { ok: true; generation: number } | { ok: false; conflict: boolean; generation?: number; error: string };

/** Keep-alive to the pods: a push and the re-verifications reuse connections instead of opening new ones. */
const agent = new http.Agent({ keepAlive: true, maxSockets: 4, maxFreeSockets: 1, timeout: 30_000 });

class TimeoutError extends Error {
  override name = 'TimeoutError';
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    if (err.name === 'TimeoutError') return 'timed out';
    return (err as Error & { code?: string }).code ?? err.message;
  }
  return String(err);
}

/** One JSON request with a deadline covering connect, send and the whole response. */
function call(url: string, method: string, token: string, timeoutMs: number, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const headers: Record<string, string | number> = { authorization: `Bearer ${token}` };
    if (payload !== undefined) Object.assign(headers, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) });
    const req = http.request(url, { method, headers, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        clearTimeout(timer);
        let json: Record<string, unknown> = {};
        try {
          const parsed: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
          if (parsed && typeof parsed === 'object') json = parsed as Record<string, unknown>;
        } catch {
          // not JSON: callers judge by status
        }
        resolve({ status: res.statusCode ?? 0, json });
      });
    });
    const timer = setTimeout(() => req.destroy(new TimeoutError(`no answer within ${timeoutMs} ms`)), timeoutMs);
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.end(payload);
  });
}

export async function pushPeers(url: string, token: string, list: PeerList, opts: { timeoutMs: number; attempts: number }): Promise<PushResult> {
  let last: PushResult = { ok: false, conflict: false, error: 'not attempted' };
  for (let attempt = 0; attempt < opts.attempts; attempt++) {
    if (attempt > 0) await new Promise((r) => setTimeout(r, 50 * 2 ** attempt));
    try {
      const res = await call(`${url}/internal/peers`, 'PUT', token, opts.timeoutMs, list);
      const body = res.json as { generation?: number; message?: string };
      if (res.status >= 200 && res.status < 300) return { ok: true, generation: body.generation ?? list.generation };
      if (res.status === 409) {
        // The pod already holds a newer generation: retrying the same one cannot succeed.
        const current = await readPeers(url, token, opts.timeoutMs).catch(() => undefined);
        const r: PushResult = { ok: false, conflict: true, error: `pod holds a newer peer list${current ? ` (generation ${current})` : ''}` };
        if (current !== undefined) r.generation = current;
        return r;
      }
      last = { ok: false, conflict: false, error: `HTTP ${res.status}${body.message ? `: ${body.message}` : ''}` };
      if (res.status === 400 || res.status === 401) return last;
    } catch (err) {
      last = { ok: false, conflict: false, error: describe(err) };
    }
  }
  return last;
}

async function readPeers(url: string, token: string, timeoutMs: number): Promise<number | undefined> {
  const res = await call(`${url}/internal/peers`, 'GET', token, timeoutMs);
  if (res.status !== 200) return undefined;
  const generation = res.json.generation;
  return typeof generation === 'number' ? generation : undefined;
}

export function readNodeStatus(url: string, token: string, timeoutMs: number): Promise<NodeReport> {
  return nodeReport(call(`${url}/internal/status`, 'GET', token, timeoutMs));
}

/**
 * Tells a pod whether it is leaving (PUT /internal/fence). A fenced pod refuses client writes; its answer
 * is a status read taken after every write it admitted before was stored.
 */
export function fenceNode(url: string, token: string, leaving: boolean, timeoutMs: number): Promise<NodeReport> {
  return nodeReport(call(`${url}/internal/fence`, 'PUT', token, timeoutMs, { leaving }));
}

async function nodeReport(request: Promise<{ status: number; json: Record<string, unknown> }>): Promise<NodeReport> {
  try {
    const res = await request;
    if (res.status !== 200) return { ok: false, error: `HTTP ${res.status}${typeof res.json.message === 'string' ? `: ${res.json.message}` : ''}` };
    const body = res.json as Partial<NodeStatus>;
    if (typeof body.generation !== 'number' || !Array.isArray(body.peers)) return { ok: false, error: 'malformed status' };
    return {
      ok: true,
      generation: body.generation,
      // A file server from before the field existed is Ready only after its first catch-up: take that.
      syncedGeneration: typeof body.syncedGeneration === 'number' ? body.syncedGeneration : body.generation,
      leaving: body.leaving === true,
      peers: body.peers.map((p) => ({ id: String(p.id), pendingChanges: Number(p.pendingChanges ?? 0) })),
    };
  } catch (err) {
    return { ok: false, error: describe(err) };
  }
}
