// The store in processes of its own (support/store-process.ts): kill -9 while writing, and a second
// process on the same data directory.
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { pino } from 'pino';
import { DB_FILE, Store } from '../../../fileserver/src/store/store.ts';
import { fillVolume } from '../../harness/fill-volume.ts';
import { HybridClock } from '../../../fileserver/src/store/version.ts';

const STORE_PROCESS = join(import.meta.dirname, 'support', 'store-process.ts');

/** A store in its own process; resolves once it printed its first line. */
function storeProcess(dir: string, mode: 'hold' | 'write', reserveBytes = 0): { child: ChildProcess; first: Promise<string>; lines: string[] } {
  const child = spawn(process.execPath, [STORE_PROCESS, dir, mode, String(reserveBytes)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines: string[] = [];
  const first = new Promise<string>((resolve) => {
    createInterface({ input: child.stdout! }).on('line', (l) => {
      if (lines.length === 0) resolve(l);
      lines.push(l);
    });
    child.on('exit', () => resolve(lines[0] ?? 'exited'));
  });
  return { child, first, lines };
}

/**
 * The database's size in pages, and the size its write-ahead log's last commit gives it: applying the log
 * needs room on the volume when the second is larger. Read from the file formats
 * (https://www.sqlite.org/fileformat.html): the WAL header's salts mark the frames of the current log.
 */
function walGrowth(dbFile: string): { filePages: number; committedPages: number } {
  const db = readFileSync(dbFile);
  const rawPageSize = db.readUInt16BE(16);
  const pageSize = rawPageSize === 1 ? 65536 : rawPageSize;
  const wal = readFileSync(`${dbFile}-wal`);
  let committedPages = 0;
  for (let at = 32; wal.length >= 32 && at + 24 + pageSize <= wal.length; at += 24 + pageSize) {
    if (wal.readUInt32BE(at + 8) !== wal.readUInt32BE(16) || wal.readUInt32BE(at + 12) !== wal.readUInt32BE(20)) break;
    const sizeAfterCommit = wal.readUInt32BE(at + 4);
    if (sizeAfterCommit > 0) committedPages = sizeAfterCommit;
  }
  return { filePages: db.length / pageSize, committedPages };
}

const exited = (child: ChildProcess) =>
  new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve(undefined) : child.once('exit', resolve)));

describe('the store across processes', () => {
  let dir: string;
  const openStore = (reserveBytes = 0) =>
    Store.open({ dataDir: dir, clock: new HybridClock('n1'), logger: pino({ level: 'silent' }), initialPeers: { generation: 1, peers: [] }, reserveBytes });

  /** Runs a writer for a while, kills it (its write-ahead log not applied), fills the volume; its acknowledged lines. */
  async function killWriterThenFill(data: string, reserveBytes: number): Promise<string[]> {
    const p = storeProcess(data, 'write', reserveBytes);
    assert.equal(await p.first, 'open');
    // A count, not a time: a fast writer must not fill the volume itself before it is killed. And fewer
    // commits than one automatic checkpoint (1,000 pages) holds, so the log the kill leaves still has to
    // grow the database file: a kill just after a checkpoint would leave nothing that needs room.
    await new Promise<void>((resolve) => {
      const check = () => {
        if (p.lines.length > 40) resolve();
      };
      p.child.stdout!.on('data', check);
      p.child.once('exit', () => resolve());
      check();
    });
    assert.equal(p.child.exitCode, null, `the writer died on its own: ${p.lines.slice(-3).join(' | ')}`);
    p.child.kill('SIGKILL');
    await exited(p.child);
    const wal = walGrowth(join(data, DB_FILE));
    assert.ok(wal.committedPages > wal.filePages, `the log the kill left must grow the database file: ${JSON.stringify(wal)}`);
    await fillVolume(join(dir, 'filler'));
    const acked = p.lines.filter((l) => l.startsWith('acked '));
    assert.ok(acked.length > 0, 'the writer acknowledged writes before the kill');
    return acked;
  }

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fc-store-proc-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('keeps every acknowledged write through kill -9 at random points while writing', async () => {
    for (let round = 0; round < 3; round++) {
      const p = storeProcess(dir, 'write');
      assert.equal(await p.first, 'open');
      await new Promise((r) => setTimeout(r, 150 + Math.random() * 400));
      p.child.kill('SIGKILL');
      await exited(p.child);
      const acked = p.lines.filter((l) => l.startsWith('acked '));
      assert.ok(acked.length > 0, 'the writer acknowledged writes before the kill');
      const s = await openStore();
      try {
        for (const l of acked) {
          const [, path, hash] = l.split(' ');
          assert.equal(s.get(path!)?.deleted, false, `${path} was acknowledged before the kill and is missing`);
          assert.equal((s.get(path!) as { sha256: string }).sha256, hash, path);
        }
        // Every stored byte hashes to its recorded SHA-256: the acknowledged bytes are whole.
        assert.equal((await s.scrubPass(1e12)).quarantined, 0);
      } finally {
        await s.close();
      }
    }
  });

  // A real full volume needs a mount: root only (as in this project's CI).
  it('starts on a volume a killed writer left full, from the reserved space, with every acknowledged write', { skip: process.getuid?.() !== 0 }, async () => {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=24m', 'tmpfs', dir]);
    try {
      // Without a reserve there is no room to apply the log: start refuses, and says what to do.
      const noReserve = join(dir, 'no-reserve');
      await killWriterThenFill(noReserve, 0);
      await assert.rejects(
        Store.open({ dataDir: noReserve, clock: new HybridClock('n1'), logger: pino({ level: 'silent' }), initialPeers: { generation: 1, peers: [] }, reserveBytes: 0 }),
        /the volume is full, even with the reserved space given back.*make room on the volume/,
      );
      await rm(noReserve, { recursive: true });
      await rm(join(dir, 'filler'));

      const data = join(dir, 'data');
      const acked = await killWriterThenFill(data, 8 << 20);
      const s = await Store.open({
        dataDir: data,
        clock: new HybridClock('n1'),
        logger: pino({ level: 'silent' }),
        initialPeers: { generation: 1, peers: [] },
        reserveBytes: 8 << 20,
      });
      try {
        for (const l of acked) {
          const [, path, sha] = l.split(' ');
          assert.equal((s.get(path!) as { sha256?: string } | undefined)?.sha256, sha, `${path} was acknowledged before the kill`);
        }
      } finally {
        await s.close();
      }
    } finally {
      // Lazily: a store left open by a failed assertion must not turn that failure into "target is busy".
      execFileSync('umount', ['--lazy', dir]);
    }
  });

  it('lets one process at a time use a data directory, and frees it when that process is killed', async () => {
    const holder = storeProcess(dir, 'hold');
    assert.equal(await holder.first, 'open');
    const second = storeProcess(dir, 'hold');
    const answer = await second.first;
    await exited(second.child);
    assert.match(answer, /^error .*in use by another process/);
    assert.equal(second.child.exitCode, 1);
    await assert.rejects(openStore(), /in use by another process/, 'in the same process too');
    holder.child.kill('SIGKILL');
    await exited(holder.child);
    const third = storeProcess(dir, 'hold');
    assert.equal(await third.first, 'open', 'the lock went with the killed process');
    third.child.kill('SIGKILL');
    await exited(third.child);
  });
});
