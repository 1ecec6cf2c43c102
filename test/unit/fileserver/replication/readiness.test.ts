import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { passEndsProxying, passMakesReady, type CatchUpState } from '../../../../fileserver/src/replication/readiness.ts';

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

describe('the end of proxying reads of missing files', () => {
  const cases: Array<[CatchUpState[], boolean, string]> = [
    [[], false, 'no peers yet (a new pod in Kubernetes, ready before it is given any): its join is still to come'],
    [['unreachable'], false, 'nothing was caught up from'],
    [['complete', 'unreachable'], true, 'caught up from every peer that answers'],
    [['complete', 'failed'], false, 'the pass is retried'],
  ];
  for (const [states, ends, why] of cases) {
    it(`${JSON.stringify(states)} -> ${ends ? 'ends' : 'goes on'}: ${why}`, () => assert.equal(passEndsProxying(states), ends));
  }
});
