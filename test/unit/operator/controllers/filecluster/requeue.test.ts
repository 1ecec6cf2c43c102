import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  BLOCKED_MAX_REQUEUE_MS,
  POLL_REQUEUE_MS,
  requeueAfter,
  TOKEN_SECRET_REQUEUE_MS,
  WATCHED_REQUEUE_MS,
  type RequeueInput,
} from '../../../../../operator/src/controllers/filecluster/requeue.ts';

const steady: RequeueInput = { conflict: false, terminal: false, progress: 'Reconciled', pushFailures: 0, acknowledged: 3, targets: 3, blockedMs: 0, joining: false };

test('a reconciled cluster waits for the periodic resync', () => {
  assert.equal(requeueAfter(steady), undefined);
});

test('a reconciled cluster that names a token Secret reads it again: that Secret is not watched', () => {
  assert.equal(requeueAfter({ ...steady, userTokenSecret: true }), TOKEN_SECRET_REQUEUE_MS);
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

test('a blocked scale-down polls every second for a minute, then backs off to 30 s', () => {
  const blocked = { ...steady, progress: 'ScaleDownWaitingForReplication' as const };
  const table: Array<[number, number]> = [
    [0, POLL_REQUEUE_MS],
    [59_000, POLL_REQUEUE_MS],
    [120_000, 6_000],
    [300_000, 15_000],
    [3_600_000, BLOCKED_MAX_REQUEUE_MS],
  ];
  for (const [blockedMs, want] of table) assert.equal(requeueAfter({ ...blocked, blockedMs }), want, `blocked for ${blockedMs} ms`);
});

test('pods waiting to join the client Service are polled: whether they caught up is only seen by asking', () => {
  assert.equal(requeueAfter({ ...steady, progress: 'ScalingUp', joining: true }), POLL_REQUEUE_MS);
});
