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
