import type { Peer } from '../../api/v1alpha1/types.ts';
import type { NodeReport } from './plan.ts';

// The operator's side of the file server's peer API (PUT /internal/peers, GET /internal/status).

export type PushResult =
  | { ok: true; generation: number }
  | { ok: false; conflict: boolean; generation?: number; error: string };

function describe(err: unknown): string {
  if (err instanceof Error) {
    const cause = (err as Error & { cause?: { code?: string; message?: string } }).cause;
    if (err.name === 'TimeoutError') return 'timed out';
    return cause?.code ?? cause?.message ?? err.message;
  }
  return String(err);
}

export async function pushPeers(
  url: string,
  token: string,
  list: { generation: number; peers: readonly Peer[] },
  opts: { timeoutMs: number; attempts: number },
): Promise<PushResult> {
  let last: PushResult = { ok: false, conflict: false, error: 'not attempted' };
  for (let attempt = 0; attempt < opts.attempts; attempt++) {
    if (attempt > 0) await new Promise((r) => setTimeout(r, 50 * 2 ** attempt));
    try {
      const res = await fetch(`${url}/internal/peers`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify(list),
        signal: AbortSignal.timeout(opts.timeoutMs),
      });
      const body = (await res.json().catch(() => ({}))) as { generation?: number; message?: string };
      if (res.ok) return { ok: true, generation: body.generation ?? list.generation };
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
  const res = await fetch(`${url}/internal/peers`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(timeoutMs) });
  if (!res.ok) return undefined;
  const body = (await res.json()) as { generation?: number };
  return body.generation;
}

export async function readNodeStatus(url: string, token: string, timeoutMs: number): Promise<NodeReport> {
  try {
    const res = await fetch(`${url}/internal/status`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(timeoutMs) });
    if (!res.ok) return { ok: false, error: `HTTP ${res.status}` };
    const body = (await res.json()) as { generation?: number; peers?: Array<{ id?: string; pendingChanges?: number }> };
    if (typeof body.generation !== 'number' || !Array.isArray(body.peers)) return { ok: false, error: 'malformed status' };
    return {
      ok: true,
      generation: body.generation,
      peers: body.peers.map((p) => ({ id: String(p.id), pendingChanges: Number(p.pendingChanges ?? 0) })),
    };
  } catch (err) {
    return { ok: false, error: describe(err) };
  }
}
