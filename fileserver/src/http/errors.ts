import type { Socket } from 'node:net';
import type Router from '@koa/router';
import type { Context, Next } from 'koa';
import { HttpError, errnoCode, toHttpError } from '../errors.ts';
import type { Logger } from '../logger.ts';

const ABORT_CODES = new Set(['ECONNRESET', 'ERR_STREAM_PREMATURE_CLOSE', 'ECONNABORTED']);

export function sendError(ctx: Context, e: HttpError): void {
  ctx.status = e.status;
  ctx.body = { error: e.code, message: e.message, ...e.details };
  // An unread request body would otherwise be drained before the connection is reused.
  if (!ctx.req.complete) ctx.set('Connection', 'close');
}

/** Every failure becomes `{ error, message }` with its status; only unknown failures are 500 and logged as errors. */
export function errorMiddleware(logger: Logger) {
  return async (ctx: Context, next: Next) => {
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) throw new HttpError(404, 'not_found', `no route for ${ctx.method} ${ctx.path}`);
    } catch (err) {
      const aborted = ABORT_CODES.has(errnoCode(err) ?? '') || (err as Error)?.message === 'aborted';
      const e = aborted ? new HttpError(400, 'request_aborted', 'the request body ended early') : toHttpError(err);
      if (e.status >= 500) logger.error({ err, method: ctx.method, path: ctx.path }, 'request failed');
      sendError(ctx, e);
    }
  };
}

/**
 * A known path asked with a method it does not serve, including methods no route knows (PROPFIND):
 * 405 with `Allow` and the JSON error body. The router's own answer would be a bare 501 for unknown
 * methods, which reads as a server fault. A path whose only match is path-less middleware stays 404.
 */
export function methodNotAllowed(router: Router) {
  const allowed = router.allowedMethods();
  return async (ctx: Context, next: Next) => {
    await allowed(ctx as Parameters<typeof allowed>[0], next);
    if (ctx.status !== 405 && ctx.status !== 501) return;
    if (ctx.body !== undefined && ctx.body !== null) return;
    const allow = ctx.response.get('Allow');
    if (!allow) {
      ctx.remove('Allow');
      throw new HttpError(404, 'not_found', `no route for ${ctx.method} ${ctx.path}`);
    }
    sendError(ctx, new HttpError(405, 'method_not_allowed', `${ctx.method} is not allowed on ${ctx.path}; allowed: ${allow}`));
  };
}

/** Requests that never reach Koa (unparseable request line, oversized headers) still get a JSON answer. */
export function onClientError(err: Error & { code?: string }, socket: Socket): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const [status, reason] =
    err.code === 'HPE_HEADER_OVERFLOW' ? [431, 'Request Header Fields Too Large'] : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? [408, 'Request Timeout'] : [400, 'Bad Request'];
  const body = JSON.stringify({ error: status === 400 ? 'bad_request' : status === 431 ? 'headers_too_large' : 'request_timeout', message: err.message });
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}
