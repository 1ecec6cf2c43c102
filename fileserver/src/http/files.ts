import Router from '@koa/router';
import type { Context } from 'koa';
import type { Config } from '../config.ts';
import { HttpError } from '../errors.ts';
import type { Replicator } from '../replication/replicator.ts';
import type { FileEntry } from '../store/state.ts';
import { etagOf, type Store } from '../store/store.ts';
import { versionTimeMs, type Version } from '../store/version.ts';
import { FILE_ROUTE, type FileReads } from './reads.ts';
import { ackModeOf, conditionsOf, contentLengthOf, contentTypeOf, filePathOf, sha256Of } from './request.ts';

const MAX_LIST_LIMIT = 10_000;

export interface FilesDeps {
  store: Store;
  replicator: Replicator;
  config: Config;
  serveRead: FileReads;
}

function describe(e: FileEntry) {
  return { path: e.path, size: e.size, sha256: e.sha256, version: e.version, modified: new Date(versionTimeMs(e.version)).toISOString() };
}

export function filesRouter({ store, replicator, config, serveRead }: FilesDeps): Router {
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

  router.put(FILE_ROUTE, async (ctx) => {
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

  router.del(FILE_ROUTE, async (ctx) => {
    const path = filePathOf(ctx);
    ackModeOf(ctx, config.defaultAck);
    const t = await store.delete(path, conditionsOf(ctx));
    await acknowledge(ctx, path, t.version, { path, version: t.version, deleted: true }, 200);
  });

  // Reads are answered on the raw response (see reads.ts); the API listener sends the plain spelling
  // `/files/<path>` there directly, this route takes every other spelling the router matches.
  router.get(FILE_ROUTE, (ctx) => {
    ctx.respond = false;
    return serveRead(ctx.req, ctx.res, ctx.path.slice('/files/'.length));
  });

  return router;
}
