import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { api, converged, eventually, metric, TestCluster, writeMany, type FileServerNode } from './support/nodes.ts';

const FILES = 4000;

describe('a join interrupted by a crash', () => {
  const cluster = new TestCluster();
  let a: FileServerNode, b: FileServerNode, c: FileServerNode;
  let files: Map<string, Buffer>;

  before(async () => {
    a = await cluster.add({ id: 'resume-a' });
    b = await cluster.add({ id: 'resume-b' });
    await cluster.pushPeers();
    files = await writeMany(a, FILES, { prefix: 'resume', concurrency: 32, size: 8192 });
    assert.equal(files.size, FILES);
    await eventually('the first two nodes agree', () => converged([a, b]), 60_000);
  });
  after(() => {
    a.pause(false);
    b.pause(false);
    return cluster.close();
  });

  it('keeps every file the joiner had counted, pulls only the rest after a restart, and converges', async () => {
    c = await cluster.add({ id: 'resume-c' });
    await cluster.pushPeers();
    await eventually('the joiner counted some files', async () => ((await metric(c, 'filecluster_store_files')) ?? 0) > 0, 60_000, 5);
    // Freezing the seeds stops the join part-way; what the joiner counts then is what it acknowledged.
    a.pause(true);
    b.pause(true);
    await new Promise((r) => setTimeout(r, 200));
    const counted = (await metric(c, 'filecluster_store_files'))!;
    assert.ok(counted > 0 && counted < FILES, `caught part-way: ${counted} of ${FILES}`);
    await c.kill('SIGKILL');

    // Restarted while the seeds are still frozen: only its own database can have brought these back.
    await c.start();
    const recovered = (await metric(c, 'filecluster_store_files'))!;
    assert.ok(recovered >= counted, `${recovered} files after the crash, ${counted} counted before it`);
    a.pause(false);
    b.pause(false);

    await eventually('identical manifests after the restart', () => converged([a, b, c]), 120_000);
    assert.equal(await metric(c, 'filecluster_store_files'), FILES);
    // The restarted process pulled exactly what it did not hold yet: the join resumed, it did not start over.
    assert.equal(await metric(c, 'filecluster_catchup_files_repaired_total'), FILES - recovered);
    for (const [path, body] of files) {
      const r = await api(c, 'GET', `/files/${path}`);
      assert.equal(r.status, 200, path);
      assert.ok(r.body.equals(body), `${path} bytes`);
    }
  });

  it('counts the files a failed catch-up run pulled before its peer died', async () => {
    const d = await cluster.add({ id: 'resume-d' });
    await cluster.pushPeers();
    // The joiner asks its peers in list order, so these first files come from a.
    await eventually('the joiner counted some files', async () => ((await metric(d, 'filecluster_store_files')) ?? 0) > 0, 60_000, 5);
    a.pause(true);
    const counted = (await metric(d, 'filecluster_store_files'))!;
    assert.ok(counted > 0 && counted < FILES, `caught part-way: ${counted} of ${FILES}`);
    // A killed peer resets the fetch streams: that run fails after committing files, and b supplies the rest.
    await a.kill('SIGKILL');

    await eventually('identical manifests without a', () => converged([b, c, d]), 120_000);
    assert.ok(((await metric(d, 'filecluster_catchup_runs_total{result="failure"}')) ?? 0) >= 1, 'a catch-up run failed');
    assert.equal(await metric(d, 'filecluster_store_files'), FILES);
    assert.equal(await metric(d, 'filecluster_catchup_files_repaired_total'), FILES);
  });
});
