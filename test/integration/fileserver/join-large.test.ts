import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { api, converged, eventually, TestCluster, type FileServerNode } from './support/nodes.ts';

// Catch-up of files above the inline limit: they stream through /internal/fetch from a reused buffer
// per file, so every byte must still arrive in its place and every file must be whole.
describe('a new node catches up large files next to small ones', () => {
  const cluster = new TestCluster();
  let a: FileServerNode, b: FileServerNode;
  const files = new Map<string, Buffer>();

  before(async () => {
    a = await cluster.add({ id: 'large-a' });
    b = await cluster.add({ id: 'large-b' });
    await cluster.pushPeers();
    const sizes = [3 * 1024 * 1024 + 17, 256 * 1024, 65 * 1024, 2 * 1024 * 1024, 10, 8192, 1024 * 1024 - 1];
    for (const [i, size] of sizes.entries()) files.set(`big/${i}`, randomBytes(size));
    for (const [path, body] of files) assert.equal((await api(a, 'PUT', `/files/${path}`, { body })).status, 201);
    await eventually('the first two nodes agree', () => converged([a, b]), 60_000);
  });
  after(() => cluster.close());

  it('holds every file with its exact bytes once converged', async () => {
    const c = await cluster.add({ id: 'large-c' });
    await cluster.pushPeers();
    await eventually('the joiner converges', () => converged([a, b, c]), 60_000);
    for (const [path, body] of files) {
      const r = await api(c, 'GET', `/files/${path}`);
      assert.equal(r.status, 200, path);
      assert.equal(r.headers.get('x-filecluster-served-by'), null, `${path} is served by the joiner itself`);
      assert.ok(r.body.equals(body), `${path}: the bytes match`);
    }
  });
});
