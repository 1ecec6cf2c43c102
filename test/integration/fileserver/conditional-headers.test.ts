import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { api, TestCluster, type FileServerNode } from './support/nodes.ts';

// Weak entity tags against a running file server, one conditional header at a time (RFC 9110 13.1):
// If-Match compares strongly, If-None-Match weakly.
describe('weak entity tags on each conditional header', () => {
  const cluster = new TestCluster();
  let n: FileServerNode;
  let etag: string;

  before(async () => {
    n = await cluster.add({ id: 'etags' });
    const r = await api(n, 'PUT', '/files/tagged.txt', { body: 'first' });
    assert.equal(r.status, 201);
    etag = r.headers.get('etag')!;
    assert.match(etag, /^"[^"]+"$/);
  });
  after(() => cluster.close());

  it('PUT with If-Match: W/"<current>" fails with 412 and keeps the bytes', async () => {
    const r = await api(n, 'PUT', '/files/tagged.txt', { body: 'second', headers: { 'if-match': `W/${etag}` } });
    assert.equal(r.status, 412, r.text);
    assert.equal(r.json().error, 'precondition_failed');
    assert.equal((await api(n, 'GET', '/files/tagged.txt')).text, 'first');
  });

  it('DELETE with If-Match: W/"<current>" fails with 412 and the file stays', async () => {
    assert.equal((await api(n, 'DELETE', '/files/tagged.txt', { headers: { 'if-match': `W/${etag}` } })).status, 412);
    assert.equal((await api(n, 'GET', '/files/tagged.txt')).status, 200);
  });

  it('GET with If-None-Match: W/"<current>" answers 304; HEAD too', async () => {
    const r = await api(n, 'GET', '/files/tagged.txt', { headers: { 'if-none-match': `W/${etag}` } });
    assert.equal(r.status, 304);
    assert.equal(r.headers.get('etag'), etag);
    assert.equal((await api(n, 'HEAD', '/files/tagged.txt', { headers: { 'if-none-match': `W/${etag}` } })).status, 304);
    assert.equal((await api(n, 'GET', '/files/tagged.txt', { headers: { 'if-none-match': 'W/"something-else"' } })).status, 200);
  });

  it('PUT with If-None-Match: W/"<current>" fails with 412 (weak comparison matches)', async () => {
    assert.equal((await api(n, 'PUT', '/files/tagged.txt', { body: 'third', headers: { 'if-none-match': `W/${etag}` } })).status, 412);
    assert.equal((await api(n, 'GET', '/files/tagged.txt')).text, 'first');
  });

  it('GET with If-Range: W/"<current>" ignores the range (strong comparison)', async () => {
    const r = await api(n, 'GET', '/files/tagged.txt', { headers: { 'if-range': `W/${etag}`, range: 'bytes=0-1' } });
    assert.equal(r.status, 200);
    assert.equal(r.text, 'first');
  });

  it('the strong tag itself still works for If-Match', async () => {
    assert.equal((await api(n, 'PUT', '/files/tagged.txt', { body: 'fourth', headers: { 'if-match': etag } })).status, 200);
  });
});
