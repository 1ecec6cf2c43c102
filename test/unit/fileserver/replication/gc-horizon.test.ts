import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ManifestItem } from '../../../../fileserver/src/replication/catchup-wire.ts';
import { entriesToForget, isStale, mayPullAbsent } from '../../../../fileserver/src/replication/gc-horizon.ts';

const item = (path: string, version: string, deleted = false): ManifestItem => ({ path, version, deleted, sha256: deleted ? '' : 'x' });
const DAY = 86_400_000;

describe('the tombstone horizon', () => {
  it('a node is stale after half the retention without a complete round, or before its first, but never without peers', () => {
    assert.equal(isStale(1_000, 1_000 + DAY / 2, DAY, true), false);
    assert.equal(isStale(1_000, 1_001 + DAY / 2, DAY, true), true);
    assert.equal(isStale(undefined, 0, DAY, true), true);
    assert.equal(isStale(undefined, 10 * DAY, DAY, false), false);
  });

  it('pulls a file it lacks below its horizon only when deferring to the peer or repairing damage; tombstones always', () => {
    const h = '0000000000030000-c';
    const old = item('p', '0000000000020000-b');
    assert.equal(mayPullAbsent(old, { horizon: h, trustPeer: false, wanted: () => false }), false);
    assert.equal(mayPullAbsent(old, { horizon: h, trustPeer: true, wanted: () => false }), true);
    assert.equal(mayPullAbsent(old, { horizon: h, trustPeer: false, wanted: (p) => p === 'p' }), true);
    assert.equal(mayPullAbsent(item('p', '0000000000020000-b', true), { horizon: h, trustPeer: false, wanted: () => false }), true);
    assert.equal(mayPullAbsent(item('p', '0000000000040000-b'), { horizon: h, trustPeer: false, wanted: () => false }), true);
    assert.equal(mayPullAbsent(old, { horizon: '', trustPeer: false, wanted: () => false }), true);
  });

  it('forgets the files the peer lacks below its horizon, except those still owed to it, tombstones and younger files', () => {
    const local = [
      item('deleted-there', '0000000000010000-a'),
      item('owed', '0000000000010000-a'),
      item('held-there', '0000000000010000-a'),
      item('young', '0000000000040000-a'),
      item('tomb', '0000000000010000-a', true),
    ];
    const forget = entriesToForget(local, new Set(['held-there']), { peerHorizon: '0000000000030000-c', owedToPeer: (p) => p === 'owed' });
    assert.deepEqual(
      forget.map((f) => f.path),
      ['deleted-there'],
    );
    assert.deepEqual(entriesToForget(local, new Set(), { peerHorizon: '', owedToPeer: () => false }), []);
  });
});
