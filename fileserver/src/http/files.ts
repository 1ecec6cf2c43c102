import Router from '@koa/router';
import type { Context } from 'koa';
import { HttpError } from '../errors.ts';
import { canonicalPrefix } from '../store/paths.ts';
import type { Store } from '../store/store.ts';
import { FILE_ROUTE, type FileReads } from './reads.ts';
import { describeEntry, type FileWrite } from './writes.ts';

const MAX_LIST_LIMIT = 10_000;

export interface FilesDeps {
  store: Store;
  serveRead: FileReads;
  serveWrite: FileWrite;
}

export function filesRouter({ store, serveRead, serveWrite }: FilesDeps): Router {
  const router = new Router();

  router.get('/files', (ctx) => {
    const prefix = typeof ctx.query.prefix === 'string' ? canonicalPrefix(ctx.query.prefix) : '';
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
    ctx.body = { entries: page.entries.map(describeEntry), nextCursor: page.next === undefined ? null : Buffer.from(page.next).toString('base64url') };
  });

  // Reads and writes are answered on the raw response (reads.ts, writes.ts); the API listener sends the
  // plain spelling `/files/<path>` there directly, these routes take every other spelling the router matches.
  const raw = (serve: (req: Context['req'], res: Context['res'], rawPath: string) => void | Promise<void>) => (ctx: Context) => {
    ctx.respond = false;
    return serve(ctx.req, ctx.res, ctx.path.slice('/files/'.length));
  };
  router.put(FILE_ROUTE, raw(serveWrite));
  router.del(FILE_ROUTE, raw(serveWrite));
  router.get(FILE_ROUTE, raw(serveRead));

  return router;
}
