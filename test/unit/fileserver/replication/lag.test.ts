import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { backoffMs } from '../../../../fileserver/src/replication/backoff.ts';
import { lagSeconds, requiredAcks } from '../../../../fileserver/src/replication/lag.ts';

describe('lag, acknowledgement counts and backoff', () => {
  it('lag is exactly 0 with nothing pending and grows with the oldest pending change', () => {
    assert.equal(lagSeconds(undefined, 1_000_000), 0);
    assert.equal(lagSeconds(1_000_000 - 2500, 1_000_000), 2.5);
    assert.equal(lagSeconds(1_000_010, 1_000_000), 0);
  });

  it('majority counts this node as one; all needs every peer', () => {
    assert.deepEqual(
      [0, 1, 2, 3, 4].map((n) => requiredAcks('majority', n)),
      [0, 1, 1, 2, 2],
    );
    assert.deepEqual(
      [0, 1, 2, 3].map((n) => requiredAcks('all', n)),
      [0, 1, 2, 3],
    );
    assert.equal(requiredAcks('local', 5), 0);
  });

  it('backs off exponentially with jitter up to a cap', () => {
    assert.equal(backoffMs(1, 0), 50);
    assert.equal(backoffMs(1, 1), 100);
    assert.equal(backoffMs(4, 1), 800);
    assert.ok(backoffMs(4, 0.5) > 400 && backoffMs(4, 0.5) < 800);
    assert.equal(backoffMs(40, 1), 30_000);
    assert.equal(backoffMs(40, 0), 15_000);
  });
});
