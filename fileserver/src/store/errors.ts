// Failures the store reports in its own terms; `toHttpError` (../http/errors.ts) decides what a client sees.
export type StoreErrorKind = 'precondition_failed' | 'not_found' | 'body_length_mismatch' | 'sha256_mismatch' | 'busy' | 'damaged' | 'disk_full' | 'storage_failed';

export class StoreError extends Error {
  readonly kind: StoreErrorKind;

  constructor(kind: StoreErrorKind, message: string, options?: ErrorOptions) {
    super(message, options);
    this.kind = kind;
  }
}

/** The data directory cannot be used as it is: `Store.open` refuses to start (fail-stop). */
export class StoreOpenError extends Error {
  readonly file: string;

  constructor(file: string, problem: string, options?: ErrorOptions) {
    super(`${file}: ${problem}`, options);
    this.file = file;
  }
}
