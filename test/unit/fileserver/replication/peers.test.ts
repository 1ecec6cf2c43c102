import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parsePeerList } from '../../../../contract/peer-api.ts';
import { decidePeerList } from '../../../../fileserver/src/replication/peers.ts';

describe('peer lists', () => {
  it('drops the node itself, trims URLs and sorts by id', () => {
    const r = parsePeerList(
      {
        generation: 3,
        peers: [
          { id: 'fc-2', url: 'http://10.0.0.2:8080/' },
          { id: 'fc-0', url: 'http://10.0.0.0:8080' },
          { id: 'fc-1', url: 'http://10.0.0.1:8080' },
        ],
      },
      'fc-1',
    );
    assert.deepEqual(r, {
      ok: true,
      list: {
        generation: 3,
        peers: [
          { id: 'fc-0', url: 'http://10.0.0.0:8080' },
          { id: 'fc-2', url: 'http://10.0.0.2:8080' },
        ],
      },
    });
  });

  for (const [what, body] of [
    ['not an object', 'peers'],
    ['negative generation', { generation: -1, peers: [] }],
    ['fractional generation', { generation: 1.5, peers: [] }],
    ['missing peers', { generation: 1 }],
    [
      'duplicate ids',
      {
        generation: 1,
        peers: [
          { id: 'a', url: 'http://x' },
          { id: 'a', url: 'http://y' },
        ],
      },
    ],
    ['bad url', { generation: 1, peers: [{ id: 'a', url: 'ftp://x' }] }],
    ['bad id', { generation: 1, peers: [{ id: '../a', url: 'http://x' }] }],
    ['unknown field', { generation: 1, peers: [], extra: true }],
  ] as const) {
    it(`refuses a malformed list: ${what}`, () => assert.equal(parsePeerList(body, 'me').ok, false));
  }

  it('refuses lower generations and a different list under the same generation', () => {
    const cur = { generation: 5, peers: [{ id: 'a', url: 'http://a' }] };
    assert.equal(decidePeerList(cur, { generation: 4, peers: [] }), 'stale');
    assert.equal(decidePeerList(cur, { generation: 5, peers: [] }), 'conflict');
    assert.equal(decidePeerList(cur, { generation: 5, peers: [{ id: 'a', url: 'http://a' }] }), 'unchanged');
    assert.equal(decidePeerList(cur, { generation: 6, peers: [] }), 'accept');
  });
});
