// Bit rot in a large file's object file: no reader and no peer receives the damaged file whole, the node
// sets it aside and pulls a good copy again, and the changes queued behind it still reach the peer.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { api, converged, eventually, metric, owesNothing, TestCluster, type FileServerNode } from './support/nodes.ts';

const ENV = { FC_CATCHUP_INTERVAL_SECONDS: '0.5' };
const LARGE = 300 * 1024;

/** Zeroes one byte in the middle of the only object file under `node`'s data directory (FAULT INJECTION). */
async function rot(node: FileServerNode): Promise<void> {
  const dir = join(node.dataDir, 'objects');
  const objects = (await readdir(dir)).filter((f) => !f.endsWith('.tmp'));
  assert.equal(objects.length, 1, 'one large file stored');
  const file = join(dir, objects[0]!);
  const bytes = await readFile(file);
  bytes[bytes.length >> 1]! ^= 0xff;
  await writeFile(file, bytes);
}

/** Whether `node` serves `path` as `body` from its own store, not through a peer (`X-FileCluster-Served-By`). */
async function servesItsOwnCopy(node: FileServerNode, path: string, body: Buffer): Promise<boolean> {
  const res = await fetch(`${node.url}/files/${path}`);
  const got = Buffer.from(await res.arrayBuffer());
  return res.status === 200 && res.headers.get('x-filecluster-served-by') === null && got.equals(body);
}

/** The body of a GET, or the error that cut it. */
async function read(node: FileServerNode, path: string): Promise<{ status: number; body?: Buffer; error?: string }> {
  try {
    const res = await fetch(`${node.url}/files/${path}`);
    return { status: res.status, body: Buffer.from(await res.arrayBuffer()) };
  } catch (err) {
    return { status: -1, error: (err as Error).message };
  }
}

describe('a damaged large file', () => {
  let cluster: TestCluster;
  afterEach(() => cluster.close());

  it('is never served whole, is set aside, and is pulled again from a peer', async () => {
    cluster = new TestCluster();
    const a = await cluster.add({ id: 'rot-a', env: ENV });
    const b = await cluster.add({ id: 'rot-b', env: ENV });
    await cluster.pushPeers();
    const body = randomBytes(LARGE);
    assert.equal((await api(a, 'PUT', '/files/big', { body, headers: { 'x-filecluster-ack': 'all' } })).status, 201);
    await rot(a);
    const first = await read(a, 'big');
    assert.ok(first.status !== 200 || first.body === undefined, `the damaged file was served whole: ${first.status} ${first.body?.length} bytes`);
    assert.equal(await metric(a, 'filecluster_store_quarantined_files_total'), 1);
    // Reads go to b meanwhile: the node's own copy is back once it serves the file itself.
    await eventually('pulled again from b', () => servesItsOwnCopy(a, 'big', body), 30_000);
    assert.ok(await converged([a, b]));
  });

  it('is read from a peer until it is pulled again, and is never reported missing', async () => {
    cluster = new TestCluster();
    // Catch-up waits a minute, so the reads below find the copy set aside, not yet pulled again.
    const slow = { FC_CATCHUP_INTERVAL_SECONDS: '60' };
    const a = await cluster.add({ id: 'rot-e', env: slow });
    const b = await cluster.add({ id: 'rot-f', env: slow });
    await cluster.pushPeers();
    const body = randomBytes(LARGE);
    assert.equal((await api(a, 'PUT', '/files/big', { body, headers: { 'x-filecluster-ack': 'all' } })).status, 201);
    await rot(a);
    await read(a, 'big');
    assert.equal(await metric(a, 'filecluster_store_quarantined_files_total'), 1);
    const proxied = await fetch(`${a.url}/files/big`);
    assert.equal(proxied.status, 200);
    assert.equal(proxied.headers.get('x-filecluster-served-by'), 'rot-f');
    assert.ok(Buffer.from(await proxied.arrayBuffer()).equals(body), 'the peer served the good copy');
    await b.kill();
    const alone = await api(a, 'GET', '/files/big');
    assert.equal(alone.status, 503, `with no peer to serve it: ${alone.status} ${alone.text}`);
    assert.equal(alone.json<{ error: string }>().error, 'damaged');
    assert.equal(alone.headers.get('retry-after'), '1');
    assert.equal((await api(a, 'HEAD', '/files/big')).status, 503);
  });

  it('owed to a peer and set aside, is given up once an older copy is pulled back, and the queue drains', async () => {
    cluster = new TestCluster();
    const a = await cluster.add({ id: 'rot-g', env: ENV });
    const b = await cluster.add({ id: 'rot-h', env: ENV });
    const c = await cluster.add({ id: 'rot-i', env: ENV });
    await cluster.pushPeers();
    const older = randomBytes(LARGE);
    assert.equal((await api(a, 'PUT', '/files/big', { body: older, headers: { 'x-filecluster-ack': 'all' } })).status, 201);
    await b.kill();
    await c.kill();
    // The newer version's only copy is on a, queued for b and c; a's other object file is the older one.
    const objects = await readdir(join(a.dataDir, 'objects'));
    assert.equal((await api(a, 'PUT', '/files/big', { body: randomBytes(LARGE) })).status, 200, 'replaced');
    const newer = (await readdir(join(a.dataDir, 'objects'))).filter((f) => !objects.includes(f) && !f.endsWith('.tmp'));
    assert.equal(newer.length, 1);
    const file = join(a.dataDir, 'objects', newer[0]!);
    const bytes = await readFile(file);
    bytes[bytes.length >> 1]! ^= 0xff;
    await writeFile(file, bytes);
    await read(a, 'big');
    assert.equal(await metric(a, 'filecluster_store_quarantined_files_total'), 1);
    // c brings the older version back to a; b is still owed the newer one, which a no longer has.
    await c.start();
    await eventually('a pulled the older copy back from c', () => servesItsOwnCopy(a, 'big', older), 30_000);
    await b.start();
    await eventually('a owes nothing to anyone', () => owesNothing(a), 30_000);
    await eventually('all three converge', () => converged([a, b, c]), 30_000);
  });

  it('never reaches a peer, and the changes queued behind it still do', async () => {
    cluster = new TestCluster();
    const a = await cluster.add({ id: 'rot-c', env: ENV });
    const b = await cluster.add({ id: 'rot-d', env: ENV });
    await cluster.pushPeers();
    await b.kill();
    const body = randomBytes(LARGE);
    assert.equal((await api(a, 'PUT', '/files/big', { body })).status, 201);
    assert.equal((await api(a, 'PUT', '/files/after', { body: 'queued behind' })).status, 201);
    await rot(a);
    await b.start();
    await eventually('the change behind it arrived', async () => (await api(b, 'GET', '/files/after')).text === 'queued behind', 30_000);
    // Until its first catch-up a node proxies reads of what it lacks: read what it holds itself.
    await eventually('b caught up', async () => (await api(b, 'GET', '/readyz')).status === 200, 30_000);
    const got = await read(b, 'big');
    assert.equal(got.status, 404, 'the only copy was damaged: set aside, never replicated as it was');
    assert.equal(await metric(a, 'filecluster_store_quarantined_files_total'), 1);
    const onA = await api(a, 'GET', '/files/big');
    assert.equal(onA.status, 503, 'the node that set its only copy aside says so, not "not found"');
    assert.equal(onA.json<{ error: string }>().error, 'damaged');
    await eventually('both converge', () => converged([a, b]), 30_000);
  });
});

describe('a damaged small file', () => {
  let cluster: TestCluster;
  afterEach(() => cluster.close());

  it('is served from a peer by the read that finds it, and is pulled again; with no peer it is 503, never 404', async () => {
    cluster = new TestCluster();
    // No scrub: the reads must be what finds the damage.
    const a = await cluster.add({ id: 'rot-s1', env: { ...ENV, FC_SCRUB_BYTES_PER_SECOND: '0' } });
    const b = await cluster.add({ id: 'rot-s2', env: ENV });
    await cluster.pushPeers();
    const bodies = { one: randomBytes(2000), two: randomBytes(2000) };
    for (const [name, body] of Object.entries(bodies)) {
      assert.equal((await api(a, 'PUT', `/files/${name}`, { body, headers: { 'x-filecluster-ack': 'all' } })).status, 201);
    }
    // A clean stop applies the write-ahead log, so the bodies lie in store.db (FAULT INJECTION).
    assert.equal(await a.kill('SIGTERM'), 0);
    const db = join(a.dataDir, 'store.db');
    const bytes = await readFile(db);
    for (const body of Object.values(bodies)) {
      const at = bytes.indexOf(body);
      assert.ok(at > 0, 'the body is stored inline');
      bytes[at + 1000]! ^= 0xff;
    }
    await writeFile(db, bytes);
    await a.start();

    const res = await fetch(`${a.url}/files/one`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-filecluster-served-by'), 'rot-s2');
    assert.ok(Buffer.from(await res.arrayBuffer()).equals(bodies.one));
    await eventually('pulled again from b', () => servesItsOwnCopy(a, 'one', bodies.one), 30_000);

    await b.kill();
    for (const attempt of ['the read that finds it', 'a read after it was set aside']) {
      const alone = await api(a, 'GET', '/files/two');
      assert.equal(alone.status, 503, `${attempt}, with no peer to serve it: ${alone.status}`);
      assert.equal(alone.json<{ error: string }>().error, 'damaged');
    }
    assert.equal(await metric(a, 'filecluster_store_quarantined_files_total'), 2);
  });
});
