import { open, readdir, readFile, rm, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { errnoCode } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { PeerList } from '../../../contract/peer-api.ts';
import type { MetaDb } from './db.ts';
import type { FileEntry, Tombstone } from './entry.ts';
import { StoreOpenError } from './errors.ts';
import { fsyncDir } from './fsutil.ts';
import { versionTimeMs, type Version } from './version.ts';

// The first store format (v1): a directory `journal/` of CRC-framed JSON records (`journal-<seq>.log`,
// small files' bytes inside their records) and JSON snapshots of the whole state (`snapshot-<seq>.json`),
// with object files under `objects/`. Read here only to convert it, once, into the database.

export const V1_DIR = 'journal';
/** Meta key of a conversion under way (its progress) and of one finished (the v1 directory may still be there). */
export const MIGRATION_KEY = 'v1_migration';
export const MIGRATED_KEY = 'v1_migrated';

type V1FileEntry = FileEntry & { blob: string };
type V1Record =
  | { t: 'put'; e: V1FileEntry; to: string[]; at: number; inline: boolean }
  | { t: 'del'; e: Tombstone; to: string[]; at: number }
  | { t: 'ack'; peer: string; items: Array<[string, Version]> }
  | { t: 'peers'; list: PeerList }
  | { t: 'gc'; path: string; version: Version };

interface V1Snapshot {
  v: 1;
  peers: PeerList;
  entries: Array<V1FileEntry | Tombstone>;
  outbox: Record<string, Array<[string, Version, number, number, number]>>;
}

export type Progress = { stage: 'snapshot'; index: number } | { stage: 'journal'; seq: number; offset: number };

// Frame: u32 JSON length, u32 data length, u32 CRC-32 of JSON+data, JSON, data.
const HEADER_BYTES = 12;
const WINDOW_BYTES = 8 * 1024 * 1024;
const MAX_FRAME_BYTES = 4 * 1024 * 1024;
const SNAPSHOT_CHUNK = 5000;

/** Whole intact frames at the start of `buf`, and where they end. */
export function decodeV1Frames(buf: Buffer): { records: Array<{ rec: V1Record; data: Buffer | undefined }>; validBytes: number } {
  const records: Array<{ rec: V1Record; data: Buffer | undefined }> = [];
  let off = 0;
  while (off + HEADER_BYTES <= buf.length) {
    const jsonLen = buf.readUInt32LE(off);
    const dataLen = buf.readUInt32LE(off + 4);
    const end = off + HEADER_BYTES + jsonLen + dataLen;
    if (jsonLen === 0 || end > buf.length) break;
    const body = buf.subarray(off + HEADER_BYTES, end);
    if (crc32(body) !== buf.readUInt32LE(off + 8)) break;
    let rec: V1Record;
    try {
      rec = JSON.parse(body.subarray(0, jsonLen).toString()) as V1Record;
    } catch {
      // A frame whose CRC holds but whose JSON does not parse ends the intact prefix like a bad CRC.
      break;
    }
    records.push({ rec, data: dataLen > 0 ? Buffer.from(body.subarray(jsonLen)) : undefined });
    off = end;
  }
  return { records, validBytes: off };
}

const seqOf = (name: string) => Number(/-(\d{12})\./.exec(name)?.[1] ?? NaN);
const journalName = (seq: number) => `journal-${String(seq).padStart(12, '0')}.log`;

/** Whether `dataDir` holds a v1 journal directory. */
export async function hasV1(dataDir: string): Promise<boolean> {
  return readdir(join(dataDir, V1_DIR)).then(
    () => true,
    (err: unknown) => {
      if (errnoCode(err) === 'ENOENT') return false;
      throw new StoreOpenError(join(dataDir, V1_DIR), `cannot be read: ${(err as Error).message}`, { cause: err });
    },
  );
}

/**
 * Converts the v1 state into `db`, which was created for this with a `MIGRATION_KEY` row. Progress is
 * committed with each step, so a conversion cut short by a crash resumes where it stopped. Once every
 * record is in, object files no entry names are deleted (the index is complete then), the conversion is
 * marked done and the v1 directory removed. Anything unreadable throws, naming the file.
 */
export async function migrateV1(dataDir: string, db: MetaDb, logger: Logger, onStep: (p: Progress) => void = () => undefined): Promise<void> {
  const dir = join(dataDir, V1_DIR);
  const raw = db.getMeta(MIGRATION_KEY);
  if (raw === undefined) throw new StoreOpenError(db.file, 'no v1 conversion is under way');
  let progress = JSON.parse(raw) as Progress;
  const names = await readdir(dir);
  const snapshots = names.filter((n) => /^snapshot-\d{12}\.json$/.test(n)).sort();
  const newest = snapshots.at(-1);
  const base = newest ? seqOf(newest) : 0;
  const commit = (next: Progress, fn: () => void) => {
    db.begin();
    try {
      fn();
      db.setMeta(MIGRATION_KEY, JSON.stringify(next));
      db.commit();
    } catch (err) {
      db.rollback();
      throw err;
    }
    progress = next;
    onStep(next);
  };
  logger.info({ dir, snapshot: newest ?? null, progress }, 'converting a v1 data directory');

  if (progress.stage === 'snapshot' && newest) {
    const file = join(dir, newest);
    let snap: V1Snapshot;
    try {
      snap = JSON.parse(await readFile(file, 'utf8')) as V1Snapshot;
    } catch (err) {
      throw new StoreOpenError(file, `the v1 snapshot cannot be read (${(err as Error).message}); refusing to convert or start`, { cause: err });
    }
    if (snap.v !== 1 || !Array.isArray(snap.entries)) throw new StoreOpenError(file, 'is not a v1 snapshot');
    while (progress.stage === 'snapshot' && progress.index < snap.entries.length) {
      const from = progress.index;
      const to = Math.min(snap.entries.length, from + SNAPSHOT_CHUNK);
      commit({ stage: 'snapshot', index: to }, () => {
        if (from === 0) db.setPeers(snap.peers);
        // A v1 snapshot kept no receipt times: a tombstone's retention counts from its version's time, as v1 counted it.
        for (const e of snap.entries.slice(from, to)) applyV1Entry(db, e, undefined, [], e.deleted ? versionTimeMs(e.version) : 0);
      });
    }
    commit({ stage: 'journal', seq: base, offset: 0 }, () => {
      if (snap.entries.length === 0) db.setPeers(snap.peers);
      for (const [peer, items] of Object.entries(snap.outbox)) {
        for (const [path, version, since, at, bytes] of items) db.restoreOutbox(peer, nfc(path), version, since, at, bytes);
      }
    });
  } else if (progress.stage === 'snapshot') {
    commit({ stage: 'journal', seq: base, offset: 0 }, () => undefined);
  }

  const journals = names.filter((n) => /^journal-\d{12}\.log$/.test(n)).map(seqOf).filter((s) => s >= base).sort((a, b) => a - b);
  for (const [i, seq] of journals.entries()) {
    if (progress.stage !== 'journal' || seq < progress.seq) continue;
    const file = join(dir, journalName(seq));
    const start = progress.seq === seq ? progress.offset : 0;
    const end = await replayV1Journal(file, start, (records, offset) =>
      commit({ stage: 'journal', seq, offset }, () => {
        for (const { rec, data } of records) applyV1Record(db, rec, data);
      }),
    );
    if (end.validBytes < end.totalBytes && i < journals.length - 1) {
      // Only the newest journal can have a torn tail; damage anywhere else would silently drop records.
      throw new StoreOpenError(file, `has a damaged frame at byte ${end.validBytes} of ${end.totalBytes}, and newer journals follow; refusing to convert or start`);
    }
    commit({ stage: 'journal', seq: seq + 1, offset: 0 }, () => undefined);
  }

  const removed = await removeUnreferencedObjects(join(dataDir, 'objects'), db);
  db.begin();
  db.deleteMeta(MIGRATION_KEY);
  db.setMeta(MIGRATED_KEY, new Date().toISOString());
  db.commit();
  await rm(dir, { recursive: true });
  await fsyncDir(dataDir);
  logger.info({ files: db.counts.liveFiles, tombstones: db.counts.tombstones, removedObjects: removed }, 'converted the v1 data directory');
}

/** Removes a v1 directory left behind by a conversion that finished (crash before its removal). */
export async function removeConvertedV1(dataDir: string): Promise<void> {
  await rm(join(dataDir, V1_DIR), { recursive: true });
  await fsyncDir(dataDir);
}

/**
 * Reads a journal from `start` a window at a time, handing each window's intact records and the offset
 * after them to `apply`. Stops at the first frame that is short or fails its check.
 */
async function replayV1Journal(
  file: string,
  start: number,
  apply: (records: Array<{ rec: V1Record; data: Buffer | undefined }>, offset: number) => void,
): Promise<{ validBytes: number; totalBytes: number }> {
  let fh;
  try {
    fh = await open(file, 'r');
  } catch (err) {
    throw new StoreOpenError(file, `cannot be opened: ${(err as Error).message}`, { cause: err });
  }
  try {
    const totalBytes = (await fh.stat()).size;
    let consumed = start;
    let carry = Buffer.alloc(0);
    let position = start;
    while (position < totalBytes) {
      const chunk = Buffer.allocUnsafe(Math.min(WINDOW_BYTES, totalBytes - position));
      const { bytesRead } = await fh.read(chunk, 0, chunk.length, position);
      if (bytesRead === 0) break;
      position += bytesRead;
      const window = carry.length ? Buffer.concat([carry, chunk.subarray(0, bytesRead)]) : chunk.subarray(0, bytesRead);
      const { records, validBytes } = decodeV1Frames(window);
      consumed += validBytes;
      if (records.length > 0) apply(records, consumed);
      carry = Buffer.from(window.subarray(validBytes));
      if (carry.length > MAX_FRAME_BYTES) break;
    }
    return { validBytes: consumed, totalBytes };
  } finally {
    await fh.close();
  }
}

/**
 * v1 kept a path as it was spelled; the store keeps it in NFC, the spelling every request is looked up
 * in (paths.ts). Two spellings of one name become one file: the newer version wins, as in replication.
 */
const nfc = (path: string): string => path.normalize('NFC');

function applyV1Entry(db: MetaDb, e: V1FileEntry | Tombstone, data: Buffer | undefined, to: string[], at: number): void {
  if (e.deleted) {
    db.applyEntry({ path: nfc(e.path), version: e.version, deleted: true }, undefined, to, at);
    return;
  }
  const entry = { path: nfc(e.path), version: e.version, deleted: false as const, size: e.size, sha256: e.sha256, contentType: e.contentType };
  // v1 kept no object file for an empty file, and small files' bytes first only in their record.
  const content = e.size === 0 ? { data: Buffer.alloc(0) } : data && data.length === e.size ? { data } : { blob: e.blob };
  db.applyEntry(entry, content, to, at);
}

function applyV1Record(db: MetaDb, rec: V1Record, data: Buffer | undefined): void {
  switch (rec.t) {
    case 'put':
      applyV1Entry(db, rec.e, rec.inline ? data : undefined, rec.to, rec.at);
      return;
    case 'del':
      applyV1Entry(db, rec.e, undefined, rec.to, rec.at);
      return;
    case 'ack':
      db.ack(rec.peer, rec.items.map(([path, version]) => [nfc(path), version] as const));
      return;
    case 'peers':
      db.setPeers(rec.list);
      return;
    case 'gc':
      db.removeTombstone(nfc(rec.path), rec.version);
      return;
  }
}

/** Deletes object files no entry names (v1 leftovers of superseded or interrupted writes); the index is complete. */
async function removeUnreferencedObjects(objectsDir: string, db: MetaDb): Promise<number> {
  let removed = 0;
  for (const name of await readdir(objectsDir)) {
    if (name.endsWith('.tmp') || !db.blobUsed(name)) {
      await unlink(join(objectsDir, name));
      removed++;
    }
  }
  if (removed > 0) await fsyncDir(objectsDir);
  return removed;
}
