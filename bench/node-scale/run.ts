// One file server holding many small files (issue 17's 10,000,000 files of 100 bytes): its memory at
// rest, while listing and while a new peer catches up from it; restart to Ready; SIGTERM to exit; disk
// per file; listing 1,000 files under a prefix; and how long the new peer takes to be Ready.
//
//   node bench/node-scale/run.ts [--files 10000000] [--size 100] [--join-timeout-s 10800]
//
// The seed's data directory is filled in this process through the store's own API (batches of
// replicated changes, the way a join writes them), which takes minutes where ten million PUTs would take
// hours. Everything after that runs against real file-server processes (built to dist/ first, with the
// image's V8 flags) on loopback, through HTTP: the seed starts, rests, is listed and read, stops on
// SIGTERM and starts again; then a new node with the seed as its only peer joins it. RSS is read from
// /proc (the whole process, as a memory limit sees it) every 100 ms during each phase, and the highest
// sample is reported. Files are spread over one prefix per 10,000 files (`m/<k>/`), so a prefix holds
// 10,000 files whatever the count.
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { imageNodeOptions } from '../../scripts/image-env.ts';
import { Store, type ChangeHeader } from '../../fileserver/src/store/store.ts';
import { HybridClock } from '../../fileserver/src/store/version.ts';
import { ensureCompiled } from '../../test/harness/assets.ts';
import { api, converged, eventually, metric, TestCluster, type FileServerNode } from '../../test/integration/fileserver/support/nodes.ts';
import { peakRssMiB, RssSampler, rssMiB } from '../support/rss.ts';
import { removeScratch, scratchDir } from '../support/scratch.ts';
import { markdownTable } from '../support/table.ts';

const { values: args } = parseArgs({
  options: {
    files: { type: 'string', default: '10000000' },
    size: { type: 'string', default: '100' },
    'join-timeout-s': { type: 'string', default: '10800' },
  },
});
const FILES = Number(args.files);
const SIZE = Number(args.size);
const PREFIXES = Math.max(1, Math.floor(FILES / 10_000));
const BATCH = 10_000;
const REST_MS = 10_000;
const LISTINGS = 100;
const READS = 1000;
const say = (line: string) => process.stderr.write(`[node-scale] ${line}\n`);

const pathOf = (i: number) => `m/${i % PREFIXES}/${i}`;
/** A file's bytes: its path, padded to SIZE, so every file differs. */
const bodyOf = (i: number) => Buffer.from(pathOf(i).padEnd(SIZE, '.').slice(0, SIZE));

async function seed(dataDir: string): Promise<void> {
  const clock = new HybridClock('scale-a');
  const store = await Store.open({ dataDir, clock, logger: pino({ level: 'warn' }), initialPeers: { generation: 0, peers: [] } });
  const t0 = performance.now();
  for (let i = 0; i < FILES; i += BATCH) {
    const changes: Array<{ h: ChangeHeader; data: Buffer }> = [];
    for (let j = i; j < Math.min(FILES, i + BATCH); j++) {
      const data = bodyOf(j);
      const sha256 = createHash('sha256').update(data).digest('hex');
      changes.push({ h: { path: pathOf(j), version: clock.now(), deleted: false, size: SIZE, sha256, contentType: 'application/octet-stream' }, data });
    }
    const results = await store.applyRemoteBatch(changes);
    const bad = results.find((r) => r !== 'applied');
    if (bad) throw new Error(`seeding failed: ${String(bad)}`);
    if ((i + BATCH) % 1_000_000 === 0) say(`seeded ${i + BATCH} files, ${((i + BATCH) / ((performance.now() - t0) / 1000)).toFixed(0)} files/s`);
  }
  await store.close();
}

/** Bytes under `dir`, without the store's reserve file (space held back, not data). */
const diskBytes = (dir: string) => Number(execFileSync('du', ['-sb', '--exclude=reserve', dir]).toString().split('\t')[0]);

/** Milliseconds from now until `node` answers /readyz with 200, polled every 10 ms. */
async function untilReady(node: FileServerNode, t0: number, timeoutMs = 120_000): Promise<number> {
  await eventually(`${node.id} to be ready`, async () => (await api(node, 'GET', '/readyz')).status === 200, timeoutMs, 10);
  return performance.now() - t0;
}

/** Milliseconds from SIGTERM until the process has exited; it must exit 0. */
async function stopMs(node: FileServerNode): Promise<number> {
  const t0 = performance.now();
  const code = await node.kill('SIGTERM');
  const ms = performance.now() - t0;
  if (code !== 0) throw new Error(`${node.id} exited ${code} after SIGTERM: ${node.logs.slice(-5).join('\n')}`);
  return ms;
}

const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
};

/** Lists 1,000 files per request: the first and the second page of LISTINGS / 2 prefixes. Returns each request's ms. */
async function listings(node: FileServerNode): Promise<number[]> {
  const ms: number[] = [];
  for (let k = 0; k < LISTINGS / 2; k++) {
    const prefix = `m/${(k * 37) % PREFIXES}/`;
    let cursor = '';
    for (let page = 0; page < 2; page++) {
      const t0 = performance.now();
      const r = await api(node, 'GET', `/files?prefix=${encodeURIComponent(prefix)}&limit=1000${cursor ? `&cursor=${cursor}` : ''}`);
      ms.push(performance.now() - t0);
      if (r.status !== 200) throw new Error(`listing ${prefix}: ${r.status} ${r.text}`);
      const body = r.json<{ entries: unknown[]; nextCursor: string | null }>();
      const inPrefix = Math.ceil((FILES - ((k * 37) % PREFIXES)) / PREFIXES);
      const expected = Math.max(0, Math.min(1000, inPrefix - page * 1000));
      if (body.entries.length !== expected) throw new Error(`listing ${prefix} page ${page}: ${body.entries.length} entries, expected ${expected}`);
      if (!body.nextCursor) break;
      cursor = body.nextCursor;
    }
  }
  return ms;
}

/** GETs random files one at a time and checks their bytes. Returns each request's ms. */
async function reads(node: FileServerNode): Promise<number[]> {
  const ms: number[] = [];
  for (let k = 0; k < READS; k++) {
    const i = Math.floor(Math.random() * FILES);
    const t0 = performance.now();
    const r = await api(node, 'GET', `/files/${pathOf(i)}`);
    ms.push(performance.now() - t0);
    if (r.status !== 200 || !r.body.equals(bodyOf(i))) throw new Error(`GET ${pathOf(i)}: ${r.status}, ${r.body.length} bytes`);
  }
  return ms;
}

say('building dist/ when stale (the file servers run compiled JavaScript)');
ensureCompiled();
const dir = await scratchDir('node-scale');
const cluster = new TestCluster();
const env = { NODE_OPTIONS: imageNodeOptions() };
const f0 = (n: number) => n.toFixed(0);
const f1 = (n: number) => n.toFixed(1);
try {
  const loadBefore = os.loadavg()[0]!.toFixed(2);
  let t0 = performance.now();
  await seed(`${dir}/a`);
  const seedS = (performance.now() - t0) / 1000;
  say(`seeded ${FILES} files in ${f1(seedS)} s`);
  const seedDisk = diskBytes(`${dir}/a`);

  t0 = performance.now();
  const a = await cluster.add({ id: 'scale-a', dataDir: `${dir}/a`, env });
  const firstStartMs = await untilReady(a, t0);
  const pidA = a.proc!.pid!;
  say(`seed ready after ${f0(firstStartMs)} ms; resting ${REST_MS / 1000} s`);

  let sampler = new RssSampler([pidA]);
  await sleep(REST_MS);
  const [restRss] = sampler.stop();

  sampler = new RssSampler([pidA]);
  const listMs = await listings(a);
  const [listRss] = sampler.stop();
  const readMs = await reads(a);
  say(`listed ${listMs.length} pages and read ${readMs.length} files`);

  const stoppedMs = await stopMs(a);
  t0 = performance.now();
  await a.start();
  const restartMs = await untilReady(a, t0);
  const pidA2 = a.proc!.pid!;
  const restartedRss = rssMiB(pidA2);
  say(`SIGTERM to exit ${f0(stoppedMs)} ms, restart to ready ${f0(restartMs)} ms; a new node joins`);

  t0 = performance.now();
  const c = await cluster.add({ id: 'scale-c', dataDir: `${dir}/c`, env: { ...env, FC_PEERS: `${a.id}=${a.url}` } });
  sampler = new RssSampler([pidA2, c.proc!.pid!]);
  await eventually(
    'the joiner is ready',
    async () => {
      if ((await api(c, 'GET', '/readyz')).status === 200) return true;
      say(
        `joiner holds ${(await metric(c, 'filecluster_store_files')) ?? 0} files after ${f0((performance.now() - t0) / 1000)} s; RSS seed ${f0(sampler.max.get(pidA2)!)}, joiner ${f0(sampler.max.get(c.proc!.pid!)!)} MiB so far`,
      );
      return false;
    },
    Number(args['join-timeout-s']) * 1000,
    10_000,
  );
  const joinS = (performance.now() - t0) / 1000;
  const [seedJoinRss, joinerRss] = sampler.stop();
  const peaks = [peakRssMiB(pidA2), peakRssMiB(c.proc!.pid!)];
  const held = (await metric(c, 'filecluster_store_files')) ?? 0;
  const pages = (await metric(c, 'filecluster_catchup_manifest_pages_total')) ?? 0;
  if (held !== FILES) throw new Error(`the joiner is ready with ${held} of ${FILES} files`);
  if (!(await converged([a, c]))) throw new Error('the joiner is ready but its manifest differs from the seed');
  await stopMs(c);
  const joinerDisk = diskBytes(`${dir}/c`);

  const payload = FILES * SIZE;
  const perFile = (bytes: number) => `${f0((bytes - payload) / FILES)} B/file over the payload (${f0(bytes / 2 ** 20)} MiB in all)`;
  const verdict = (measured: number, limit: number) => (measured < limit ? 'met' : 'MISSED');
  const rows = [
    ['measure', 'target', 'measured', ''],
    ['seed RSS at rest (10 s after Ready, highest sample)', '< 256 MiB', `${f0(restRss!)} MiB`, verdict(restRss!, 256)],
    [`seed RSS while listing (${listMs.length} pages of 1,000)`, '< 256 MiB', `${f0(listRss!)} MiB`, verdict(listRss!, 256)],
    ['seed RSS while a new node catches up from it', '< 256 MiB', `${f0(seedJoinRss!)} MiB (peak since restart ${f0(peaks[0]!)})`, verdict(seedJoinRss!, 256)],
    ['joiner RSS while catching up', '< 256 MiB', `${f0(joinerRss!)} MiB (peak ${f0(peaks[1]!)})`, verdict(joinerRss!, 256)],
    [
      'restart (after SIGTERM) to Ready',
      '< 3 s',
      `${f0(restartMs)} ms (first start after seeding ${f0(firstStartMs)} ms; RSS at Ready ${f0(restartedRss)} MiB)`,
      verdict(restartMs, 3000),
    ],
    ['SIGTERM to exit', '< 2 s', `${f0(stoppedMs)} ms`, verdict(stoppedMs, 2000)],
    ['disk, seed (written through the store API)', '< payload + 300 B/file', perFile(seedDisk), verdict((seedDisk - payload) / FILES, 300)],
    ['disk, joiner (written by catching up)', '< payload + 300 B/file', perFile(joinerDisk), verdict((joinerDisk - payload) / FILES, 300)],
    [
      'list 1,000 under a prefix, median (p99, max)',
      '< 20 ms',
      `${f1(quantile(listMs, 0.5))} ms (${f1(quantile(listMs, 0.99))}, ${f1(Math.max(...listMs))})`,
      verdict(quantile(listMs, 0.5), 20),
    ],
    ['GET one random file, median (p99)', '', `${f1(quantile(readMs, 0.5))} ms (${f1(quantile(readMs, 0.99))})`, ''],
    ['new node: start to Ready', '', `${f1(joinS)} s (${f0(FILES / joinS)} files/s, ${pages} manifest pages)`, ''],
  ];
  process.stdout.write(
    `\n${FILES} files of ${SIZE} bytes on one node (seeded in ${f1(seedS)} s through the store API); ${os.cpus().length} cores, load average ${loadBefore} at the start, ${os.loadavg()[0]!.toFixed(2)} at the end\n\n${markdownTable(rows)}`,
  );
} finally {
  await cluster.close();
  await removeScratch([dir]);
}
