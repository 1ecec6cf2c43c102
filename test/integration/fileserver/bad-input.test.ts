import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { api, eventually, metric, TestCluster, TOKEN, type FileServerNode } from './support/nodes.ts';
import { rawRequest } from './support/raw.ts';

// Every class of bad input gets its own status with a JSON error, and the server keeps serving.
describe('bad input against a running file server', () => {
  const cluster = new TestCluster();
  let n: FileServerNode;

  before(async () => {
    n = await cluster.add({ id: 'bad-input', env: { FC_MAX_BODY_BYTES: '1000' } });
    assert.equal((await api(n, 'PUT', '/files/existing.txt', { body: 'original' })).status, 201);
  });
  after(() => cluster.close());

  const raw = (req: string) => rawRequest(n.host, n.port, req);
  const put = (path: string, body = 'x', extra = '') =>
    raw(`PUT ${path} HTTP/1.1\r\nHost: x\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}Connection: close\r\n\r\n${body}`);
  const expectError = (r: { status: number; body: string }, status: number, code?: string) => {
    assert.equal(r.status, status, r.body);
    const j = JSON.parse(r.body) as { error: string; message: string };
    assert.equal(typeof j.message, 'string');
    if (code) assert.equal(j.error, code);
  };

  for (const [what, path, status, code] of [
    ['dot-dot', '/files/../etc/passwd', 400, 'path_traversal'],
    ['dot-dot inside', '/files/a/../../etc/passwd', 400, 'path_traversal'],
    ['encoded dot-dot', '/files/%2e%2e/etc/passwd', 400, 'path_traversal'],
    ['mixed-case encoded dot-dot', '/files/a/%2E%2e/b', 400, 'path_traversal'],
    ['encoded slash', '/files/..%2f..%2fetc', 400, 'invalid_path'],
    ['backslashes', '/files/..\\..\\windows', 400, 'invalid_path'],
    ['encoded backslashes', '/files/..%5c..%5cwindows', 400, 'invalid_path'],
    ['absolute path', '/files//etc/passwd', 400, 'invalid_path'],
    ['encoded NUL', '/files/a%00.txt', 400, 'invalid_path'],
    ['bad percent-encoding', '/files/a%zz', 400, 'invalid_path'],
    ['over-long name', `/files/${'n'.repeat(300)}`, 414, 'path_too_long'],
    ['over-long path', `/files/${'abcdefghij/'.repeat(110)}x`, 414, 'path_too_long'],
  ] as const) {
    it(`write with ${what} → ${status}`, async () => expectError(await put(path), status, code));
    it(`read with ${what} → ${status}`, async () => expectError(await raw(`GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`), status, code));
  }

  it('a raw NUL byte or a space in the request line never reaches the store', async () => {
    const r = await raw('GET /files/a\u0000b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expectError(r, 400);
  });

  it('body over the configured maximum → 413, nothing stored', async () => {
    expectError(await put('/files/big.bin', 'y'.repeat(1001)), 413, 'body_too_large');
    assert.equal((await api(n, 'GET', '/files/big.bin')).status, 404);
  });

  it("an upload cut off mid-body stores nothing and is answered as the client's fault: the old bytes stay, a new path stays absent", async () => {
    const aborted = () => metric(n, 'filecluster_http_requests_total{route="/files/{*path}",method="PUT",status="400"}').then((v) => v ?? 0);
    const before = await aborted();
    for (const path of ['existing.txt', 'cut-off.txt']) {
      const sock = net.connect(n.port, n.host);
      await once(sock, 'connect');
      sock.write(`PUT /files/${path} HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n${'z'.repeat(100)}`);
      await new Promise((r) => setTimeout(r, 200));
      sock.destroy();
    }
    // Each cut-off request ends (as a 400 the client no longer hears) instead of waiting forever.
    await eventually('both cut-off uploads recorded', async () => (await aborted()) === before + 2, 5_000);
    assert.equal((await api(n, 'GET', '/files/existing.txt')).text, 'original');
    assert.equal((await api(n, 'GET', '/files/cut-off.txt')).status, 404);
  });

  it('chunked upload without a length → 411', async () => {
    const r = await raw('PUT /files/chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n');
    expectError(r, 411, 'length_required');
  });

  it('Content-SHA256 mismatch → 400 and the old bytes stay', async () => {
    const r = await api(n, 'PUT', '/files/existing.txt', { body: 'replaced', headers: { 'content-sha256': '0'.repeat(64) } });
    expectError({ status: r.status, body: r.text }, 400, 'sha256_mismatch');
    assert.equal((await api(n, 'GET', '/files/existing.txt')).text, 'original');
  });

  it('malformed headers → 400', async () => {
    const badHeaders: Array<Record<string, string>> = [{ 'content-sha256': 'not-hex' }, { 'x-filecluster-ack': 'some' }];
    for (const headers of badHeaders) {
      const r = await api(n, 'PUT', '/files/h.txt', { body: 'x', headers });
      expectError({ status: r.status, body: r.text }, 400, 'bad_header');
    }
    expectError(await raw('PUT /files/h.txt HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\nConnection: close\r\n\r\n'), 400);
    expectError(await raw('PUT /files/h.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\nConnection: close\r\n\r\nx'), 400);
    expectError(await raw('NOT A REQUEST\r\n\r\n'), 400);
  });

  it('conditional writes that do not hold → 412', async () => {
    let r = await api(n, 'PUT', '/files/existing.txt', { body: 'x', headers: { 'if-none-match': '*' } });
    assert.equal(r.status, 412);
    r = await api(n, 'PUT', '/files/existing.txt', { body: 'x', headers: { 'if-match': '"nope"' } });
    assert.equal(r.status, 412);
    r = await api(n, 'DELETE', '/files/existing.txt', { headers: { 'if-match': '"nope"' } });
    assert.equal(r.status, 412);
    const etag = (await api(n, 'HEAD', '/files/existing.txt')).headers.get('etag')!;
    r = await api(n, 'PUT', '/files/existing.txt', { body: 'original', headers: { 'if-match': etag } });
    assert.equal(r.status, 200);
  });

  it('unsatisfiable range → 416 with Content-Range', async () => {
    const r = await api(n, 'GET', '/files/existing.txt', { headers: { range: 'bytes=100-' } });
    assert.equal(r.status, 416);
    assert.equal(r.headers.get('content-range'), 'bytes */8');
    const ok = await api(n, 'GET', '/files/existing.txt', { headers: { range: 'bytes=-3' } });
    assert.equal(ok.status, 206);
    assert.equal(ok.text, 'nal');
  });

  it('wrong method → 405, unknown path → 404, missing file → 404', async () => {
    expectError(await raw('POST /files/existing.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n'), 405, 'method_not_allowed');
    expectError(await raw('GET /nowhere HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'), 404);
    expectError(await raw('GET /files/missing.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'), 404, 'not_found');
    expectError(await raw('DELETE /files/missing.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'), 404, 'not_found');
  });

  // Regression: methods no route knows (PROPFIND) were answered 501 without a JSON body.
  it('unknown method → 405 with Allow and a JSON error on every kind of path', async () => {
    const auth = `Authorization: Bearer ${TOKEN}\r\n`;
    for (const [method, path, extra, allow] of [
      ['PROPFIND', '/files/existing.txt', '', ['DELETE', 'GET', 'HEAD', 'PUT']],
      ['PROPFIND', '/files', '', ['GET', 'HEAD']],
      ['MKCOL', '/healthz', '', ['GET', 'HEAD']],
      ['PATCH', '/readyz', '', ['GET', 'HEAD']],
      ['PROPFIND', '/internal/peers', auth, ['GET', 'HEAD', 'PUT']],
      ['DELETE', '/internal/status', auth, ['GET', 'HEAD']],
    ] as const) {
      const r = await raw(`${method} ${path} HTTP/1.1\r\nHost: x\r\n${extra}Content-Length: 0\r\nConnection: close\r\n\r\n`);
      expectError(r, 405, 'method_not_allowed');
      assert.deepEqual(
        r.headers['allow']
          ?.split(',')
          .map((m) => m.trim())
          .sort(),
        [...allow],
        `${method} ${path}`,
      );
    }
    // A path no route serves stays 404 whatever the method.
    expectError(await raw(`PROPFIND /internal/nowhere HTTP/1.1\r\nHost: x\r\n${auth}Connection: close\r\n\r\n`), 404, 'not_found');
    expectError(await raw('PROPFIND /nowhere HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'), 404, 'not_found');
  });

  it('bad list queries → 400', async () => {
    for (const q of ['limit=0', 'limit=abc', 'limit=100000', 'cursor=%%%', 'prefix=a&prefix=b']) {
      const r = await api(n, 'GET', `/files?${q}`);
      assert.equal(r.status, 400, q);
    }
  });

  it('peer API: no or wrong token → 401 and nothing changes', async () => {
    const before = (await api(n, 'GET', '/internal/peers', { auth: true })).json();
    const body = { generation: 99, peers: [{ id: 'evil', url: 'http://127.0.0.9:1' }] };
    assert.equal((await api(n, 'PUT', '/internal/peers', { json: body })).status, 401);
    assert.equal((await api(n, 'PUT', '/internal/peers', { json: body, headers: { authorization: 'Bearer wrong' } })).status, 401);
    assert.equal((await api(n, 'POST', '/internal/replicate', { body: 'junk' })).status, 401);
    assert.deepEqual((await api(n, 'GET', '/internal/peers', { auth: true })).json(), before);
  });

  it('peer API: malformed list → 400, wrong media type → 415, stale generation → 409; the old list stays', async () => {
    const good = { generation: 5, peers: [{ id: 'p1', url: 'http://127.0.0.9:1' }] };
    assert.equal((await api(n, 'PUT', '/internal/peers', { json: good, auth: true })).status, 200);
    for (const bad of [{ generation: 6 }, { generation: 'x', peers: [] }, { generation: 6, peers: [{ id: 'a', url: 'nope' }] }]) {
      const r = await api(n, 'PUT', '/internal/peers', { json: bad, auth: true });
      expectError({ status: r.status, body: r.text }, 400, 'invalid_peer_list');
    }
    let r = await api(n, 'PUT', '/internal/peers', { body: '{not json', auth: true, headers: { 'content-type': 'application/json' } });
    expectError({ status: r.status, body: r.text }, 400, 'bad_json');
    r = await api(n, 'PUT', '/internal/peers', { body: JSON.stringify(good), auth: true, headers: { 'content-type': 'text/plain' } });
    expectError({ status: r.status, body: r.text }, 415);
    r = await api(n, 'PUT', '/internal/peers', { json: { generation: 4, peers: [] }, auth: true });
    expectError({ status: r.status, body: r.text }, 409, 'stale_generation');
    r = await api(n, 'PUT', '/internal/peers', { json: { generation: 5, peers: [] }, auth: true });
    expectError({ status: r.status, body: r.text }, 409, 'generation_conflict');
    assert.equal((await api(n, 'PUT', '/internal/peers', { json: good, auth: true })).status, 200, 'same generation, same list');
    assert.deepEqual((await api(n, 'GET', '/internal/peers', { auth: true })).json(), good);
    assert.equal((await api(n, 'PUT', '/internal/peers', { json: { generation: 6, peers: [] }, auth: true })).status, 200);
  });

  it('peer API: a malformed change stream → 400', async () => {
    const r = await api(n, 'POST', '/internal/replicate', { body: Buffer.from([0, 0, 0, 5, 1, 2]), auth: true });
    assert.equal(r.status, 400);
    const header = Buffer.from(JSON.stringify({ path: '../x', version: '0000000000010000-a', deleted: false, size: 1, sha256: '', contentType: 'a' }));
    const len = Buffer.alloc(4);
    len.writeUInt32BE(header.length);
    const r2 = await api(n, 'POST', '/internal/replicate', { body: Buffer.concat([len, header, Buffer.from('x')]), auth: true });
    assert.equal(r2.status, 400);
    assert.equal(r2.json().error, 'bad_frame');
  });

  it('is still healthy and serving after all of that', async () => {
    assert.equal((await api(n, 'GET', '/healthz')).status, 200);
    assert.equal((await api(n, 'GET', '/files/existing.txt')).text, 'original');
    assert.equal(n.proc?.exitCode, null);
    assert.ok(!n.logs.some((l) => l.includes('"level":50')), 'no errors logged');
  });
});
