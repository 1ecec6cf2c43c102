/** The ways a store operation refuses a request; the store speaks no protocol, `http/` maps each to a status. */
export type StoreRefusal = 'not_found' | 'busy' | 'precondition_failed' | 'body_length_mismatch' | 'sha256_mismatch';

/** A refusal the caller can act on (retry, fix the request); anything else the store throws is a fault. */
export class StoreError extends Error {
  readonly refusal: StoreRefusal;

  constructor(refusal: StoreRefusal, message: string) {
    super(message);
    this.name = 'StoreError';
    this.refusal = refusal;
  }
}
