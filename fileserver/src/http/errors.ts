import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type Router from '@koa/router';
import type { Context, Next } from 'koa';
import { HttpError, errnoCode, isDiskFull } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { StoreError, type StoreErrorKind } from '../store/errors.ts';

const ABORT_CODES = new Set(['ECONNRESET', 'ERR_STREAM_PREMATURE_CLOSE', 'ECONNABORTED']);

/** The JSON body of every error answer: `{ error, message, ...details }`. */
export function errorAnswer(e: HttpError): Buffer {
  return Buffer.from(JSON.stringify({ error: e.code, message: e.message, ...e.details }));
}

/**
 * Whether the request still has body bytes in flight. An error answer then closes the connection:
 * the unread body would otherwise be drained before the connection is reused.
 */
export function unreadBody(req: IncomingMessage): boolean {
  if (req.complete) return false;
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

export function sendError(ctx: Context, e: HttpError): void {
  ctx.status = e.status;
  ctx.type = 'application/json';
  ctx.body = errorAnswer(e);
  for (let i = 0; i + 1 < e.headers.length; i += 2) ctx.set(e.headers[i]!, e.headers[i + 1]!);
  if (unreadBody(ctx.req)) ctx.set('Connection', 'close');
}

const STORE_STATUS: Record<StoreErrorKind, number> = {
  precondition_failed: 412,
  not_found: 404,
  body_length_mismatch: 400,
  sha256_mismatch: 400,
  busy: 503,
  damaged: 503,
  disk_full: 507,
  storage_failed: 503,
};

/** Maps a failure to the answer the client gets: store failures and a full disk by kind; anything unknown stays a 500. */
export function toHttpError(err: unknown): HttpError {
  if (err instanceof HttpError) return err;
  if (err instanceof StoreError) return new HttpError(STORE_STATUS[err.kind], err.kind === 'disk_full' ? 'insufficient_storage' : err.kind, err.message);
  if (isDiskFull(err)) return new HttpError(507, 'insufficient_storage', 'the data volume is full; nothing was stored');
  const status = typeof err === 'object' && err !== null ? (err as { status?: unknown }).status : undefined;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return new HttpError(status, `http_${status}`, (err as Error).message);
  }
  return new HttpError(500, 'internal', 'internal error');
}

/** The answer to a failure: a body cut off by the client is its 400, known failures keep their status, anything else is a 500. */
function answerTo(err: unknown): HttpError {
  const aborted = ABORT_CODES.has(errnoCode(err) ?? '') || (err as Error)?.message === 'aborted';
  return aborted ? new HttpError(400, 'request_aborted', 'the request body ended early') : toHttpError(err);
}

/**
 * Answers a failure on the raw response, for the handlers that run outside Koa (file reads and writes),
 * the same way `errorMiddleware` does; `headers` go out with it. Returns the status.
 */
export function sendRawError(logger: Logger, req: IncomingMessage, res: ServerResponse, err: unknown, headers: string[] = []): number {
  const e = answerTo(err);
  if (e.status >= 500) logger.error({ err, method: req.method, path: req.url }, 'request failed');
  if (res.headersSent) {
    res.destroy();
    return e.status;
  }
  const body = errorAnswer(e);
  const out = [...headers, ...e.headers, 'Content-Type', 'application/json; charset=utf-8', 'Content-Length', String(body.length)];
  if (unreadBody(req)) out.push('Connection', 'close');
  res.writeHead(e.status, out).end(body);
  return e.status;
}

/** Every failure becomes `{ error, message }` with its status; only unknown failures are 500 and logged as errors. */
export function errorMiddleware(logger: Logger) {
  return async (ctx: Context, next: Next) => {
    try {
      await next();
      // respond = false: the handler answered on the raw response itself (file reads and writes).
      if (ctx.respond !== false && ctx.status === 404 && ctx.body === undefined) throw new HttpError(404, 'not_found', `no route for ${ctx.method} ${ctx.path}`);
    } catch (err) {
      const e = answerTo(err);
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
  // Bytes after a request that was already answered (file reads answer synchronously, before the
  // parser reaches them): a second answer would trail the first one's body. Node's own handler checks
  // the same in-flight response; the connection just ends once that answer is out.
  if ((socket as Socket & { _httpMessage?: ServerResponse })._httpMessage?.headersSent) {
    socket.end();
    return;
  }
  const [status, reason] =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'Request Header Fields Too Large']
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'Request Timeout']
        : [400, 'Bad Request'];
  const body = JSON.stringify({ error: status === 400 ? 'bad_request' : status === 431 ? 'headers_too_large' : 'request_timeout', message: err.message });
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}
