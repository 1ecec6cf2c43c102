import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { V1Secret, V1StatefulSet } from '@kubernetes/client-node';
import { clientToken, nextPeerTokens, peerTokensData, readPeerTokens, templateRolledOut } from '../../../../../operator/src/controllers/filecluster/token.ts';

test('a rotation moves in two rolled-out steps; a change waits for the rollout before it', () => {
  // First sight: the pods are given the Secret's token.
  assert.deepEqual(nextPeerTokens('a', undefined, false), { change: true, reason: 'TokenInitialized', tokens: { token: 'a', version: 1 } });
  assert.deepEqual(nextPeerTokens('a', { token: 'a', version: 1 }, true), { change: false, waiting: false });
  // The user puts a new token in the Secret while a rollout still runs: it waits.
  assert.deepEqual(nextPeerTokens('b', { token: 'a', version: 1 }, false), { change: false, waiting: true });
  // Step 1: new token, the old one still accepted.
  const started = nextPeerTokens('b', { token: 'a', version: 1 }, true);
  assert.deepEqual(started, { change: true, reason: 'TokenRotationStarted', tokens: { token: 'b', previous: 'a', version: 2 } });
  // Until every pod runs step 1, nothing moves (not even for yet another token).
  assert.deepEqual(nextPeerTokens('b', { token: 'b', previous: 'a', version: 2 }, false), { change: false, waiting: false });
  assert.deepEqual(nextPeerTokens('c', { token: 'b', previous: 'a', version: 2 }, false), { change: false, waiting: true });
  // Step 2: the previous token goes.
  assert.deepEqual(nextPeerTokens('b', { token: 'b', previous: 'a', version: 2 }, true), {
    change: true,
    reason: 'TokenRotationFinished',
    tokens: { token: 'b', version: 3 },
  });
  // A token changed during step 1 starts its own rotation only after step 2.
  assert.deepEqual(nextPeerTokens('c', { token: 'b', previous: 'a', version: 2 }, true), {
    change: true,
    reason: 'TokenRotationFinished',
    tokens: { token: 'b', version: 3 },
  });
  assert.deepEqual(nextPeerTokens('c', { token: 'b', version: 3 }, true), {
    change: true,
    reason: 'TokenRotationStarted',
    tokens: { token: 'c', previous: 'b', version: 4 },
  });
});

test('the operator calls pods with the token all of them accept', () => {
  assert.equal(clientToken({ token: 'b', previous: 'a', version: 2 }), 'a');
  assert.equal(clientToken({ token: 'b', version: 3 }), 'b');
});

test('the operator\u2019s Secret round-trips; a broken one reads as absent', () => {
  const secret = (data: Record<string, string>, version?: string): V1Secret => {
    const labels: Record<string, string> = version === undefined ? {} : { 'filecluster.dev/token-version': version };
    return { metadata: { labels }, data };
  };
  assert.deepEqual(readPeerTokens(secret(peerTokensData({ token: 'b', previous: 'a', version: 2 }), '2')), { token: 'b', previous: 'a', version: 2 });
  assert.deepEqual(readPeerTokens(secret(peerTokensData({ token: 'b', version: 3 }), '3')), { token: 'b', version: 3 });
  assert.equal(readPeerTokens(undefined), undefined);
  assert.equal(readPeerTokens(secret(peerTokensData({ token: 'b', version: 3 }))), undefined, 'no version');
  assert.equal(readPeerTokens(secret({ token: '' }, '1')), undefined, 'empty token');
});

test('a template is rolled out once the StatefulSet carries it and every pod runs it and is Ready', () => {
  const sts = (over: Partial<NonNullable<V1StatefulSet['status']>>, hash = 'h', generation = 2): V1StatefulSet => ({
    metadata: { generation, annotations: { 'filecluster.dev/template-hash': hash } },
    status: { replicas: 3, updatedReplicas: 3, observedGeneration: 2, currentRevision: 'r2', updateRevision: 'r2', ...over },
  });
  assert.equal(templateRolledOut(sts({}), 'h'), true);
  assert.equal(templateRolledOut(sts({}, 'old'), 'h'), false, 'another template applied');
  assert.equal(templateRolledOut(sts({}, 'h', 3), 'h'), false, 'not yet seen by the StatefulSet controller');
  assert.equal(templateRolledOut(sts({ currentRevision: 'r1' }), 'h'), false, 'pods still on the old revision');
  assert.equal(templateRolledOut(sts({ updatedReplicas: 2 }), 'h'), false);
});
