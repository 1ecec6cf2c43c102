// A new file server joining a peer that holds a million files: the count at which one manifest answer
// could no longer hold the list (it stopped at about 570,000). How long until the joiner is ready, how
// many manifest pages that took, and the memory both processes peaked at.
//
//   node bench/catchup/million.ts [--files 1000000] [--size 0]
//
// The seed's data directory is filled in this process through the store's own API (batches of
// replicated changes, the way a join writes them), which takes seconds where a million PUTs would take
// many minutes; then the seed and the joiner run as real file-server processes (built to dist/ first)
// on loopback. Files are empty by default, so the run measures the manifest and the per-file work, not
// the bytes; `--size` gives them bytes (kept in the database up to 64 KiB).
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { Store, type ChangeHeader } from '../../fileserver/src/store/store.ts';
import { HybridClock } from '../../fileserver/src/store/version.ts';
import { ensureCompiled } from '../../test/harness/assets.ts';
import { api, converged, eventually, metric, TestCluster, type FileServerNode } from '../../test/integration/fileserver/support/nodes.ts';
import { removeScratch, scratchDir } from '../support/scratch.ts';

const { values: args } = parseArgs({ options: { files: { type: 'string', default: '1000000' }, size: { type: 'string', default: '0' } } });
const FILES = Number(args.files);
const SIZE = Number(args.size);
const BATCH = 10_000;
const say = (line: string) => process.stderr.write(`[catchup-million] ${line}\n`);
const seconds = (ms: number) => (ms / 1000).toFixed(1);

/** The most resident memory the process has held, from the kernel's high-water mark. */
async function peakRssMiB(n: FileServerNode): Promise<string> {
  const status = await readFile(`/proc/${n.proc!.pid}/status`, 'utf8');
  const kib = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? NaN);
  return (kib / 1024).toFixed(0);
}

async function seed(dataDir: string): Promise<void> {
  const clock = new HybridClock('million-a');
  const store = await Store.open({ dataDir, clock, logger: pino({ level: 'warn' }), initialPeers: { generation: 0, peers: [] } });
  const data = Buffer.alloc(SIZE, 'x');
  const sha256 = createHash('sha256').update(data).digest('hex');
  for (let i = 0; i < FILES; i += BATCH) {
    const changes: Array<{ h: ChangeHeader; data: Buffer }> = [];
    for (let j = i; j < Math.min(FILES, i + BATCH); j++) {
      changes.push({ h: { path: `m/${j % 1000}/${j}`, version: clock.now(), deleted: false, size: SIZE, sha256, contentType: 'application/octet-stream' }, data });
    }
    const results = await store.applyRemoteBatch(changes);
    const bad = results.find((r) => r !== 'applied');
    if (bad) throw new Error(`seeding failed: ${String(bad)}`);
  }
  await store.close();
}

say('building dist/ when stale (the file servers run compiled JavaScript)');
ensureCompiled();
const dir = await scratchDir('catchup-million');
const cluster = new TestCluster();
try {
  let t0 = performance.now();
  await seed(`${dir}/a`);
  const seedMs = performance.now() - t0;
  say(`seeded ${FILES} files in ${seconds(seedMs)} s`);

  t0 = performance.now();
  const a = await cluster.add({ id: 'million-a', dataDir: `${dir}/a` });
  const seedStartMs = performance.now() - t0;
  const load = os.loadavg()[0]!.toFixed(2);

  t0 = performance.now();
  const c = await cluster.add({ id: 'million-c', dataDir: `${dir}/c`, env: { FC_PEERS: `${a.id}=${a.url}` } });
  await eventually(
    'the joiner is ready',
    async () => {
      if ((await api(c, 'GET', '/readyz')).status === 200) return true;
      say(`joiner holds ${(await metric(c, 'filecluster_store_files')) ?? 0} files, compared ${(await metric(c, 'filecluster_catchup_entries_compared_total')) ?? 0}`);
      return false;
    },
    3_600_000,
    5000,
  );
  const joinMs = performance.now() - t0;
  const held = (await metric(c, 'filecluster_store_files')) ?? 0;
  const pages = (await metric(c, 'filecluster_catchup_manifest_pages_total')) ?? 0;
  if (held !== FILES) throw new Error(`the joiner is ready with ${held} of ${FILES} files`);
  if (!(await converged([a, c]))) throw new Error('the joiner is ready but its manifest differs from the seed');

  const rows = [
    ['files', 'bytes each', 'seed start (replay) s', 'join until ready s', 'files/s', 'manifest pages', 'seed peak RSS MiB', 'joiner peak RSS MiB', 'load before join'],
    [String(FILES), String(SIZE), seconds(seedStartMs), seconds(joinMs), (FILES / (joinMs / 1000)).toFixed(0), String(pages), await peakRssMiB(a), await peakRssMiB(c), load],
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => `| ${r.map((cell, i) => cell.padEnd(widths[i]!)).join(' | ')} |`;
  process.stdout.write(`\n${line(rows[0]!)}\n|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|\n${line(rows[1]!)}\n`);
} finally {
  await cluster.close();
  await removeScratch([dir]);
}
