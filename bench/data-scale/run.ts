// A new file server joining a cluster that already holds the data: how long until it holds the same
// manifest, and its rate compared with a raw copy of the same files over a loopback TCP connection on
// this machine. Two data sets: many small files and a few large ones.
//
//   node bench/data-scale/run.ts [--small-files 10000] [--small-size 8192] [--large-files 16] [--large-mib 64] [--rounds 5]
//                                [--joiner-node-options='--cpu-prof --cpu-prof-dir=/tmp/prof']
// A count of 0 skips that data set (`--small-files 0` measures the large files only).
//
// Per data set: the files are generated once, uploaded into a two-node cluster (file-server processes on
// loopback addresses, built to dist/ first), then rounds alternate the two measurements, the order
// swapped every round so neither always runs on a machine the other just warmed or dirtied:
// - join: a fresh third node is started; the clock runs from the three-node peer-list push (to each of
//   the three in turn) until its manifest digest, polled every 10 ms, equals the seeds';
//   then it is removed from the cluster again (SIGKILL).
// - raw: `raw-copy.ts` streams the same files from the generated copy to a receiver process that writes
//   them into a fresh directory and fdatasyncs them in batches (see that file); the clock runs from the
//   sender's start signal until the receiver reports every file durable.
// Every node runs with the image's V8 flags (fileserver/Dockerfile), the joiner with
// --joiner-node-options instead when given.
// Before every measurement `sync` runs to completion, so neither starts with the other's dirty pages to
// write back; the source bytes are in the page cache for both (just written; no cache is dropped). After
// every measurement a second `sync` is timed and shown (not counted): the work a phase left to the
// kernel, e.g. the joiner's object files, whose bytes were already durable in its journal.
// Nothing is deleted until a data set's rounds are over, and each data set lives in a new scratch
// directory (see ../support/scratch.ts): on a journal-less ext4, files created soon after as many were
// deleted are many times slower to create, so a round that followed a deletion would measure the file
// system skipping recently deleted inodes, not the copy. A new pod's volume has no such history.
// The ratio of a round is the join's rate over the raw copy's; the table gives every round and the median.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { REPO_ROOT, TestCluster, api, converged, eventually, type FileServerNode } from '../../test/integration/fileserver/support/nodes.ts';
import { manifest } from '../../test/resilience/support/observe.ts';
import { ensureCompiled } from '../../test/harness/assets.ts';
import { imageNodeOptions } from '../../scripts/image-env.ts';
import { removeScratch, scratchDir } from '../support/scratch.ts';
import { markdownTable } from '../support/table.ts';

const { values: args } = parseArgs({
  options: {
    'small-files': { type: 'string', default: '10000' },
    'small-size': { type: 'string', default: '8192' },
    'large-files': { type: 'string', default: '16' },
    'large-mib': { type: 'string', default: '64' },
    rounds: { type: 'string', default: '5' },
    // e.g. '--cpu-prof --cpu-prof-dir=/tmp/prof': the joiner then stops with SIGTERM so the profile is written.
    'joiner-node-options': { type: 'string' },
  },
});

const say = (line: string) => process.stderr.write(`[data-scale] ${line}\n`);
const MB = 1e6;
const ROUNDS = Number(args.rounds);

interface DataSet {
  label: string;
  files: number;
  size: number;
}

function run(cmd: string, argv: string[]): Promise<void> {
  return new Promise((resolve, reject) =>
    spawn(cmd, argv, { cwd: REPO_ROOT, stdio: 'inherit' }).once('exit', (c) => (c === 0 ? resolve() : reject(new Error(`${cmd} exited ${c}`)))),
  );
}

/** Seconds a full `sync` takes: everything dirty on the machine written back. */
async function syncAll(): Promise<number> {
  const t0 = performance.now();
  await run('sync', []);
  return (performance.now() - t0) / 1000;
}

/** Writes the data set under `dir` (the copy's source) and returns the relative paths. */
async function generate(dir: string, set: DataSet): Promise<string[]> {
  const paths: string[] = [];
  for (let i = 0; i < set.files; i++) {
    const rel = `d${String(i % 100).padStart(2, '0')}/f${i}`;
    await mkdir(path.join(dir, path.dirname(rel)), { recursive: true });
    await writeFile(path.join(dir, rel), randomBytes(set.size));
    paths.push(rel);
  }
  return paths;
}

/** PUTs every file into `node` with `concurrency` clients. */
async function upload(node: FileServerNode, dir: string, paths: string[], concurrency: number): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < paths.length) {
        const rel = paths[next++]!;
        const r = await api(node, 'PUT', `/files/${rel}`, { body: await readFile(path.join(dir, rel)) });
        if (r.status !== 201 && r.status !== 200) throw new Error(`PUT ${rel}: ${r.status} ${r.text}`);
      }
    }),
  );
}

/** A child process of this benchmark whose stdout lines can be awaited one by one. */
function child(argv: string[]): { proc: ChildProcess; line: () => Promise<string> } {
  const proc = spawn(process.execPath, argv, { cwd: REPO_ROOT, stdio: ['pipe', 'pipe', 'inherit'] });
  const queue: string[] = [];
  const waiting: Array<(l: string) => void> = [];
  createInterface({ input: proc.stdout! }).on('line', (l) => {
    const w = waiting.shift();
    if (w) w(l);
    else queue.push(l);
  });
  const line = () =>
    new Promise<string>((resolve, reject) => {
      const l = queue.shift();
      if (l !== undefined) return resolve(l);
      waiting.push(resolve);
      proc.once('exit', (code) => reject(new Error(`${argv.join(' ')} exited ${code}`)));
    });
  return { proc, line };
}

/** Seconds for the raw loopback copy of `src` into the empty `dst`, every file durable at the end. */
async function rawCopy(src: string, list: string, dst: string): Promise<{ seconds: number; afterSync: number }> {
  const script = path.join(REPO_ROOT, 'bench/data-scale/raw-copy.ts');
  const receiver = child([script, 'receive', dst]);
  const port = (await receiver.line()).split(' ')[1]!;
  const sender = child([script, 'send', src, list, port]);
  await sender.line(); // connected and waiting
  await syncAll();
  const t0 = performance.now();
  sender.proc.stdin!.end('go\n');
  const done = await receiver.line();
  const seconds = (performance.now() - t0) / 1000;
  if (!done.startsWith('done ')) throw new Error(`raw copy: ${done}`);
  return { seconds, afterSync: await syncAll() };
}

/** Seconds for a fresh node to hold the same manifest as the seeds; the node is removed again afterwards. */
async function join(cluster: TestCluster, seeds: FileServerNode[], dataDir: string, files: number): Promise<{ seconds: number; afterSync: number }> {
  const nodeOptions = args['joiner-node-options'];
  const c = await cluster.add({ id: 'joiner', dataDir, env: { NODE_OPTIONS: nodeOptions ?? imageNodeOptions() } });
  // The seeds take no writes, so their digest is read once and only the joiner is polled: polling all
  // three cost the busy machine two more requests every round trip.
  const digest = async (n: FileServerNode) => (await api(n, 'GET', '/internal/digest', { auth: true })).text;
  const target = await digest(seeds[0]!);
  await syncAll();
  const t0 = performance.now();
  await cluster.pushPeers([...seeds, c], [...seeds, c]);
  await eventually('the joiner to hold the same manifest', async () => (await digest(c)) === target, 1_800_000, 10);
  const seconds = (performance.now() - t0) / 1000;
  const afterSync = await syncAll();
  if (!(await converged([...seeds, c]))) throw new Error('the seeds changed during the join');
  const listed = await manifest(c.url);
  if (listed.length !== files) throw new Error(`the joiner lists ${listed.length} files, expected ${files}`);
  await c.kill(nodeOptions ? 'SIGTERM' : 'SIGKILL');
  cluster.nodes.splice(cluster.nodes.indexOf(c), 1);
  await cluster.pushPeers(seeds, seeds);
  return { seconds, afterSync };
}

interface Round {
  order: string;
  joinSeconds: number;
  joinAfterSync: number;
  rawSeconds: number;
  rawAfterSync: number;
}

async function measure(set: DataSet): Promise<Round[]> {
  const work = await scratchDir('data-scale');
  const cluster = new TestCluster();
  try {
    const src = path.join(work, 'src');
    say(`${set.label}: generating ${set.files} files of ${set.size} bytes`);
    const paths = await generate(src, set);
    const list = path.join(work, 'list');
    await writeFile(list, paths.join('\n'));

    const env = { NODE_OPTIONS: imageNodeOptions() };
    const a = await cluster.add({ id: 'seed-a', dataDir: path.join(work, 'seed-a'), env });
    const b = await cluster.add({ id: 'seed-b', dataDir: path.join(work, 'seed-b'), env });
    await cluster.pushPeers([a, b], [a, b]);
    say(`${set.label}: uploading into a two-node cluster`);
    await upload(a, src, paths, set.size > 1024 * 1024 ? 4 : 32);
    await eventually('the two seed nodes to converge', () => converged([a, b]), 600_000, 200);
    // A cluster that has held its data for a while is done compacting. Without a restart (SIGTERM writes
    // the snapshot at once) the seeds' deferred object fsyncs, due 30 s after their journals rotated
    // during the upload, would land in the middle of the rounds.
    for (const n of [a, b]) {
      await n.kill('SIGTERM');
      await n.start();
    }

    const rounds: Round[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      const joinFirst = i % 2 === 1;
      const r: Partial<Round> = { order: joinFirst ? 'join, raw' : 'raw, join' };
      for (const phase of joinFirst ? ['join', 'raw'] : ['raw', 'join']) {
        if (phase === 'join') {
          const j = await join(cluster, [a, b], path.join(work, `joiner-${i}`), set.files);
          r.joinSeconds = j.seconds;
          r.joinAfterSync = j.afterSync;
        } else {
          const dst = path.join(work, `copy-${i}`);
          const c = await rawCopy(src, list, dst);
          r.rawSeconds = c.seconds;
          r.rawAfterSync = c.afterSync;
        }
      }
      say(`${set.label} round ${i + 1}: join ${r.joinSeconds!.toFixed(2)} s, raw ${r.rawSeconds!.toFixed(2)} s, ratio ${(r.rawSeconds! / r.joinSeconds!).toFixed(2)}`);
      rounds.push(r as Round);
    }
    return rounds;
  } finally {
    await cluster.close();
    await removeScratch([work]);
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

say('building dist/ when stale (the file servers run compiled JavaScript)');
ensureCompiled();
const load = () =>
  os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
const loadBefore = load();
const sets: DataSet[] = [
  { label: 'many small files', files: Number(args['small-files']), size: Number(args['small-size']) },
  { label: 'large files', files: Number(args['large-files']), size: Number(args['large-mib']) * 1024 * 1024 },
];
let out = '';
for (const set of sets.filter((s) => s.files > 0)) {
  const rounds = await measure(set);
  const bytes = set.files * set.size;
  const rate = (s: number) => `${(bytes / MB / s).toFixed(1)} MB/s`;
  const rows = [['round', 'order', 'join', 'join rate', 'sync after join', 'raw copy', 'raw rate', 'sync after raw', 'ratio']];
  rounds.forEach((r, i) => {
    rows.push([
      String(i + 1),
      r.order,
      `${r.joinSeconds.toFixed(2)} s`,
      `${rate(r.joinSeconds)} (${(set.files / r.joinSeconds).toFixed(0)} files/s)`,
      `${r.joinAfterSync.toFixed(2)} s`,
      `${r.rawSeconds.toFixed(2)} s`,
      rate(r.rawSeconds),
      `${r.rawAfterSync.toFixed(2)} s`,
      (r.rawSeconds / r.joinSeconds).toFixed(2),
    ]);
  });
  const ratios = rounds.map((r) => r.rawSeconds / r.joinSeconds);
  const mJoin = median(rounds.map((r) => r.joinSeconds));
  const mRaw = median(rounds.map((r) => r.rawSeconds));
  const mRatio = median(ratios);
  rows.push([
    'median',
    '',
    `${mJoin.toFixed(2)} s`,
    rate(mJoin),
    `${median(rounds.map((r) => r.joinAfterSync)).toFixed(2)} s`,
    `${mRaw.toFixed(2)} s`,
    rate(mRaw),
    `${median(rounds.map((r) => r.rawAfterSync)).toFixed(2)} s`,
    `${mRatio.toFixed(2)} (${Math.min(...ratios).toFixed(2)} to ${Math.max(...ratios).toFixed(2)}; ${mRatio >= 0.7 ? 'met' : 'MISSED'} ≥ 0.7)`,
  ]);
  out += `\n${set.label}: ${set.files} × ${set.size} bytes = ${(bytes / MB).toFixed(0)} MB\n${markdownTable(rows)}`;
  process.stdout.write(out);
  out = '';
}
process.stdout.write(
  `\nmachine: ${os.cpus().length} cores, ${(os.totalmem() / 1024 ** 3).toFixed(0)} GiB, data under ${os.tmpdir()}; load average ${loadBefore} at the start, ${load()} at the end\n`,
);
