import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { clockSkewMessage, judgeClock, peerClockView, type ClockSample, type LocalClock } from '../../../../fileserver/src/replication/clock-skew.ts';

const DRIFT = 60_000;
const YEARS_10 = 10 * 365 * 86_400_000;
const WALL = 1_800_000_000_000;
/** This node's clocks: the wall at WALL + `fastBy`, the next version at the wall unless given. */
const local = (fastBy = 0, nextVersionMs = WALL + fastBy): LocalClock => ({ nextVersionMs, wallMs: WALL + fastBy, monoMs: 1000 });
/** A reading of a peer whose clock is right (WALL), taken `ageMs` ago with a round trip of `rttMs`. */
const sample = (peer: string, o: { peerBehindMs?: number; ageMs?: number; rttMs?: number } = {}): ClockSample => {
  const age = o.ageMs ?? 0;
  const rtt = o.rttMs ?? 2;
  return { peer, peerClockMs: WALL - age - (o.peerBehindMs ?? 0), sentMonoMs: 1000 - age - rtt, answeredMonoMs: 1000 - age };
};

describe('judgeClock', () => {
  const cases: Array<{ name: string; samples: ClockSample[]; now: LocalClock; refuse: boolean; aheadOf: string[] }> = [
    { name: 'clocks agree', samples: [sample('b'), sample('c')], now: local(), refuse: false, aheadOf: [] },
    { name: 'no peer known yet: nothing can be told', samples: [], now: local(YEARS_10), refuse: false, aheadOf: [] },
    { name: 'ten years fast, both peers known', samples: [sample('b'), sample('c')], now: local(YEARS_10), refuse: true, aheadOf: ['b', 'c'] },
    { name: 'ten years fast, only one peer known', samples: [sample('b')], now: local(YEARS_10), refuse: true, aheadOf: ['b'] },
    { name: 'within the bound', samples: [sample('b'), sample('c')], now: local(DRIFT - 5_000), refuse: false, aheadOf: [] },
    { name: 'just beyond the bound', samples: [sample('b'), sample('c')], now: local(DRIFT + 5_000), refuse: true, aheadOf: ['b', 'c'] },
    {
      name: "one peer far behind: that peer's fault, the others keep writing",
      samples: [sample('b'), sample('c', { peerBehindMs: YEARS_10 })],
      now: local(),
      refuse: false,
      aheadOf: ['c'],
    },
    {
      name: 'ahead of two of three peers',
      samples: [sample('b', { peerBehindMs: YEARS_10 }), sample('c', { peerBehindMs: YEARS_10 }), sample('d')],
      now: local(),
      refuse: true,
      aheadOf: ['b', 'c'],
    },
    {
      name: 'wall clock right, but the next version carries the time of versions made while it was wrong',
      samples: [sample('b'), sample('c')],
      now: local(0, WALL + YEARS_10),
      refuse: true,
      aheadOf: ['b', 'c'],
    },
    {
      name: 'an old reading: the peer has moved on by the monotonic time since',
      samples: [sample('b', { ageMs: 3_600_000 }), sample('c', { ageMs: 3_600_000 })],
      now: local(),
      refuse: false,
      aheadOf: [],
    },
    {
      name: 'a slow answer (this node paused 2 min mid-reading) does not make it look ahead',
      samples: [sample('b', { rttMs: 120_000 }), sample('c', { rttMs: 120_000 })],
      now: local(),
      refuse: false,
      aheadOf: [],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const v = judgeClock(c.samples, c.now, DRIFT);
      assert.equal(v.refuse, c.refuse);
      assert.deepEqual(
        v.aheadOf.map((p) => p.peer),
        c.aheadOf,
      );
    });
  }

  it('reports how far the next version lies ahead of the wall clock', () => {
    assert.equal(judgeClock([], local(0, WALL + 90_000), DRIFT).versionAheadOfWallMs, 90_000);
    assert.equal(judgeClock([], local(), DRIFT).versionAheadOfWallMs, 0);
  });
});

describe('peerClockView', () => {
  it("gives the peer's offset from the middle of the round trip, the lead from its start", () => {
    const v = peerClockView({ peer: 'b', peerClockMs: WALL, sentMonoMs: 990, answeredMonoMs: 1000 }, local(30_000));
    // The peer read WALL between mono 990 and 1000, so at mono 1000 it reads WALL + 5 (WALL + 10 at most).
    assert.equal(v.offsetMs, 5 - 30_000);
    assert.equal(v.leadMs, 30_000 - 10);
  });
});

describe('clockSkewMessage', () => {
  it('names the offset, the peers and the bound', () => {
    const m = clockSkewMessage(judgeClock([sample('b'), sample('c')], local(YEARS_10), DRIFT), DRIFT);
    assert.match(m, new RegExp(`at least ${YEARS_10 / 1000} s ahead of 2 of the 2 peers whose clocks it knows \\(b, c\\)`));
    assert.match(m, /more than 60 s ahead/);
    assert.doesNotMatch(m, /holds versions/);
  });

  it('says so when the node holds versions from its future', () => {
    const m = clockSkewMessage(judgeClock([sample('b')], local(0, WALL + YEARS_10), DRIFT), DRIFT);
    assert.match(m, new RegExp(`holds versions ${YEARS_10 / 1000} s ahead of its own clock`));
  });
});
