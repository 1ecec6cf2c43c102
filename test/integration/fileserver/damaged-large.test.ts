// Bit rot in a large file's object file: no reader and no peer receives the damaged file whole, the node
// sets it aside and pulls a good copy again, and the changes queued behind it still reach the peer.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { api, converged, eventually, metric, TestCluster, type FileServerNode } from './support/nodes.ts';

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
    await eventually('pulled again from b', async () => (await read(a, 'big')).body?.equals(body), 30_000);
    assert.ok(await converged([a, b]));
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
    await eventually('both converge', () => converged([a, b]), 30_000);
  });
});
