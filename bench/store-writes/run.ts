// CPU per acknowledged write of the store API alone, shaped like the node that takes the writes in
// `bench/fileserver`: `--in-flight` writers put 4 KiB files owed to 2 peers; every 2 ms each peer's
// oldest 200 changes are read back (`readSmall`, as a push reads them) and acknowledged. Prints a
// Markdown table: writes/s, CPU µs per write (user + system), client p50 / p99.
//
//   node bench/store-writes/run.ts [--baseline <commit>] [--rounds 4] [--seconds 6] [--in-flight 128]
//
// With --baseline, that commit's store (its sources by `git archive`) runs too, alternated with this
// tree's round by round, each round a process of its own on a fresh data directory.
import { execFileSync, spawnSync } from 'node:child_process';
import { symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { removeScratch, scratchDir } from '../support/scratch.ts';

const { values: args } = parseArgs({
  options: {
    baseline: { type: 'string' },
    rounds: { type: 'string', default: '4' },
    seconds: { type: 'string', default: '6' },
    'in-flight': { type: 'string', default: '128' },
    child: { type: 'string' },
    dir: { type: 'string' },
  },
});
const REPO = join(import.meta.dirname, '../..');
const PEERS = ['p1', 'p2'];
const WARM_MS = 1500;

interface Result {
  rate: number;
  cpuUs: number;
  p50: number;
  p99: number;
}

async function child(root: string, dir: string): Promise<void> {
  const { Store } = (await import(join(root, 'fileserver/src/store/store.ts'))) as typeof import('../../fileserver/src/store/store.ts');
  const { HybridClock } = (await import(join(root, 'fileserver/src/store/version.ts'))) as typeof import('../../fileserver/src/store/version.ts');
  const store = await Store.open({
    dataDir: dir,
    clock: new HybridClock('n1'),
    logger: pino({ level: 'silent' }),
    initialPeers: { generation: 1, peers: PEERS.map((id, i) => ({ id, url: `http://127.0.0.1:${i + 1}` })) },
    reserveBytes: 0,
  });
  const body = Buffer.alloc(4096, 120);
  const owed = new Map<string, Array<[string, string]>>(PEERS.map((p) => [p, []]));
  const latencies: number[] = [];
  let writes = 0;
  let stop = false;
  const writer = async (w: number) => {
    for (let i = 0; !stop; i++) {
      const t = performance.now();
      const e = await store.put(`p4/${w}/${i}`, [body], body.length, { contentType: 'application/octet-stream' });
      latencies.push(performance.now() - t);
      writes++;
      for (const list of owed.values()) list.push([e.path, e.version]);
    }
  };
  const acker = setInterval(() => {
    for (const [peer, list] of owed) {
      const items = list.splice(0, 200);
      for (const [path] of items) store.readSmall(path);
      store.ack(peer, items);
    }
  }, 2);
  const writers = Array.from({ length: Number(args['in-flight']) }, (_, w) => writer(w));
  await new Promise((r) => setTimeout(r, WARM_MS));
  latencies.length = 0;
  const w0 = writes;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, Number(args.seconds) * 1000));
  const n = writes - w0;
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  stop = true;
  await Promise.all(writers);
  clearInterval(acker);
  await store.close();
  latencies.sort((a, b) => a - b);
  const q = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))]!;
  const r: Result = { rate: n / seconds, cpuUs: (cpu.user + cpu.system) / n, p50: q(0.5), p99: q(0.99) };
  process.stdout.write(JSON.stringify(r));
}

async function main(): Promise<void> {
  const dirs: string[] = [];
  const variants: Array<{ name: string; root: string }> = [{ name: 'this tree', root: REPO }];
  try {
    if (args.baseline) {
      const root = await scratchDir('store-writes-baseline');
      dirs.push(root);
      execFileSync('sh', ['-c', `git -C ${REPO} archive ${args.baseline} contract fileserver/src package.json | tar -x -C ${root}`]);
      symlinkSync(join(REPO, 'node_modules'), join(root, 'node_modules'));
      variants.unshift({ name: `baseline ${args.baseline}`, root });
    }
    console.log(`| round | variant | writes/s | CPU µs per write | p50 / p99 ms |`);
    console.log('|---|---|---|---|---|');
    for (let round = 1; round <= Number(args.rounds); round++) {
      for (const v of round % 2 === 1 ? variants : [...variants].reverse()) {
        const dir = await scratchDir('store-writes');
        dirs.push(dir);
        const run = spawnSync(process.execPath, [import.meta.filename, ...process.argv.slice(2), '--child', v.root, '--dir', dir], {
          encoding: 'utf8',
          stdio: ['ignore', 'pipe', 'inherit'],
        });
        if (run.status !== 0) throw new Error(`the ${v.name} run failed (exit ${run.status})`);
        const r = JSON.parse(run.stdout) as Result;
        console.log(`| ${round} | ${v.name} | ${r.rate.toFixed(0)} | ${r.cpuUs.toFixed(0)} | ${r.p50.toFixed(1)} / ${r.p99.toFixed(1)} |`);
      }
    }
  } finally {
    await removeScratch(dirs);
  }
}

if (args.child) await child(args.child, args.dir!);
else await main();
