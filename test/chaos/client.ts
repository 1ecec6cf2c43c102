// The chaos workload's client: performs one operation over HTTP and classifies its outcome. A refused
// connection means nothing was sent (fail); a timeout or a connection lost after sending means the
// change may or may not have been applied (info).
import type { Completion, History, Op } from './history.ts';

export const OP_TIMEOUT_MS = 4_000;

/** A file server a client talks to: a test process or a pod, named as the history names it. */
export interface Endpoint {
  id: string;
  url: string;
}

/** The body of value `id`: the id, then bytes derived from it, so a read names what it returned and proves it intact. */
export function valueBody(id: string, size: number): Buffer {
  const head = Buffer.from(`${id}|`);
  const body = Buffer.alloc(Math.max(size, head.length));
  head.copy(body);
  for (let i = head.length; i < body.length; i++) body[i] = 97 + ((i * 31 + id.length * 7) % 26);
  return body;
}

/** The value id a body names, and whether the body is exactly that value's bytes. */
export function readValue(body: Buffer): { value: string; intact: boolean } {
  const bar = body.indexOf(0x7c);
  const value = bar > 0 ? body.subarray(0, bar).toString() : `<unrecognised ${body.length} bytes>`;
  const size = /s(\d+)$/.exec(value);
  const intact = size !== null && valueBody(value, Number(size[1])).equals(body);
  return { value, intact };
}

function failure(err: unknown): Completion {
  const e = err as { name?: string; cause?: { code?: string } };
  const code = e.cause?.code ?? e.name ?? String(err);
  // Refused before anything was sent: the change cannot have been applied.
  if (code === 'ECONNREFUSED') return { outcome: 'fail', error: code };
  return { outcome: 'info', error: code };
}

async function jsonVersion(res: Response): Promise<string | undefined> {
  try {
    const body = (await res.json()) as { version?: string };
    return body.version;
  } catch (err) {
    throw new Error(`answer ${res.status} is not JSON: ${String(err)}`);
  }
}

/**
 * Classifies a write's answer: 2xx ok; 504 stored here but not acknowledged enough (info, with its version);
 * 4xx and 507 (a full volume: nothing was stored) fail; other 5xx info.
 */
async function writeOutcome(res: Response): Promise<Completion> {
  if (res.status === 200 || res.status === 201) return { outcome: 'ok', status: res.status, version: await jsonVersion(res) };
  if (res.status === 504) return { outcome: 'info', status: res.status, version: await jsonVersion(res) };
  await res.arrayBuffer();
  return { outcome: res.status < 500 || res.status === 507 ? 'fail' : 'info', status: res.status };
}

export async function perform(node: Endpoint, op: Op, size: number): Promise<Completion> {
  const url = `${node.url}/files/${op.key}`;
  const signal = AbortSignal.timeout(OP_TIMEOUT_MS);
  const ack = op.ack ? { 'x-filecluster-ack': op.ack } : {};
  try {
    switch (op.kind) {
      case 'get': {
        const res = await fetch(url, { signal });
        if (res.status === 404) {
          await res.arrayBuffer();
          return { outcome: 'ok', status: 404, read: null };
        }
        const body = Buffer.from(await res.arrayBuffer());
        if (res.status !== 200) return { outcome: 'fail', status: res.status };
        const { value, intact } = readValue(body);
        return { outcome: 'ok', status: 200, read: value, intact, version: res.headers.get('x-filecluster-version') ?? undefined };
      }
      case 'delete':
        return await writeOutcome(await fetch(url, { method: 'DELETE', headers: ack, signal }));
      case 'put':
      case 'create':
      case 'swap': {
        const cond = op.kind === 'create' ? { 'if-none-match': '*' } : op.kind === 'swap' ? { 'if-match': `"${op.ifMatch}"` } : {};
        return await writeOutcome(await fetch(url, { method: 'PUT', headers: { ...ack, ...cond }, body: valueBody(op.value!, size), signal }));
      }
    }
  } catch (err) {
    return failure(err);
  }
}

/** Runs `op` as one recorded call of the history. */
export function recorded(history: History, node: Endpoint, op: Op, size = 0): Promise<Completion> {
  return history.record(op, () => perform(node, op, size));
}
