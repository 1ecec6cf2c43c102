import { test } from 'node:test';
import assert from 'node:assert/strict';
import { phases } from '../../../operator/src/controllers/filecluster/reconcile.ts';

test('a peer-list change is split into queued, read, plan, status and push time', () => {
  assert.deepEqual(phases({ seenAt: 1000, start: 1040, read: 1100, status: 1105, pushed: 1150 }, 1170), {
    seenAt: 1000,
    queuedMs: 40,
    readMs: 60,
    planMs: 5,
    statusMs: 45,
    pushMs: 20,
  });
});

test('without a membership event or a status write the missing phases count as zero', () => {
  assert.deepEqual(phases({ seenAt: undefined, start: 1000, read: 1030 }, 1050), { readMs: 30, planMs: 0, statusMs: 0, pushMs: 20 });
});
