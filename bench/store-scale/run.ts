// The store at scale, old (v1: in-memory map, JSON snapshot + journal) against new (SQLite), through the
// store API alone (no HTTP): N files of 100 bytes are written, the store is closed, and a fresh process
// opens it again.
//
//   node bench/store-scale/run.ts [--files 200000] [--old-commit <commit with the v1 store>]
//
// For each store, in a process of its own: load time (N puts, 256 in flight), RSS after loading, time to
// open the loaded directory in a new process (restart), RSS right after that open, the median and max
// of 20 listings of 1,000 files under a prefix, and the data directory's size (without the new store's
// reserve file). The old store's code is
// taken from the given commit with `git archive`, into the scratch directory.
import { execFileSync, spawnSync } from 'node:child_process';
import { symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { removeScratch, scratchDir } from '../support/scratch.ts';

const REPO = join(import.meta.dirname, '..', '..');
const { values: args } = parseArgs({
  options: {
    files: { type: 'string', default: '200000' },
    'old-commit': { type: 'string', default: '91285cd' },
    child: { type: 'string' },
    phase: { type: 'string' },
    dir: { type: 'string' },
  },
});
const N = Number(args.files);
const pathOf = (i: number) => `d${String(i % 100).padStart(2, '0')}/f${String(i).padStart(9, '0')}`;
const mib = (b: number) => b / 2 ** 20;

interface StoreApi {
  put(path: string, body: Buffer[], size: number, o: { contentType: string }): Promise<unknown>;
  list(prefix: string, limit: number, after: string | undefined): { entries: unknown[] };
  close(): Promise<void>;
}

async function child(storeModule: string, phase: string, dataDir: string): Promise<void> {
  const { Store } = (await import(storeModule)) as { Store: { open(o: object): Promise<StoreApi> } };
  const { HybridClock } = (await import(new URL('version.ts', `file://${storeModule}`).href)) as { HybridClock: new (id: string) => unknown };
  const open = () => Store.open({ dataDir, clock: new HybridClock('n1'), logger: pino({ level: 'silent' }), initialPeers: { generation: 1, peers: [] } });
  const out: Record<string, number> = {};
  if (phase === 'load') {
    const s = await open();
    const t = performance.now();
    let next = 0;
    const body = Buffer.alloc(100, 120);
    await Promise.all(
      Array.from({ length: 256 }, async () => {
        while (next < N) {
          const i = next++;
          await s.put(pathOf(i), [body], body.length, { contentType: 'text/plain' });
        }
      }),
    );
    out.loadS = (performance.now() - t) / 1000;
    out.rssLoaded = mib(process.memoryUsage().rss);
    await s.close();
  } else {
    const t = performance.now();
    const s = await open();
    out.openMs = performance.now() - t;
    out.rssOpen = mib(process.memoryUsage().rss);
    const lat: number[] = [];
    for (let i = 0; i < 20; i++) {
      const s0 = performance.now();
      const page = s.list(`d${String(i * 5).padStart(2, '0')}/`, 1000, undefined);
      lat.push(performance.now() - s0);
      if (page.entries.length !== Math.min(1000, Math.floor(N / 100))) throw new Error(`listed ${page.entries.length}`);
    }
    lat.sort((a, b) => a - b);
    out.listMedianMs = lat[10]!;
    out.listMaxMs = lat[19]!;
    out.rssListed = mib(process.memoryUsage().rss);
    await s.close();
  }
  process.stdout.write(JSON.stringify(out));
}

function run(storeModule: string, phase: string, dir: string): Record<string, number> {
  const r = spawnSync(process.execPath, [import.meta.filename, '--child', storeModule, '--phase', phase, '--dir', dir, '--files', String(N)], {
    cwd: REPO,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 1 << 20,
  });
  if (r.status !== 0) throw new Error(`${phase} with ${storeModule} failed (${r.status})`);
  return JSON.parse(r.stdout) as Record<string, number>;
}

if (args.child) {
  await child(args.child, args.phase!, args.dir!);
} else {
  const scratch = await scratchDir('store-scale');
  const oldSrc = join(scratch, 'old-src');
  execFileSync('mkdir', ['-p', oldSrc]);
  execFileSync('sh', ['-c', `git -C ${REPO} archive ${args['old-commit']} fileserver/src package.json | tar -x -C ${oldSrc}`]);
  symlinkSync(join(REPO, 'node_modules'), join(oldSrc, 'node_modules'));
  const stores = [
    { name: `old (${args['old-commit']})`, module: join(oldSrc, 'fileserver/src/store/store.ts') },
    { name: 'new', module: join(REPO, 'fileserver/src/store/store.ts') },
  ];
  const rows: string[] = [];
  for (const s of stores) {
    const dir = join(scratch, s.name.split(' ')[0]!);
    const load = run(s.module, 'load', dir);
    execFileSync('sync');
    const reopen = run(s.module, 'reopen', dir);
    // The new store's reserve file is space held back, not data.
    const du = Number(execFileSync('du', ['-sb', '--exclude=reserve', dir]).toString().split('\t')[0]);
    const f = (n: number | undefined, d = 0) => (n ?? NaN).toFixed(d);
    rows.push(
      `| ${s.name} | ${f(load.loadS, 1)} | ${f(load.rssLoaded)} | ${f(reopen.openMs)} | ${f(reopen.rssOpen)} | ${f(reopen.listMedianMs, 2)} / ${f(reopen.listMaxMs, 2)} | ${f(reopen.rssListed)} | ${f(mib(du))} (${f(du / N)} B/file) |`,
    );
  }
  await removeScratch([scratch]);
  console.log(`${N} files of 100 bytes, no peers; each phase in a fresh process\n`);
  console.log(
    '| store | load (s) | RSS loaded (MiB) | restart: open (ms) | RSS after open (MiB) | list 1,000 median / max (ms) | RSS after listing (MiB) | data dir (MiB) |',
  );
  console.log('|---|---|---|---|---|---|---|---|');
  for (const r of rows) console.log(r);
}
