// The two embedded databases considered for the file server's metadata, measured the way the store
// uses them: a path-ordered index of ~200-byte entries (metadata plus a small file's bytes inline).
//
//   node bench/store-engine/run.ts [--entries 100000] [--lmdb-module /path/to/node_modules/lmdb/dist/index.cjs]
//
// Each engine runs in its own child process (so RSS is its own), on its own scratch directory:
// - group commit: all entries written in durable transactions of 256 entries each (the shape a burst of
//   writes takes when every write waiting behind a commit joins the next one), entries/s;
// - fsync each: 500 entries, one durable commit each, entries/s (a lone writer's latency bound);
// - read: 100,000 point reads at random keys, mean and p99 in µs;
// - range: 1,000 entries read in key order from a random prefix, ms;
// - RSS after loading, open time of the loaded database (open + first read), disk bytes per entry.
// A second table measures the inline threshold with the chosen engine: files of each size written durably
// 16 at a time, either inline (one transaction of 16 rows, fsync'd) or each to its own object file (tmp,
// write, fdatasync, rename, directory fsync, then the 16 metadata rows in one transaction), files/s and
// MiB/s; and the database's disk bytes per inline file.
// lmdb is not a dependency of the project: pass where it is installed (`npm install lmdb` elsewhere), or
// its row says "not installed".
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { open as openFile, rename } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: {
    entries: { type: 'string', default: '100000' },
    'lmdb-module': { type: 'string' },
    child: { type: 'string' },
    dir: { type: 'string' },
  },
});
const N = Number(args.entries);
const GROUP = 256;
const SINGLE = 500;

interface Engine {
  putMany(items: Array<[string, Buffer]>): Promise<void>;
  get(key: string): Buffer | undefined;
  range(from: string, limit: number): number;
  close(): Promise<void>;
}

const key = (i: number) => `dir-${String(i % 100).padStart(3, '0')}/file-${String(i).padStart(9, '0')}`;
const value = () => randomBytes(200);

async function openSqlite(dir: string): Promise<Engine> {
  const { DatabaseSync } = await import('node:sqlite');
  const db = new DatabaseSync(join(dir, 'bench.db'));
  db.exec('PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID');
  const put = db.prepare('INSERT OR REPLACE INTO kv (k, v) VALUES (?, ?)');
  const get = db.prepare('SELECT v FROM kv WHERE k = ?');
  const range = db.prepare('SELECT k, v FROM kv WHERE k >= ? ORDER BY k LIMIT ?');
  return {
    async putMany(items) {
      db.exec('BEGIN');
      for (const [k, v] of items) put.run(k, v);
      db.exec('COMMIT');
    },
    get: (k) => (get.get(k) as { v: Uint8Array } | undefined)?.v as Buffer | undefined,
    range: (from, limit) => range.all(from, limit).length,
    async close() {
      db.close();
    },
  };
}

async function openLmdb(dir: string): Promise<Engine> {
  const lmdb = createRequire(import.meta.url)(args['lmdb-module']!) as typeof import('node:module') & {
    open(o: object): {
      put(k: string, v: Buffer): Promise<boolean>;
      get(k: string): Buffer | undefined;
      getRange(o: object): Iterable<unknown>;
      close(): Promise<void>;
    };
  };
  const db = lmdb.open({ path: join(dir, 'bench.mdb'), encoding: 'binary' });
  return {
    async putMany(items) {
      // lmdb-js commits every put issued in the same turn as one transaction, fsync'd, on its write thread.
      await Promise.all(items.map(([k, v]) => db.put(k, v)));
    },
    get: (k) => db.get(k),
    range: (from, limit) => {
      let n = 0;
      for (const _ of db.getRange({ start: from, limit })) n++;
      return n;
    },
    close: () => db.close(),
  };
}

function diskBytes(dir: string): number {
  return readdirSync(dir).reduce((n, f) => n + statSync(join(dir, f)).blocks * 512, 0);
}

async function child(name: string, dir: string): Promise<void> {
  const open = name === 'sqlite' ? openSqlite : openLmdb;
  let db = await open(dir);
  let t = performance.now();
  for (let i = 0; i < N; i += GROUP) {
    const items: Array<[string, Buffer]> = [];
    for (let j = i; j < Math.min(N, i + GROUP); j++) items.push([key(j), value()]);
    await db.putMany(items);
  }
  const groupRate = N / ((performance.now() - t) / 1000);
  t = performance.now();
  for (let i = 0; i < SINGLE; i++) await db.putMany([[key(N + i), value()]]);
  const singleRate = SINGLE / ((performance.now() - t) / 1000);
  const lat: number[] = [];
  for (let i = 0; i < 100_000; i++) {
    const k = key(Math.floor(Math.random() * N));
    const s = performance.now();
    if (!db.get(k)) throw new Error(`missing ${k}`);
    lat.push(performance.now() - s);
  }
  lat.sort((a, b) => a - b);
  const ranges: number[] = [];
  for (let i = 0; i < 20; i++) {
    const s = performance.now();
    db.range(`dir-${String(i).padStart(3, '0')}/`, 1000);
    ranges.push(performance.now() - s);
  }
  ranges.sort((a, b) => a - b);
  global.gc?.();
  const rss = process.memoryUsage().rss;
  await db.close();
  t = performance.now();
  db = await open(dir);
  db.get(key(0));
  const openMs = performance.now() - t;
  await db.close();
  process.stdout.write(
    JSON.stringify({
      groupRate,
      singleRate,
      readMeanUs: (lat.reduce((a, b) => a + b, 0) / lat.length) * 1000,
      readP99Us: lat[Math.floor(lat.length * 0.99)]! * 1000,
      rangeMs: ranges[ranges.length >> 1]!,
      rssMiB: rss / 2 ** 20,
      openMs,
      diskPerEntry: diskBytes(dir) / (N + SINGLE),
    }),
  );
}

async function thresholdChild(dir: string): Promise<void> {
  const { DatabaseSync } = await import('node:sqlite');
  const rows: Array<Record<string, number>> = [];
  for (const kib of [1, 4, 16, 64, 256]) {
    const size = kib * 1024;
    const files = Math.max(64, Math.min(2000, Math.floor((64 * 2 ** 20) / size)));
    const row: Record<string, number> = { kib };
    for (const mode of ['inline', 'object'] as const) {
      const d = join(dir, `${mode}-${kib}`);
      mkdirSync(join(d, 'objects'), { recursive: true });
      const db = new DatabaseSync(join(d, 'm.db'));
      db.exec('PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; CREATE TABLE f (k TEXT PRIMARY KEY, blob TEXT, data BLOB)');
      const put = db.prepare('INSERT INTO f VALUES (?, ?, ?)');
      const t = performance.now();
      for (let i = 0; i < files; i += 16) {
        const group = Array.from({ length: Math.min(16, files - i) }, (_, j) => ({ k: `f${i + j}`, data: randomBytes(size) }));
        if (mode === 'object') {
          await Promise.all(
            group.map(async (g) => {
              const fh = await openFile(join(d, 'objects', `${g.k}.tmp`), 'wx');
              await fh.write(g.data);
              await fh.datasync();
              await fh.close();
              await rename(join(d, 'objects', `${g.k}.tmp`), join(d, 'objects', g.k));
            }),
          );
          const dh = await openFile(join(d, 'objects'), 'r');
          await dh.sync();
          await dh.close();
        }
        db.exec('BEGIN');
        for (const g of group) put.run(g.k, mode === 'object' ? g.k : null, mode === 'inline' ? g.data : null);
        db.exec('COMMIT');
      }
      const secs = (performance.now() - t) / 1000;
      row[`${mode}Rate`] = files / secs;
      row[`${mode}MiBs`] = (files * size) / 2 ** 20 / secs;
      db.exec('PRAGMA wal_checkpoint(TRUNCATE)');
      db.close();
      if (mode === 'inline') row.inlineDiskPerFile = diskBytes(d) / files;
    }
    rows.push(row);
  }
  process.stdout.write(JSON.stringify(rows));
}

if (args.child === 'threshold') {
  await thresholdChild(args.dir!);
} else if (args.child) {
  await child(args.child, args.dir!);
} else {
  const rows: string[] = [];
  for (const name of ['sqlite', 'lmdb']) {
    if (name === 'lmdb' && !args['lmdb-module']) {
      rows.push(`| lmdb | not installed (--lmdb-module) | | | | | | | |`);
      continue;
    }
    const dir = mkdtempSync(join(tmpdir(), `fc-engine-${name}-`));
    const extra = args['lmdb-module'] ? ['--lmdb-module', args['lmdb-module']] : [];
    const r = spawnSync(process.execPath, ['--expose-gc', import.meta.filename, '--child', name, '--dir', dir, '--entries', String(N), ...extra], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    rmSync(dir, { recursive: true, force: true });
    if (r.status !== 0) throw new Error(`${name} run failed (${r.status})`);
    const m = JSON.parse(r.stdout) as Record<string, number>;
    const f = (n: number, d = 0) => n.toFixed(d);
    rows.push(
      `| ${name} | ${f(m.groupRate!)} | ${f(m.singleRate!)} | ${f(m.readMeanUs!, 1)} | ${f(m.readP99Us!, 1)} | ${f(m.rangeMs!, 2)} | ${f(m.rssMiB!)} | ${f(m.openMs!, 1)} | ${f(m.diskPerEntry!)} |`,
    );
  }
  execFileSync('sync');
  console.log(`${N} entries of 200 bytes, keys ~25 bytes\n`);
  console.log(
    '| engine | group commit (entries/s) | fsync each (entries/s) | read mean (µs) | read p99 (µs) | 1,000 in order (ms) | RSS (MiB) | open (ms) | disk/entry (B) |',
  );
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) console.log(r);

  const dir = mkdtempSync(join(tmpdir(), 'fc-engine-threshold-'));
  const r = spawnSync(process.execPath, [import.meta.filename, '--child', 'threshold', '--dir', dir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  rmSync(dir, { recursive: true, force: true });
  if (r.status !== 0) throw new Error(`threshold run failed (${r.status})`);
  console.log('\nInline threshold (sqlite): durable writes, 16 at a time\n');
  console.log('| file size | inline (files/s) | inline (MiB/s) | object file (files/s) | object file (MiB/s) | inline disk/file (B) |');
  console.log('|---|---|---|---|---|---|');
  for (const t of JSON.parse(r.stdout) as Array<Record<string, number>>) {
    console.log(
      `| ${t.kib} KiB | ${t.inlineRate!.toFixed(0)} | ${t.inlineMiBs!.toFixed(1)} | ${t.objectRate!.toFixed(0)} | ${t.objectMiBs!.toFixed(1)} | ${t.inlineDiskPerFile!.toFixed(0)} |`,
    );
  }
}
