// Benchmark of the file server: three local nodes with replication and fsync, against nginx serving the
// same files with the same load tool (wrk) on the same machine. Prints a Markdown table. Not a test.
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { symlinkSync } from 'node:fs';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import { imageNodeOptions } from '../../scripts/image-env.ts';
import { removeScratch, scratchDir } from '../support/scratch.ts';
import { api, eventually, TestCluster, type FileServerNode } from '../../test/integration/fileserver/support/nodes.ts';

const HERE = import.meta.dirname;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const GET_FILES = 1000;
const BIG_BYTES = 1024 ** 3;
// BENCH_PHASES=get (comma-separated: big, get, put, lag, put1m) runs only those measurements; lag needs put's rate.
const PHASES = new Set((process.env.BENCH_PHASES ?? 'big,get,put,lag,put1m').split(',').map((p) => p.trim()));
// BENCH_BASELINE=<git commit> also runs the `get` and `put` phases on that commit's file server, alternated
// with this tree's in the same run, and prints both.
const BASELINE = process.env.BENCH_BASELINE;
const REPO = join(HERE, '../..');

interface Variant {
  name: string;
  /** Compiled entry point; this tree's when undefined. */
  entry?: string;
}

/** Builds the file server of `commit` (its sources by `git archive`, this tree's node_modules) into `dir`. */
function buildBaseline(commit: string, dir: string): string {
  // Older commits lack some of these (contract/ came later).
  const paths = ['contract', 'fileserver/src', 'package.json', 'tsconfig.json', 'tsconfig.build.json'].filter(
    (p) => spawnSync('git', ['-C', REPO, 'cat-file', '-e', `${commit}:${p}`]).status === 0,
  );
  execFileSync('sh', ['-c', `git -C ${REPO} archive ${commit} ${paths.join(' ')} | tar -x -C ${dir}`]);
  symlinkSync(join(REPO, 'node_modules'), join(dir, 'node_modules'));
  execFileSync(join(REPO, 'node_modules/.bin/tsc'), ['-p', join(dir, 'tsconfig.build.json')], { stdio: 'inherit' });
  return join(dir, 'dist/fileserver/src/main.js');
}

interface WrkResult {
  requests: number;
  ok: number;
  seconds: number;
  rps: number;
  p50ms: number;
  p99ms: number;
}

function wrk(url: string, script: string, env: Record<string, string>, connections: number, seconds = SECONDS): WrkResult {
  const out = execFileSync('wrk', ['-t2', `-c${connections}`, `-d${seconds}s`, '--latency', '-s', join(HERE, script), url], {
    env: { ...process.env, ...env },
    encoding: 'utf8',
  });
  const num = (re: RegExp) => Number(re.exec(out)?.[1] ?? 0);
  const ms = (p: string) => {
    const m = new RegExp(`\\s${p}%\\s+([\\d.]+)(us|ms|s)`).exec(out);
    if (!m) return NaN;
    return Number(m[1]) * (m[2] === 'us' ? 0.001 : m[2] === 's' ? 1000 : 1);
  };
  const requests = num(/(\d+) requests in/);
  const seconds_ = num(/requests in ([\d.]+)s/);
  const bad = num(/Non-2xx or 3xx responses: (\d+)/) + num(/Socket errors: connect (\d+)/);
  return { requests, ok: requests - bad, seconds: seconds_, rps: (requests - bad) / seconds_, p50ms: ms('50'), p99ms: ms('99') };
}

async function pendingTotal(nodes: FileServerNode[]): Promise<number> {
  let total = 0;
  for (const n of nodes) {
    const s = (await api(n, 'GET', '/internal/status', { auth: true })).json<{ peers: Array<{ pendingChanges: number }> }>();
    total += s.peers.reduce((a, p) => a + p.pendingChanges, 0);
  }
  return total;
}

async function drainSeconds(nodes: FileServerNode[]): Promise<number> {
  const t0 = performance.now();
  await eventually('replication drained', async () => (await pendingTotal(nodes)) === 0, 600_000, 20);
  return (performance.now() - t0) / 1000;
}

/** Cumulative ack-latency histogram of a node, summed over peers: upper bound (s) -> count. */
async function ackHistogram(node: FileServerNode): Promise<Map<number, number>> {
  const text = await (await fetch(node.metricsUrl)).text();
  const h = new Map<number, number>();
  for (const m of text.matchAll(/^filecluster_replication_ack_latency_seconds_bucket\{le="([^"]+)",peer="[^"]+"\} (\d+)$/gm)) {
    const le = m[1] === '+Inf' ? Infinity : Number(m[1]);
    h.set(le, (h.get(le) ?? 0) + Number(m[2]));
  }
  return h;
}

/** Quantile from a cumulative histogram delta, interpolated linearly inside the bucket. */
function quantile(before: Map<number, number>, after: Map<number, number>, q: number): number {
  const bounds = [...after.keys()].sort((a, b) => a - b);
  const total = (after.get(Infinity) ?? 0) - (before.get(Infinity) ?? 0);
  const rank = q * total;
  let prevBound = 0;
  let prevCount = 0;
  for (const b of bounds) {
    const c = (after.get(b) ?? 0) - (before.get(b) ?? 0);
    if (c >= rank) return b === Infinity ? prevBound : prevBound + ((b - prevBound) * (rank - prevCount)) / Math.max(1, c - prevCount);
    prevBound = b;
    prevCount = c;
  }
  return NaN;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 128 });
function put(node: FileServerNode, path: string, body: Buffer): Promise<number> {
  return new Promise((resolve) => {
    const req = http.request(`${node.url}/files/${path}`, { method: 'PUT', agent, headers: { 'content-length': body.length } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', () => resolve(0));
    req.end(body);
  });
}

/** Open-loop load: `rate` PUTs per second for `seconds`, whatever the answers take. */
function rssMiB(pid: number): Promise<number> {
  return readFile(`/proc/${pid}/status`, 'utf8').then((s) => Number(/VmRSS:\s+(\d+)/.exec(s)?.[1] ?? 0) / 1024);
}

/** Moves 1 GiB in (ack=all, so both replicas receive it) and out again while sampling every node's RSS. */
async function bigFile(nodes: FileServerNode[]): Promise<{ baseMiB: number; peakMiB: number; inSeconds: number; outSeconds: number; ok: boolean }> {
  const baseMiB = Math.max(...(await Promise.all(nodes.map((n) => rssMiB(n.proc!.pid!)))));
  let peak = 0;
  const sampler = setInterval(() => {
    for (const n of nodes) void rssMiB(n.proc!.pid!).then((r) => (peak = Math.max(peak, r)));
  }, 50);
  try {
    const chunk = randomBytes(1024 * 1024);
    const sent = createHash('sha256');
    const t0 = performance.now();
    const status = await new Promise<number>((resolve, reject) => {
      const req = http.request(
        `${nodes[0]!.url}/files/big/1GiB.bin`,
        {
          method: 'PUT',
          headers: { 'content-length': BIG_BYTES, 'x-filecluster-ack': 'all' },
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      req.on('error', reject);
      let written = 0;
      const pump = () => {
        while (written < BIG_BYTES) {
          sent.update(chunk);
          written += chunk.length;
          if (!req.write(chunk)) return void req.once('drain', pump);
        }
        req.end();
      };
      pump();
    });
    const inSeconds = (performance.now() - t0) / 1000;
    const t1 = performance.now();
    const got = createHash('sha256');
    await new Promise<void>((resolve, reject) => {
      http.get(`${nodes[1]!.url}/files/big/1GiB.bin`, (res) => {
        res.on('data', (d: Buffer) => got.update(d));
        res.on('end', resolve);
        res.on('error', reject);
      });
    });
    const outSeconds = (performance.now() - t1) / 1000;
    return { baseMiB, peakMiB: peak, inSeconds, outSeconds, ok: status === 201 && got.digest('hex') === sent.digest('hex') };
  } finally {
    clearInterval(sampler);
  }
}

async function freePort(host: string): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, host, () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

async function startNginx(dir: string, files: Map<number, Buffer>, workers: number | 'auto' = 'auto'): Promise<{ url: string; stop(): Promise<void> }> {
  const www = join(dir, 'www', 'files', 'g');
  await mkdir(www, { recursive: true });
  for (const [i, body] of files) await writeFile(join(www, String(i)), body);
  // nginx workers run as an unprivileged user and must be able to walk down to the files.
  for (const d of [join(dir, '..'), dir, join(dir, 'www'), join(dir, 'www', 'files'), www]) await chmod(d, 0o755);
  const host = '127.88.0.1';
  const port = await freePort(host);
  const conf = join(dir, 'nginx.conf');
  await writeFile(
    conf,
    `worker_processes ${workers};
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fastcgi; uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  server { listen ${host}:${port}; root ${dir}/www; location / { } }
}
`,
  );
  const nginx = spawn('nginx', ['-c', conf, '-p', dir, '-g', 'daemon off;'], { stdio: 'inherit' });
  const url = `http://${host}:${port}`;
  try {
    await eventually('nginx up', async () => (await fetch(`${url}/files/g/0`)).status === 200, 10_000);
  } catch (err) {
    nginx.kill('SIGTERM');
    throw err;
  }
  return {
    url,
    stop: () =>
      new Promise<void>((resolve) => {
        nginx.once('exit', () => resolve());
        nginx.kill('SIGTERM');
      }),
  };
}

/** Each measurement runs on a fresh three-node cluster after `sync`, so earlier phases' writeback and compaction do not leak into it. */
async function main(): Promise<void> {
  const work = await scratchDir('nginx');
  const phases: string[] = [];
  let cluster: TestCluster | undefined;
  let nginx: { url: string; stop(): Promise<void> } | undefined;
  const stop = async () => {
    await nginx?.stop();
    await cluster?.close();
    await removeScratch([work, ...phases]);
  };
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => void stop().then(() => process.exit(130)));
  const env = { FC_ACK_TIMEOUT_MS: '600000', NODE_OPTIONS: process.env.BENCH_NODE_OPTIONS ?? imageNodeOptions() };
  // Every phase gets new data directories (see scratch.ts); none is deleted before the run is over, so
  // no phase creates files while the file system still skips the inodes another phase deleted.
  const variants: Variant[] = [{ name: 'this tree' }];
  if (BASELINE) {
    const dir = await scratchDir('baseline');
    phases.push(dir);
    variants.unshift({ name: `baseline ${BASELINE}`, entry: buildBaseline(BASELINE, dir) });
  }
  const fresh = async (variant: Variant = variants.at(-1)!): Promise<FileServerNode[]> => {
    await cluster?.close();
    execFileSync('sync');
    cluster = new TestCluster();
    const phase = await scratchDir('phase');
    phases.push(phase);
    const add = (id: string) => cluster!.add({ id, env, dataDir: join(phase, id), entry: variant.entry });
    const nodes = [await add('bench-a'), await add('bench-b'), await add('bench-c')];
    await cluster.pushPeers();
    return nodes;
  };
  const loadavg = async () => (await readFile('/proc/loadavg', 'utf8')).split(' ').slice(0, 3).join(' ');
  const log = (s: string) => process.stderr.write(`${s}\n`);
  try {
    const loadAtStart = await loadavg();
    const rows: string[][] = [];

    if (PHASES.has('big')) {
      log('1 GiB in and out');
      const nodes = await fresh();
      const big = await bigFile(nodes);
      rows.push([
        'RSS of the busiest node while 1 GiB goes in (ack=all, so both replicas stream it too) and out',
        `${big.baseMiB.toFixed(1)} MiB before, ${big.peakMiB.toFixed(1)} MiB peak`,
        '',
        `target < 100 MiB ${big.peakMiB < 100 ? 'met' : 'MISSED'}; in ${big.inSeconds.toFixed(1)} s, out ${big.outSeconds.toFixed(1)} s, bytes ${big.ok ? 'identical' : 'DIFFER'}`,
      ]);
    }

    if (PHASES.has('get')) {
      log('GET 4 KiB vs nginx');
      const files = new Map<number, Buffer>();
      for (let i = 0; i < GET_FILES; i++) files.set(i, randomBytes(4096));
      const get = (url: string) => wrk(url, 'get.lua', { COUNT: String(GET_FILES), PATH_PREFIX: '/files/g/' }, 64).rps;
      const loaded = async (variant: Variant): Promise<FileServerNode[]> => {
        const nodes = await fresh(variant);
        for (let i = 0; i < GET_FILES; i += 50) await Promise.all([...Array(50).keys()].map((k) => put(nodes[0]!, `g/${i + k}`, files.get(i + k)!)));
        await drainSeconds(nodes);
        execFileSync('sync');
        return nodes;
      };
      // Best of two runs each, to even out other load on the machine: the file servers' back to back on
      // one cluster each, nginx's alternated.
      const fsBest = new Map<Variant, number>();
      for (const variant of variants) {
        const nodes = await loaded(variant);
        fsBest.set(variant, Math.max(get(nodes[1]!.url), get(nodes[1]!.url)));
      }
      const best = { fs: fsBest.get(variants.at(-1)!)!, auto: 0, one: 0 };
      for (let round = 0; round < 2; round++) {
        for (const [key, workers] of [
          ['auto', 'auto'],
          ['one', 1],
        ] as const) {
          nginx = await startNginx(join(work, `nginx-${key}-${round}`), files, workers);
          best[key] = Math.max(best[key], get(nginx.url));
          await nginx.stop();
          nginx = undefined;
        }
      }
      rows.push([
        'GET 4 KiB, requests/s: one node vs nginx `worker_processes auto` (2 workers)',
        best.fs.toFixed(0),
        best.auto.toFixed(0),
        `ratio ${(best.fs / best.auto).toFixed(2)} (target ≥ 0.5)`,
      ]);
      rows.push([
        'GET 4 KiB, requests/s: one node vs nginx with 1 worker (one process each)',
        best.fs.toFixed(0),
        best.one.toFixed(0),
        `ratio ${(best.fs / best.one).toFixed(2)}`,
      ]);
      if (BASELINE) {
        const base = fsBest.get(variants[0]!)!;
        rows.push([`GET 4 KiB, requests/s: ${variants[0]!.name}`, base.toFixed(0), best.auto.toFixed(0), `this tree / baseline ${(best.fs / base).toFixed(2)}`]);
      }
    }

    if (PHASES.has('put') || PHASES.has('lag')) {
      // Group commit makes the rate grow with the writes in flight, so the maximum is looked for over
      // client counts, each on a fresh cluster (a cluster's later runs carry the earlier runs' data).
      const puts = new Map<Variant, WrkResult>();
      let nodes: FileServerNode[] = [];
      for (const [i, connections] of [64, 128, 256].entries()) {
        // With a baseline, each takes the first turn at every other client count.
        for (const variant of i % 2 === 0 ? variants : [...variants].reverse()) {
          const who = BASELINE ? `, ${variant.name}` : '';
          log(`PUT 4 KiB at full speed, ${connections} connections${who}`);
          nodes = await fresh(variant);
          wrk(nodes[0]!.url, 'put.lua', { SIZE: '4096', PREFIX: 'warm' }, 32, 3);
          await drainSeconds(nodes);
          const run = wrk(nodes[0]!.url, 'put.lua', { SIZE: '4096', PREFIX: 'p4' }, connections);
          const drain = await drainSeconds(nodes);
          rows.push([
            `PUT 4 KiB, acknowledged writes/s (fsync on, replicated to 2 peers, wrk -t2 -c${connections})${who}`,
            run.rps.toFixed(0),
            '',
            `client p50 ${run.p50ms.toFixed(1)} ms, p99 ${run.p99ms.toFixed(1)} ms; all replicas complete ${drain.toFixed(2)} s after the load stops (${run.ok} writes)`,
          ]);
          const best = puts.get(variant);
          if (!best || run.rps > best.rps) puts.set(variant, run);
        }
      }
      for (const variant of variants) {
        const best = puts.get(variant)!;
        rows.push([
          `PUT 4 KiB, maximum acknowledged writes/s of those${BASELINE ? `, ${variant.name}` : ''}`,
          best.rps.toFixed(0),
          '',
          `target ≥ 3000 ${best.rps >= 3000 ? 'met' : 'MISSED'}`,
        ]);
      }
      const put4 = puts.get(variants.at(-1)!);

      // Half the maximum rate: 32 connections, each pausing between requests (wrk's delay()), so the
      // load generator stays the cheap C client rather than a Node one competing for the same CPUs.
      const target = put4!.rps / 2;
      const connections = 32;
      const delayMs = Math.max(1, Math.round((connections * 1000) / target - put4!.p50ms / 4));
      log(`PUT 4 KiB at about half that rate (${target.toFixed(0)}/s), replication lag`);
      nodes = await fresh();
      // Fresh processes run unoptimised code for the first seconds; measure the steady state.
      wrk(nodes[0]!.url, 'put.lua', { SIZE: '4096', PREFIX: 'lag-warm', DELAY_MS: String(delayMs) }, connections, 3);
      await drainSeconds(nodes);
      const before = await ackHistogram(nodes[0]!);
      const half = wrk(nodes[0]!.url, 'put.lua', { SIZE: '4096', PREFIX: 'lag', DELAY_MS: String(delayMs) }, connections);
      await drainSeconds(nodes);
      const after = await ackHistogram(nodes[0]!);
      const p50 = quantile(before, after, 0.5) * 1000;
      const p99 = quantile(before, after, 0.99) * 1000;
      rows.push([
        `replication lag (local commit to ack by each peer) at ${half.rps.toFixed(0)} writes/s, p50 / p99`,
        `${p50.toFixed(1)} ms / ${p99.toFixed(1)} ms`,
        '',
        `target p99 < 100 ms (${half.ok} writes, ${connections} connections pausing ${delayMs} ms)`,
      ]);
    }

    if (PHASES.has('put1m')) {
      log('PUT 1 MiB');
      const nodes = await fresh();
      const put1m = wrk(nodes[0]!.url, 'put.lua', { SIZE: String(1024 * 1024), PREFIX: 'p1m' }, 8);
      const drain1m = await drainSeconds(nodes);
      rows.push([
        'PUT 1 MiB, acknowledged writes/s (wrk -t2 -c8)',
        `${put1m.rps.toFixed(0)} (${put1m.rps.toFixed(0)} MiB/s)`,
        '',
        `replicas complete ${drain1m.toFixed(2)} s after the load stops`,
      ]);
    }

    const cpus = execFileSync('nproc', { encoding: 'utf8' }).trim();
    console.log(
      `\nFile server benchmark (${cpus} CPUs, ${SECONDS} s per run, 3 nodes on one machine, fsync on; load average at start ${loadAtStart}, at end ${await loadavg()})\n`,
    );
    console.log('| measure | file server | nginx | notes |');
    console.log('|---|---|---|---|');
    for (const r of rows) console.log(`| ${r.join(' | ')} |`);
  } finally {
    await stop();
  }
}

await main();
