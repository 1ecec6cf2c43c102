import { test } from 'node:test';
import assert from 'node:assert/strict';
import { POLL_REQUEUE_MS, requeueAfter, TOKEN_SECRET_REQUEUE_MS, WATCHED_REQUEUE_MS, type RequeueInput } from '../../../operator/src/controllers/filecluster/requeue.ts';

const steady: RequeueInput = { conflict: false, terminal: false, progress: 'Reconciled', pushFailures: 0, acknowledged: 3, targets: 3 };

test('a reconciled cluster waits for the periodic resync', () => {
  assert.equal(requeueAfter(steady), undefined);
});

test('a pod holding a newer generation is answered at once', () => {
  assert.equal(requeueAfter({ ...steady, conflict: true, pushFailures: 1 }), 0);
});

test('what only polling shows comes back within a second: backlogs, failed or pending pushes', () => {
  assert.equal(requeueAfter({ ...steady, progress: 'ScaleDownWaitingForReplication' }), POLL_REQUEUE_MS);
  assert.equal(requeueAfter({ ...steady, progress: 'RollingUpdateWaitingForReplication' }), POLL_REQUEUE_MS);
  assert.equal(requeueAfter({ ...steady, pushFailures: 1, acknowledged: 2 }), POLL_REQUEUE_MS);
  assert.equal(requeueAfter({ ...steady, acknowledged: 2 }), POLL_REQUEUE_MS);
  assert.equal(requeueAfter({ ...steady, progress: 'ScalingUp', acknowledged: 2 }), POLL_REQUEUE_MS);
});

test('a terminal error is not retried, whatever else is pending: the next change queues the cluster', () => {
  assert.equal(requeueAfter({ ...steady, terminal: true, degradedReason: 'ApplyRejected' }), undefined);
  assert.equal(requeueAfter({ ...steady, terminal: true, degradedReason: 'ApplyRejected', progress: 'ScaleDownWaitingForReplication', acknowledged: 2 }), undefined);
});

test('waiting for pods or the StatefulSet relies on their watches, with a slow safety net', () => {
  for (const progress of ['Creating', 'ScalingUp', 'ScalingDown', 'RollingUpdate'] as const) {
    assert.equal(requeueAfter({ ...steady, progress }), WATCHED_REQUEUE_MS, progress);
  }
  assert.equal(requeueAfter({ ...steady, progress: 'Creating', acknowledged: 0, targets: 0 }), WATCHED_REQUEUE_MS);
});

test('a missing token Secret or key is looked at again every 30 s', () => {
  assert.equal(requeueAfter({ ...steady, degradedReason: 'TokenSecretMissing', targets: 0, acknowledged: 0 }), TOKEN_SECRET_REQUEUE_MS);
  assert.equal(requeueAfter({ ...steady, degradedReason: 'TokenSecretKeyMissing' }), TOKEN_SECRET_REQUEUE_MS);
});
