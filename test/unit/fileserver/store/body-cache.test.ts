import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BodyCache } from '../../../../fileserver/src/store/body-cache.ts';

describe('BodyCache', () => {
  it('gives a body only for the version it was kept with', () => {
    const c = new BodyCache(1024);
    c.set('a', 'v1', Buffer.from('one'));
    assert.equal(c.get('a', 'v1')?.toString(), 'one');
    assert.equal(c.get('a', 'v2'), undefined);
    c.set('a', 'v2', Buffer.from('two!'));
    assert.equal(c.get('a', 'v1'), undefined);
    assert.equal(c.get('a', 'v2')?.toString(), 'two!');
    assert.equal(c.size, 4, 'the replaced body no longer counts');
    c.delete('a');
    assert.equal(c.get('a', 'v2'), undefined);
    assert.equal(c.size, 0);
  });

  it('evicts the least recently used bodies once past its byte budget, and keeps nothing larger than it', () => {
    const c = new BodyCache(300);
    for (const p of ['a', 'b', 'c']) c.set(p, 'v', Buffer.alloc(100));
    assert.ok(c.get('a', 'v'), 'a is now the most recently used');
    c.set('d', 'v', Buffer.alloc(100));
    assert.equal(c.get('b', 'v'), undefined, 'b, the least recently used, went');
    for (const p of ['a', 'c', 'd']) assert.ok(c.get(p, 'v'), p);
    assert.equal(c.size, 300);
    c.set('huge', 'v', Buffer.alloc(301));
    assert.equal(c.get('huge', 'v'), undefined);
    assert.equal(c.size, 300);
  });

  it('copies a body that is a view into a larger buffer, so the budget is what it holds', () => {
    const c = new BodyCache(1 << 20);
    const socketBuffer = Buffer.alloc(64 * 1024, 7);
    const body = socketBuffer.subarray(100, 4196);
    c.set('a', 'v', body);
    const kept = c.get('a', 'v')!;
    assert.ok(kept.equals(body));
    assert.equal(kept.buffer.byteLength, 4096, 'the 64 KiB buffer is not kept alive');
    const exact = Buffer.from(new ArrayBuffer(16));
    c.set('b', 'v', exact);
    assert.equal(c.get('b', 'v'), exact, 'a body with a buffer of its own is kept as it is');
  });
});
