import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { aheadBeyondDrift, compareVersions, encodeVersion, HybridClock, parseVersion, resolveIncoming } from '../../../../fileserver/src/store/version.ts';

describe('versions and the hybrid logical clock', () => {
  it('encodes so that string order is (time, counter, node id) order', () => {
    fc.assert(
      fc.property(
        fc.record({ ms: fc.integer({ min: 0, max: 2 ** 47 }), counter: fc.integer({ min: 0, max: 0xffff }), nodeId: fc.constantFrom('a', 'b', 'node-1') }),
        fc.record({ ms: fc.integer({ min: 0, max: 2 ** 47 }), counter: fc.integer({ min: 0, max: 0xffff }), nodeId: fc.constantFrom('a', 'b', 'node-1') }),
        (x, y) => {
          const tuple = (p: typeof x) => [p.ms, p.counter, p.nodeId] as const;
          const [a, b] = [tuple(x), tuple(y)];
          const expected = a[0] !== b[0] ? Math.sign(a[0] - b[0]) : a[1] !== b[1] ? Math.sign(a[1] - b[1]) : a[2] < b[2] ? -1 : a[2] > b[2] ? 1 : 0;
          assert.equal(compareVersions(encodeVersion(x), encodeVersion(y)), expected);
          assert.deepEqual(parseVersion(encodeVersion(x)), { ...x });
        },
      ),
    );
  });

  it('never goes backwards, even when the wall clock does', () => {
    const wall = [1000, 1000, 999, 500, 2000, 2000];
    const clock = new HybridClock('n1', () => wall.shift() ?? 2000);
    const seen = Array.from({ length: 6 }, () => clock.now());
    for (let i = 1; i < seen.length; i++) assert.ok(seen[i]! > seen[i - 1]!, `${seen[i]} > ${seen[i - 1]}`);
  });

  it('moves past versions it observes from other nodes', () => {
    const clock = new HybridClock('a', () => 1000);
    const remote = encodeVersion({ ms: 5000, counter: 7, nodeId: 'z' });
    clock.observe(remote);
    const next = clock.now();
    assert.ok(next > remote.replace('-z', '-a') && parseVersion(next)!.ms === 5000 && parseVersion(next)!.counter === 8);
  });

  it('the conflict rule converges whatever order changes arrive in', () => {
    const version = fc
      .record({ ms: fc.integer({ min: 0, max: 100 }), counter: fc.integer({ min: 0, max: 3 }), nodeId: fc.constantFrom('a', 'b', 'c') })
      .map(encodeVersion);
    fc.assert(
      fc.property(fc.array(version, { minLength: 1, maxLength: 20 }), fc.func(fc.integer()), (changes, key) => {
        const apply = (order: string[]) => order.reduce<string | undefined>((held, v) => (resolveIncoming(held, v) === 'apply' ? v : held), undefined);
        const shuffled = [...changes].sort((x, y) => key(x) - key(y));
        assert.equal(apply(changes), apply(shuffled));
        assert.equal(apply(changes), [...changes].sort().at(-1));
      }),
    );
  });

  it('refuses remote versions further ahead of the wall clock than the allowed drift, and only those', () => {
    const v = (ms: number) => encodeVersion({ ms, counter: 5, nodeId: 'z' });
    assert.equal(aheadBeyondDrift(v(160_000), 100_000, 60_000), undefined, 'exactly at the drift');
    assert.equal(aheadBeyondDrift(v(160_001), 100_000, 60_000), 60_001);
    assert.equal(aheadBeyondDrift(v(1), 100_000, 60_000), undefined, 'behind is fine');
    const clock = new HybridClock('a', () => 100_000, 60_000);
    assert.equal(clock.tooFarAhead(v(100_000 + 10 * 365 * 86_400_000)), 10 * 365 * 86_400_000);
    assert.equal(clock.tooFarAhead(v(150_000)), undefined);
    assert.equal(new HybridClock('a', () => 0).tooFarAhead(v(2 ** 47)), undefined, 'no limit unless configured');
  });

  it('settles one version with different content by the higher content, whatever the arrival order', () => {
    const v = encodeVersion({ ms: 1, counter: 0, nodeId: 'a' });
    const [lo, hi] = ['1'.repeat(64), 'e'.repeat(64)];
    assert.equal(resolveIncoming(v, v, lo, hi), 'apply');
    assert.equal(resolveIncoming(v, v, hi, lo), 'stale');
    assert.equal(resolveIncoming(v, v, hi, hi), 'stale');
    assert.equal(resolveIncoming(v, v, '', lo), 'apply', 'a file beats a delete of the same version');
    assert.equal(resolveIncoming(v, v, lo, undefined), 'stale', 'unknown content (an earlier release) changes nothing');
    const entry = fc.record({ ms: fc.integer({ min: 0, max: 3 }), content: fc.constantFrom('', lo, hi) }).map((e) => ({ version: encodeVersion({ ms: e.ms, counter: 0, nodeId: 'a' }), content: e.content }));
    fc.assert(
      fc.property(fc.array(entry, { minLength: 1, maxLength: 12 }), fc.func(fc.integer()), (changes, key) => {
        type Held = { version: string; content: string } | undefined;
        const apply = (order: typeof changes) => order.reduce<Held>((held, c) => (resolveIncoming(held?.version, c.version, held?.content, c.content) === 'apply' ? c : held), undefined);
        const shuffled = [...changes].sort((x, y) => key(x) - key(y));
        assert.deepEqual(apply(changes), apply(shuffled));
      }),
    );
  });

  it('treats an equal version as stale (a duplicate delivery is acknowledged and ignored)', () => {
    const v = encodeVersion({ ms: 1, counter: 0, nodeId: 'a' });
    assert.equal(resolveIncoming(v, v), 'stale');
    assert.equal(resolveIncoming(undefined, v), 'apply');
  });
});
