import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ownerOf, ownerRefusal, type OwnerView } from '../../../../fileserver/src/replication/owner.ts';

const paths = Array.from({ length: 2000 }, (_, i) => `dir/${i}.txt`);

describe('ownerOf (rendezvous hashing)', () => {
  it('is one member, the same whatever the order of the list', () => {
    for (const p of paths.slice(0, 200)) {
      const o = ownerOf(p, ['a', 'b', 'c']);
      assert.ok(['a', 'b', 'c'].includes(o));
      assert.equal(ownerOf(p, ['c', 'a', 'b']), o);
      assert.equal(ownerOf(p, ['b', 'c', 'a']), o);
    }
  });

  it('a single member owns everything', () => {
    for (const p of paths.slice(0, 50)) assert.equal(ownerOf(p, ['solo']), 'solo');
  });

  it('spreads paths over the members', () => {
    const counts = new Map<string, number>();
    for (const p of paths) counts.set(ownerOf(p, ['a', 'b', 'c', 'd']), (counts.get(ownerOf(p, ['a', 'b', 'c', 'd'])) ?? 0) + 1);
    for (const m of ['a', 'b', 'c', 'd']) assert.ok((counts.get(m) ?? 0) > paths.length / 8, `${m} owns ${counts.get(m)} of ${paths.length}`);
  });

  it('a member joining takes paths only for itself; one leaving moves only its own paths', () => {
    let moved = 0;
    for (const p of paths) {
      const before = ownerOf(p, ['a', 'b', 'c']);
      const joined = ownerOf(p, ['a', 'b', 'c', 'd']);
      if (joined !== before) {
        assert.equal(joined, 'd');
        moved++;
      }
      const left = ownerOf(p, ['a', 'c']);
      if (before !== 'b') assert.equal(left, before);
    }
    assert.ok(moved > 0 && moved < paths.length / 2);
  });

  it('refuses an empty member list', () => {
    assert.throws(() => ownerOf('x', []), /at least one member/);
  });
});

describe('ownerRefusal', () => {
  const base: OwnerView = { self: 'a', owner: 'a', generation: 4, newestSeen: 4, syncedGeneration: 4 };
  const table: Array<[string, Partial<OwnerView>, string | undefined]> = [
    ['the owner, caught up, with no newer list seen', {}, undefined],
    ['caught up at a later generation than needed', { syncedGeneration: 5, generation: 5, newestSeen: 5 }, undefined],
    ['another node owns the path', { owner: 'b' }, 'not_owner'],
    ['a peer showed a newer generation', { newestSeen: 5 }, 'list_behind'],
    ['not caught up at the current generation', { syncedGeneration: 3 }, 'not_caught_up'],
    ['caught up at an older generation', { syncedGeneration: 0 }, 'not_caught_up'],
    ['no complete catch-up yet (generation 0, the static list)', { generation: 0, newestSeen: 0, syncedGeneration: undefined }, 'not_caught_up'],
    ['caught up at generation 0', { generation: 0, newestSeen: 0, syncedGeneration: 0 }, undefined],
    ['not the owner wins over the other reasons', { owner: 'b', newestSeen: 9, syncedGeneration: 0 }, 'not_owner'],
  ];
  for (const [name, change, want] of table) {
    it(name, () => {
      assert.equal(ownerRefusal({ ...base, ...change })?.reason, want);
    });
  }

  it('names the owner and the generations in its message', () => {
    assert.match(ownerRefusal({ ...base, owner: 'b' })!.message, /b is/);
    assert.match(ownerRefusal({ ...base, newestSeen: 7 })!.message, /generation 7.*4/);
  });
});
