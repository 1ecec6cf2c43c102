// A new file server joining a cluster that already holds the data: how long until it holds the same
// manifest, and its rate compared with a raw copy of the same files over a loopback TCP connection on
// this machine (tar | socket | tar, then sync). Two data sets: many small files and a few large ones.
// The file servers are real processes on loopback addresses with data directories under the temp dir.
// Prints a table.
//
//   node bench/data-scale/run.ts [--small-files 10000] [--small-size 8192] [--large-files 16] [--large-mib 64]
// A count of 0 skips that data set (`--small-files 0` measures the large files only).
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { TestCluster, api, converged, eventually, type FileServerNode } from '../../test/integration/fileserver/support/nodes.ts';
import { manifest } from '../../test/resilience/support/observe.ts';

const { values: args } = parseArgs({
  options: {
    'small-files': { type: 'string', default: '10000' },
    'small-size': { type: 'string', default: '8192' },
    'large-files': { type: 'string', default: '16' },
    'large-mib': { type: 'string', default: '64' },
  },
});

const say = (line: string) => process.stderr.write(`[data-scale] ${line}\n`);
const MB = 1e6;

interface DataSet {
  label: string;
  files: number;
  size: number;
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

/** Seconds to copy `src` into an empty `dst` as a tar stream over a loopback TCP connection, synced to disk. */
async function rawLoopbackCopy(src: string, dst: string): Promise<number> {
  await mkdir(dst, { recursive: true });
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  const t0 = performance.now();
  const received = new Promise<void>((resolve, reject) => {
    server.once('connection', (socket) => {
      const untar = spawn('tar', ['-C', dst, '-xf', '-'], { stdio: ['pipe', 'ignore', 'inherit'] });
      socket.pipe(untar.stdin);
      untar.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`tar -x exited ${code}`))));
    });
  });
  const socket = net.connect(port, '127.0.0.1');
  const tar = spawn('tar', ['-C', src, '-cf', '-', '.'], { stdio: ['ignore', 'pipe', 'inherit'] });
  await pipeline(tar.stdout, socket);
  await received;
  await new Promise<void>((resolve, reject) => spawn('sync', ['-f', dst], { stdio: 'inherit' }).once('exit', (c) => (c === 0 ? resolve() : reject(new Error(`sync exited ${c}`)))));
  const seconds = (performance.now() - t0) / 1000;
  server.close();
  return seconds;
}

async function measure(set: DataSet): Promise<string[]> {
  const work = await mkdtemp(path.join(os.tmpdir(), 'fc-data-scale-'));
  const cluster = new TestCluster();
  try {
    const src = path.join(work, 'src');
    say(`${set.label}: generating ${set.files} files of ${set.size} bytes`);
    const paths = await generate(src, set);
    const bytes = set.files * set.size;

    const a = await cluster.add({ id: 'seed-a', dataDir: path.join(work, 'seed-a') });
    const b = await cluster.add({ id: 'seed-b', dataDir: path.join(work, 'seed-b') });
    await cluster.pushPeers([a, b], [a, b]);
    say(`${set.label}: uploading into a two-node cluster`);
    await upload(a, src, paths, set.size > 1024 * 1024 ? 4 : 32);
    await eventually('the two seed nodes to converge', () => converged([a, b]), 600_000, 200);

    const c = await cluster.add({ id: 'joiner', dataDir: path.join(work, 'joiner') });
    say(`${set.label}: joiner started; pushing the three-node peer list`);
    const t0 = performance.now();
    await cluster.pushPeers([a, b, c], [a, b, c]);
    await eventually('the joiner to hold the same manifest', () => converged([a, b, c]), 1_800_000, 50);
    const joinSeconds = (performance.now() - t0) / 1000;
    const listed = await manifest(c.url);
    if (listed.length !== set.files) throw new Error(`the joiner lists ${listed.length} files, expected ${set.files}`);

    say(`${set.label}: raw loopback copy of the same files`);
    const rawSeconds = await rawLoopbackCopy(src, path.join(work, 'copy'));
    const joinRate = bytes / joinSeconds;
    const rawRate = bytes / rawSeconds;
    const ratio = joinRate / rawRate;
    return [
      set.label,
      String(set.files),
      `${(bytes / MB).toFixed(0)} MB`,
      `${joinSeconds.toFixed(2)} s`,
      `${(joinRate / MB).toFixed(1)} MB/s (${(set.files / joinSeconds).toFixed(0)} files/s)`,
      `${rawSeconds.toFixed(2)} s`,
      `${(rawRate / MB).toFixed(1)} MB/s`,
      `${ratio.toFixed(2)} (${ratio >= 0.7 ? 'met' : 'MISSED'} ≥ 0.7)`,
    ];
  } finally {
    await cluster.close();
    await rm(work, { recursive: true, force: true });
  }
}

const sets: DataSet[] = [
  { label: 'many small files', files: Number(args['small-files']), size: Number(args['small-size']) },
  { label: 'large files', files: Number(args['large-files']), size: Number(args['large-mib']) * 1024 * 1024 },
];
const rows = [['data', 'files', 'size', 'join converged in', 'join rate', 'raw loopback copy', 'raw rate', 'ratio']];
for (const set of sets.filter((s) => s.files > 0)) rows.push(await measure(set));
const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
process.stdout.write(`\n${line(rows[0]!)}\n|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|\n${rows.slice(1).map(line).join('\n')}\n`);
process.stdout.write(`\nmachine: ${os.cpus().length} cores, ${(os.totalmem() / 1024 ** 3).toFixed(0)} GiB, temp dir ${os.tmpdir()}\n`);
