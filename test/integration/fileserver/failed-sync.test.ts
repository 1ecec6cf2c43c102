// A disk whose sync fails (EIO from fsync or fdatasync, injected below the C library): the write it
// fails is refused, nothing acknowledged is lost, and the write whose outcome is unknown is whole or
// absent after a restart, never a file without its bytes.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import http from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SyncFaults } from '../../harness/fs-faults/sync-faults.ts';
import { api, assertHolds, eventually, TestCluster, type ApiAnswer, type FileServerNode } from './support/nodes.ts';

/** Large enough to get its own object file rather than a place in the database. */
const LARGE = 200 * 1024;

/**
 * PUTs `body` in two halves and runs `between` once the node holds the first half in its object file,
 * so `between` acts after the write started and before the commit that names the file.
 */
async function putInTwoHalves(node: FileServerNode, path: string, body: Buffer, between: () => Promise<void>): Promise<ApiAnswer> {
  const objects = join(node.dataDir, 'objects');
  return new Promise<ApiAnswer>((resolve, reject) => {
    const req = http.request(`${node.url}/files/${path}`, { method: 'PUT', headers: { 'content-length': String(body.length) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const buf = Buffer.concat(chunks);
        resolve({ status: res.statusCode ?? 0, headers: new Headers(), body: buf, text: buf.toString(), json: <T>() => JSON.parse(buf.toString()) as T });
      });
    });
    req.on('error', reject);
    req.write(body.subarray(0, body.length / 2));
    eventually('the object file of the write in progress', async () => (await readdir(objects)).some((f) => f.endsWith('.tmp')))
      .then(between)
      .then(() => req.end(body.subarray(body.length / 2)), reject);
  });
}

describe('a disk whose sync fails', () => {
  const cluster = new TestCluster();
  let faults: SyncFaults;
  let node: FileServerNode;
  const acked = new Map<string, Buffer>();

  const put = async (path: string, body: Buffer) => {
    const r = await api(node, 'PUT', `/files/${path}`, { body });
    assert.ok(r.status === 201 || r.status === 200, `${path}: ${r.status} ${r.text}`);
    acked.set(path, body);
  };

  before(async () => {
    faults = await SyncFaults.build();
    node = await cluster.add({ id: 'sync-a', env: faults.env() });
    await cluster.pushPeers();
    for (let i = 0; i < 10; i++) await put(`before/small-${i}`, randomBytes(100));
    for (let i = 0; i < 2; i++) await put(`before/large-${i}`, randomBytes(LARGE));
  });
  after(async () => {
    await cluster.close();
    await faults?.close();
  });

  it('a failed sync of a large file refuses that write, removes its bytes, and the node goes on', async () => {
    const body = randomBytes(LARGE);
    const r = await putInTwoHalves(node, 'object-sync/refused', body, () => faults.fail('/objects/'));
    await faults.heal();
    assert.ok(
      (await faults.failed()).some((p) => p.includes('/objects/')),
      'the sync of the object file failed',
    );
    assert.equal(r.status, 500, r.text);
    assert.equal(r.json()['error'], 'internal');
    assert.equal((await api(node, 'GET', '/files/object-sync/refused')).status, 404);
    assert.equal((await api(node, 'GET', '/healthz')).status, 200, 'one file failed, not the database');
    await put('object-sync/after', randomBytes(LARGE));
    await assertHolds(node, acked);
    const objects = await readdir(join(node.dataDir, 'objects'));
    assert.deepEqual(
      objects.filter((f) => f.endsWith('.tmp')),
      [],
      'no partial object file left',
    );
    assert.equal(objects.length, [...acked.values()].filter((b) => b.length === LARGE).length, 'one object file per large file held');
  });

  it('a failed database sync stops writes; after a restart every acknowledged write is there, and the unknown one is whole or absent', async () => {
    const body = randomBytes(LARGE);
    const r = await putInTwoHalves(node, 'db-sync/unknown', body, () => faults.fail('store.db-wal'));
    assert.ok(
      (await faults.failed()).some((p) => p.endsWith('store.db-wal')),
      `the sync of the database log failed: ${r.status} ${r.text} ${await faults.failed()}`,
    );
    assert.equal(r.status, 503, r.text);
    assert.equal(r.json()['error'], 'storage_failed');
    assert.equal((await api(node, 'GET', '/healthz')).status, 503, 'the node asks to be restarted');
    const refused = await api(node, 'PUT', '/files/db-sync/refused', { body: 'x' });
    assert.equal(refused.status, 503, 'a failed node takes no more writes');
    assert.equal(refused.json()['error'], 'storage_failed');

    // What a restart by the kubelet does once the liveness probe fails; the disk works again.
    await faults.heal();
    await node.kill('SIGKILL');
    await node.start();
    assert.equal((await api(node, 'GET', '/healthz')).status, 200);
    await assertHolds(node, acked);
    const unknown = await api(node, 'GET', '/files/db-sync/unknown');
    assert.ok(
      unknown.status === 404 || (unknown.status === 200 && unknown.body.equals(body)),
      `the unknown write is whole or absent: ${unknown.status} ${unknown.text.slice(0, 200)}`,
    );
    assert.equal((await api(node, 'GET', '/files/db-sync/refused')).status, 404);
    await put('db-sync/after', randomBytes(100));
  });
});
