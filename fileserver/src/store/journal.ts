import { open, readdir, readFile, rename, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import type { JournalRecord, Snapshot } from './state.ts';
import { fsyncDir, writevAll } from './fsutil.ts';

// On-disk frame: u32 JSON length, u32 data length, u32 CRC-32 of JSON+data, JSON, data.
// A crash can leave a torn last frame; replay stops at the first frame that is short or fails its CRC.
const HEADER_BYTES = 12;
const MAX_BATCH_BYTES = 16 * 1024 * 1024;
/** Compaction waits this long after a rotation, so the burst of writes that filled the journal (a join) is over. */
const SETTLE_MS = 30_000;

/**
 * A record's frame as two pieces, header+JSON and the data as given (written with writev), so a file's
 * bytes are not copied into the frame; the CRC runs over both in turn.
 */
export function encodeFrame(rec: JournalRecord, data?: Buffer): Buffer[] {
  const json = Buffer.from(JSON.stringify(rec));
  const head = Buffer.allocUnsafe(HEADER_BYTES + json.length);
  head.writeUInt32LE(json.length, 0);
  head.writeUInt32LE(data?.length ?? 0, 4);
  json.copy(head, HEADER_BYTES);
  const crc = crc32(json);
  if (!data || data.length === 0) {
    head.writeUInt32LE(crc, 8);
    return [head];
  }
  head.writeUInt32LE(crc32(data, crc), 8);
  return [head, data];
}

/** A decoded frame; `dataOffset` is where its data starts in the decoded buffer. */
export interface DecodedFrame {
  rec: JournalRecord;
  data: Buffer | undefined;
  dataOffset: number;
}

/** Decodes whole frames; `validBytes` is where the intact prefix ends. */
export function decodeFrames(buf: Buffer): { records: DecodedFrame[]; validBytes: number } {
  const records: DecodedFrame[] = [];
  let off = 0;
  while (off + HEADER_BYTES <= buf.length) {
    const jsonLen = buf.readUInt32LE(off);
    const dataLen = buf.readUInt32LE(off + 4);
    const end = off + HEADER_BYTES + jsonLen + dataLen;
    if (jsonLen === 0 || end > buf.length) break;
    const body = buf.subarray(off + HEADER_BYTES, end);
    if (crc32(body) !== buf.readUInt32LE(off + 8)) break;
    let rec: JournalRecord;
    try {
      rec = JSON.parse(body.subarray(0, jsonLen).toString()) as JournalRecord;
    } catch {
      break;
    }
    records.push({ rec, data: dataLen > 0 ? Buffer.from(body.subarray(jsonLen)) : undefined, dataOffset: off + HEADER_BYTES + jsonLen });
    off = end;
  }
  return { records, validBytes: off };
}

const SNAPSHOT_CHUNK = 2000;

/**
 * Writes the snapshot JSON a slice of entries at a time, so serialising a large state never holds the
 * event loop for long. Entries are immutable objects (replaced, never changed), so the slices taken
 * later still describe the state as of the rotation.
 */
async function writeSnapshot(fh: FileHandle, s: Snapshot): Promise<void> {
  const { entries, ...rest } = s;
  const head = JSON.stringify(rest);
  await fh.write(`${head.slice(0, -1)},"entries":[`);
  for (let i = 0; i < entries.length; i += SNAPSHOT_CHUNK) {
    const part = entries.slice(i, i + SNAPSHOT_CHUNK).map((e) => JSON.stringify(e));
    await fh.write(`${i > 0 ? ',' : ''}${part.join(',')}`);
  }
  await fh.write(']}');
}

const REPLAY_CHUNK = 8 * 1024 * 1024;
const MAX_FRAME_BYTES = 4 * 1024 * 1024;

/** Replays a journal file a window at a time, so a long journal never has to fit in memory. */
async function replayFile(
  path: string,
  apply: (rec: JournalRecord, data: Buffer | undefined, dataOffset: number) => void,
): Promise<{ records: number; validBytes: number; totalBytes: number }> {
  const fh = await open(path, 'r');
  try {
    const totalBytes = (await fh.stat()).size;
    let carry = Buffer.alloc(0);
    let consumed = 0;
    let records = 0;
    let position = 0;
    while (position < totalBytes) {
      const chunk = Buffer.allocUnsafe(Math.min(REPLAY_CHUNK, totalBytes - position));
      const { bytesRead } = await fh.read(chunk, 0, chunk.length, position);
      if (bytesRead === 0) break;
      position += bytesRead;
      const window = carry.length ? Buffer.concat([carry, chunk.subarray(0, bytesRead)]) : chunk.subarray(0, bytesRead);
      const { records: decoded, validBytes } = decodeFrames(window);
      // The window starts where the intact prefix read so far ends.
      for (const { rec, data, dataOffset } of decoded) apply(rec, data, consumed + dataOffset);
      records += decoded.length;
      consumed += validBytes;
      carry = Buffer.from(window.subarray(validBytes));
      // No intact frame is this long: the journal is damaged here, and nothing after it can be trusted.
      if (carry.length > MAX_FRAME_BYTES) break;
    }
    return { records, validBytes: consumed, totalBytes };
  } finally {
    await fh.close();
  }
}

/** Where a record's data lies: journal file `seq`, `size` bytes from byte `offset`. */
export interface DataLocation {
  seq: number;
  offset: number;
  size: number;
}

export interface JournalHooks {
  /** Applies a record to in-memory state: after it is durable, or during replay. `at` is given when the record carries data. */
  apply(rec: JournalRecord, data: Buffer | undefined, at: DataLocation | undefined): void;
  load(s: Snapshot): void;
  snapshot(): Snapshot;
  /**
   * Objects whose bytes so far live only in the journals written up to now; `writeOut` must make them
   * durable elsewhere before those journals go. After a failed compaction they are still listed.
   */
  journalOnlyBlobs(): string[];
  writeOut(blobs: string[]): Promise<void>;
  syncObjectsDir(): Promise<void>;
  onCompactionError(err: unknown): void;
}

interface Item {
  frame: Buffer[];
  bytes: number;
  rec: JournalRecord;
  data: Buffer | undefined;
  dirSync: boolean;
  resolve?: () => void;
  reject?: (err: unknown) => void;
}

const frameBytes = (frame: Buffer[]) => frame.reduce((n, b) => n + b.length, 0);

function ignoreMissing(err: unknown): void {
  if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
}

const seqName = (prefix: string, seq: number, ext: string) => `${prefix}-${String(seq).padStart(12, '0')}.${ext}`;
const seqOf = (name: string) => Number(/-(\d{12})\./.exec(name)?.[1] ?? NaN);

/** The path of journal file `seq` in `dir`. */
export const journalFile = (dir: string, seq: number): string => `${dir}/${seqName('journal', seq, 'log')}`;

/**
 * Append-only journal with group commit: appends that arrive while a write+fsync is in flight are
 * written and fsync'd together in the next batch, and nobody is answered before their batch is durable.
 * When the journal grows past a threshold it rotates, and a snapshot of the state is written in the
 * background; older journals are deleted only once that snapshot is durable.
 */
export class Journal {
  private readonly dir: string;
  private readonly hooks: JournalHooks;
  private readonly compactBytes: number;
  private fh: FileHandle;
  private seq: number;
  private size: number;
  private queue: Item[] = [];
  private flushing: Promise<void> | undefined;
  private compacting: Promise<void> | undefined;
  private fatal: unknown;
  private rotateRequested = false;
  private hurry: (() => void) | undefined;

  private constructor(dir: string, hooks: JournalHooks, compactBytes: number, fh: FileHandle, seq: number, size: number) {
    this.dir = dir;
    this.hooks = hooks;
    this.compactBytes = compactBytes;
    this.fh = fh;
    this.seq = seq;
    this.size = size;
  }

  /** Loads the newest snapshot, replays the journals after it, and returns how many records were replayed. */
  static async open(dir: string, hooks: JournalHooks, compactBytes: number): Promise<{ journal: Journal; replayed: number }> {
    const names = await readdir(dir);
    for (const n of names) if (n.endsWith('.tmp')) await unlink(join(dir, n));
    const snapshots = names.filter((n) => /^snapshot-\d{12}\.json$/.test(n)).sort().reverse();
    let base = 0;
    for (const name of snapshots) {
      try {
        hooks.load(JSON.parse(await readFile(join(dir, name), 'utf8')) as Snapshot);
        base = seqOf(name);
        break;
      } catch {
        // A snapshot that does not parse was never completed (it is renamed into place only after fsync).
      }
    }
    const journals = names.filter((n) => /^journal-\d{12}\.log$/.test(n)).map(seqOf).sort((a, b) => a - b);
    let replayed = 0;
    let last = Math.max(base, 1);
    for (const seq of journals) {
      if (seq < base) continue;
      const path = journalFile(dir, seq);
      const { records, validBytes, totalBytes } = await replayFile(path, (rec, data, offset) => hooks.apply(rec, data, data ? { seq, offset, size: data.length } : undefined));
      replayed += records;
      if (validBytes < totalBytes) {
        const fh = await open(path, 'r+');
        await fh.truncate(validBytes);
        await fh.datasync();
        await fh.close();
      }
      last = seq;
    }
    await Journal.removeBefore(dir, base);
    const fh = await open(journalFile(dir, last), 'a');
    const { size } = await fh.stat();
    await fsyncDir(dir);
    return { journal: new Journal(dir, hooks, compactBytes, fh, last, size), replayed };
  }

  private static async removeBefore(dir: string, seq: number): Promise<void> {
    for (const n of await readdir(dir)) {
      if ((n.startsWith('journal-') || n.startsWith('snapshot-')) && seqOf(n) < seq) await unlink(join(dir, n)).catch(ignoreMissing);
    }
  }

  /** The error that made the journal refuse writes (a failed fsync), if any. */
  get failure(): unknown {
    return this.fatal;
  }

  /** Appends a record; resolves once it is durable and applied. */
  append(rec: JournalRecord, data?: Buffer, opts: { dirSync?: boolean } = {}): Promise<void> {
    if (this.fatal) return Promise.reject(this.fatal);
    return new Promise((resolve, reject) => {
      const frame = encodeFrame(rec, data);
      this.queue.push({ frame, bytes: frameBytes(frame), rec, data, dirSync: opts.dirSync ?? false, resolve, reject });
      this.flushing ??= this.flush();
    });
  }

  /**
   * Applies a record now and makes it durable with the next batch, without waiting. Only for records
   * that are safe to lose in a crash (acknowledgements: losing one means a change is sent again).
   */
  appendLazy(rec: JournalRecord): void {
    this.hooks.apply(rec, undefined, undefined);
    if (this.fatal) return;
    const frame = encodeFrame(rec);
    this.queue.push({ frame, bytes: frameBytes(frame), rec, data: undefined, dirSync: false });
    this.flushing ??= this.flush();
  }

  private async flush(): Promise<void> {
    try {
      while (this.queue.length > 0 || this.rotateRequested) {
        if (this.queue.length === 0) {
          await this.compacting;
          this.rotateRequested = false;
          await this.rotate(0);
          continue;
        }
        let n = 0;
        let bytes = 0;
        while (n < this.queue.length && (n === 0 || bytes < MAX_BATCH_BYTES)) bytes += this.queue[n++]!.bytes;
        const batch = this.queue.splice(0, n);
        const live = batch.filter((b) => b.resolve);
        try {
          // A record naming a renamed object must not reach the disk before the rename, and writeback
          // may persist a written record before any fsync: the directory is synced before the write.
          if (batch.some((b) => b.dirSync)) await this.hooks.syncObjectsDir();
          await writevAll(this.fh, batch.flatMap((b) => b.frame), this.size);
        } catch (err) {
          // Typically ENOSPC: cut off whatever part was written so the journal stays a clean prefix.
          await this.fh.truncate(this.size).catch(() => undefined);
          for (const b of live) b.reject!(err);
          continue;
        }
        this.size += bytes;
        try {
          await this.fh.datasync();
        } catch (err) {
          // After a failed fsync the page cache state is unknown; refuse all further writes.
          this.fatal = err;
          for (const b of [...live, ...this.queue]) b.reject?.(err);
          this.queue = [];
          return;
        }
        let offset = this.size - bytes;
        for (const b of batch) {
          if (b.resolve) {
            this.hooks.apply(b.rec, b.data, b.data ? { seq: this.seq, offset: offset + b.frame[0]!.length, size: b.data.length } : undefined);
            b.resolve();
          }
          offset += b.bytes;
        }
        if (this.size >= this.compactBytes && !this.compacting) await this.rotate(SETTLE_MS);
      }
    } finally {
      this.flushing = undefined;
    }
  }

  /** Switches to a new journal file and starts writing a snapshot of the state as of the switch. */
  private async rotate(settleMs: number): Promise<void> {
    const nextSeq = this.seq + 1;
    const fh = await open(journalFile(this.dir, nextSeq), 'a');
    await fsyncDir(this.dir);
    const snapshot = this.hooks.snapshot();
    const blobs = this.hooks.journalOnlyBlobs();
    const old = this.fh;
    this.fh = fh;
    this.seq = nextSeq;
    this.size = 0;
    this.compacting = this.compact(nextSeq, snapshot, blobs, old, settleMs).finally(() => {
      this.compacting = undefined;
    });
  }

  private async compact(seq: number, snapshot: Snapshot, blobs: string[], old: FileHandle, settleMs: number): Promise<void> {
    try {
      await old.close();
      // Writing thousands of objects out while the writes that filled the journal still arrive would
      // compete with their commits; waiting lets such a burst end first.
      if (settleMs > 0) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, settleMs);
          this.hurry = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.hurry = undefined;
      }
      await this.hooks.writeOut(blobs);
      const tmp = join(this.dir, `${seqName('snapshot', seq, 'json')}.tmp`);
      const fh = await open(tmp, 'w');
      try {
        await writeSnapshot(fh, snapshot);
        await fh.datasync();
      } finally {
        await fh.close();
      }
      await rename(tmp, join(this.dir, seqName('snapshot', seq, 'json')));
      await fsyncDir(this.dir);
      await Journal.removeBefore(this.dir, seq);
    } catch (err) {
      // The older journals stay, so nothing is lost; the next rotation lists these blobs again.
      this.hooks.onCompactionError(err);
    }
  }

  /** Rotates now and waits for the snapshot. */
  async compactNow(): Promise<void> {
    this.hurry?.();
    await this.compacting;
    this.rotateRequested = true;
    this.flushing ??= this.flush();
    while (this.flushing) await this.flushing;
    await this.compacting;
  }

  async close(): Promise<void> {
    this.hurry?.();
    while (this.flushing) await this.flushing;
    await this.compacting;
    await this.fh.close();
  }
}
