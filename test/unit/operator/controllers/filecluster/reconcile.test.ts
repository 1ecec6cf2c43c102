import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { V1PersistentVolumeClaim } from '@kubernetes/client-node';
import { clusterClaims, phases } from '../../../../../operator/src/controllers/filecluster/reconcile.ts';

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

test("the cluster's data claims, in ordinal order, with their marks, sizes and nothing else", () => {
  const claim = (
    name: string,
    extra: { annotations?: Record<string, string>; requested?: string; capacity?: string; deleting?: boolean } = {},
  ): V1PersistentVolumeClaim => ({
    metadata: { name, ...(extra.annotations ? { annotations: extra.annotations } : {}), ...(extra.deleting ? { deletionTimestamp: new Date() } : {}) },
    ...(extra.requested ? { spec: { resources: { requests: { storage: extra.requested } } } } : {}),
    ...(extra.capacity ? { status: { capacity: { storage: extra.capacity } } } : {}),
  });
  const claims = [
    claim('data-files-2', { annotations: { 'filecluster.dev/joined': 'false' }, requested: '2Gi' }),
    claim('data-files-0', { annotations: { 'filecluster.dev/drained': 'true' }, requested: '1Gi', capacity: '1Gi' }),
    claim('data-files-1', { deleting: true }),
    claim('data-other-0'),
    claim('cache-files-0'),
  ];
  assert.deepEqual(clusterClaims('files', claims), [
    { name: 'data-files-0', ordinal: 0, joined: true, drained: true, requested: '1Gi', capacity: '1Gi' },
    { name: 'data-files-2', ordinal: 2, joined: false, drained: false, requested: '2Gi' },
  ]);
});
