import type { IncomingMessage } from 'node:http';
import Router from '@koa/router';
import type { Context } from 'koa';
import type { Config } from '../config.ts';
import { HttpError } from '../errors.ts';
import { peerRequest } from '../replication/peer-client.ts';
import type { Replicator } from '../replication/replicator.ts';
import type { FileEntry } from '../store/state.ts';
import { etagOf, INLINE_MAX_BYTES, type Store } from '../store/store.ts';
import { versionTimeMs, type Version } from '../store/version.ts';
import { parseRange } from './range.ts';
import { ackModeOf, conditionsOf, contentLengthOf, contentTypeOf, filePathOf, sha256Of } from './request.ts';

const PROXIED_HEADER = 'x-filecluster-proxied';
const FORWARDED_HEADERS = ['content-type', 'content-length', 'content-range', 'accept-ranges', 'etag', 'last-modified', 'x-filecluster-version', 'x-filecluster-sha256'];
const MAX_LIST_LIMIT = 10_000;

export interface FilesDeps {
  store: Store;
  replicator: Replicator;
  config: Config;
}

function describe(e: FileEntry) {
  return { path: e.path, size: e.size, sha256: e.sha256, version: e.version, modified: new Date(versionTimeMs(e.version)).toISOString() };
}

interface FileHeaders {
  etag: string;
  lastModified: string;
  contentType: string | undefined;
}

// Entries are immutable (a write makes a new one), so their header values are worked out once and
// kept while the entry lives; the content type as Koa completes it (charset) is filled in on first use.
const headerCache = new WeakMap<FileEntry, FileHeaders>();

function setFileHeaders(ctx: Context, e: FileEntry): void {
  let h = headerCache.get(e);
  if (!h) {
    h = { etag: etagOf(e), lastModified: new Date(versionTimeMs(e.version)).toUTCString(), contentType: undefined };
    headerCache.set(e, h);
  }
  ctx.set('ETag', h.etag);
  ctx.set('Last-Modified', h.lastModified);
  ctx.set('Accept-Ranges', 'bytes');
  ctx.set('X-FileCluster-Version', e.version);
  ctx.set('X-FileCluster-SHA256', e.sha256);
  if (h.contentType === undefined) {
    ctx.type = e.contentType;
    h.contentType = ctx.response.get('Content-Type');
  } else if (h.contentType) {
    ctx.set('Content-Type', h.contentType);
  }
}

export function filesRouter({ store, replicator, config }: FilesDeps): Router {
  const router = new Router();

  /** Answers per the requested ack level once the write is durable here and owed to every peer. */
  async function acknowledge(ctx: Context, path: string, version: Version, body: Record<string, unknown>, status: number): Promise<void> {
    const mode = ackModeOf(ctx, config.defaultAck);
    replicator.notifyLocalWrite();
    const { acked, required } = await replicator.waitForAcks(path, version, mode, config.ackTimeoutMs);
    if (acked < required) {
      throw new HttpError(504, 'ack_timeout', `stored locally, but only ${acked} of ${required} peers acknowledged in time; replication continues`, {
        acked,
        required,
        version,
      });
    }
    ctx.status = status;
    ctx.body = { ...body, acked, required };
  }

  router.get('/files', (ctx) => {
    const prefix = typeof ctx.query.prefix === 'string' ? ctx.query.prefix : '';
    const limitRaw = ctx.query.limit;
    const limit = limitRaw === undefined ? 1000 : Number(limitRaw);
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) throw new HttpError(400, 'bad_query', `limit must be an integer from 1 to ${MAX_LIST_LIMIT}`);
    if (Array.isArray(ctx.query.prefix) || Array.isArray(ctx.query.cursor)) throw new HttpError(400, 'bad_query', 'prefix and cursor may be given once');
    let after: string | undefined;
    if (typeof ctx.query.cursor === 'string' && ctx.query.cursor !== '') {
      after = Buffer.from(ctx.query.cursor, 'base64url').toString('utf8');
      if (Buffer.from(after).toString('base64url') !== ctx.query.cursor) throw new HttpError(400, 'bad_query', 'cursor is not one this server issued');
    }
    const page = store.list(prefix, limit, after);
    ctx.body = { entries: page.entries.map(describe), nextCursor: page.next === undefined ? null : Buffer.from(page.next).toString('base64url') };
  });

  router.put('/files/{*path}', async (ctx) => {
    const path = filePathOf(ctx);
    const size = contentLengthOf(ctx, config.maxBodyBytes);
    const sha256 = sha256Of(ctx);
    const contentType = contentTypeOf(ctx);
    ackModeOf(ctx, config.defaultAck); // reject a bad header before reading the body
    const existed = store.get(path)?.deleted === false;
    const e = await store.put(path, ctx.req as AsyncIterable<Buffer>, size, { ...conditionsOf(ctx), contentType, ...(sha256 ? { sha256 } : {}) });
    ctx.set('ETag', etagOf(e));
    await acknowledge(ctx, path, e.version, describe(e), existed ? 200 : 201);
  });

  router.del('/files/{*path}', async (ctx) => {
    const path = filePathOf(ctx);
    ackModeOf(ctx, config.defaultAck);
    const t = await store.delete(path, conditionsOf(ctx));
    await acknowledge(ctx, path, t.version, { path, version: t.version, deleted: true }, 200);
  });

  router.get('/files/{*path}', async (ctx) => {
    const path = filePathOf(ctx);
    const entry = store.get(path);
    if (!entry || entry.deleted) {
      if (replicator.catchingUp && !ctx.get(PROXIED_HEADER) && entry === undefined && (await proxyFromPeer(ctx))) return;
      throw new HttpError(404, 'not_found', `no file at ${path}`);
    }
    setFileHeaders(ctx, entry);
    const inm = conditionsOf(ctx).ifNoneMatch;
    if (inm && (inm === '*' || inm.includes(etagOf(entry)))) {
      ctx.status = 304;
      return;
    }
    const ifRange = ctx.get('if-range');
    const range = ifRange && ifRange !== etagOf(entry) ? ({ kind: 'none' } as const) : parseRange(ctx.get('range'), entry.size);
    if (range.kind === 'unsatisfiable') {
      ctx.set('Content-Range', `bytes */${entry.size}`);
      throw new HttpError(416, 'range_not_satisfiable', `the file has ${entry.size} bytes`);
    }
    const [start, end] = range.kind === 'partial' ? [range.start, range.end] : [0, entry.size - 1];
    ctx.status = range.kind === 'partial' ? 206 : 200;
    if (range.kind === 'partial') ctx.set('Content-Range', `bytes ${start}-${end}/${entry.size}`);
    if (ctx.method === 'HEAD') {
      ctx.body = null;
      ctx.length = entry.size === 0 ? 0 : end - start + 1;
      return;
    }
    await sendBytes(ctx, path, entry, start, end);
  });

  /** Small files are read whole; large ones stream from an open handle so memory stays flat. */
  async function sendBytes(ctx: Context, path: string, entry: FileEntry, start: number, end: number): Promise<void> {
    if (entry.size <= INLINE_MAX_BYTES) {
      const small = store.readSmall(path);
      if (!small || small.entry !== entry) throw new HttpError(503, 'busy', 'the file changed while being read; retry');
      ctx.body = start === 0 && end === entry.size - 1 ? small.data : small.data.subarray(start, end + 1);
      return;
    }
    const opened = await store.openFile(path);
    if (!opened || opened.entry !== entry) {
      await opened?.fh.close();
      throw new HttpError(503, 'busy', 'the file changed while being read; retry');
    }
    ctx.body = opened.fh.createReadStream({ start, end, highWaterMark: 64 * 1024 });
    ctx.length = end - start + 1;
  }

  /** While catching up, a file this node lacks is served from the first peer that has it. */
  async function proxyFromPeer(ctx: Context): Promise<boolean> {
    const order = replicator.status().sort((a, b) => Number(b.up) - Number(a.up));
    for (const p of order) {
      let res: IncomingMessage;
      try {
        const headers: Record<string, string> = { [PROXIED_HEADER]: '1' };
        if (ctx.get('range')) headers.range = ctx.get('range');
        res = await peerRequest(p, config.token, { method: ctx.method, path: ctx.path, headers, timeoutMs: 10_000 });
      } catch {
        continue;
      }
      if (res.statusCode !== 200 && res.statusCode !== 206) {
        res.resume();
        continue;
      }
      ctx.status = res.statusCode;
      for (const h of FORWARDED_HEADERS) {
        const v = res.headers[h];
        if (typeof v === 'string') ctx.set(h, v);
      }
      ctx.set('X-FileCluster-Served-By', p.id);
      if (ctx.method === 'HEAD') {
        res.resume();
        ctx.body = null;
      } else {
        ctx.body = res;
      }
      return true;
    }
    return false;
  }

  return router;
}
