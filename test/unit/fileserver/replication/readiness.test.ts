import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { passMakesReady, type CatchUpState } from '../../../../fileserver/src/replication/readiness.ts';

describe('readiness after a catch-up pass', () => {
  const cases: Array<[CatchUpState[], boolean, string]> = [
    [[], true, 'no peers: the first pass is complete'],
    [['complete', 'complete'], true, 'caught up from every peer'],
    [['complete', 'unreachable'], true, 'an unreachable peer is passed over'],
    [['unreachable', 'unreachable'], true, 'no peer answers: a whole cluster starting at once gets going'],
    [['complete', 'failed'], false, 'a peer answered and then failed: its data is still to pull'],
    [['failed', 'unreachable'], false, 'a failure holds readiness back even next to an unreachable peer'],
    [['pending'], false, 'a peer not tried yet'],
  ];
  for (const [states, ready, why] of cases) {
    it(`${JSON.stringify(states)} -> ${ready ? 'ready' : 'not ready'}: ${why}`, () => assert.equal(passMakesReady(states), ready));
  }
});
