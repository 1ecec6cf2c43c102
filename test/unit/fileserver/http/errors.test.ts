import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HttpError } from '../../../../fileserver/src/errors.ts';
import { toHttpError } from '../../../../fileserver/src/http/errors.ts';
import { StoreError, type StoreRefusal } from '../../../../fileserver/src/store/errors.ts';

test('each store refusal becomes its HTTP status, with the refusal as the error code and the message kept', () => {
  const expected: Record<StoreRefusal, number> = {
    not_found: 404,
    busy: 503,
    precondition_failed: 412,
    body_length_mismatch: 400,
    sha256_mismatch: 400,
  };
  for (const [refusal, status] of Object.entries(expected) as Array<[StoreRefusal, number]>) {
    const answer = toHttpError(new StoreError(refusal, `why ${refusal}`));
    assert.deepEqual([answer.status, answer.code, answer.message], [status, refusal, `why ${refusal}`]);
  }
});

test('a full disk is 507, an HttpError passes through, and an unknown failure is a 500 that hides its message', () => {
  assert.equal(toHttpError(Object.assign(new Error('no space'), { code: 'ENOSPC' })).status, 507);
  const own = new HttpError(409, 'stale_generation', 'older');
  assert.equal(toHttpError(own), own);
  const unknown = toHttpError(new Error('secret detail'));
  assert.deepEqual([unknown.status, unknown.code, unknown.message], [500, 'internal', 'internal error']);
});
