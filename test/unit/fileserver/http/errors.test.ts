import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HttpError } from '../../../../fileserver/src/errors.ts';
import { toHttpError } from '../../../../fileserver/src/http/errors.ts';
import { StoreError, type StoreErrorKind } from '../../../../fileserver/src/store/errors.ts';

test('each store failure becomes its HTTP status, with its kind as the error code and the message kept', () => {
  const expected: Record<StoreErrorKind, [number, string]> = {
    not_found: [404, 'not_found'],
    busy: [503, 'busy'],
    precondition_failed: [412, 'precondition_failed'],
    body_length_mismatch: [400, 'body_length_mismatch'],
    sha256_mismatch: [400, 'sha256_mismatch'],
    damaged: [503, 'damaged'],
    disk_full: [507, 'insufficient_storage'],
    storage_failed: [503, 'storage_failed'],
  };
  for (const [kind, [status, code]] of Object.entries(expected) as Array<[StoreErrorKind, [number, string]]>) {
    const answer = toHttpError(new StoreError(kind, `why ${kind}`));
    assert.deepEqual([answer.status, answer.code, answer.message], [status, code, `why ${kind}`]);
  }
});

test('a full disk is 507, an HttpError passes through, and an unknown failure is a 500 that hides its message', () => {
  assert.equal(toHttpError(Object.assign(new Error('no space'), { code: 'ENOSPC' })).status, 507);
  const own = new HttpError(409, 'stale_generation', 'older');
  assert.equal(toHttpError(own), own);
  const unknown = toHttpError(new Error('secret detail'));
  assert.deepEqual([unknown.status, unknown.code, unknown.message], [500, 'internal', 'internal error']);
});
