// Faults against three file servers running as containers of the locally built image: a network
// partition, SIGKILL right after an acknowledgement, a peer frozen longer than the retry back-off
// ceiling, a full data volume, and every node killed at once. Each scenario ends with the full manifest
// (path, hash, version) of every node compared.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, afterEach, before, describe, it } from 'node:test';
import { sleep, waitFor } from '../harness/index.ts';
import { api } from '../integration/fileserver/support/nodes.ts';
import { buildLocalImages, ensureDockerDaemon, type DockerDaemon } from './support/docker-daemon.ts';
import { assertSameManifests, manifest, metricSamples, metricValue, sameManifests } from './support/observe.ts';

// testcontainers' reaper is a helper image pulled from a registry, which this machine cannot reach;
// every container and network is removed by the hooks below instead.
process.env['TESTCONTAINERS_RYUK_DISABLED'] = 'true';
// The daemon runs on this machine and publishes on 127.0.0.1. Without this, testcontainers (seeing
// /.dockerenv) would look for the gateway of a default bridge the private daemon does not have, and
// then try to learn it by running a pulled alpine image.
process.env['TESTCONTAINERS_HOST_OVERRIDE'] ??= '127.0.0.1';
const { ContainerCluster } = await import('./support/containers.ts');
type NodeSpec = Parameters<typeof ContainerCluster.start>[1][number];
type Cluster = Awaited<ReturnType<typeof ContainerCluster.start>>;
type Node = Cluster['nodes'][number];

const IDS = ['fc-a', 'fc-b', 'fc-c'];
/** The push retry back-off ceiling of the file server (replication/backoff.ts). */
const BACKOFF_CEILING_MS = 30_000;
const MiB = 1024 * 1024;

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

interface Written {
  path: string;
  version: string;
  sha256: string;
}

async function put(node: Node, path: string, body: Buffer, headers: Record<string, string> = {}) {
  return api(node.url, 'PUT', `/files/${path}`, { body, headers });
}

/** A PUT that must be acknowledged; returns what the node says it stored. */
async function putOk(node: Node, path: string, body: Buffer, headers: Record<string, string> = {}): Promise<Written> {
  const r = await put(node, path, body, headers);
  assert.ok(r.status === 200 || r.status === 201, `PUT ${path} on ${node.id}: ${r.status} ${r.text}`);
  const j = r.json<{ version: string; sha256: string }>();
  assert.equal(j.sha256, sha256(body));
  return { path, version: j.version, sha256: j.sha256 };
}

/** Writes `count` files of `size` bytes with `concurrency` clients; returns the acknowledged ones. */
async function writeFiles(node: Node, prefix: string, count: number, size: number, concurrency = 8): Promise<Written[]> {
  const out: Written[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        const i = next++;
        out.push(await putOk(node, `${prefix}/${i}`, randomBytes(size)));
      }
    }),
  );
  return out;
}

/** Asserts that `node` lists exactly these versions and hashes for these paths. */
function assertHolds(list: Array<{ path: string; sha256: string; version: string }>, written: Written[], where: string): void {
  const byPath = new Map(list.map((e) => [e.path, e]));
  for (const w of written) {
    const e = byPath.get(w.path);
    assert.ok(e, `${w.path} missing on ${where}`);
    assert.equal(e.sha256, w.sha256, `${w.path} hash on ${where}`);
    assert.ok(e.version >= w.version, `${w.path} on ${where} has ${e.version}, older than the acknowledged ${w.version}`);
  }
}

/** Replication lag of every peer as seen by `node`. */
async function lags(node: Node): Promise<Map<string, number>> {
  return metricSamples(node.metricsUrl, 'filecluster_replication_lag_seconds');
}

describe('file servers in containers under faults', { timeout: 480_000 }, () => {
  let daemon: DockerDaemon;
  let image: string;
  let cluster: Cluster | undefined;

  before(async () => {
    daemon = await ensureDockerDaemon();
    const images = buildLocalImages(daemon, ['fileserver']);
    image = images.find((i) => i.startsWith('filecluster/fileserver:'))!;
  });

  afterEach(async () => {
    await cluster?.close();
    cluster = undefined;
  });

  after(async () => {
    try {
      await cluster?.close();
    } finally {
      await daemon?.close();
    }
  });

  const start = async (specs: NodeSpec[] = IDS.map((id) => ({ id }))) => {
    cluster = await ContainerCluster.start(image, specs);
    return cluster.nodes;
  };

  /** Waits until every node holds the same manifest and no node reports lag for any peer. */
  const converge = async (nodes: Node[], timeoutMs: number) => {
    await waitFor(
      async () => {
        if (!(await sameManifests(nodes))) return false;
        for (const n of nodes) for (const v of (await lags(n)).values()) if (v !== 0) return false;
        return true;
      },
      timeoutMs,
      'identical manifests and zero lag on every node',
      250,
    ).catch(async (err: Error) => {
      throw new Error(`${err.message}\n${await cluster!.diagnostics()}`);
    });
  };

  it('network partition: both sides take writes, then all converge to the same state and lag returns to 0', async (t) => {
    const [a, b, c] = await start();
    const base = await writeFiles(a!, 'base', 20, 1024);
    await converge([a!, b!, c!], 30_000);

    await c!.disconnect();
    // A file written on both sides during the partition: the later version must win everywhere.
    const [left, right, onA, onC] = await Promise.all([
      writeFiles(a!, 'left', 100, 4096),
      writeFiles(c!, 'right', 100, 4096),
      putOk(a!, 'both/conflict', Buffer.from('written on the majority side')),
      putOk(c!, 'both/conflict', Buffer.from('written on the cut-off node')),
    ]);
    assert.equal((await api(a!.url, 'DELETE', `/files/${base[0]!.path}`)).status, 200);
    assert.equal((await api(c!.url, 'DELETE', `/files/${base[1]!.path}`)).status, 200);

    // Lag towards the unreachable side rises on both sides; the majority side keeps replicating.
    await waitFor(async () => ((await lags(a!)).get('peer="fc-c"') ?? 0) > 0, 20_000, 'lag of fc-a towards fc-c above 0');
    await waitFor(
      async () => ((await lags(c!)).get('peer="fc-a"') ?? 0) > 0 && ((await lags(c!)).get('peer="fc-b"') ?? 0) > 0,
      20_000,
      'lag of fc-c towards both peers above 0',
    );
    await waitFor(async () => ((await lags(a!)).get('peer="fc-b"') ?? -1) === 0, 20_000, 'fc-a to fc-b caught up during the partition');
    assertHolds(await manifest(b!.url), left, 'fc-b during the partition');
    assert.equal(
      (await manifest(b!.url)).some((e) => e.path.startsWith('right/')),
      false,
      'fc-b cannot have fc-c writes yet',
    );

    const lagBefore = (await lags(a!)).get('peer="fc-c"');
    await c!.connect();
    const healedAt = Date.now();
    await converge([a!, b!, c!], 90_000);
    t.diagnostic(`lag of fc-a towards fc-c before healing: ${lagBefore} s; converged ${Date.now() - healedAt} ms after reconnecting`);

    const final = await assertSameManifests([a!, b!, c!]);
    assertHolds(final, [...base.slice(2), ...left, ...right], 'every node');
    const paths = new Set(final.map((e) => e.path));
    assert.ok(!paths.has(base[0]!.path) && !paths.has(base[1]!.path), 'deletes on both sides reached every node');
    const winner = onA.version > onC.version ? onA : onC;
    assert.deepEqual(
      final.find((e) => e.path === 'both/conflict'),
      { path: 'both/conflict', sha256: winner.sha256, version: winner.version },
    );
  });

  it('SIGKILL of the node that just acknowledged: the write reaches every node after restart; with ack=all it is everywhere at the answer', async () => {
    const nodes = await start();
    const acked: Written[] = [];
    for (const target of nodes) {
      // Default (local) acknowledgement: the process dies the moment the last answer arrives.
      const burst = await Promise.all([
        putOk(target, `kill/${target.id}/large`, randomBytes(4 * MiB)),
        ...Array.from({ length: 30 }, (_, i) => putOk(target, `kill/${target.id}/${i}`, randomBytes(2048))),
      ]);
      await target.kill();
      acked.push(...burst);
      await target.start();
    }
    await converge(nodes, 60_000);
    for (const n of nodes) assertHolds(await manifest(n.url), acked, n.id);

    for (const target of nodes) {
      const body = randomBytes(MiB);
      const w = await putOk(target, `all/${target.id}`, body, { 'X-FileCluster-Ack': 'all' });
      // At the moment of the answer, before anything else happens, every peer serves the same bytes.
      const others = nodes.filter((n) => n !== target);
      for (const o of others) {
        const r = await api(o.url, 'GET', `/files/${w.path}`);
        assert.equal(r.status, 200, `${w.path} on ${o.id} right after the ack=all answer`);
        assert.equal(r.headers.get('x-filecluster-version'), w.version);
        assert.equal(sha256(r.body), w.sha256);
      }
      await target.kill();
      for (const o of others) assertHolds(await manifest(o.url), [w], `${o.id} with ${target.id} down`);
      await target.start();
      acked.push(w);
    }
    await converge(nodes, 60_000);
    const final = await assertSameManifests(nodes);
    assertHolds(final, acked, 'every node');
    assert.equal(final.length, acked.length);
  });

  it('a peer paused longer than the back-off ceiling under load: the others queue on disk, not in memory, and it catches up after resume', async (t) => {
    const [a, b, c] = await start();
    await writeFiles(a!, 'warm', 40, 256 * 1024, 4);
    await writeFiles(b!, 'warm-b', 40, 256 * 1024, 4);
    await converge([a!, b!, c!], 30_000);
    const rss = (n: Node) => metricValue(n.metricsUrl, 'filecluster_process_resident_memory_bytes').then((v) => v ?? NaN);
    const baseline = { a: await rss(a!), b: await rss(b!) };

    await c!.pause();
    const pausedAt = Date.now();
    const size = 256 * 1024;
    const written: Written[] = [];
    const peak = { a: baseline.a, b: baseline.b };
    let i = 0;
    // Load for longer than the back-off ceiling: about 6 files of 256 KiB per second into each writer.
    while (Date.now() - pausedAt < BACKOFF_CEILING_MS + 8_000) {
      const round = Date.now();
      written.push(...(await Promise.all([putOk(a!, `load/a/${i}`, randomBytes(size)), putOk(b!, `load/b/${i}`, randomBytes(size))])));
      i++;
      if (i % 6 === 0) {
        peak.a = Math.max(peak.a, await rss(a!));
        peak.b = Math.max(peak.b, await rss(b!));
      }
      await sleep(Math.max(0, 166 - (Date.now() - round)));
    }
    const queued = {
      a: (await metricValue(a!.metricsUrl, 'filecluster_replication_pending_bytes', 'peer="fc-c"')) ?? 0,
      b: (await metricValue(b!.metricsUrl, 'filecluster_replication_pending_bytes', 'peer="fc-c"')) ?? 0,
    };
    assert.equal((await c!.state()).Paused, true);
    // Everything written is owed to the frozen peer; the two live nodes still replicate to each other.
    const perWriter = (written.length / 2) * size;
    assert.ok(queued.a >= perWriter && queued.b >= perWriter, `queued for fc-c: ${JSON.stringify(queued)}, written per node ${perWriter}`);
    await waitFor(
      async () => (await metricValue(a!.metricsUrl, 'filecluster_replication_pending_changes', 'peer="fc-b"')) === 0,
      30_000,
      'fc-a to fc-b drained while fc-c is paused',
    );
    // Queued bytes stay on disk: resident memory grows by well under the bytes owed to the frozen peer.
    for (const k of ['a', 'b'] as const) {
      const growth = peak[k] - baseline[k];
      assert.ok(growth < queued[k] / 2, `RSS of fc-${k} grew by ${(growth / MiB).toFixed(1)} MiB while ${(queued[k] / MiB).toFixed(1)} MiB were queued`);
    }

    t.diagnostic(
      `paused ${Date.now() - pausedAt} ms; queued for fc-c: ${(queued.a / MiB).toFixed(1)} / ${(queued.b / MiB).toFixed(1)} MiB; RSS growth: ${((peak.a - baseline.a) / MiB).toFixed(1)} / ${((peak.b - baseline.b) / MiB).toFixed(1)} MiB`,
    );
    await c!.unpause();
    const resumedAt = Date.now();
    await converge([a!, b!, c!], 120_000);
    t.diagnostic(`caught up ${Date.now() - resumedAt} ms after resume`);
    const final = await assertSameManifests([a!, b!, c!]);
    assertHolds(final, written, 'every node');
  });

  it('disk full on one node: 507 there, nothing corrupted, the others unaffected, recovery once space is freed', async (t) => {
    const [a, b, c] = await start([{ id: 'fc-a' }, { id: 'fc-b' }, { id: 'fc-c', tmpfsDataSize: '24m', env: { FC_DATA_DIR: '/data/store' } }]);
    // Something else on the volume takes most of it; the store gets what is left.
    const fill = await c!.node("require('node:fs').writeFileSync('/data/filler', Buffer.alloc(12 * 1024 * 1024, 1))");
    assert.equal(fill.exitCode, 0, fill.output);

    const onC: Written[] = [];
    const refused: string[] = [];
    for (let i = 0; refused.length < 5 && i < 200; i++) {
      const body = randomBytes(512 * 1024);
      const r = await put(c!, `full/${i}`, body);
      if (r.status === 507) {
        assert.equal(r.json<{ error: string }>().error, 'insufficient_storage');
        refused.push(`full/${i}`);
      } else {
        assert.equal(r.status, 201, r.text);
        onC.push({ path: `full/${i}`, version: r.json<{ version: string }>().version, sha256: sha256(body) });
      }
    }
    assert.equal(refused.length, 5, `the 12 MiB left never filled up after ${onC.length} files`);
    assert.ok(onC.length > 0, 'some files fit before the disk filled up');
    t.diagnostic(`${onC.length} files of 512 KiB stored before the first 507`);

    // The other nodes take writes and replicate between themselves as before.
    const onA = await writeFiles(a!, 'healthy', 30, 64 * 1024);
    await waitFor(async () => (await metricValue(a!.metricsUrl, 'filecluster_replication_pending_changes', 'peer="fc-b"')) === 0, 30_000, 'fc-a to fc-b drained');
    assertHolds(await manifest(b!.url), onA, 'fc-b');

    // Nothing on the full node is corrupted: every listed file reads back with its listed hash, and no refused write is visible.
    const listed = await manifest(c!.url);
    assertHolds(listed, onC, 'fc-c');
    for (const e of listed) {
      const r = await api(c!.url, 'GET', `/files/${e.path}`);
      assert.equal(r.status, 200);
      assert.equal(sha256(r.body), e.sha256, `${e.path} on the full node`);
    }
    for (const p of refused) assert.equal((await api(c!.url, 'GET', `/files/${p}`)).status, 404);

    const freed = await c!.node("require('node:fs').unlinkSync('/data/filler')");
    assert.equal(freed.exitCode, 0, freed.output);
    const after = await putOk(c!, 'full/after-recovery', randomBytes(512 * 1024));
    await converge([a!, b!, c!], 120_000);
    const final = await assertSameManifests([a!, b!, c!]);
    assertHolds(final, [...onC, ...onA, after], 'every node');
    const paths = new Set(final.map((e) => e.path));
    for (const p of refused) assert.ok(!paths.has(p), `${p} was refused but exists`);
  });

  it('every node killed at once under load: nothing acknowledged is lost', async (t) => {
    const nodes = await start();
    const acked = new Map<string, Written>();
    const deleted = new Set<string>();
    let stop = false;
    const writer = async (node: Node, w: number) => {
      const mine: string[] = [];
      for (let i = 0; !stop; i++) {
        const path = `power/${node.id}/${w}/${i}`;
        const body = randomBytes(1024 + ((i * 7919) % (192 * 1024)));
        try {
          if (i % 5 === 4 && mine.length > 0) {
            // Until the delete is answered the file may or may not survive, so it leaves the expected set first.
            const victim = mine.shift()!;
            const before = acked.get(victim)!;
            acked.delete(victim);
            const r = await api(node.url, 'DELETE', `/files/${victim}`);
            if (r.status === 200) deleted.add(victim);
            else acked.set(victim, before);
            continue;
          }
          const r = await put(node, path, body);
          if (r.status === 201) {
            acked.set(path, { path, version: r.json<{ version: string }>().version, sha256: sha256(body) });
            mine.push(path);
          }
        } catch {
          // The node died under this request: its outcome is unknown, and both outcomes are allowed.
          return;
        }
      }
    };
    const writers = nodes.flatMap((n) => [0, 1, 2].map((w) => writer(n, w)));
    await waitFor(() => acked.size >= 300 && deleted.size >= 30, 60_000, 'load before the power cut', 50);
    await Promise.all(nodes.map((n) => n.kill()));
    stop = true;
    await Promise.all(writers);
    await Promise.all(nodes.map((n) => n.start()));
    t.diagnostic(`${acked.size} acknowledged writes and ${deleted.size} acknowledged deletes before the kill`);

    await converge(nodes, 90_000);
    const final = await assertSameManifests(nodes);
    assertHolds(final, [...acked.values()], 'every node');
    const paths = new Set(final.map((e) => e.path));
    for (const p of deleted) assert.ok(!paths.has(p), `${p} was deleted (acknowledged) but is back`);
  });
});
