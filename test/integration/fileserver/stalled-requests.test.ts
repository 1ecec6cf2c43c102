import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readdir } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { api, eventually, metric, TestCluster, type FileServerNode } from './support/nodes.ts';

/** A client connection that records what it receives and when the server closes it. */
async function connect(n: FileServerNode): Promise<{ sock: net.Socket; received: () => string; closed: Promise<number> }> {
  const sock = net.connect(n.port, n.host);
  await once(sock, 'connect');
  const chunks: Buffer[] = [];
  sock.on('data', (c: Buffer) => chunks.push(c));
  sock.on('error', () => undefined);
  const t0 = Date.now();
  const closed = new Promise<number>((resolve) => sock.once('close', () => resolve(Date.now() - t0)));
  return { sock, received: () => Buffer.concat(chunks).toString(), closed };
}

/** Resolves with the time it took, or rejects after `ms`: the server must act well before that. */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what} not within ${ms} ms`)), ms).unref())]);
}

// Clients that stop sending in the middle of a request: each gets an answer or a closed connection
// within the configured timeouts, nothing is stored, and the server keeps its sockets and buffers free.
describe('stalled requests against a running file server', () => {
  const cluster = new TestCluster();
  let n: FileServerNode;
  const timeouts = { FC_BODY_IDLE_TIMEOUT_SECONDS: '1', FC_HEADERS_TIMEOUT_SECONDS: '1' };
  const stalled = () => metric(n, 'filecluster_http_requests_total{route="/files/{*path}",method="PUT",status="408"}').then((v) => v ?? 0);
  const leftovers = async () => (await readdir(join(n.dataDir, 'objects'))).filter((f) => f.endsWith('.tmp'));

  before(async () => {
    // A peer that never answers, so an ack=all write waits out its acknowledgement timeout.
    n = await cluster.add({ id: 'stalls', env: { ...timeouts, FC_PEERS: 'nobody=http://127.0.0.1:1', FC_ACK_TIMEOUT_MS: '2500' } });
    assert.equal((await api(n, 'PUT', '/files/existing.txt', { body: 'original' })).status, 201);
  });
  after(() => cluster.close());

  for (const [what, path, declared, sent] of [
    ['a small upload over an existing file', 'existing.txt', 500, 100],
    ['a small upload to a new path', 'small-new.txt', 500, 100],
    ['a large upload (streamed to a temporary object)', 'large-new.bin', 4 * 1024 * 1024, 300 * 1024],
  ] as const) {
    it(`${what} that stops half-way is ended, and stores nothing`, async () => {
      const before = await stalled();
      const c = await connect(n);
      c.sock.write(`PUT /files/${path} HTTP/1.1\r\nHost: x\r\nContent-Length: ${declared}\r\n\r\n`);
      c.sock.write(Buffer.alloc(sent, 'z'));
      const ms = await within(c.closed, 10_000, 'the stalled connection closed');
      assert.ok(ms >= 900, `closed after ${ms} ms, not before the idle timeout`);
      // The server closes the connection first, then the write fails and cleans up.
      await eventually('recorded as a 408', async () => (await stalled()) === before + 1, 5_000);
      await eventually('no temporary object left', async () => (await leftovers()).length === 0, 5_000);
      const read = await api(n, 'GET', `/files/${path}`);
      if (path === 'existing.txt') assert.equal(read.text, 'original');
      else assert.equal(read.status, 404);
    });
  }

  it('headers that stop half-way get 408 and a closed connection', async () => {
    const c = await connect(n);
    c.sock.write('PUT /files/headers.txt HTTP/1.1\r\nHost: x\r\nContent-Le');
    await within(c.closed, 10_000, 'the connection with stalled headers closed');
    assert.match(c.received(), /^HTTP\/1\.1 408 /);
    assert.match(c.received(), /"error":"request_timeout"/);
    assert.equal((await api(n, 'GET', '/files/headers.txt')).status, 404);
  });

  it('a slow upload that keeps sending is not cut, however long it takes in total', async () => {
    const c = await connect(n);
    const pieces = 8;
    c.sock.write(`PUT /files/slow.txt HTTP/1.1\r\nHost: x\r\nContent-Length: ${pieces}\r\nConnection: close\r\n\r\n`);
    for (let i = 0; i < pieces; i++) {
      await new Promise((r) => setTimeout(r, 400));
      c.sock.write('s');
    }
    await within(c.closed, 10_000, 'the answer');
    assert.match(c.received(), /^HTTP\/1\.1 201 /);
    assert.equal((await api(n, 'GET', '/files/slow.txt')).text, 'ssssssss');
  });

  it('waiting for acknowledgements longer than the idle timeout is not a stall', async () => {
    const r = await api(n, 'PUT', '/files/acked.txt', { body: 'x', headers: { 'x-filecluster-ack': 'all' } });
    assert.equal(r.status, 504, r.text);
    assert.equal(r.json().error, 'ack_timeout');
  });
});
