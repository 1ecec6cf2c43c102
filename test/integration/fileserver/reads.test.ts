import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { api, metric, TestCluster, type FileServerNode } from './support/nodes.ts';
import { rawRequest, type RawAnswer } from './support/raw.ts';

// File reads are answered outside Koa for the plain URL spelling and through the router for the rest:
// both must give the same answers, HEAD the same status and headers as GET, and the same metrics.
describe('file reads against a running file server', () => {
  const cluster = new TestCluster();
  let n: FileServerNode;
  const large = randomBytes(200 * 1024);

  before(async () => {
    n = await cluster.add({ id: 'reads' });
    assert.equal((await api(n, 'PUT', '/files/r/a.txt', { body: 'hello world', headers: { 'content-type': 'text/plain' } })).status, 201);
    assert.equal((await api(n, 'PUT', '/files/r/large.bin', { body: large })).status, 201);
  });
  after(() => cluster.close());

  const raw = (method: string, target: string, extra = '') => rawRequest(n.host, n.port, `${method} ${target} HTTP/1.1\r\nHost: x\r\n${extra}Connection: close\r\n\r\n`);
  const headersOf = (r: RawAnswer) => {
    const { date: _date, ...rest } = r.headers;
    return rest;
  };

  it('HEAD answers with the status and headers of GET, without the body', async () => {
    for (const [target, extra] of [
      ['/files/r/a.txt', ''],
      ['/files/r/a.txt', 'Range: bytes=-3\r\n'],
      ['/files/r/large.bin', ''],
      ['/files/r/large.bin', 'Range: bytes=70000-70009\r\n'],
    ] as const) {
      const get = await raw('GET', target, extra);
      const head = await raw('HEAD', target, extra);
      assert.equal(head.status, get.status, `${target} ${extra}`);
      assert.deepEqual(headersOf(head), headersOf(get), `${target} ${extra}`);
      assert.equal(head.body, '');
    }
    const get = await raw('GET', '/files/r/a.txt');
    assert.equal(get.status, 200);
    assert.equal(get.headers['content-type'], 'text/plain; charset=utf-8');
    assert.equal(get.headers['content-length'], '11');
    assert.equal(get.headers['accept-ranges'], 'bytes');
    assert.match(get.headers['etag']!, /^"[^"]+"$/);
    assert.equal(get.headers['x-filecluster-version'], get.headers['etag']!.slice(1, -1));
    assert.equal(get.body, 'hello world');
    const part = await api(n, 'GET', '/files/r/large.bin', { headers: { range: 'bytes=70000-70009' } });
    assert.equal(part.status, 206);
    assert.equal(part.headers.get('content-range'), `bytes 70000-70009/${large.length}`);
    assert.deepEqual(part.body, large.subarray(70000, 70010));
    assert.deepEqual((await api(n, 'GET', '/files/r/large.bin')).body, large);
  });

  it('other spellings the router matches give the same answers as the plain one', async () => {
    const plain = await raw('GET', '/files/r/a.txt');
    for (const target of ['/FILES/r/a.txt', '/files/r/a.txt#frag', `http://${n.host}:${n.port}/files/r/a.txt`]) {
      const other = await raw('GET', target);
      assert.equal(other.status, plain.status, target);
      assert.deepEqual(headersOf(other), headersOf(plain), target);
      assert.equal(other.body, plain.body, target);
    }
    for (const target of ['/files/missing', '/FILES/missing']) {
      const r = await raw('GET', target);
      assert.equal(r.status, 404, target);
      assert.deepEqual(JSON.parse(r.body), { error: 'not_found', message: 'no file at missing' });
    }
    const inm = await raw('GET', '/FILES/r/a.txt', `If-None-Match: ${plain.headers['etag']}\r\n`);
    assert.equal(inm.status, 304);
  });

  it('answers requests pipelined on one connection in order, whichever way each is answered', async () => {
    // From memory (written at the end of the event-loop turn), an error, through the router, streamed.
    const sent: Array<[method: string, target: string]> = [
      ['GET', '/files/r/a.txt'],
      ['GET', '/files/missing'],
      ['HEAD', '/files/r/a.txt'],
      ['GET', '/FILES/r/a.txt'],
      ['GET', '/files/r/large.bin'],
      ['GET', '/files/r/a.txt'],
    ];
    const bytes = await new Promise<Buffer>((resolve, reject) => {
      const chunks: Buffer[] = [];
      const socket = net.connect({ host: n.host, port: n.port }, () => {
        socket.write(sent.map(([m, t], i) => `${m} ${t} HTTP/1.1\r\nHost: x\r\n${i === sent.length - 1 ? 'Connection: close\r\n' : ''}\r\n`).join(''));
      });
      socket
        .on('data', (d) => chunks.push(d))
        .on('end', () => resolve(Buffer.concat(chunks)))
        .on('error', reject);
    });
    let off = 0;
    const answers = sent.map(([method]) => {
      const head = bytes.indexOf('\r\n\r\n', off);
      const lines = bytes.subarray(off, head).toString().split('\r\n');
      const length = method === 'HEAD' ? 0 : Number(/^content-length: (\d+)$/im.exec(lines.join('\n'))?.[1]);
      const body = bytes.subarray(head + 4, head + 4 + length);
      off = head + 4 + length;
      return { status: Number(lines[0]!.split(' ')[1]), body };
    });
    assert.equal(off, bytes.length, 'nothing after the last answer');
    assert.deepEqual(
      answers.map((a) => a.status),
      [200, 404, 200, 200, 200, 200],
    );
    for (const i of [0, 3, 5]) assert.equal(answers[i]!.body.toString(), 'hello world');
    assert.equal(JSON.parse(answers[1]!.body.toString()).error, 'not_found');
    assert.ok(answers[4]!.body.equals(large));
  });

  it('counts reads per route, method and status', async () => {
    const count = (method: string, status: number) => metric(n, `filecluster_http_requests_total{route="/files/{*path}",method="${method}",status="${status}"}`);
    const before = {
      get: (await count('GET', 200)) ?? 0,
      head: (await count('HEAD', 206)) ?? 0,
      missing: (await count('GET', 404)) ?? 0,
      bad: (await count('GET', 400)) ?? 0,
    };
    await raw('GET', '/files/r/a.txt');
    await raw('GET', '/FILES/r/a.txt');
    await raw('HEAD', '/files/r/a.txt', 'Range: bytes=0-1\r\n');
    await raw('GET', '/files/nothing-here');
    await raw('GET', '/files/%2e%2e/x');
    assert.equal(await count('GET', 200), before.get + 2);
    assert.equal(await count('HEAD', 206), before.head + 1);
    assert.equal(await count('GET', 404), before.missing + 1);
    assert.equal(await count('GET', 400), before.bad + 1);
    const timed = await metric(n, 'filecluster_http_request_duration_seconds_count{route="/files/{*path}",method="GET"}');
    assert.ok(timed !== undefined && timed >= before.get + 4);
  });
});
