import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { writeChunks } from '../streams.ts';
import type { Peer } from '../../../contract/peer-api.ts';

const agentOptions = { keepAlive: true, maxSockets: 8 };
const httpAgent = new http.Agent(agentOptions);
const httpsAgent = new https.Agent(agentOptions);

export class PeerRequestError extends Error {
  readonly status: number | undefined;
  constructor(message: string, status?: number) {
    super(message);
    this.status = status;
  }
}

export interface PeerRequest {
  method: string;
  path: string;
  json?: unknown;
  stream?: AsyncIterable<Buffer>;
  headers?: Record<string, string>;
  timeoutMs?: number;
}

/** HTTP to a peer's API with the cluster token; resolves with the response once headers arrive. */
export function peerRequest(peer: Peer, token: string, req: PeerRequest): Promise<IncomingMessage> {
  const url = new URL(req.path, `${peer.url}/`);
  const mod = url.protocol === 'https:' ? https : http;
  const headers: Record<string, string> = { authorization: `Bearer ${token}`, ...req.headers };
  let payload: Buffer | undefined;
  if (req.json !== undefined) {
    payload = Buffer.from(JSON.stringify(req.json));
    headers['content-type'] = 'application/json';
    headers['content-length'] = String(payload.length);
  } else if (req.stream) {
    headers['content-type'] = 'application/x-filecluster-changes';
  }
  return new Promise((resolve, reject) => {
    const r = mod.request(url, { method: req.method, headers, agent: url.protocol === 'https:' ? httpsAgent : httpAgent }, resolve);
    r.setTimeout(req.timeoutMs ?? 30_000, () => r.destroy(new PeerRequestError(`peer ${peer.id} timed out`)));
    // A streamed body ends with small writes; without this, Nagle holds them until the peer's delayed ACK.
    r.on('socket', (socket) => socket.setNoDelay(true));
    r.on('error', reject);
    if (req.stream) {
      void writeChunks(r, req.stream).then(
        () => r.end(),
        (err: unknown) => r.destroy(err as Error),
      );
    } else {
      r.end(payload);
    }
  });
}

export async function readBody(res: IncomingMessage, limit = 64 * 1024 * 1024): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of res as AsyncIterable<Buffer>) {
    n += c.length;
    if (n > limit) throw new PeerRequestError('peer answer too large');
    chunks.push(c);
  }
  return Buffer.concat(chunks);
}

/** A JSON call to a peer; a non-2xx answer becomes an error carrying the status. */
export async function peerJson<T>(peer: Peer, token: string, req: PeerRequest): Promise<T> {
  const res = await peerRequest(peer, token, req);
  const body = await readBody(res);
  const status = res.statusCode ?? 0;
  if (status < 200 || status >= 300) throw new PeerRequestError(`peer ${peer.id} answered ${status}: ${body.toString().slice(0, 200)}`, status);
  return JSON.parse(body.toString()) as T;
}
