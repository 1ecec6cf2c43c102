import { test } from 'node:test';
import assert from 'node:assert/strict';
import { desiredPeers, memberPods, nextPeerState, pushTargets, samePeers } from '../../../../../operator/src/controllers/filecluster/membership.ts';
import { pod } from './fixtures.ts';

test('membership is the Ready, addressed, non-terminating pods below the desired scale, by ordinal', () => {
  const members = memberPods('fc', [
    pod('fc-10', { ip: '127.0.0.12' }),
    pod('fc-2', { ip: '127.0.0.4' }),
    pod('fc-0', { ip: '127.0.0.2' }),
    pod('fc-1', { ip: '127.0.0.3', ready: false }),
    pod('fc-3', { terminating: true, ip: '127.0.0.5' }),
    pod('fc-4'),
    pod('other-0', { ip: '127.0.0.9' }),
    pod('fc-x', { ip: '127.0.0.9' }),
  ]);
  assert.deepEqual(
    members.map((m) => m.name),
    ['fc-0', 'fc-1', 'fc-2', 'fc-3', 'fc-4', 'fc-10'],
  );
  assert.deepEqual(desiredPeers(members, 11), [
    { id: 'fc-0', url: 'http://127.0.0.2:8080' },
    { id: 'fc-2', url: 'http://127.0.0.4:8080' },
    { id: 'fc-10', url: 'http://127.0.0.12:8080' },
  ]);
  // Scaling to 2 leaves fc-2 and fc-10 out of the list, but they still get it pushed to drain; fc-1 gets
  // it before it is Ready (it needs the list to catch up from).
  assert.deepEqual(
    desiredPeers(members, 2).map((p) => p.id),
    ['fc-0'],
  );
  assert.deepEqual(
    pushTargets(members).map((p) => p.name),
    ['fc-0', 'fc-1', 'fc-2', 'fc-10'],
  );
  assert.deepEqual(pushTargets(memberPods('fc', [pod('fc-0', { ip: '127.0.0.2', running: false, ready: false })])), [], 'a pod whose containers have not started');
});

test('IPv6 pod addresses are bracketed in peer URLs', () => {
  const members = memberPods('fc', [pod('fc-0', { ip: 'fd00::1' })]);
  assert.deepEqual(desiredPeers(members, 1), [{ id: 'fc-0', url: 'http://[fd00::1]:8080' }]);
});

test('the peer generation bumps only when the set changes, not its order', () => {
  const a = [
    { id: 'fc-0', url: 'http://127.0.0.2:8080' },
    { id: 'fc-1', url: 'http://127.0.0.3:8080' },
  ];
  const first = nextPeerState({ peers: [], generation: 0 }, a);
  assert.deepEqual(first, { peers: a, generation: 1, changed: true });
  const same = nextPeerState({ peers: first.peers, generation: 1 }, [...a].reverse());
  assert.equal(same.changed, false);
  assert.equal(same.generation, 1);
  const moved = nextPeerState({ peers: a, generation: 1 }, [a[0]!, { id: 'fc-1', url: 'http://127.0.0.7:8080' }]);
  assert.equal(moved.changed, true);
  assert.equal(moved.generation, 2);
  assert.equal(samePeers(a, a.slice(1)), false);
  // An empty list at generation 0 is still published once, so pods learn they are alone.
  assert.equal(nextPeerState({ peers: [], generation: 0 }, []).generation, 1);
});
