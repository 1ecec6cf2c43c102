import type { IncomingHttpHeaders } from 'node:http';
import type { Context } from 'koa';
import { ACK_MODES, type AckMode } from '../../../contract/fileserver-settings.ts';
import { HttpError } from '../errors.ts';
import { parseUrlPath } from '../store/paths.ts';
import type { Conditions } from '../store/store.ts';

// The parsers below read the raw request headers, so the Koa routes and the handlers that answer on the
// raw response (file reads and writes) share them.

/** A request header as one string, '' when absent (the way Koa's `ctx.get` reads it). */
function header(h: IncomingHttpHeaders, name: string): string {
  const v = h[name];
  return v === undefined ? '' : Array.isArray(v) ? v.join(', ') : v;
}

/** The validated file path from the still-encoded path after `/files/`. */
export function filePathOf(rawPath: string): string {
  const r = parseUrlPath(rawPath);
  if (!r.ok) throw new HttpError(r.status, r.code, r.message);
  return r.path;
}

/** An `If-Match` / `If-None-Match` value: `*` or the listed entity tags. */
export function etagList(v: string): string[] | '*' {
  if (v.trim() === '*') return '*';
  return v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

export function conditionsOf(h: IncomingHttpHeaders): Conditions {
  const c: Conditions = {};
  const im = header(h, 'if-match');
  const inm = header(h, 'if-none-match');
  if (im) c.ifMatch = etagList(im);
  if (inm) c.ifNoneMatch = etagList(inm);
  return c;
}

export function ackModeOf(h: IncomingHttpHeaders, fallback: AckMode): AckMode {
  const v = header(h, 'x-filecluster-ack');
  if (!v) return fallback;
  if (!(ACK_MODES as readonly string[]).includes(v)) {
    throw new HttpError(400, 'bad_header', `X-FileCluster-Ack must be one of ${ACK_MODES.join(', ')}`);
  }
  return v as AckMode;
}

/** The declared body length of a write; uploads must say how long they are. */
export function contentLengthOf(h: IncomingHttpHeaders, max: number): number {
  const v = header(h, 'content-length');
  if (!v) {
    if (header(h, 'transfer-encoding')) throw new HttpError(411, 'length_required', 'uploads need a Content-Length header');
    return 0;
  }
  if (!/^\d{1,16}$/.test(v)) throw new HttpError(400, 'bad_header', 'Content-Length is not a number');
  const n = Number(v);
  if (n > max) throw new HttpError(413, 'body_too_large', `the body is larger than the limit of ${max} bytes`, { limit: max });
  return n;
}

export function sha256Of(h: IncomingHttpHeaders): string | undefined {
  const v = header(h, 'content-sha256');
  if (!v) return undefined;
  if (!/^[0-9a-fA-F]{64}$/.test(v)) throw new HttpError(400, 'bad_header', 'Content-SHA256 must be 64 hex digits');
  return v.toLowerCase();
}

export function contentTypeOf(h: IncomingHttpHeaders): string {
  const v = header(h, 'content-type') || 'application/octet-stream';
  if (v.length > 256 || !/^[\x20-\x7e]+$/.test(v)) throw new HttpError(400, 'bad_header', 'Content-Type is too long or not printable ASCII');
  return v;
}

/** Reads a small JSON body (peer API), with the status codes that fit each way it can be wrong. */
export async function readJson(ctx: Context, limit = 1024 * 1024): Promise<unknown> {
  const type = ctx.get('content-type');
  if (!/^application\/json\b/i.test(type)) throw new HttpError(415, 'unsupported_media_type', 'the body must be application/json');
  const declared = ctx.get('content-length');
  if (declared && Number(declared) > limit) throw new HttpError(413, 'body_too_large', `the body is larger than ${limit} bytes`);
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of ctx.req as AsyncIterable<Buffer>) {
    n += c.length;
    if (n > limit) throw new HttpError(413, 'body_too_large', `the body is larger than ${limit} bytes`);
    chunks.push(c);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new HttpError(400, 'bad_json', 'the body is not valid JSON');
  }
}
