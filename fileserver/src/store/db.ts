import { closeSync, fstatSync, fsyncSync, openSync, renameSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import type { PeerList } from '../../../contract/peer-api.ts';
import { BUCKETS, bucketOf, ManifestDigest } from './digest.ts';
import { contentOf, type Entry, type FileEntry } from './entry.ts';
import { StoreOpenError } from './errors.ts';
import { resolveIncoming, type Version } from './version.ts';

// The store's metadata (and small files' bytes) in one SQLite database: WAL mode, every commit fsync'd
// (synchronous=FULL), held exclusively by this process. Every durable fact is a row, and every cached
// aggregate (counts, the 256 digest buckets, per-peer outbox totals) is kept in memory and written in the
// same transaction as the changes it follows, right before that transaction commits (once per group
// commit, not once per change), so a restart reads a few rows instead of replaying anything.
// 3: digest buckets cover content, and tombstones keep their receipt time (`received_at`).
// 4: `wanted` lists the files set aside as damaged until they are pulled again.
export const SCHEMA_VERSION = 4;
const WANTED_TABLE = 'CREATE TABLE wanted (path TEXT PRIMARY KEY, version TEXT NOT NULL) WITHOUT ROWID;';

const SCHEMA = `
CREATE TABLE meta (k TEXT PRIMARY KEY, v TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE counts (
  id INTEGER PRIMARY KEY CHECK (id = 0),
  live_files INTEGER NOT NULL, live_bytes INTEGER NOT NULL, tombstones INTEGER NOT NULL,
  outbox_seq INTEGER NOT NULL, max_version TEXT NOT NULL
);
INSERT INTO counts VALUES (0, 0, 0, 0, 0, '');
CREATE TABLE files (
  path TEXT PRIMARY KEY,
  version TEXT NOT NULL,
  deleted INTEGER NOT NULL,
  size INTEGER NOT NULL,
  sha256 TEXT NOT NULL,
  content_type TEXT NOT NULL,
  bucket INTEGER NOT NULL,
  blob TEXT,
  data BLOB,
  received_at INTEGER
);
CREATE INDEX files_bucket ON files (bucket, path);
CREATE INDEX files_tombstones ON files (received_at, path) WHERE deleted = 1;
CREATE INDEX files_blob ON files (blob) WHERE blob IS NOT NULL;
CREATE TABLE digest (bucket INTEGER PRIMARY KEY, hash BLOB NOT NULL);
CREATE TABLE outbox (
  peer TEXT NOT NULL, path TEXT NOT NULL, seq INTEGER NOT NULL, version TEXT NOT NULL,
  since INTEGER NOT NULL, at INTEGER NOT NULL, bytes INTEGER NOT NULL,
  PRIMARY KEY (peer, path)
) WITHOUT ROWID;
CREATE INDEX outbox_order ON outbox (peer, seq);
CREATE INDEX outbox_path ON outbox (path);
CREATE TABLE outbox_totals (peer TEXT PRIMARY KEY, changes INTEGER NOT NULL, bytes INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE garbage (blob TEXT PRIMARY KEY) WITHOUT ROWID;
${WANTED_TABLE}
`;

/** Where a file's bytes are: inline in its row, or in an object file. */
export type Content = { data: Buffer; blob?: undefined } | { blob: string; data?: undefined };

export interface Counts {
  liveFiles: number;
  liveBytes: number;
  tombstones: number;
}

export interface ManifestItem {
  path: string;
  version: Version;
  deleted: boolean;
  /** The file's SHA-256; '' for a delete. */
  sha256: string;
}

export interface OutboxItem {
  path: string;
  version: Version;
  bytes: number;
}

export interface OutboxTotals {
  changes: number;
  bytes: number;
}

export interface Acked {
  path: string;
  /** Accept time (ms) of the version the peer now holds. */
  at: number;
}

export interface ApplyResult {
  applied: boolean;
  /** What the path held before, if anything. */
  held?: Entry;
  /** Object file no row references any longer; listed in `garbage` until unlinked. */
  freed?: string;
}

interface FileRow {
  path: string;
  version: string;
  deleted: number;
  size: number;
  sha256: string;
  content_type: string;
  blob: string | null;
}

const SQLITE_BUSY = 5;
const SQLITE_FULL = 13;
const SQLITE_IOERR = 10;
const SQLITE_CORRUPT = 11;
const SQLITE_NOTADB = 26;

/** The primary SQLite result code of an error thrown by node:sqlite, if it is one. */
export function sqliteCode(err: unknown): number | undefined {
  const code = (err as { errcode?: unknown } | null)?.errcode;
  return typeof code === 'number' ? code & 0xff : undefined;
}

export const isDbFull = (err: unknown): boolean => sqliteCode(err) === SQLITE_FULL;
/** An I/O error or damage: what was written may not be on disk, and the store must stop writing. */
export const isDbBroken = (err: unknown): boolean => [SQLITE_IOERR, SQLITE_CORRUPT, SQLITE_NOTADB].includes(sqliteCode(err) ?? -1);

function toEntry(r: FileRow): Entry {
  if (r.deleted) return { path: r.path, version: r.version, deleted: true };
  return { path: r.path, version: r.version, deleted: false, size: r.size, sha256: r.sha256, contentType: r.content_type };
}

type ManifestRow = { path: string; version: string; deleted: number; sha256: string };
const item = (r: ManifestRow): ManifestItem => ({ path: r.path, version: r.version, deleted: r.deleted !== 0, sha256: r.sha256 });

const asBuffer = (u: Uint8Array): Buffer => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

export class MetaDb {
  readonly file: string;
  private readonly db: DatabaseSync;
  private readonly st: Record<string, StatementSync>;
  readonly digest = new ManifestDigest();
  readonly counts: Counts = { liveFiles: 0, liveBytes: 0, tombstones: 0 };
  private outboxSeq = 0;
  private maxVersion = '';
  private peerList: PeerList = { generation: 0, peers: [] };
  /** Whether `wanted` may hold rows: almost always false, so writes skip clearing it. */
  private anyWanted = false;
  private readonly totals = new Map<string, OutboxTotals>();
  /** Cached aggregates changed in the open transaction, written by `commit` before the COMMIT itself. */
  private countsDirty = false;
  private readonly dirtyBuckets = new Set<number>();
  private readonly dirtyTotals = new Set<string>();
  /** Inside `step`: what puts the cached aggregates back if the step fails (its rows go by ROLLBACK TO). */
  private undo: Array<() => void> | undefined;
  /** Outbox inserts of a change owed to n peers, one statement each n. */
  private readonly addOutboxFor = new Map<number, StatementSync>();

  private constructor(file: string, db: DatabaseSync) {
    this.file = file;
    this.db = db;
    const p = (sql: string) => db.prepare(sql);
    this.st = {
      getMeta: p('SELECT v FROM meta WHERE k = ?'),
      setMeta: p('INSERT INTO meta (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v'),
      delMeta: p('DELETE FROM meta WHERE k = ?'),
      getCounts: p('SELECT live_files, live_bytes, tombstones, outbox_seq, max_version FROM counts WHERE id = 0'),
      setCounts: p('UPDATE counts SET live_files = ?, live_bytes = ?, tombstones = ?, outbox_seq = ?, max_version = ? WHERE id = 0'),
      getFile: p('SELECT path, version, deleted, size, sha256, content_type, blob FROM files WHERE path = ?'),
      getData: p('SELECT version, deleted, size, sha256, content_type, blob, data FROM files WHERE path = ?'),
      putFile: p(
        `INSERT INTO files (path, version, deleted, size, sha256, content_type, bucket, blob, data, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (path) DO UPDATE SET version = excluded.version, deleted = excluded.deleted, size = excluded.size, sha256 = excluded.sha256,
           content_type = excluded.content_type, blob = excluded.blob, data = excluded.data, received_at = excluded.received_at`,
      ),
      delFile: p('DELETE FROM files WHERE path = ?'),
      blobUsed: p('SELECT 1 AS used FROM files WHERE blob = ? LIMIT 1'),
      listFrom: p('SELECT path, version, deleted, size, sha256, content_type, blob FROM files WHERE path >= ? AND deleted = 0 ORDER BY path'),
      listAfter: p('SELECT path, version, deleted, size, sha256, content_type, blob FROM files WHERE path > ? AND deleted = 0 ORDER BY path'),
      all: p('SELECT path, version, deleted, sha256 FROM files ORDER BY path'),
      inBucket: p('SELECT path, version, deleted, sha256 FROM files WHERE bucket = ? ORDER BY path'),
      bucketPage: p('SELECT path, version, deleted, sha256 FROM files WHERE bucket = ? AND path > ? ORDER BY path LIMIT ?'),
      oldTombstones: p(
        'SELECT path, version, received_at FROM files WHERE deleted = 1 AND received_at <= ? AND (received_at, path) > (?, ?) ORDER BY received_at, path LIMIT ?',
      ),
      scrubPage: p('SELECT path, version, size, sha256, blob, data FROM files WHERE path > ? AND deleted = 0 ORDER BY path LIMIT ?'),
      getDigest: p('SELECT bucket, hash FROM digest ORDER BY bucket'),
      setDigest: p('INSERT INTO digest (bucket, hash) VALUES (?, ?) ON CONFLICT (bucket) DO UPDATE SET hash = excluded.hash'),
      getOutbox: p('SELECT seq, version, at, bytes FROM outbox WHERE peer = ? AND path = ?'),
      addOutbox: p('INSERT INTO outbox (peer, path, seq, version, since, at, bytes) VALUES (?, ?, ?, ?, ?, ?, ?)'),
      bumpOutbox: p('UPDATE outbox SET version = ?, at = ?, bytes = ? WHERE peer = ? AND path = ?'),
      moveOutbox: p('UPDATE outbox SET since = at, seq = ? WHERE peer = ? AND path = ?'),
      ackOutbox: p('DELETE FROM outbox WHERE peer = ? AND path = ? AND version <= ? RETURNING at, bytes'),
      dropPeer: p('DELETE FROM outbox WHERE peer = ?'),
      takeOutbox: p('SELECT path, version, bytes FROM outbox WHERE peer = ? ORDER BY seq LIMIT ?'),
      oldestOutbox: p('SELECT since FROM outbox WHERE peer = ? ORDER BY seq LIMIT 1'),
      pendingAnywhere: p('SELECT 1 AS p FROM outbox WHERE path = ? LIMIT 1'),
      getTotals: p('SELECT peer, changes, bytes FROM outbox_totals'),
      setTotals: p(
        'INSERT INTO outbox_totals (peer, changes, bytes) VALUES (?, ?, ?) ON CONFLICT (peer) DO UPDATE SET changes = excluded.changes, bytes = excluded.bytes',
      ),
      delTotals: p('DELETE FROM outbox_totals WHERE peer = ?'),
      addGarbage: p('INSERT OR IGNORE INTO garbage (blob) VALUES (?)'),
      delGarbage: p('DELETE FROM garbage WHERE blob = ?'),
      listGarbage: p('SELECT blob FROM garbage'),
      addWanted: p('INSERT INTO wanted (path, version) VALUES (?, ?) ON CONFLICT (path) DO UPDATE SET version = excluded.version'),
      delWanted: p('DELETE FROM wanted WHERE path = ?'),
      getWanted: p('SELECT 1 AS w FROM wanted WHERE path = ?'),
      anyWanted: p('SELECT 1 AS w FROM wanted LIMIT 1'),
      // Prepared once: `exec` would parse them again at every transaction and every step.
      begin: p('BEGIN IMMEDIATE'),
      commit: p('COMMIT'),
      rollback: p('ROLLBACK'),
      savepoint: p('SAVEPOINT step'),
      release: p('RELEASE step'),
      rollbackTo: p('ROLLBACK TO step'),
    };
  }

  /**
   * Creates the database: built complete under a temporary name, then renamed into place, so a crash
   * during creation leaves no half-made `file` that a restart would have to refuse.
   */
  static create(file: string, initialPeers: PeerList, initialMeta: Record<string, string> = {}): MetaDb {
    const tmp = `${file}.new`;
    for (const leftover of [tmp, `${tmp}-wal`, `${tmp}-journal`]) rmSync(leftover, { force: true });
    const db = new DatabaseSync(tmp);
    try {
      db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL');
      db.exec('BEGIN');
      db.exec(SCHEMA);
      const setDigest = db.prepare('INSERT INTO digest (bucket, hash) VALUES (?, ?)');
      for (let b = 0; b < BUCKETS; b++) setDigest.run(b, Buffer.alloc(16));
      const setMeta = db.prepare('INSERT INTO meta (k, v) VALUES (?, ?)');
      setMeta.run('schema', String(SCHEMA_VERSION));
      setMeta.run('peers', JSON.stringify(initialPeers));
      for (const [k, v] of Object.entries(initialMeta)) setMeta.run(k, v);
      db.exec('COMMIT');
      db.exec('PRAGMA wal_checkpoint(TRUNCATE)');
    } finally {
      // Closing the last connection checkpoints and removes the WAL: the file alone is the database.
      db.close();
    }
    renameSync(tmp, file);
    const dir = openSync(dirname(file), 'r');
    try {
      fsyncSync(dir);
    } finally {
      closeSync(dir);
    }
    return MetaDb.open(file);
  }

  /**
   * Opens the database and loads its aggregates. Anything that does not read back completely throws a
   * `StoreOpenError` naming the file: the caller refuses to start.
   */
  static open(file: string): MetaDb {
    let db: DatabaseSync | undefined;
    try {
      db = new DatabaseSync(file, { open: true });
      // Exclusive: no other connection, so WAL needs no shared memory and nothing else can write.
      db.exec('PRAGMA locking_mode = EXCLUSIVE; PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA journal_size_limit = 67108864');
      // Applies whatever the WAL holds, so the file on its own is complete and can be size-checked.
      const cp = db.prepare('PRAGMA wal_checkpoint(TRUNCATE)').get() as { busy: number } | undefined;
      if (cp?.busy) throw new StoreOpenError(file, 'its write-ahead log could not be applied (busy)');
      checkFileSize(file, db);
      upgradeSchema(db);
      const m = new MetaDb(file, db);
      m.load();
      return m;
    } catch (err) {
      db?.close();
      if (err instanceof StoreOpenError) throw err;
      if (sqliteCode(err) === SQLITE_BUSY) throw new StoreOpenError(file, 'the database is locked by another process', { cause: err });
      if (isDbFull(err)) throw new StoreOpenError(file, 'the volume is full, so the write-ahead log cannot be applied', { cause: err });
      throw new StoreOpenError(file, `cannot be read completely (${(err as Error).message}); refusing to start`, { cause: err });
    }
  }

  private load(): void {
    const schema = this.getMeta('schema');
    if (schema !== String(SCHEMA_VERSION)) throw new StoreOpenError(this.file, `schema version ${schema ?? 'missing'}, expected ${SCHEMA_VERSION}`);
    const c = this.st.getCounts!.get() as { live_files: number; live_bytes: number; tombstones: number; outbox_seq: number; max_version: string } | undefined;
    if (!c) throw new StoreOpenError(this.file, 'the counts row is missing');
    this.counts.liveFiles = c.live_files;
    this.counts.liveBytes = c.live_bytes;
    this.counts.tombstones = c.tombstones;
    this.outboxSeq = c.outbox_seq;
    this.maxVersion = c.max_version;
    const rows = this.st.getDigest!.all() as Array<{ bucket: number; hash: Uint8Array }>;
    if (rows.length !== BUCKETS || rows.some((r, i) => r.bucket !== i || !this.digest.load(i, r.hash))) {
      throw new StoreOpenError(this.file, `the digest table has ${rows.length} valid-looking rows, expected ${BUCKETS}`);
    }
    const peers = this.getMeta('peers');
    if (peers === undefined) throw new StoreOpenError(this.file, 'the peer list is missing');
    this.peerList = JSON.parse(peers) as PeerList;
    this.anyWanted = this.st.anyWanted!.get() !== undefined;
    this.totals.clear();
    for (const r of this.st.getTotals!.all() as Array<{ peer: string; changes: number; bytes: number }>) this.totals.set(r.peer, { changes: r.changes, bytes: r.bytes });
    this.countsDirty = false;
    this.dirtyBuckets.clear();
    this.dirtyTotals.clear();
  }

  close(): void {
    this.db.close();
  }

  // --- transactions -----------------------------------------------------------------------------

  /** Sets whether the next commits wait for the disk; `false` only for records safe to lose in a crash. */
  durable(on: boolean): void {
    // Not a prepared statement: SQLite applies this pragma when it compiles it, and running the
    // compiled statement again changes nothing, so the level would stay at whichever was compiled last.
    this.db.exec(on ? 'PRAGMA synchronous = FULL' : 'PRAGMA synchronous = NORMAL');
  }

  begin(): void {
    this.st.begin!.run();
  }

  /** Writes the aggregates the transaction changed, then commits: they reach the disk with the changes or not at all. */
  commit(): void {
    if (this.countsDirty) this.st.setCounts!.run(this.counts.liveFiles, this.counts.liveBytes, this.counts.tombstones, this.outboxSeq, this.maxVersion);
    for (const b of this.dirtyBuckets) this.st.setDigest!.run(b, this.digest.bucket(b));
    for (const peer of this.dirtyTotals) {
      const t = this.totals.get(peer);
      // A peer dropped since (setPeers) has no row left to write.
      if (t) this.st.setTotals!.run(peer, t.changes, t.bytes);
    }
    this.st.commit!.run();
    this.countsDirty = false;
    this.dirtyBuckets.clear();
    this.dirtyTotals.clear();
  }

  /** Undoes the open transaction (if SQLite has not already) and reloads the cached aggregates. */
  rollback(): void {
    if (this.db.isTransaction) this.st.rollback!.run();
    this.load();
  }

  /** Runs `fn` so that if it throws, only its own changes are undone, in the rows and in the cached aggregates. */
  step<T>(fn: () => T): T {
    const c = this.counts;
    const before = { liveFiles: c.liveFiles, liveBytes: c.liveBytes, tombstones: c.tombstones, outboxSeq: this.outboxSeq, maxVersion: this.maxVersion };
    const undo: Array<() => void> = [];
    this.undo = undo;
    this.st.savepoint!.run();
    try {
      const r = fn();
      this.st.release!.run();
      return r;
    } catch (err) {
      // Otherwise SQLite rolled the whole transaction back, and the caller's `rollback` reloads everything.
      if (this.db.isTransaction) {
        this.st.rollbackTo!.run();
        this.st.release!.run();
        for (let i = undo.length - 1; i >= 0; i--) undo[i]!();
        Object.assign(c, { liveFiles: before.liveFiles, liveBytes: before.liveBytes, tombstones: before.tombstones });
        this.outboxSeq = before.outboxSeq;
        this.maxVersion = before.maxVersion;
      }
      throw err;
    } finally {
      this.undo = undefined;
    }
  }

  // --- reads ------------------------------------------------------------------------------------

  getMeta(k: string): string | undefined {
    return (this.st.getMeta!.get(k) as { v: string } | undefined)?.v;
  }

  get(path: string): Entry | undefined {
    const r = this.st.getFile!.get(path) as FileRow | undefined;
    return r && toEntry(r);
  }

  /** A live file's entry and where its bytes are. */
  content(path: string): { entry: FileEntry; content: Content } | undefined {
    const r = this.st.getData!.get(path) as (Omit<FileRow, 'path'> & { data: Uint8Array | null }) | undefined;
    if (!r || r.deleted) return undefined;
    const entry: FileEntry = { path, version: r.version, deleted: false, size: r.size, sha256: r.sha256, contentType: r.content_type };
    if (r.blob !== null) return { entry, content: { blob: r.blob } };
    return { entry, content: { data: r.data ? asBuffer(r.data) : Buffer.alloc(0) } };
  }

  blobUsed(blob: string): boolean {
    return this.st.blobUsed!.get(blob) !== undefined;
  }

  get peers(): PeerList {
    return this.peerList;
  }

  get newestVersion(): Version | undefined {
    return this.maxVersion === '' ? undefined : this.maxVersion;
  }

  /** Live files in path order from `start` on (after it, if `exclusive`); stop iterating to stop reading. */
  *liveFrom(start: string, exclusive: boolean): Generator<FileEntry> {
    for (const r of (exclusive ? this.st.listAfter! : this.st.listFrom!).iterate(start) as Iterable<FileRow>) yield toEntry(r) as FileEntry;
  }

  /** Every entry (tombstones included) in the given buckets, in path order within each bucket. */
  *entriesInBuckets(buckets: Iterable<number>): Generator<ManifestItem> {
    const wanted = [...new Set(buckets)].sort((a, b) => a - b);
    if (wanted.length === BUCKETS) {
      for (const r of this.st.all!.iterate() as Iterable<ManifestRow>) yield item(r);
      return;
    }
    // One bucket at a time: iterating a statement again invalidates its earlier iterator.
    for (const b of wanted) {
      for (const r of this.st.inBucket!.iterate(b) as Iterable<ManifestRow>) yield item(r);
    }
  }

  /**
   * Up to `limit` entries (tombstones included) of `buckets`, in (bucket, path) order after the cursor
   * `after`: one range of the (bucket, path) index per bucket, so a page reads its own rows and no
   * others, however many entries the store or the other buckets hold.
   */
  bucketPage(buckets: Iterable<number>, after: { bucket: number; path: string } | undefined, limit: number): ManifestItem[] {
    const out: ManifestItem[] = [];
    for (const b of [...new Set(buckets)].sort((x, y) => x - y)) {
      if (out.length >= limit) break;
      if (after && b < after.bucket) continue;
      // Paths are never empty, so '' starts a bucket from its first path.
      const from = after && b === after.bucket ? after.path : '';
      for (const r of this.st.bucketPage!.all(b, from, limit - out.length) as ManifestRow[]) out.push(item(r));
    }
    return out;
  }

  /** Tombstones received here at or before `receivedBy` (ms), in receipt order after the (received, path) cursor. */
  tombstonesReceivedBy(receivedBy: number, cursor: [number, string], limit: number): Array<{ path: string; version: Version; receivedAt: number }> {
    return (this.st.oldTombstones!.all(receivedBy, cursor[0], cursor[1], limit) as Array<{ path: string; version: string; received_at: number }>).map((r) => ({
      path: r.path,
      version: r.version,
      receivedAt: r.received_at,
    }));
  }

  /** Live files after `after` in path order, with their bytes if inline: what a scrub pass reads next. */
  scrubPage(after: string, limit: number): Array<{ entry: FileEntry; content: Content }> {
    return (
      this.st.scrubPage!.all(after, limit) as Array<{ path: string; version: string; size: number; sha256: string; blob: string | null; data: Uint8Array | null }>
    ).map((r) => ({
      entry: { path: r.path, version: r.version, deleted: false, size: r.size, sha256: r.sha256, contentType: '' },
      content: r.blob !== null ? { blob: r.blob } : { data: r.data ? asBuffer(r.data) : Buffer.alloc(0) },
    }));
  }

  outboxTake(peer: string, limit: number): OutboxItem[] {
    return this.st.takeOutbox!.all(peer, limit) as unknown as OutboxItem[];
  }

  outboxTotals(peer: string): OutboxTotals {
    return this.totals.get(peer) ?? { changes: 0, bytes: 0 };
  }

  outboxOldestSince(peer: string): number | undefined {
    return (this.st.oldestOutbox!.get(peer) as { since: number } | undefined)?.since;
  }

  isPendingAnywhere(path: string): boolean {
    return this.st.pendingAnywhere!.get(path) !== undefined;
  }

  /** Whether `peer` is owed a change of `path`. */
  isOwed(peer: string, path: string): boolean {
    return this.st.getOutbox!.get(peer, path) !== undefined;
  }

  /** Whether `path` was set aside as damaged and not pulled again since. */
  isWanted(path: string): boolean {
    // Reads of missing files ask this: without rows, no statement runs.
    return this.anyWanted && this.st.getWanted!.get(path) !== undefined;
  }

  garbage(): string[] {
    return (this.st.listGarbage!.all() as Array<{ blob: string }>).map((r) => r.blob);
  }

  // --- writes (inside a transaction) ------------------------------------------------------------

  setMeta(k: string, v: string): void {
    this.st.setMeta!.run(k, v);
  }

  deleteMeta(k: string): void {
    this.st.delMeta!.run(k);
  }

  private saveCounts(): void {
    this.countsDirty = true;
  }

  private toggleDigest(path: string, version: Version, content: string): void {
    this.dirtyBuckets.add(this.digest.toggle(path, version, content));
    this.undo?.push(() => this.digest.toggle(path, version, content));
  }

  private account(e: { size?: number; deleted: boolean }, sign: 1 | -1): void {
    if (e.deleted) this.counts.tombstones += sign;
    else {
      this.counts.liveFiles += sign;
      this.counts.liveBytes += sign * e.size!;
    }
  }

  /**
   * Stores `e` if it wins over what the path holds (`resolveIncoming`: last writer wins, and the higher
   * content within one version) and owes it to `owedTo`. `at` is when this node accepted it (ms): a
   * tombstone's retention counts from it. A stale entry changes nothing; its object file (if any) is the
   * caller's to discard.
   */
  applyEntry(e: Entry, content: Content | undefined, owedTo: readonly string[], at: number): ApplyResult {
    const cur = this.st.getFile!.get(e.path) as FileRow | undefined;
    const held = cur && toEntry(cur);
    if (held && resolveIncoming(held.version, e.version, contentOf(held), contentOf(e)) === 'stale') return { applied: false, held };
    if (cur) {
      this.toggleDigest(cur.path, cur.version, cur.deleted ? '' : cur.sha256);
      this.account({ size: cur.size, deleted: cur.deleted !== 0 }, -1);
    }
    const blob = content?.blob ?? null;
    this.st.putFile!.run(
      e.path,
      e.version,
      e.deleted ? 1 : 0,
      e.deleted ? 0 : e.size,
      e.deleted ? '' : e.sha256,
      e.deleted ? '' : e.contentType,
      bucketOf(e.path),
      blob,
      content?.data ?? null,
      e.deleted ? at : null,
    );
    if (blob !== null) this.st.delGarbage!.run(blob);
    if (this.anyWanted) this.st.delWanted!.run(e.path);
    this.toggleDigest(e.path, e.version, contentOf(e));
    this.account(e, 1);
    if (e.version > this.maxVersion) this.maxVersion = e.version;
    this.owe(owedTo, e.path, e.version, at, e.deleted ? 0 : e.size);
    this.saveCounts();
    const freed = cur?.blob ?? undefined;
    if (freed !== undefined) this.st.addGarbage!.run(freed);
    return { applied: true, ...(held ? { held } : {}), ...(freed !== undefined ? { freed } : {}) };
  }

  /**
   * Queues a change of `path` for each of `peers`. Only the latest version per path is queued, at the
   * place its oldest unacknowledged change took. One statement inserts the rows of every peer that has
   * none for the path yet (the usual case); the peers that had one are then found by their rows' seq.
   */
  private owe(peers: readonly string[], path: string, version: Version, at: number, bytes: number): void {
    if (peers.length === 0) return;
    const first = this.outboxSeq + 1;
    const args: Array<string | number> = [];
    for (const [i, peer] of peers.entries()) args.push(peer, path, first + i, version, at, at, bytes);
    const inserted = this.addOutboxStatement(peers.length).run(...args).changes;
    this.outboxSeq += peers.length;
    for (const [i, peer] of peers.entries()) {
      const t = this.outboxTotals(peer);
      if (inserted === peers.length) {
        this.saveTotals(peer, { changes: t.changes + 1, bytes: t.bytes + bytes });
        continue;
      }
      const cur = this.st.getOutbox!.get(peer, path) as { seq: number; version: string; bytes: number };
      if (cur.seq === first + i) this.saveTotals(peer, { changes: t.changes + 1, bytes: t.bytes + bytes });
      else if (version > cur.version) {
        this.st.bumpOutbox!.run(version, at, bytes, peer, path);
        this.saveTotals(peer, { changes: t.changes, bytes: t.bytes + bytes - cur.bytes });
      }
    }
  }

  private addOutboxStatement(n: number): StatementSync {
    let st = this.addOutboxFor.get(n);
    if (!st) {
      const rows = Array.from({ length: n }, () => '(?, ?, ?, ?, ?, ?, ?)').join(', ');
      st = this.db.prepare(`INSERT INTO outbox (peer, path, seq, version, since, at, bytes) VALUES ${rows} ON CONFLICT (peer, path) DO NOTHING`);
      this.addOutboxFor.set(n, st);
    }
    return st;
  }

  private saveTotals(peer: string, t: OutboxTotals): void {
    const before = this.totals.get(peer);
    this.totals.set(peer, t);
    this.dirtyTotals.add(peer);
    this.undo?.push(() => (before ? this.totals.set(peer, before) : this.totals.delete(peer)));
  }

  /** Puts back a queue row as an older format held it (conversion only). */
  restoreOutbox(peer: string, path: string, version: Version, since: number, at: number, bytes: number): void {
    if (this.st.getOutbox!.get(peer, path)) return;
    this.st.addOutbox!.run(peer, path, ++this.outboxSeq, version, since, at, bytes);
    const t = this.outboxTotals(peer);
    this.saveTotals(peer, { changes: t.changes + 1, bytes: t.bytes + bytes });
    this.saveCounts();
  }

  /** Records that `peer` holds these versions; returns the queue rows that are now done. */
  ack(peer: string, items: ReadonlyArray<readonly [string, Version]>): Acked[] {
    const done: Acked[] = [];
    const t = { ...this.outboxTotals(peer) };
    for (const [path, version] of items) {
      const gone = this.st.ackOutbox!.get(peer, path, version) as { at: number; bytes: number } | undefined;
      if (gone) {
        t.changes--;
        t.bytes -= gone.bytes;
        done.push({ path, at: gone.at });
      } else {
        // A newer version is queued, if any row is: the peer is behind only since that one was accepted.
        this.st.moveOutbox!.run(++this.outboxSeq, peer, path);
      }
    }
    this.saveTotals(peer, t);
    this.saveCounts();
    return done;
  }

  /** Replaces the peer list; the queues of peers no longer on it go in the same transaction. */
  setPeers(list: PeerList): void {
    const keep = new Set(list.peers.map((p) => p.id));
    for (const [peer, t] of [...this.totals]) {
      if (keep.has(peer)) continue;
      this.st.dropPeer!.run(peer);
      this.st.delTotals!.run(peer);
      this.totals.delete(peer);
      this.undo?.push(() => this.totals.set(peer, t));
    }
    this.setMeta('peers', JSON.stringify(list));
    this.peerList = list;
  }

  /** Removes the tombstone of `path` if it is still at `version`; true if it did. */
  removeTombstone(path: string, version: Version): boolean {
    const cur = this.st.getFile!.get(path) as FileRow | undefined;
    if (!cur || cur.deleted === 0 || cur.version !== version) return false;
    this.st.delFile!.run(path);
    this.toggleDigest(path, version, '');
    this.counts.tombstones--;
    this.saveCounts();
    return true;
  }

  /**
   * Drops the row of a live file at `version` whose bytes are damaged, as if it had never arrived: the
   * digest then differs from peers' and catch-up pulls the file again. Returns whether it did.
   */
  forgetFile(path: string, version: Version): boolean {
    const cur = this.st.getFile!.get(path) as FileRow | undefined;
    if (cur?.deleted !== 0 || cur.version !== version) return false;
    this.st.delFile!.run(path);
    this.toggleDigest(path, version, cur.sha256);
    this.account({ size: cur.size, deleted: false }, -1);
    this.saveCounts();
    return true;
  }

  /** Lists a file set aside as damaged: catch-up pulls it again whatever its age. */
  want(path: string, version: Version): void {
    this.st.addWanted!.run(path, version);
    // Left true if the step fails: it only makes writes look for rows to clear.
    this.anyWanted = true;
  }

  /** Names an object file that may exist without a row: it is unlinked at the next opportunity. */
  addGarbage(blob: string): void {
    this.st.addGarbage!.run(blob);
  }

  removeGarbage(blob: string): void {
    this.st.delGarbage!.run(blob);
  }
}

/** Brings a database of the previous schema to this one, in one transaction. */
function upgradeSchema(db: DatabaseSync): void {
  const row = db.prepare("SELECT v FROM meta WHERE k = 'schema'").get() as { v: string } | undefined;
  if (row?.v !== '3') return;
  db.exec('BEGIN IMMEDIATE');
  try {
    db.exec(WANTED_TABLE);
    db.prepare("UPDATE meta SET v = ? WHERE k = 'schema'").run(String(SCHEMA_VERSION));
    db.exec('COMMIT');
  } catch (err) {
    db.exec('ROLLBACK');
    throw err;
  }
}

/** A database file shorter than its own page count says was cut off: SQLite would fail only on reaching the missing pages. */
function checkFileSize(file: string, db: DatabaseSync): void {
  const pages = (db.prepare('PRAGMA page_count').get() as { page_count: number }).page_count;
  const pageSize = (db.prepare('PRAGMA page_size').get() as { page_size: number }).page_size;
  const fd = openSync(file, 'r');
  let size: number;
  try {
    size = fstatSync(fd).size;
  } finally {
    closeSync(fd);
  }
  if (size < pages * pageSize) throw new StoreOpenError(file, `is ${size} bytes but holds ${pages} pages of ${pageSize} bytes: truncated; refusing to start`);
}
