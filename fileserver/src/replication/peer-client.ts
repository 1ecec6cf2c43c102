import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { writeChunks } from '../streams.ts';
import { GENERATION_HEADER, parseGeneration, type Peer } from '../../../contract/peer-api.ts';
import type { GenerationWatch } from './generation-watch.ts';

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

/**
 * The cluster token this node sends to its peers, and during a token rotation the previous one. Pods
 * roll to a new token one at a time, so a node started with the new token still meets peers that know
 * only the previous one: a peer that rejects one token is sent the other from then on. Alongside the
 * token, every peer request carries this node's peer-list generation, and the generation each answer
 * carries is noted (`generations`).
 */
export class PeerTokens {
  /** What the peer API accepts from others: the current token, and the previous one during a rotation. */
  readonly accepted: readonly string[];
  readonly generations: GenerationWatch | undefined;
  private readonly current: string;
  private readonly previous: string | undefined;
  /** Peers (by id) that last rejected the current token. */
  private readonly onPrevious = new Set<string>();

  constructor(current: string, previous?: string, generations?: GenerationWatch) {
    this.current = current;
    this.previous = previous;
    this.generations = generations;
    this.accepted = previous === undefined ? [current] : [current, previous];
  }

  for(peer: Peer): string {
    return this.previous !== undefined && this.onPrevious.has(peer.id) ? this.previous : this.current;
  }

  /** The peer answered 401 to `token`: switches it to the other token; false when there is none. */
  rejected(peer: Peer, token: string): boolean {
    if (this.previous === undefined) return false;
    if (token === this.current) this.onPrevious.add(peer.id);
    else this.onPrevious.delete(peer.id);
    return true;
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

/**
 * HTTP to a peer's API with the cluster token; resolves with the response once headers arrive. A 401
 * during a token rotation is retried at once with the other token, unless the body was a stream (it
 * cannot be replayed: the caller's next attempt uses the other token).
 */
export async function peerRequest(peer: Peer, tokens: PeerTokens, req: PeerRequest): Promise<IncomingMessage> {
  const token = tokens.for(peer);
  let res = await send(peer, token, tokens.generations, req);
  if (res.statusCode === 401 && tokens.rejected(peer, token) && !req.stream) {
    res.resume();
    res = await send(peer, tokens.for(peer), tokens.generations, req);
  }
  const shown = res.headers[GENERATION_HEADER];
  const generation = typeof shown === 'string' ? parseGeneration(shown) : undefined;
  if (generation !== undefined) tokens.generations?.observe(generation);
  return res;
}

function send(peer: Peer, token: string, generations: GenerationWatch | undefined, req: PeerRequest): Promise<IncomingMessage> {
  const url = new URL(req.path, `${peer.url}/`);
  const mod = url.protocol === 'https:' ? https : http;
  const headers: Record<string, string> = { authorization: `Bearer ${token}`, ...req.headers };
  if (generations) headers[GENERATION_HEADER] = String(generations.current);
  let payload: Buffer | undefined;
  if (req.json !== undefined) {
    payload = Buffer.from(JSON.stringify(req.json));
    headers['content-type'] = 'application/json';
    headers['content-length'] = String(payload.length);
  } else if (req.stream) {
    headers['content-type'] ??= 'application/x-filecluster-changes';
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
export async function peerJson<T>(peer: Peer, tokens: PeerTokens, req: PeerRequest): Promise<T> {
  const res = await peerRequest(peer, tokens, req);
  const body = await readBody(res);
  const status = res.statusCode ?? 0;
  if (status < 200 || status >= 300) throw new PeerRequestError(`peer ${peer.id} answered ${status}: ${body.toString().slice(0, 200)}`, status);
  return JSON.parse(body.toString()) as T;
}
