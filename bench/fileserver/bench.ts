// Benchmark of the file server: three local nodes with replication and fsync, against nginx serving the
// same files with the same load tool (wrk) on the same machine. Prints a Markdown table. Not a test.
import { spawn, execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { api, eventually, TestCluster, type FileServerNode } from '../../test/integration/fileserver/support/nodes.ts';

const HERE = import.meta.dirname;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const GET_FILES = 1000;
const BIG_BYTES = 1024 ** 3;

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
async function openLoop(node: FileServerNode, rate: number, seconds: number): Promise<{ ok: number; sent: number }> {
  const body = Buffer.alloc(4096, 'y');
  const inflight: Array<Promise<number>> = [];
  const t0 = performance.now();
  let sent = 0;
  while (performance.now() - t0 < seconds * 1000) {
    const due = Math.floor(((performance.now() - t0) / 1000) * rate);
    while (sent < due) inflight.push(put(node, `lag/${sent++}`, body));
    await new Promise((r) => setTimeout(r, 2));
  }
  const codes = await Promise.all(inflight);
  return { ok: codes.filter((c) => c === 201 || c === 200).length, sent };
}

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
      const req = http.request(`${nodes[0]!.url}/files/big/1GiB.bin`, {
        method: 'PUT',
        headers: { 'content-length': BIG_BYTES, 'x-filecluster-ack': 'all' },
      }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
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

async function main(): Promise<void> {
  const cluster = new TestCluster();
  const work = await mkdtemp(join(tmpdir(), 'fc-bench-'));
  let nginx: { url: string; stop(): Promise<void> } | undefined;
  const stop = async () => {
    await nginx?.stop();
    await cluster.close();
    await rm(work, { recursive: true, force: true });
  };
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => void stop().then(() => process.exit(130)));
  try {
    // The same V8 setting the container image uses: a small young generation frees stream buffers promptly.
    const env = { FC_ACK_TIMEOUT_MS: '600000', NODE_OPTIONS: process.env.BENCH_NODE_OPTIONS ?? '--max-semi-space-size=1' };
    const nodes = [await cluster.add({ id: 'bench-a', env }), await cluster.add({ id: 'bench-b', env }), await cluster.add({ id: 'bench-c', env })];
    await cluster.pushPeers();
    const loadAtStart = (await readFile('/proc/loadavg', 'utf8')).split(' ').slice(0, 3).join(' ');
    const [a, b] = nodes as [FileServerNode, FileServerNode];
    const rows: string[][] = [];
    const log = (s: string) => process.stderr.write(`${s}\n`);

    log('1 GiB in and out (fresh nodes)');
    const big = await bigFile(nodes);
    rows.push([
      'RSS of the busiest (fresh) node while 1 GiB goes in (ack=all, so both replicas stream it too) and out',
      `${big.baseMiB.toFixed(0)} MiB before, ${big.peakMiB.toFixed(0)} MiB peak`,
      '',
      `target < 100 MiB; in ${big.inSeconds.toFixed(1)} s, out ${big.outSeconds.toFixed(1)} s, bytes ${big.ok ? 'identical' : 'DIFFER'}`,
    ]);

    log('warm-up');
    wrk(a.url, 'put.lua', { SIZE: '4096', PREFIX: 'warm' }, 32, 3);
    await drainSeconds(nodes);

    log('PUT 4 KiB at full speed');
    const put4 = wrk(a.url, 'put.lua', { SIZE: '4096', PREFIX: 'p4' }, 64);
    const drain4 = await drainSeconds(nodes);
    rows.push(['PUT 4 KiB, acknowledged writes/s (fsync on, replicated to 2 peers)', put4.rps.toFixed(0), '', `target ≥ 3000; client p50 ${put4.p50ms.toFixed(1)} ms, p99 ${put4.p99ms.toFixed(1)} ms`]);
    rows.push(['time for all replicas to have every acknowledged write after that load stops', `${drain4.toFixed(2)} s`, '', `${put4.ok} writes`]);

    const rate = Math.max(100, Math.round(put4.rps / 2));
    log(`PUT 4 KiB at half that rate (${rate}/s), replication lag`);
    const before = await ackHistogram(a);
    const loop = await openLoop(a, rate, SECONDS);
    await drainSeconds(nodes);
    const after = await ackHistogram(a);
    const p50 = quantile(before, after, 0.5) * 1000;
    const p99 = quantile(before, after, 0.99) * 1000;
    rows.push([`replication lag (local commit to peer ack) at ${rate} writes/s, p50 / p99`, `${p50.toFixed(1)} ms / ${p99.toFixed(1)} ms`, '', `target p99 < 100 ms; ${loop.ok}/${loop.sent} acknowledged`]);

    log('PUT 1 MiB');
    const put1m = wrk(a.url, 'put.lua', { SIZE: String(1024 * 1024), PREFIX: 'p1m' }, 8);
    const drain1m = await drainSeconds(nodes);
    rows.push(['PUT 1 MiB, acknowledged writes/s', `${put1m.rps.toFixed(0)} (${put1m.rps.toFixed(0)} MiB/s)`, '', `replicas complete ${drain1m.toFixed(2)} s after the load stops`]);

    log('GET 4 KiB vs nginx');
    const files = new Map<number, Buffer>();
    for (let i = 0; i < GET_FILES; i++) files.set(i, randomBytes(4096));
    for (let i = 0; i < GET_FILES; i += 50) await Promise.all([...Array(50).keys()].map((k) => put(a, `g/${i + k}`, files.get(i + k)!)));
    await drainSeconds(nodes);
    nginx = await startNginx(join(work, 'nginx'), files);
    const getFs = wrk(b.url, 'get.lua', { COUNT: String(GET_FILES), PATH_PREFIX: '/files/g/' }, 64);
    const getNginx = wrk(nginx.url, 'get.lua', { COUNT: String(GET_FILES), PATH_PREFIX: '/files/g/' }, 64);
    rows.push(['GET 4 KiB, requests/s: one node vs nginx with `worker_processes auto` (wrk -t2 -c64)', getFs.rps.toFixed(0), getNginx.rps.toFixed(0), `ratio ${(getFs.rps / getNginx.rps).toFixed(2)} (target ≥ 0.5)`]);
    await nginx.stop();
    // A file-server node is one process; nginx with one worker is the same shape.
    nginx = await startNginx(join(work, 'nginx1'), files, 1);
    const getNginx1 = wrk(nginx.url, 'get.lua', { COUNT: String(GET_FILES), PATH_PREFIX: '/files/g/' }, 64);
    rows.push(['GET 4 KiB, requests/s: one node vs nginx with one worker process', getFs.rps.toFixed(0), getNginx1.rps.toFixed(0), `ratio ${(getFs.rps / getNginx1.rps).toFixed(2)}`]);
    await nginx.stop();
    nginx = undefined;

    const cpus = execFileSync('nproc', { encoding: 'utf8' }).trim();
    const load = (await readFile('/proc/loadavg', 'utf8')).split(' ').slice(0, 3).join(' ');
    console.log(`\nFile server benchmark (${cpus} CPUs, ${SECONDS} s per run, 3 nodes on one machine, fsync on; load average at start ${loadAtStart}, at end ${load})\n`);
    console.log('| measure | file server | nginx | notes |');
    console.log('|---|---|---|---|');
    for (const r of rows) console.log(`| ${r.join(' | ')} |`);
  } finally {
    await stop();
  }
}

await main();
