import { ServerResponse, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import { pipeline } from 'node:stream';
import type Koa from 'koa';
import { HttpError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { RequestMetrics } from '../metrics.ts';
import { peerRequest, type PeerTokens } from '../replication/peer-client.ts';
import type { Replicator } from '../replication/replicator.ts';
import { parseUrlPath } from '../store/paths.ts';
import type { FileEntry } from '../store/entry.ts';
import { StoreError } from '../store/errors.ts';
import { etagMatches, etagOf, INLINE_MAX_BYTES, type Store } from '../store/store.ts';
import { versionTimeMs } from '../store/version.ts';
import { fileChunks, writeChunks } from '../streams.ts';
import { answerBatch } from './answer-batch.ts';
import { sendRawError } from './errors.ts';
import { parseRange } from './range.ts';
import { etagList } from './request.ts';

/** The route label of file reads, the same pattern the files router registers. */
export const FILE_ROUTE = '/files/{*path}';
const PREFIX = '/files/';
const PROXIED_HEADER = 'x-filecluster-proxied';
const FORWARDED_HEADERS = ['content-type', 'content-length', 'content-range', 'accept-ranges', 'etag', 'last-modified', 'x-filecluster-version', 'x-filecluster-sha256'];

/** The request headers a read depends on. */
export interface ReadConditions {
  ifNoneMatch: string | undefined;
  ifRange: string | undefined;
  range: string | undefined;
}

/** What to answer a read of a live file, decided from the entry and the request headers alone. */
export type ReadPlan =
  | { kind: 'not_modified'; headers: string[] }
  | { kind: 'unsatisfiable'; headers: string[]; error: HttpError }
  | { kind: 'bytes'; status: 200 | 206; headers: string[]; start: number; end: number };

/**
 * The headers of a whole-file answer for one entry, as the flat name/value list `writeHead` takes:
 * ETag, Last-Modified, Accept-Ranges, X-FileCluster-Version, X-FileCluster-SHA256 (the "common" part
 * every answer about the file carries), then Content-Type and Content-Length. Entries are immutable
 * (a write makes a new one), so the list is worked out once per entry and sent as it is (never modified).
 */
export type EntryHeaders = string[];
const COMMON = 10;
/**
 * The read decision (RFC 9110): `If-None-Match` first (304, weak comparison), then `If-Range` (a range only
 * against the current ETag, strong comparison), then one `Range` (206, or 416 past the end); otherwise the whole file.
 */
export function planRead(entry: FileEntry, whole: EntryHeaders, c: ReadConditions): ReadPlan {
  const etag = etagOf(entry);
  if (c.ifNoneMatch) {
    const inm = etagList(c.ifNoneMatch);
    if (inm === '*' || etagMatches(inm, etag, 'weak')) return { kind: 'not_modified', headers: whole.slice(0, COMMON) };
  }
  const range = c.ifRange && c.ifRange !== etag ? ({ kind: 'none' } as const) : parseRange(c.range, entry.size);
  if (range.kind === 'unsatisfiable') {
    return {
      kind: 'unsatisfiable',
      headers: [...whole.slice(0, COMMON), 'Content-Range', `bytes */${entry.size}`],
      error: new HttpError(416, 'range_not_satisfiable', `the file has ${entry.size} bytes`),
    };
  }
  if (range.kind === 'none') return { kind: 'bytes', status: 200, headers: whole, start: 0, end: entry.size - 1 };
  const headers = [
    ...whole.slice(0, COMMON + 2),
    'Content-Range',
    `bytes ${range.start}-${range.end}/${entry.size}`,
    'Content-Length',
    String(range.end - range.start + 1),
  ];
  return { kind: 'bytes', status: 206, headers, start: range.start, end: range.end };
}

/** A read of a file this node set aside as damaged that no peer could serve: it exists, so not a 404. */
function awaitingRepair(path: string): HttpError {
  return new HttpError(
    503,
    'damaged',
    `the stored bytes of ${path} were damaged and set aside, and no peer could serve the file; it is pulled again from a peer once one is reachable`,
    undefined,
    ['Retry-After', '1'],
  );
}

/**
 * The file path part of a request target in the plain form `/files/<path>[?query]`, still encoded, or
 * undefined for anything else. Other spellings the router also matches (any letter case, absolute-form
 * targets, a `#`) go through Koa to the same handler.
 */
export function plainFileTarget(url: string): string | undefined {
  if (!url.startsWith(PREFIX)) return undefined;
  const q = url.indexOf('?', PREFIX.length);
  const path = q === -1 ? url.slice(PREFIX.length) : url.slice(PREFIX.length, q);
  if (path === '' || path.includes('#')) return undefined;
  return path;
}

export interface ReadDeps {
  store: Store;
  replicator: Replicator;
  tokens: PeerTokens;
  logger: Logger;
  requests: RequestMetrics;
  /** Completes stored content types the way Koa does for every other answer (a charset for text types, bare extensions looked up). */
  koa: Koa;
}

export type FileReads = ReturnType<typeof fileReads>;

/**
 * GET and HEAD of `/files/<path>`: the one implementation, on the raw request and response. The API
 * listener calls it before Koa for the plain spelling of the URL (the hot path: no Koa context, router
 * or middleware per read), the files router for the rest. It answers every outcome itself, errors
 * included, and records the request metrics.
 */
export function fileReads({ store, replicator, tokens, logger, requests, koa }: ReadDeps) {
  const headerCache = new WeakMap<FileEntry, EntryHeaders>();
  const send = answerBatch();

  function contentTypeOf(req: IncomingMessage, stored: string): string | undefined {
    const res = new ServerResponse(req);
    koa.createContext(req, res).type = stored;
    const v = res.getHeader('content-type');
    return typeof v === 'string' ? v : undefined;
  }

  function headersOf(req: IncomingMessage, e: FileEntry): EntryHeaders {
    let h = headerCache.get(e);
    if (!h) {
      h = [
        'ETag',
        etagOf(e),
        'Last-Modified',
        new Date(versionTimeMs(e.version)).toUTCString(),
        'Accept-Ranges',
        'bytes',
        'X-FileCluster-Version',
        e.version,
        'X-FileCluster-SHA256',
        e.sha256,
        'Content-Type',
        // A stored type Koa cannot complete (an unknown bare extension) goes out as Koa sends bytes.
        contentTypeOf(req, e.contentType) ?? 'application/octet-stream',
        'Content-Length',
        String(e.size),
      ];
      headerCache.set(e, h);
    }
    return h;
  }

  const fail = (req: IncomingMessage, res: ServerResponse, err: unknown, headers?: string[]): number => sendRawError(logger, req, res, err, headers);

  /** Answers the read; returns the status, or a promise of it when the answer streams. */
  function answer(req: IncomingMessage, res: ServerResponse, rawPath: string): number | Promise<number> {
    const parsed = parseUrlPath(rawPath);
    if (!parsed.ok) return fail(req, res, new HttpError(parsed.status, parsed.code, parsed.message));
    const path = parsed.path;
    const entry = store.get(path);
    if (!entry || entry.deleted) {
      const notFound = new HttpError(404, 'not_found', `no file at ${path}`);
      if (entry === undefined && !req.headers[PROXIED_HEADER]) {
        if (replicator.proxyingMisses) return proxyFromPeer(req, res, rawPath, notFound);
        // A file set aside as damaged exists in the cluster: "not found" would be a wrong answer.
        if (store.isWanted(path)) return proxyFromPeer(req, res, rawPath, awaitingRepair(path));
      }
      return fail(req, res, notFound);
    }
    const h = headersOf(req, entry);
    const head = req.method === 'HEAD';
    const plan = planRead(entry, h, { ifNoneMatch: req.headers['if-none-match'], ifRange: req.headers['if-range'] as string | undefined, range: req.headers.range });
    if (plan.kind === 'not_modified') {
      send(res, 304, plan.headers);
      return 304;
    }
    if (plan.kind === 'unsatisfiable') return fail(req, res, plan.error, plan.headers);
    const { status, start, end } = plan;
    if (head) {
      send(res, status, plan.headers);
      return status;
    }
    if (entry.size <= INLINE_MAX_BYTES) {
      let small;
      try {
        small = store.readSmall(path, { keep: true });
      } catch (err) {
        if (err instanceof StoreError && err.kind === 'damaged' && !req.headers[PROXIED_HEADER]) return proxyFromPeer(req, res, rawPath, err);
        return fail(req, res, err);
      }
      if (!small || small.entry.version !== entry.version) return fail(req, res, new HttpError(503, 'busy', 'the file changed while being read; retry'));
      send(res, status, plan.headers, status === 200 ? small.data : small.data.subarray(start, end + 1));
      return status;
    }
    return streamLarge(req, res, path, entry, status, plan.headers, start, end);
  }

  /** Large files stream from an open handle so memory stays flat. */
  async function streamLarge(
    req: IncomingMessage,
    res: ServerResponse,
    path: string,
    entry: FileEntry,
    status: number,
    headers: string[],
    start: number,
    end: number,
  ): Promise<number> {
    try {
      const opened = await store.openFile(path);
      if (!opened || opened.entry.version !== entry.version) {
        await opened?.fh.close();
        return fail(req, res, new HttpError(503, 'busy', 'the file changed while being read; retry'));
      }
      res.writeHead(status, headers);
      try {
        // A whole-file read is checked against the SHA-256 on the way; a range cannot be (the scrub covers it).
        const whole = start === 0 && end === entry.size - 1;
        await writeChunks(res, whole ? store.checkedChunks(opened.entry, opened.fh) : fileChunks(opened.fh, start, end - start + 1));
        res.end();
      } catch (err) {
        logger.debug({ err: (err as Error).message }, 'response stream error');
        res.destroy();
      }
      return status;
    } catch (err) {
      return fail(req, res, err);
    }
  }

  /**
   * Serves a file this node lacks from the first peer that has it: until the node's first catch-up, and
   * while its own copy is set aside as damaged. `otherwise` answers when no peer serves it.
   */
  async function proxyFromPeer(req: IncomingMessage, res: ServerResponse, rawPath: string, otherwise: unknown): Promise<number> {
    try {
      const order = replicator.status().sort((a, b) => Number(b.up) - Number(a.up));
      for (const p of order) {
        let from: IncomingMessage;
        try {
          const headers: Record<string, string> = { [PROXIED_HEADER]: '1' };
          if (req.headers.range) headers.range = req.headers.range;
          from = await peerRequest(p, tokens, { method: req.method!, path: `${PREFIX}${rawPath}`, headers, timeoutMs: 10_000 });
        } catch {
          continue;
        }
        const status = from.statusCode ?? 0;
        if (status !== 200 && status !== 206) {
          from.resume();
          continue;
        }
        const headers: OutgoingHttpHeaders = {};
        for (const name of FORWARDED_HEADERS) {
          const v = from.headers[name];
          if (typeof v === 'string') headers[name] = v;
        }
        headers['content-type'] ??= 'application/octet-stream';
        headers['x-filecluster-served-by'] = p.id;
        res.writeHead(status, headers);
        if (req.method === 'HEAD') {
          from.resume();
          res.end();
          return status;
        }
        return await new Promise<number>((resolve) => {
          pipeline(from, res, (err) => {
            if (err) logger.debug({ err: err.message }, 'proxied response stream error');
            resolve(status);
          });
        });
      }
      return fail(req, res, otherwise);
    } catch (err) {
      return fail(req, res, err);
    }
  }

  /** Answers a read of the still-encoded file path `rawPath` and records it. */
  return function serveRead(req: IncomingMessage, res: ServerResponse, rawPath: string): void | Promise<void> {
    const started = performance.now();
    const method = req.method!;
    let status: number | Promise<number>;
    try {
      status = answer(req, res, rawPath);
    } catch (err) {
      status = fail(req, res, err);
    }
    if (typeof status === 'number') {
      requests.record(FILE_ROUTE, method, status, started);
      return;
    }
    return status.then((s) => requests.record(FILE_ROUTE, method, s, started));
  };
}
