import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PeerTokens } from '../../../../fileserver/src/replication/peer-client.ts';

const a = { id: 'a', url: 'http://127.0.0.1:1' };
const b = { id: 'b', url: 'http://127.0.0.1:2' };

test('without a previous token: one token, accepted and sent, never switched', () => {
  const t = new PeerTokens('now');
  assert.deepEqual(t.accepted, ['now']);
  assert.equal(t.for(a), 'now');
  assert.equal(t.rejected(a, 'now'), false);
  assert.equal(t.for(a), 'now');
});

test('during a rotation: both accepted; a peer that refuses one token is sent the other, per peer', () => {
  const t = new PeerTokens('now', 'before');
  assert.deepEqual(t.accepted, ['now', 'before']);
  assert.equal(t.for(a), 'now');
  assert.equal(t.rejected(a, 'now'), true);
  assert.equal(t.for(a), 'before', 'a peer still on the previous token');
  assert.equal(t.for(b), 'now', 'other peers keep the current token');
  // The peer restarted with only the new token: it refuses the previous one, and gets the current again.
  assert.equal(t.rejected(a, 'before'), true);
  assert.equal(t.for(a), 'now');
});
