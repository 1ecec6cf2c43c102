import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { api, eventually, TestCluster, type FileServerNode } from './support/nodes.ts';

// Canonically equivalent spellings of one name (NFC é = U+00E9, NFD é = e + U+0301, as macOS file
// systems hand names out) name one file: paths are kept in NFC wherever they enter.
const NFC = 'caf\u00e9/r\u00e9sum\u00e9.txt';
const NFD = 'cafe\u0301/re\u0301sume\u0301.txt';
const url = (p: string) => `/files/${p.split('/').map(encodeURIComponent).join('/')}`;

describe('NFC and NFD spellings of a path name one file', () => {
  const cluster = new TestCluster();
  let a: FileServerNode;
  let b: FileServerNode;

  before(async () => {
    a = await cluster.add({ id: 'nfc-a' });
    b = await cluster.add({ id: 'nfc-b' });
    await cluster.pushPeers();
  });
  after(() => cluster.close());

  it('a write in NFD is read back in either spelling, and answers with the NFC path', async () => {
    const put = await api(a, 'PUT', url(NFD), { body: 'written as NFD' });
    assert.equal(put.status, 201, put.text);
    assert.equal(put.json().path, NFC);
    assert.equal((await api(a, 'GET', url(NFC))).text, 'written as NFD');
    assert.equal((await api(a, 'GET', url(NFD))).text, 'written as NFD');
  });

  it('a write in the other spelling replaces the same file (200, not a second file)', async () => {
    const put = await api(a, 'PUT', url(NFC), { body: 'written as NFC' });
    assert.equal(put.status, 200, put.text);
    assert.equal((await api(a, 'GET', url(NFD))).text, 'written as NFC');
    const list = (await api(a, 'GET', '/files?prefix=caf')).json<{ entries: Array<{ path: string }> }>();
    assert.deepEqual(list.entries.map((e) => e.path), [NFC]);
  });

  it('a listing prefix in NFD finds the NFC names', async () => {
    const list = (await api(a, 'GET', `/files?prefix=${encodeURIComponent('cafe\u0301/')}`)).json<{ entries: Array<{ path: string }> }>();
    assert.deepEqual(list.entries.map((e) => e.path), [NFC]);
  });

  it('a delete in NFD removes the file', async () => {
    assert.equal((await api(a, 'PUT', url('na\u0308ive.txt'), { body: 'x' })).status, 201);
    assert.equal((await api(a, 'DELETE', url('na\u0308ive.txt'))).status, 200);
    assert.equal((await api(a, 'GET', url('n\u00e4ive.txt'))).status, 404);
  });

  it('replicated changes arrive under the NFC path, and the nodes converge', async () => {
    await eventually('the file on b', async () => (await api(b, 'GET', url(NFC))).text === 'written as NFC');
    const list = (await api(b, 'GET', '/files?prefix=caf')).json<{ entries: Array<{ path: string }> }>();
    assert.deepEqual(list.entries.map((e) => e.path), [NFC]);
    assert.equal((await api(b, 'GET', url(NFD))).text, 'written as NFC');
  });
});
