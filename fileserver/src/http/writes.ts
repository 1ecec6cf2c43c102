import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AckMode } from '../../../contract/fileserver-settings.ts';
import type { Peer } from '../../../contract/peer-api.ts';
import type { Config } from '../config.ts';
import { HttpError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { RequestMetrics } from '../metrics.ts';
import type { ClockWatch } from '../replication/clock-watch.ts';
import { peerRequest, readBody, type PeerTokens } from '../replication/peer-client.ts';
import type { Replicator } from '../replication/replicator.ts';
import type { WriteFence } from '../store/fence.ts';
import type { FileEntry } from '../store/entry.ts';
import { etagOf, type Conditions, type Store } from '../store/store.ts';
import { versionTimeMs, type Version } from '../store/version.ts';
import { admitByClock } from './clock-gate.ts';
import { sendRawError, unreadBody } from './errors.ts';
import { KeyedSerializer } from './path-lock.ts';
import { FILE_ROUTE } from './reads.ts';
import { ackModeOf, conditionsOf, contentLengthOf, contentTypeOf, filePathOf, sha256Of } from './request.ts';

/** Where a node sends a conditional write to the path's owner (peer API): this prefix and the still-encoded file path. */
export const OWNER_WRITE_PREFIX = '/internal/owner/files/';
export const OWNER_WRITE_ROUTE = '/owner/files/{*path}';
/** The request headers a forwarded conditional write carries to the owner. */
const FORWARDED_REQUEST_HEADERS = ['content-length', 'content-type', 'content-sha256', 'if-match', 'if-none-match'];
/** The owner's answer headers the forwarding node passes on. */
const FORWARDED_ANSWER_HEADERS = ['etag', 'retry-after'];
/**
 * The wall-clock time (ms since the epoch) by which the owner must have committed a forwarded write, or
 * refuse it. A paused owner reads the request its socket buffered only when it resumes, long after the
 * forwarding node gave up and answered 503; the deadline makes it refuse the write then. The two nodes'
 * clocks are assumed to agree within a few seconds (NTP).
 */
const COMMIT_BY_HEADER = 'x-filecluster-commit-by';
/** How long a forwarded write has to reach its commit, beyond the time its body takes at the slowest expected rate. */
const COMMIT_WINDOW_MS = 2_000;
const SLOWEST_UPLOAD_BYTES_PER_MS = 1024;
/** Beyond the commit deadline and the owner's wait for acknowledgements: how long a forwarding node waits for the owner's answer. */
const FORWARD_SLACK_MS = 2_000;
/** An owner's answer is a small JSON document. */
const OWNER_ANSWER_LIMIT = 64 * 1024;
const RETRY_AFTER = ['Retry-After', '1'];

function commitByOf(req: IncomingMessage): number | undefined {
  const v = req.headers[COMMIT_BY_HEADER];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !/^\d{1,16}$/.test(v)) throw new HttpError(400, 'bad_header', `${COMMIT_BY_HEADER} must be a time in milliseconds since the epoch`);
  return Number(v);
}

const isConditional = (c: Conditions) => c.ifMatch !== undefined || c.ifNoneMatch !== undefined;

/** What a committed write answers with, once acknowledged. */
interface Committed {
  version: Version;
  body: object;
  status: number;
  headers: string[];
}

/** How listings and write answers describe a file. */
export function describeEntry(e: FileEntry) {
  return { path: e.path, size: e.size, sha256: e.sha256, version: e.version, modified: new Date(versionTimeMs(e.version)).toISOString() };
}

export interface WriteDeps {
  store: Store;
  replicator: Replicator;
  clockWatch: ClockWatch;
  fence: WriteFence;
  config: Config;
  logger: Logger;
  requests: RequestMetrics;
  tokens: PeerTokens;
}

/** Answers a PUT or DELETE of the still-encoded file path `rawPath` and records it. */
export type FileWrite = (req: IncomingMessage, res: ServerResponse, rawPath: string) => Promise<void>;

/**
 * PUT and DELETE of `/files/<path>`: the one implementation, on the raw request and response, like
 * reads (reads.ts). Writes are the other half of the hot path; Koa's context, middleware and router
 * cost as much per small write as storing it. The API listener calls `serveWrite` for the plain spelling
 * of the URL, the files router for every other spelling. It answers every outcome and records the request.
 *
 * A conditional write (`If-Match`, `If-None-Match`) goes through the path's owner (`Replicator.conditionalOwner`):
 * another node forwards it there over the peer API, and the owner (`serveOwnedWrite`) checks and commits
 * a path's conditional writes one at a time, answering each once every peer holds it. Unconditional
 * writes are stored where they arrive and ordered by version (last writer wins).
 */
export function fileWrites({ store, replicator, clockWatch, fence, config, logger, requests, tokens }: WriteDeps) {
  const ownedPaths = new KeyedSerializer();

  /** Answers per the requested ack level once the write is durable here and owed to every peer. */
  async function acknowledge(req: IncomingMessage, res: ServerResponse, mode: AckMode, path: string, c: Committed): Promise<number> {
    replicator.notifyLocalWrite();
    const { acked, required } = await replicator.waitForAcks(path, c.version, mode, config.ackTimeoutMs);
    if (acked < required) {
      const err = new HttpError(504, 'ack_timeout', `stored locally, but only ${acked} of ${required} peers acknowledged in time; replication continues`, {
        acked,
        required,
        version: c.version,
      });
      return sendRawError(logger, req, res, err, c.headers);
    }
    return answer(res, c.status, { ...c.body, acked, required }, c.headers);
  }

  function answer(res: ServerResponse, status: number, body: object, headers: string[]): number {
    const json = JSON.stringify(body);
    res.writeHead(status, [...headers, 'Content-Type', 'application/json; charset=utf-8', 'Content-Length', String(Buffer.byteLength(json))]).end(json);
    return status;
  }

  /** The owner's refusal of `path`'s conditional writes, if it must refuse now. */
  function refusal(path: string): HttpError | undefined {
    const r = replicator.ownerRefusal(path);
    return r && new HttpError(503, r.reason, `${r.message}; nothing was written, retry`, undefined, RETRY_AFTER);
  }

  /**
   * A conditional write on the owner: one at a time per path, refused unless this node may act as the
   * owner, re-checked inside the commit (a list change or a newer generation from a peer since the
   * check refuses it, atomically with the commit), answered once every current peer holds it. A list
   * change while the peers acknowledge makes the answer 503 `ownership_moved`: the write is stored, but
   * a new owner may have checked a write of the same path without it, so it is not reported as done.
   */
  function asOwner(
    req: IncomingMessage,
    res: ServerResponse,
    path: string,
    commitBy: number | undefined,
    commit: (guard: () => void) => Promise<Committed>,
  ): Promise<number> {
    return ownedPaths.run(path, async () => {
      const refused = refusal(path);
      if (refused) throw refused;
      const generation = replicator.peerList().generation;
      const guard = () => {
        const now = replicator.peerList().generation;
        if (now !== generation) {
          throw new HttpError(
            503,
            'owner_changed',
            `the peer list changed (generation ${generation} to ${now}) during the write; nothing was written, retry`,
            undefined,
            RETRY_AFTER,
          );
        }
        const late = refusal(path);
        if (late) throw late;
        if (commitBy !== undefined && Date.now() > commitBy) {
          throw new HttpError(
            503,
            'commit_deadline_passed',
            'the forwarding node has stopped waiting for this write; nothing was written, retry',
            undefined,
            RETRY_AFTER,
          );
        }
      };
      const c = await fence.admit(() => commit(guard));
      replicator.notifyLocalWrite();
      const { acked, required } = await replicator.waitForAcks(path, c.version, 'all', config.ackTimeoutMs);
      if (acked < required) {
        const err = new HttpError(
          504,
          'ack_timeout',
          `stored on the owner, but only ${acked} of ${required} peers acknowledged in time; replication continues and the outcome is unknown`,
          { acked, required, version: c.version },
        );
        return sendRawError(logger, req, res, err, c.headers);
      }
      const now = replicator.peerList().generation;
      const moved = now !== generation ? `the peer list changed (generation ${generation} to ${now})` : refusal(path)?.message;
      if (moved !== undefined) {
        const err = new HttpError(
          503,
          'ownership_moved',
          `stored as version ${c.version}, but ${moved} before every peer acknowledged it; the new owner may not have seen it, so the outcome is unknown`,
          { version: c.version },
          RETRY_AFTER,
        );
        return sendRawError(logger, req, res, err, c.headers);
      }
      return answer(res, c.status, { ...c.body, acked, required }, c.headers);
    });
  }

  /** Sends a conditional write to `owner` over the peer API, streaming the body, and passes its answer on. */
  async function forward(req: IncomingMessage, res: ServerResponse, owner: Peer, path: string, rawPath: string, size: number): Promise<number> {
    const headers: Record<string, string> = {};
    for (const name of FORWARDED_REQUEST_HEADERS) {
      const v = req.headers[name];
      if (v !== undefined && (req.method === 'PUT' || name.startsWith('if-'))) headers[name] = Array.isArray(v) ? v.join(', ') : v;
    }
    // The owner commits by this time or not at all; this node waits at least that long plus the owner's
    // wait for acknowledgements, so it does not give up on a write the owner may still commit and answer.
    const commitWindowMs = COMMIT_WINDOW_MS + Math.ceil(size / SLOWEST_UPLOAD_BYTES_PER_MS);
    headers[COMMIT_BY_HEADER] = String(Date.now() + commitWindowMs);
    const unreachable = (why: string) =>
      new HttpError(503, 'owner_unreachable', `conditional writes of ${path} go through its owner ${owner.id}, which ${why}; retry`, { owner: owner.id }, RETRY_AFTER);
    let status: number;
    let from: IncomingMessage;
    let body: Buffer;
    try {
      from = await peerRequest(owner, tokens, {
        method: req.method!,
        path: `${OWNER_WRITE_PREFIX}${rawPath}`,
        headers,
        ...(req.method === 'PUT' ? { stream: req as AsyncIterable<Buffer> } : {}),
        timeoutMs: commitWindowMs + config.ackTimeoutMs + FORWARD_SLACK_MS,
      });
      status = from.statusCode ?? 0;
      body = await readBody(from, OWNER_ANSWER_LIMIT);
    } catch (err) {
      throw unreachable(`did not answer (${(err as Error).message})`);
    }
    if (status === 401) throw unreachable("refused this node's cluster token");
    const out: string[] = [];
    for (const name of FORWARDED_ANSWER_HEADERS) {
      const v = from.headers[name];
      if (typeof v === 'string') out.push(name, v);
    }
    out.push('Content-Type', 'application/json; charset=utf-8', 'Content-Length', String(body.length));
    if (unreadBody(req)) out.push('Connection', 'close');
    res.writeHead(status, out).end(body);
    return status;
  }

  /** A conditional write: forwarded to the owner, or checked and committed here when this node owns `path` (or was sent it as the owner). */
  function conditional(
    req: IncomingMessage,
    res: ServerResponse,
    rawPath: string,
    path: string,
    size: number,
    sentToOwner: boolean,
    commit: (guard: () => void) => Promise<Committed>,
  ) {
    if (sentToOwner) return asOwner(req, res, path, commitByOf(req), commit);
    const owner = replicator.conditionalOwner(path);
    return owner ? forward(req, res, owner, path, rawPath, size) : asOwner(req, res, path, undefined, commit);
  }

  async function put(req: IncomingMessage, res: ServerResponse, rawPath: string, sentToOwner: boolean): Promise<number> {
    const path = filePathOf(rawPath);
    const h = req.headers;
    const size = contentLengthOf(h, config.maxBodyBytes);
    const sha256 = sha256Of(h);
    const contentType = contentTypeOf(h);
    const mode = ackModeOf(h, config.defaultAck); // a bad header is rejected before the body is read
    const conditions = conditionsOf(h);
    const commit = async (guard?: () => void): Promise<Committed> => {
      const existed = store.get(path)?.deleted === false;
      const e = await store.put(path, req, size, { ...conditions, contentType, ...(sha256 ? { sha256 } : {}), ...(guard ? { guard } : {}) });
      return { version: e.version, body: describeEntry(e), status: existed ? 200 : 201, headers: ['ETag', etagOf(e)] };
    };
    if (isConditional(conditions) || sentToOwner) return conditional(req, res, rawPath, path, size, sentToOwner, commit);
    return acknowledge(req, res, mode, path, await fence.admit(() => commit()));
  }

  async function del(req: IncomingMessage, res: ServerResponse, rawPath: string, sentToOwner: boolean): Promise<number> {
    const path = filePathOf(rawPath);
    const mode = ackModeOf(req.headers, config.defaultAck);
    const conditions = conditionsOf(req.headers);
    const commit = async (guard?: () => void): Promise<Committed> => {
      const t = await store.delete(path, { ...conditions, ...(guard ? { guard } : {}) });
      return { version: t.version, body: { path, version: t.version, deleted: true }, status: 200, headers: [] };
    };
    if (isConditional(conditions) || sentToOwner) return conditional(req, res, rawPath, path, 0, sentToOwner, commit);
    return acknowledge(req, res, mode, path, await fence.admit(() => commit()));
  }

  /**
   * A pod the operator manages takes client writes only once it holds a peer list from the operator. Before,
   * it is a node with no peers: it would acknowledge a write that only it holds, and the operator removes a
   * pod that never got a list (its claim never joined) without fencing and draining it.
   */
  function admitByPeerList(): void {
    if (!config.awaitPeerList || replicator.peerList().generation > 0) return;
    throw new HttpError(
      503,
      'not_joined',
      'this node has not been given its peer list by the operator yet and takes no writes; nothing was written, retry through the cluster Service',
      undefined,
      RETRY_AFTER,
    );
  }

  const serve =
    (sentToOwner: boolean, route: string): FileWrite =>
    async (req, res, rawPath) => {
      const started = performance.now();
      const method = req.method!;
      let status: number;
      try {
        admitByPeerList();
        await admitByClock(clockWatch, config.maxClockDriftMs);
        status = await (method === 'PUT' ? put(req, res, rawPath, sentToOwner) : del(req, res, rawPath, sentToOwner));
      } catch (err) {
        status = sendRawError(logger, req, res, err);
      }
      requests.record(route, method, status, started);
    };

  return {
    /** A client's write. */
    serveWrite: serve(false, FILE_ROUTE),
    /** A conditional write another node forwarded to this one as the path's owner. */
    serveOwnedWrite: serve(true, `/internal${OWNER_WRITE_ROUTE}`),
  };
}
