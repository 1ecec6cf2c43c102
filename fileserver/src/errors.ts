import { StoreError, type StoreErrorKind } from './store/errors.ts';

/** An error that maps to an HTTP answer `{ error: code, message }`. */
export class HttpError extends Error {
  readonly status: number;
  readonly code: string;
  readonly details: Record<string, unknown> | undefined;
  /** Response headers that go out with the error (name, value, name, value...). */
  readonly headers: string[];

  constructor(status: number, code: string, message: string, details?: Record<string, unknown>, headers: string[] = []) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
    this.headers = headers;
  }
}

const DISK_FULL_CODES = new Set(['ENOSPC', 'EDQUOT']);

export function isDiskFull(err: unknown): boolean {
  return typeof err === 'object' && err !== null && DISK_FULL_CODES.has((err as NodeJS.ErrnoException).code ?? '');
}

export function errnoCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null ? (err as NodeJS.ErrnoException).code : undefined;
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

/** Maps a storage failure to the answer the client gets; anything unknown stays a 500. */
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
