import { createHash, hash, randomBytes } from 'node:crypto';
import { closeSync, constants as fsConstants, existsSync, openSync, readSync } from 'node:fs';
import { mkdir, open, readdir, rename, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { errnoCode, isDiskFull } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import type { PeerList } from '../../../contract/peer-api.ts';
import { collectSmall, fileChunks } from '../streams.ts';
import { isDbBroken, isDbFull, MetaDb, type Content, type Counts, type ManifestItem, type OutboxItem } from './db.ts';
import { BodyCache } from './body-cache.ts';
import { DirLock } from './dir-lock.ts';
import { contentOf, type Entry, type FileEntry, type Tombstone } from './entry.ts';
import { StoreError, StoreOpenError } from './errors.ts';
import { fsyncDir, writevAll } from './fsutil.ts';
import { hasV1, MIGRATED_KEY, MIGRATION_KEY, migrateV1, removeConvertedV1 } from './migrate-v1.ts';
import { Reserve } from './reserve.ts';
import { type HybridClock, parseVersion, resolveIncoming, type Version } from './version.ts';
import { receivedBytes } from './young-gc.ts';

/** Bodies up to this size are kept inline in the database, made durable by its group commit; larger ones get an object file. */
export const INLINE_MAX_BYTES = 64 * 1024;
export const DB_FILE = 'store.db';
// Room, on a full volume, to apply a crash's write-ahead log to the database file (SQLite checkpoints
// every 1,000 pages of 4 KiB, so up to 4 MiB of new pages), then for some hundreds of delete commits
// (each writes a few pages to the log).
const DEFAULT_RESERVE_BYTES = 8 * 1024 * 1024;
const WRITE_BATCH_BYTES = 256 * 1024;
const ENTRY_CACHE_SIZE = 16_384;
// Enough for the hot small files of a busy node, well inside the memory a node is given.
const BODY_CACHE_BYTES = 16 * 1024 * 1024;
const TOMBSTONE_PAGE = 500;
const RESERVE_REFILL_MS = 30_000;
const READ_FLAGS = fsConstants.O_RDONLY | (fsConstants.O_NOATIME ?? 0);
const SCRUB_PAGE = 64;
const SCRUB_CHUNK = 256 * 1024;
export const QUARANTINE_DIR = 'quarantine';
const HORIZON_KEY = 'gc_horizon';
const SYNCED_AT_KEY = 'synced_at';
const DRIFT_LOG_INTERVAL_MS = 60_000;

export interface Conditions {
  ifMatch?: string[] | '*';
  ifNoneMatch?: string[] | '*';
  /**
   * Runs inside the commit, right before the preconditions are checked and the change is made, with no
   * other change or read of the store in between; throwing refuses the write and stores nothing.
   */
  guard?: () => void;
}

export const etagOf = (e: Entry): string => `"${e.version}"`;

/**
 * Entity-tag comparison (RFC 9110 8.8.3.2). Our tags are always strong. The strong comparison, which
 * `If-Match` and `If-Range` use, never matches a weak tag (`W/"…"`); the weak one, which
 * `If-None-Match` uses, ignores the `W/` prefix on either side.
 */
export function etagMatches(list: string[], tag: string, comparison: 'strong' | 'weak'): boolean {
  return comparison === 'strong' ? list.includes(tag) : list.some((t) => (t.startsWith('W/') ? t.slice(2) : t) === tag);
}

/** Whether `If-Match` / `If-None-Match` hold against the current entry (a tombstone counts as absent). */
export function conditionsHold(cur: Entry | undefined, c: Conditions): boolean {
  const live = cur && !cur.deleted ? cur : undefined;
  const tag = live ? etagOf(live) : undefined;
  const matches = (list: string[] | '*', comparison: 'strong' | 'weak') => (list === '*' ? live !== undefined : tag !== undefined && etagMatches(list, tag, comparison));
  if (c.ifMatch !== undefined && !matches(c.ifMatch, 'strong')) return false;
  if (c.ifNoneMatch !== undefined && matches(c.ifNoneMatch, 'weak')) return false;
  return true;
}

/** What a replicated change carries (pushes and catch-up pulls). */
export interface ChangeHeader {
  path: string;
  version: Version;
  deleted: boolean;
  size: number;
  sha256: string;
  contentType: string;
}

export interface PutOptions extends Conditions {
  contentType: string;
  sha256?: string;
}

interface Ingested {
  content: Content;
  sha256: string;
}

export interface StoreOptions {
  dataDir: string;
  clock: HybridClock;
  logger: Logger;
  metrics?: Metrics;
  initialPeers: PeerList;
  /** Space held back so deletes commit on a full volume. */
  reserveBytes?: number;
}

/** `clock_ahead`: refused, its version lies further ahead of this node's clock than the allowed drift; send it again later. */
export type RemoteResult = 'applied' | 'stale' | 'clock_ahead';

/** Request bodies, peer streams, or in-memory chunks. */
export type ByteSource = AsyncIterable<Buffer> | Iterable<Buffer>;

export interface OutboxStatus {
  changes: number;
  bytes: number;
  /** Accept time (ms) of the oldest change the peer has not acknowledged. */
  oldestSince: number | undefined;
}

interface Op {
  run(): unknown;
  resolve(v: unknown): void;
  reject(err: unknown): void;
  /** A delete or tombstone: may use the reserved space. */
  frees: boolean;
}

/** Entries by path, most recently used last; entries are immutable objects, replaced on change. */
class EntryCache {
  private readonly map = new Map<string, Entry>();

  get(path: string): Entry | undefined {
    const e = this.map.get(path);
    if (e) {
      this.map.delete(path);
      this.map.set(path, e);
    }
    return e;
  }

  set(e: Entry): void {
    this.map.set(e.path, e);
    if (this.map.size > ENTRY_CACHE_SIZE) this.map.delete(this.map.keys().next().value!);
  }

  delete(path: string): void {
    this.map.delete(path);
  }
}

/**
 * Opens the database. After a crash its write-ahead log must be applied to the database file first, which
 * can need room a full volume lacks; the reserved space exists for such moments, so it is given back and
 * the open tried once more. A node that cannot start on its own full volume would crash-loop instead of
 * serving reads and deletes.
 */
async function openOnAnyVolume(file: string, reserve: Reserve, logger: Logger): Promise<MetaDb> {
  try {
    return MetaDb.open(file);
  } catch (err) {
    if (!(err instanceof StoreOpenError && isDbFull(err.cause))) throw err;
    logger.warn({ file }, 'the volume is full: releasing the reserved space to apply the write-ahead log');
    await reserve.release();
  }
  try {
    return MetaDb.open(file);
  } catch (err) {
    if (!(err instanceof StoreOpenError && isDbFull(err.cause))) throw err;
    throw new StoreOpenError(
      file,
      'the volume is full, even with the reserved space given back, so the write-ahead log cannot be applied; make room on the volume or expand it, then restart',
      { cause: err.cause },
    );
  }
}

/**
 * The local file store. Metadata, what each peer is owed and small files' bytes are rows of one SQLite
 * database (db.ts); larger files are immutable object files (one per version, named at random). A
 * commit of the database is the commit point of every change: writes that arrive while one commits
 * are committed together in the next (group commit).
 */
export class Store {
  readonly clock: HybridClock;
  private readonly objectsDir: string;
  private readonly quarantineDir: string;
  private readonly logger: Logger;
  private readonly metrics: Metrics | undefined;
  private readonly db: MetaDb;
  private readonly lock: DirLock;
  private readonly reserve: Reserve;
  private readonly cache = new EntryCache();
  private readonly bodies = new BodyCache(BODY_CACHE_BYTES);
  private queue: Op[] = [];
  private flushing: Promise<void> | undefined;
  /** Object files freed by the ops of the batch being committed; unlinked only once it commits. */
  private batchFreed: string[] = [];
  /**
   * What the ops of the batch being committed did to paths, in order: the entry now held, or undefined
   * for a path whose entry went. Cached entries of these paths are dropped at once; the new ones are
   * cached only once the batch commits, so the senders' first look at a fresh write reads no row.
   */
  private batchEntries: Array<[string, Entry | undefined]> = [];
  private failure: unknown;
  /** Unlinks and reserve refills started after commits; `close` waits for them. */
  private readonly background = new Set<Promise<void>>();
  private lastRefill = 0;
  private scrubbing: { stop: boolean; wake?: () => void; done: Promise<void> } | undefined;
  private readonly blobPrefix = randomBytes(8).toString('hex');
  /** When a refusal for clock drift was last logged, per node whose clock made the version. */
  private readonly driftLogged = new Map<string, number>();
  private blobCounter = 0;

  private constructor(opts: StoreOptions, db: MetaDb, lock: DirLock, reserve: Reserve) {
    this.clock = opts.clock;
    this.objectsDir = join(opts.dataDir, 'objects');
    this.quarantineDir = join(opts.dataDir, QUARANTINE_DIR);
    this.logger = opts.logger;
    this.metrics = opts.metrics;
    this.db = db;
    this.lock = lock;
    this.reserve = reserve;
  }

  /**
   * Takes the data directory's lock, opens the database (converting a v1 directory first), and removes
   * the object files of writes a crash cut short. Throws `StoreOpenError`, naming the file, when the
   * directory is in use or anything in it cannot be read completely: nothing is deleted then.
   */
  static async open(opts: StoreOptions): Promise<Store> {
    const { dataDir } = opts;
    await mkdir(join(dataDir, 'objects'), { recursive: true });
    const lock = DirLock.acquire(dataDir);
    const reserve = new Reserve(dataDir, opts.reserveBytes ?? DEFAULT_RESERVE_BYTES);
    let db: MetaDb | undefined;
    try {
      const file = join(dataDir, DB_FILE);
      const v1 = await hasV1(dataDir);
      const exists = existsSync(file);
      if (!exists && !v1) {
        const objects = await readdir(join(dataDir, 'objects'));
        if (objects.length > 0) {
          throw new StoreOpenError(
            file,
            `is missing, but objects/ holds ${objects.length} files: the index is lost; refusing to start (to rebuild from peers, move the data directory away and start empty)`,
          );
        }
      }
      if (exists) db = await openOnAnyVolume(file, reserve, opts.logger);
      else db = MetaDb.create(file, opts.initialPeers, v1 ? { [MIGRATION_KEY]: JSON.stringify({ stage: 'snapshot', index: 0 }) } : {});
      if (db.getMeta(MIGRATION_KEY) !== undefined) await migrateV1(dataDir, db, opts.logger);
      else if (v1) {
        if (db.getMeta(MIGRATED_KEY) === undefined)
          throw new StoreOpenError(
            join(dataDir, 'journal'),
            `a v1 journal directory next to a ${DB_FILE} that was not converted from it; refusing to guess which holds the data`,
          );
        await removeConvertedV1(dataDir);
      }
      const s = new Store(opts, db, lock, reserve);
      await s.removeGarbage(s.db.garbage());
      if (!(await s.reserve.fill())) s.logger.warn({ dataDir }, 'no room for the reserved space; deletes on a full volume may fail');
      const newest = db.newestVersion;
      if (newest) s.clock.observe(newest);
      return s;
    } catch (err) {
      db?.close();
      lock.release();
      throw err;
    }
  }

  /** Unlinks object files (and their temporary files) no row references, then forgets them. */
  private async removeGarbage(blobs: string[]): Promise<void> {
    if (blobs.length === 0) return;
    for (const blob of blobs) {
      for (const p of [this.objectPath(blob), `${this.objectPath(blob)}.tmp`]) {
        await unlink(p).catch((err: unknown) => {
          if (errnoCode(err) !== 'ENOENT') throw err;
        });
      }
    }
    this.commitLazy(() => {
      for (const blob of blobs) this.db.removeGarbage(blob);
    });
  }

  /** Object names are plain hex (plus `.tmp`), so joining needs no path normalisation. */
  private objectPath(blob: string): string {
    return `${this.objectsDir}/${blob}`;
  }

  /** False once a commit failed in a way that leaves the disk state unknown; only a restart recovers. */
  healthy(): boolean {
    return this.failure === undefined;
  }

  /** Runs a database read; damage found by it stops the store as a failed commit does. */
  private read<T>(fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      if (isDbBroken(err) && !this.failure) {
        this.failure = err;
        this.logger.error({ err }, 'the database is damaged; the store refuses further writes');
      }
      throw err;
    }
  }

  get(path: string): Entry | undefined {
    const hit = this.cache.get(path);
    if (hit) return hit;
    const e = this.read(() => this.db.get(path));
    if (e) this.cache.set(e);
    return e;
  }

  /** The cached object for this entry if it is the same version, so callers may compare by identity. */
  private canonical(e: FileEntry): FileEntry {
    const cached = this.cache.get(e.path);
    if (cached && !cached.deleted && cached.version === e.version) return cached;
    this.cache.set(e);
    return e;
  }

  peerList(): PeerList {
    return this.db.peers;
  }

  counts(): Counts {
    return { ...this.db.counts };
  }

  digestHex(): string[] {
    return this.db.digest.hex();
  }

  /**
   * The highest version among the tombstones this node collected or adopted from a peer ('' for none):
   * a file it lacks below it may be one it deleted (see replication/gc-horizon.ts).
   */
  horizon(): Version | '' {
    return this.db.getMeta(HORIZON_KEY) ?? '';
  }

  /** Raises the horizon to a peer's after catching up from it completely; durable before it resolves. */
  async adoptHorizon(v: Version | ''): Promise<void> {
    if (v <= this.horizon()) return;
    await this.commit(() => {
      if (v > this.horizon()) this.db.setMeta(HORIZON_KEY, v);
    });
  }

  /** When (wall ms) the last complete catch-up round started; undefined if none did. */
  syncedAt(): number | undefined {
    const v = this.db.getMeta(SYNCED_AT_KEY);
    return v === undefined ? undefined : Number(v);
  }

  /** Records a complete catch-up round; safe to lose in a crash (the node then counts as stale sooner). */
  markSynced(startedAtMs: number): void {
    this.commitLazy(() => this.db.setMeta(SYNCED_AT_KEY, String(startedAtMs)));
  }

  /** Whether `peer` is still owed a change of `path`. */
  owes(peer: string, path: string): boolean {
    return this.read(() => this.db.isOwed(peer, path));
  }

  /** Whether `path` was set aside as damaged and not pulled again since. */
  isWanted(path: string): boolean {
    return this.read(() => this.db.isWanted(path));
  }

  /**
   * Forgets a live file at `version` with no tombstone, owed to no one any more: a stale node's copy of a
   * file its peers deleted and collected (replication/gc-horizon.ts). Returns whether it did.
   */
  forgetDeletedElsewhere(path: string, version: Version): Promise<boolean> {
    return this.commit(
      () => {
        const found = this.db.content(path);
        if (!found || found.entry.version !== version || !this.db.forgetFile(path, version)) return false;
        this.changedInBatch(path, undefined);
        for (const peer of this.db.peers.peers) this.db.ack(peer.id, [[path, version]]);
        if (found.content.blob) {
          this.db.addGarbage(found.content.blob);
          this.batchFreed.push(found.content.blob);
        }
        return true;
      },
      { frees: true },
    );
  }

  /** Every entry, tombstones included, in the given digest buckets. */
  entriesInBuckets(buckets: Iterable<number>): Iterable<ManifestItem> {
    return this.db.entriesInBuckets(buckets);
  }

  /** Up to `limit` entries of `buckets` in (bucket, path) order after the cursor `after`: reads about `limit` rows. */
  manifestPage(buckets: Iterable<number>, after: { bucket: number; path: string } | undefined, limit: number): ManifestItem[] {
    return this.read(() => this.db.bucketPage(buckets, after, limit));
  }

  /** The first `limit` changes owed to `peer`, oldest first. */
  outboxTake(peer: string, limit: number): OutboxItem[] {
    return this.read(() => this.db.outboxTake(peer, limit));
  }

  outboxStatus(peer: string): OutboxStatus {
    const t = this.db.outboxTotals(peer);
    return { changes: t.changes, bytes: t.bytes, oldestSince: t.changes > 0 ? this.read(() => this.db.outboxOldestSince(peer)) : undefined };
  }

  /** Live files in path order, starting after `after`, limited to `prefix`: reads about `limit` rows. */
  list(prefix: string, limit: number, after: string | undefined): { entries: FileEntry[]; next: string | undefined } {
    return this.read(() => this.listPage(prefix, limit, after));
  }

  private listPage(prefix: string, limit: number, after: string | undefined): { entries: FileEntry[]; next: string | undefined } {
    const exclusive = after !== undefined && after >= prefix;
    const entries: FileEntry[] = [];
    for (const e of this.db.liveFrom(exclusive ? after : prefix, exclusive)) {
      if (!e.path.startsWith(prefix)) break;
      if (entries.length === limit) return { entries, next: entries[entries.length - 1]!.path };
      entries.push(e);
    }
    return { entries, next: undefined };
  }

  /**
   * Reads a small live file whole and checks its SHA-256 (a few µs at these sizes), so damaged bytes are
   * never served or replicated: such a file is quarantined and the read throws. Inline bytes come with
   * the row; a file converted from v1 may have an object file, read with blocking calls (for page-cached
   * data three syscalls cost far less than three thread-pool round trips). O_NOATIME keeps reads from
   * writing to the file system journal.
   */
  readSmall(path: string, { keep = false }: { keep?: boolean } = {}): { entry: FileEntry; data: Buffer } | undefined {
    const held = this.get(path);
    const kept = held && !held.deleted ? this.bodies.get(path, held.version) : undefined;
    if (kept) return { entry: held as FileEntry, data: kept };
    const r = this.readSmallUnchecked(path);
    if (r && hash('sha256', r.data) !== r.entry.sha256) {
      this.inBackground(this.setAside(r.entry));
      throw damaged(path);
    }
    if (r && keep) this.bodies.set(path, r.entry.version, r.data);
    return r;
  }

  /**
   * A large file's whole bytes from `fh` (opened by `openFile` for `entry`), checked against its SHA-256
   * as they are read: the last chunk is given out only once every byte hashed right. Damaged bytes are
   * set aside as a scrub would, and the read throws before its end, so neither a client nor a peer ever
   * receives a whole damaged file.
   */
  async *checkedChunks(entry: FileEntry, fh: FileHandle): AsyncGenerator<Buffer> {
    const h = createHash('sha256');
    let left = entry.size;
    for await (const chunk of fileChunks(fh, 0, entry.size)) {
      h.update(chunk);
      left -= chunk.length;
      if (left === 0 && h.digest('hex') !== entry.sha256) {
        await this.setAside(entry);
        throw damaged(entry.path);
      }
      yield chunk;
    }
  }

  /** Quarantines `entry`'s damaged bytes if it is still the path's current version; failures are logged. */
  private async setAside(entry: FileEntry): Promise<void> {
    try {
      const found = this.read(() => this.db.content(entry.path));
      if (found && found.entry.version === entry.version) await this.quarantine(found.entry, found.content);
    } catch (err) {
      this.logger.error({ err, path: entry.path }, 'could not quarantine a damaged file');
    }
  }

  private readSmallUnchecked(path: string): { entry: FileEntry; data: Buffer } | undefined {
    for (let attempt = 0; attempt < 5; attempt++) {
      const found = this.read(() => this.db.content(path));
      if (!found) return undefined;
      const entry = this.canonical(found.entry);
      if (found.content.data) return { entry, data: found.content.data };
      let fd: number;
      try {
        fd = openSync(this.objectPath(found.content.blob), READ_FLAGS);
      } catch (err) {
        // Replaced between the lookup and the open: look again.
        if (errnoCode(err) === 'ENOENT') continue;
        throw err;
      }
      try {
        const data = Buffer.allocUnsafe(entry.size);
        let off = 0;
        while (off < entry.size) {
          const n = readSync(fd, data, off, entry.size - off, off);
          if (n === 0) throw new Error(`object ${found.content.blob} of ${path} is shorter than its recorded size`);
          off += n;
        }
        return { entry, data };
      } finally {
        closeSync(fd);
      }
    }
    throw new StoreError('busy', 'the file changed too often while being opened; retry');
  }

  /** Opens the object file of a live large file; retries if it is replaced between lookup and open. */
  async openFile(path: string): Promise<{ entry: FileEntry; fh: FileHandle } | undefined> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const found = this.read(() => this.db.content(path));
      if (!found) return undefined;
      if (!found.content.blob) throw new Error(`${path} is kept inline (${found.entry.size} bytes); read it with readSmall`);
      try {
        return { entry: this.canonical(found.entry), fh: await open(this.objectPath(found.content.blob), 'r') };
      } catch (err) {
        if (errnoCode(err) !== 'ENOENT') throw err;
      }
    }
    throw new StoreError('busy', 'the file changed too often while being opened; retry');
  }

  // --- commits --------------------------------------------------------------------------------

  /** Runs `run` in the next group commit; resolves with its result once that commit is durable. */
  private commit<T>(run: () => T, { frees = false }: { frees?: boolean } = {}): Promise<T> {
    if (this.failure) return Promise.reject(this.failed());
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ run, resolve: resolve as (v: unknown) => void, reject, frees });
      this.flushing ??= this.flush();
    });
  }

  private failed(): StoreError {
    return new StoreError('storage_failed', `a database commit failed (${(this.failure as Error).message}); restart to recover from the durable state`, {
      cause: this.failure,
    });
  }

  /**
   * Commits at once without waiting for the disk: only for records safe to lose in a crash
   * (acknowledgements, forgetting unlinked files); the next durable commit syncs them along.
   */
  private commitLazy<T>(run: () => T): T | undefined {
    if (this.failure) return undefined;
    this.db.durable(false);
    try {
      this.db.begin();
      const r = run();
      this.db.commit();
      return r;
    } catch (err) {
      this.abort(err);
      // What these commits record is safe to lose (it is made again: a change is sent again, the next
      // round is recorded), so a full volume must not stop the node; deletes free room for them.
      if (isDbFull(err) && !this.failure) {
        this.logger.warn({ err }, 'the volume is full: a bookkeeping commit was dropped; it is made again later');
        return undefined;
      }
      throw err;
    } finally {
      if (!this.failure) this.db.durable(true);
    }
  }

  /** Rolls back after a failed commit; an I/O error or damage stops all writing. */
  private abort(err: unknown): void {
    try {
      this.db.rollback();
    } catch (rollbackErr) {
      this.failure ??= rollbackErr;
    }
    if (isDbBroken(err)) this.failure ??= err;
    if (this.failure) this.logger.error({ err: this.failure }, 'the store failed a commit and refuses further writes');
  }

  private async flush(): Promise<void> {
    try {
      // Writes whose bodies arrived in this turn of the event loop join the same commit.
      await new Promise(setImmediate);
      while (this.queue.length > 0) {
        const batch = this.queue;
        this.queue = [];
        const retry = this.runBatch(batch);
        if (retry.length > 0) {
          this.logger.warn({ ops: retry.length }, 'the volume is full: releasing the reserved space so deletes can commit');
          try {
            await this.reserve.release();
            this.queue.unshift(...retry);
          } catch (err) {
            for (const op of retry) op.reject(err);
          }
        } else if (this.queue.length > 0) {
          await new Promise(setImmediate);
        }
      }
    } finally {
      this.flushing = undefined;
    }
  }

  /** Commits a batch as one transaction, each op in its own savepoint; returns ops to retry with the reserve released. */
  private runBatch(batch: Op[]): Op[] {
    const results: Array<{ ok: boolean; value: unknown }> = [];
    this.batchFreed = [];
    this.batchEntries = [];
    try {
      this.db.begin();
      for (const op of batch) {
        const mark = this.batchFreed.length;
        const entriesMark = this.batchEntries.length;
        try {
          results.push({ ok: true, value: this.db.step(() => op.run()) });
        } catch (err) {
          if (isDbBroken(err) || isDbFull(err) || isDiskFull(err)) throw err;
          this.batchFreed.length = mark;
          this.batchEntries.length = entriesMark;
          results.push({ ok: false, value: err });
        }
      }
      this.db.commit();
    } catch (err) {
      this.batchFreed = [];
      this.batchEntries = [];
      this.abort(err);
      if (!this.failure && (isDbFull(err) || isDiskFull(err))) {
        const retry = this.reserve.held ? batch.filter((op) => op.frees) : [];
        for (const op of batch) if (!retry.includes(op)) op.reject(new StoreError('disk_full', 'the data volume is full; nothing was stored', { cause: err }));
        return retry;
      }
      for (const op of batch) op.reject(this.failure ? this.failed() : err);
      return [];
    }
    for (const [path, e] of this.batchEntries) {
      if (e) this.cache.set(e);
      else this.cache.delete(path);
    }
    this.batchEntries = [];
    for (const [i, op] of batch.entries()) {
      const r = results[i]!;
      if (r.ok) op.resolve(r.value);
      else op.reject(r.value);
    }
    const freed = this.batchFreed;
    this.batchFreed = [];
    if (freed.length > 0) {
      this.inBackground(
        this.removeGarbage(freed).catch((err: unknown) => this.logger.error({ err }, 'could not remove replaced object files; they are removed at the next start')),
      );
    }
    if (batch.some((op) => op.frees) && !this.reserve.held) this.inBackground(this.refillReserve());
    return [];
  }

  /** Inside a commit: `path` now holds `e` (undefined: nothing, or not known here). */
  private changedInBatch(path: string, e: Entry | undefined): void {
    this.cache.delete(path);
    this.bodies.delete(path);
    this.batchEntries.push([path, e]);
  }

  private inBackground(task: Promise<void>): void {
    this.background.add(task);
    void task.finally(() => this.background.delete(task));
  }

  private async refillReserve(): Promise<void> {
    if (Date.now() - this.lastRefill < RESERVE_REFILL_MS) return;
    this.lastRefill = Date.now();
    try {
      if (await this.reserve.fill()) this.logger.info('the reserved space is held again');
    } catch (err) {
      this.logger.error({ err }, 'could not write the reserved space');
    }
  }

  /** Stores an entry inside a commit if it is newer than what the path held, which it returns too. */
  private applyInCommit(e: Entry, content: Content | undefined, owedTo: readonly string[]): { applied: boolean; held?: Entry } {
    const r = this.db.applyEntry(e, content, owedTo, Date.now());
    this.changedInBatch(e.path, r.applied ? e : undefined);
    if (r.freed) this.batchFreed.push(r.freed);
    return r;
  }

  /** The peers a local change is owed to: the list in force when it commits, so no removed peer gets a queue. */
  private owedTo(): string[] {
    return this.db.peers.peers.map((p) => p.id);
  }

  // --- writes -----------------------------------------------------------------------------------

  private newBlob(): string {
    return `${this.blobPrefix}${(this.blobCounter++).toString(16).padStart(10, '0')}`;
  }

  private async ingest(body: ByteSource, size: number, expectSha: string | undefined): Promise<Ingested> {
    const tooLong = () => new StoreError('body_length_mismatch', 'the body is longer than its declared length');
    if (size <= INLINE_MAX_BYTES) {
      const data = await collectSmall(body, size, tooLong);
      const sha256 = data.length === size ? hash('sha256', data) : '';
      const mismatch = bodyMismatch(data.length, size, sha256, expectSha);
      if (mismatch) throw mismatch;
      return { content: { data }, sha256 };
    }
    const blob = this.newBlob();
    // Named durably before the file exists, so a crash at any point leaves nothing no row names.
    await this.commit(() => this.db.addGarbage(blob));
    const object = this.objectPath(blob);
    const tmp = `${object}.tmp`;
    let fh: FileHandle | undefined;
    try {
      const hasher = createHash('sha256');
      fh = await open(tmp, 'wx');
      let received = 0;
      // Socket chunks are small; writing them in batches saves most thread-pool round trips.
      let batch: Buffer[] = [];
      let batched = 0;
      for await (const chunk of body) {
        received += chunk.length;
        if (received > size) throw tooLong();
        hasher.update(chunk);
        receivedBytes(chunk.length);
        batch.push(chunk);
        batched += chunk.length;
        if (batched >= WRITE_BATCH_BYTES) {
          await writevAll(fh, batch);
          batch = [];
          batched = 0;
        }
      }
      if (batched > 0) await writevAll(fh, batch);
      const sha256 = hasher.digest('hex');
      const mismatch = bodyMismatch(received, size, sha256, expectSha);
      if (mismatch) throw mismatch;
      await fh.datasync();
      await fh.close();
      fh = undefined;
      await rename(tmp, object);
      // A row naming the object must not reach the disk before the rename does.
      await fsyncDir(this.objectsDir);
      return { content: { blob }, sha256 };
    } catch (err) {
      await fh?.close();
      await this.removeGarbage([blob]);
      throw err;
    }
  }

  private async discard(got: Ingested): Promise<void> {
    // After a failed commit the disk may hold it all the same (a sync that failed after the write-ahead
    // log was written): the file stays, and the next start removes it only if its garbage row survived.
    if (got.content.blob && !this.failure) await this.removeGarbage([got.content.blob]);
  }

  /** A client write: durable and owed to every current peer when this resolves. */
  async put(path: string, body: ByteSource, size: number, opts: PutOptions): Promise<FileEntry> {
    // Without If-Match / If-None-Match any current entry will do: no read needed.
    const conditional = opts.ifMatch !== undefined || opts.ifNoneMatch !== undefined;
    if (conditional && !conditionsHold(this.get(path), opts)) throw preconditionFailed();
    const got = await this.ingest(body, size, opts.sha256);
    let stored: FileEntry;
    try {
      stored = await this.commit(() => {
        opts.guard?.();
        if (conditional && !conditionsHold(this.db.get(path), opts)) throw preconditionFailed();
        const e: FileEntry = { path, version: this.clock.now(), deleted: false, size, sha256: got.sha256, contentType: opts.contentType };
        if (!this.applyInCommit(e, got.content, this.owedTo()).applied) throw new StoreError('busy', `${path} holds a newer version than this node's clock; retry`);
        return e;
      });
    } catch (err) {
      await this.discard(got);
      throw err;
    }
    // Every peer's push reads a fresh write next: its bytes are at hand, hashed on the way in.
    if (got.content.data) this.bodies.set(path, stored.version, got.content.data);
    return stored;
  }

  /** A client delete: leaves a tombstone owed to every current peer; commits on a full volume too. */
  delete(path: string, cond: Conditions): Promise<Tombstone> {
    return this.commit(
      () => {
        cond.guard?.();
        const cur = this.db.get(path);
        if (!cur || cur.deleted) throw new StoreError('not_found', `no file at ${path}`);
        if (!conditionsHold(cur, cond)) throw preconditionFailed();
        const e: Tombstone = { path, version: this.clock.now(), deleted: true };
        this.applyInCommit(e, undefined, this.owedTo());
        return e;
      },
      { frees: true },
    );
  }

  /**
   * The first look at a peer's change: refused while its version lies too far ahead of this node's
   * clock (decided before the clock sees it), stale when what is held wins, else to be applied.
   */
  private admit(h: ChangeHeader): RemoteResult | 'apply' {
    if (!this.admitClock(h)) return 'clock_ahead';
    return this.staleAgainstHeld(h) ? 'stale' : 'apply';
  }

  /** Whether what is held wins over the change (`resolveIncoming`); a stale change is counted. */
  private staleAgainstHeld(h: ChangeHeader): boolean {
    const cur = this.get(h.path);
    if (resolveIncoming(cur?.version, h.version, cur && contentOf(cur), h.deleted ? '' : h.sha256) === 'apply') return false;
    this.countStale(h, cur);
    return true;
  }

  /** Whether the change's version lies within the allowed drift of this node's clock, which then observes it. */
  private admitClock(h: ChangeHeader): boolean {
    const ahead = this.clock.tooFarAhead(h.version);
    if (ahead !== undefined) {
      this.refuseAhead(h, ahead);
      return false;
    }
    this.clock.observe(h.version);
    return true;
  }

  /** Counts a refused change by the node whose clock made its version; says so at most once a minute per node. */
  private refuseAhead(h: ChangeHeader, aheadMs: number): void {
    const origin = parseVersion(h.version)?.nodeId ?? 'unknown';
    this.metrics?.clockDriftRejections.inc({ origin });
    const now = Date.now();
    const last = this.driftLogged.get(origin);
    if (last !== undefined && now - last < DRIFT_LOG_INTERVAL_MS) return;
    this.driftLogged.set(origin, now);
    this.logger.warn(
      { peer: origin, aheadSeconds: Math.round(aheadMs / 1000), path: h.path },
      "refused a replicated change whose version lies further ahead of this node's clock than FC_MAX_CLOCK_DRIFT_SECONDS; is that node's clock wrong?",
    );
  }

  /** Commits a peer's change if it wins over what is held (`resolveIncoming`); never owed onwards. */
  private commitRemote(h: ChangeHeader, got: Ingested | undefined): Promise<RemoteResult> {
    const e: Entry = h.deleted
      ? { path: h.path, version: h.version, deleted: true }
      : { path: h.path, version: h.version, deleted: false, size: h.size, sha256: got!.sha256, contentType: h.contentType };
    return this.commit(
      () => {
        const { applied, held } = this.applyInCommit(e, got?.content, []);
        if (applied) {
          if (held?.version === h.version) this.contentConflict(h, held, 'took the incoming content');
          return 'applied' as const;
        }
        this.countStale(h, held);
        return 'stale' as const;
      },
      { frees: h.deleted },
    );
  }

  /** A change from a peer: applied if it wins over what is held (`resolveIncoming`), never owed onwards. */
  async applyRemote(h: ChangeHeader, body: ByteSource): Promise<RemoteResult> {
    const first = this.admit(h);
    if (first !== 'apply') {
      await drain(body);
      return first;
    }
    const got = h.deleted ? undefined : await this.ingest(body, h.size, h.sha256);
    try {
      const r = await this.commitRemote(h, got);
      if (r === 'stale' && got) await this.discard(got);
      return r;
    } catch (err) {
      if (got) await this.discard(got);
      throw err;
    }
  }

  /**
   * Small changes from a peer whose bytes are all in memory, applied as `applyRemote` would apply each
   * (a bad one becomes its Error); they share group commits. The bytes are at hand, so a stale change
   * is told apart in the commit, which reads what is held anyway, unless its bytes are bad.
   */
  applyRemoteBatch(changes: Array<{ h: ChangeHeader; data: Buffer }>): Promise<Array<RemoteResult | Error>> {
    return Promise.all(
      changes.map(({ h, data }): Promise<RemoteResult | Error> | RemoteResult | Error => {
        if (!this.admitClock(h)) return 'clock_ahead';
        if (h.deleted) return this.commitRemote(h, undefined).catch((err: Error) => err);
        const sha256 = hash('sha256', data);
        const mismatch = bodyMismatch(data.length, h.size, sha256, h.sha256);
        if (mismatch) return this.staleAgainstHeld(h) ? 'stale' : mismatch;
        return this.commitRemote(h, { content: { data }, sha256 }).catch((err: Error) => err);
      }),
    );
  }

  /** A peer's change that lost to `cur`, what is held: an older version, or the same one with lower content. */
  private countStale(h: ChangeHeader, cur: Entry | undefined): void {
    if (cur?.version !== h.version) this.metrics?.conflicts.inc();
    else if (contentOf(cur) !== (h.deleted ? '' : h.sha256)) this.contentConflict(h, cur, 'kept the held content');
  }

  private contentConflict(h: ChangeHeader, cur: Entry, outcome: string): void {
    this.metrics?.contentConflicts.inc();
    this.logger.warn(
      { path: h.path, version: h.version, held: contentOf(cur) || 'deleted', incoming: (h.deleted ? '' : h.sha256) || 'deleted', outcome },
      'two replicas hold one version with different content (a duplicated node id, or a node that issued its versions again?); the higher SHA-256 wins',
    );
  }

  /** Records that a peer holds these versions; safe to lose in a crash (the change is just sent again). */
  ack(peer: string, items: Array<[string, Version]>): void {
    if (items.length === 0) return;
    const done = this.commitLazy(() => this.db.ack(peer, items));
    if (done && this.metrics) {
      const now = Date.now();
      for (const a of done) this.metrics.ackLatency.observe({ peer }, Math.max(0, now - a.at) / 1000);
    }
  }

  /** Replaces the peer list; the queues of removed peers go with the same commit. */
  async setPeers(list: PeerList): Promise<void> {
    await this.commit(() => this.db.setPeers(list), { frees: true });
  }

  /**
   * Removes tombstones that no peer is still owed and that this node has held for the retention: counted
   * from when it received them, not from their versions' time, which another node's clock set. The
   * horizon rises to the highest version removed, in the same commit.
   */
  async collectTombstones(nowMs: number, retentionMs: number): Promise<number> {
    const receivedBy = nowMs - retentionMs;
    let removed = 0;
    let cursor: [number, string] = [Number.MIN_SAFE_INTEGER, ''];
    for (;;) {
      const page = this.db.tombstonesReceivedBy(receivedBy, cursor, TOMBSTONE_PAGE);
      if (page.length === 0) return removed;
      cursor = [page.at(-1)!.receivedAt, page.at(-1)!.path];
      removed += await this.commit(
        () => {
          let n = 0;
          let horizon = this.horizon();
          for (const { path, version } of page) {
            if (this.db.isPendingAnywhere(path)) continue;
            if (this.db.removeTombstone(path, version)) {
              n++;
              if (version > horizon) horizon = version;
            }
            this.changedInBatch(path, undefined);
          }
          if (n > 0) this.db.setMeta(HORIZON_KEY, horizon);
          return n;
        },
        { frees: true },
      );
    }
  }

  // --- scrub -----------------------------------------------------------------------------------

  /** Whether the stored bytes still hash to the recorded SHA-256 (a missing object file does not). */
  private async intact(entry: FileEntry, content: Content): Promise<boolean> {
    if (content.data) return hash('sha256', content.data) === entry.sha256;
    let fh: FileHandle;
    try {
      fh = await open(this.objectPath(content.blob), 'r');
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') throw err;
      // Replaced since the page was read, or lost: only the second is damage.
      return this.db.content(entry.path)?.content.blob !== content.blob;
    }
    try {
      const h = createHash('sha256');
      const buf = Buffer.allocUnsafe(SCRUB_CHUNK);
      for (let at = 0; ; ) {
        const { bytesRead } = await fh.read(buf, 0, buf.length, at);
        if (bytesRead === 0) break;
        h.update(buf.subarray(0, bytesRead));
        at += bytesRead;
      }
      return h.digest('hex') === entry.sha256;
    } finally {
      await fh.close();
    }
  }

  /**
   * Sets a damaged file aside: its row goes (so the digest differs from peers' and catch-up pulls the
   * file again) and its object file moves to quarantine/ for inspection. Counted and logged.
   */
  private async quarantine(entry: FileEntry, content: Content): Promise<boolean> {
    const forgotten = await this.commit(() => {
      if (!this.db.forgetFile(entry.path, entry.version)) return false;
      this.changedInBatch(entry.path, undefined);
      // Until it has moved, the object file is garbage: a crash in between leaves nothing unnamed.
      if (content.blob) this.db.addGarbage(content.blob);
      // Pulled again whatever its age, though it now looks like a file deleted long ago.
      this.db.want(entry.path, entry.version);
      return true;
    });
    if (!forgotten) return false;
    if (content.blob) {
      await mkdir(this.quarantineDir, { recursive: true });
      await rename(this.objectPath(content.blob), join(this.quarantineDir, content.blob)).catch((err: unknown) => {
        if (errnoCode(err) !== 'ENOENT') throw err;
      });
      this.commitLazy(() => this.db.removeGarbage(content.blob));
    }
    this.metrics?.quarantined.inc();
    this.logger.error(
      { path: entry.path, version: entry.version, object: content.blob ?? 'inline' },
      'stored bytes do not match their SHA-256: file quarantined, to be pulled again from a peer',
    );
    return true;
  }

  /**
   * Re-reads every live file once and checks its SHA-256, reading at most `bytesPerSecond` (the pass
   * sleeps to keep to it); damaged files are quarantined. Stops early when `stopped()` turns true.
   */
  async scrubPass(
    bytesPerSecond: number,
    stopped: () => boolean = () => false,
    sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
  ): Promise<{ checked: number; quarantined: number }> {
    const started = performance.now();
    let bytes = 0;
    let checked = 0;
    let quarantined = 0;
    for (let after = ''; ; ) {
      const page = this.db.scrubPage(after, SCRUB_PAGE);
      if (page.length === 0) return { checked, quarantined };
      for (const { entry, content } of page) {
        if (stopped()) return { checked, quarantined };
        if (!(await this.intact(entry, content)) && (await this.quarantine(entry, content))) quarantined++;
        checked++;
        bytes += entry.size;
        const ahead = (bytes / bytesPerSecond) * 1000 - (performance.now() - started);
        if (ahead > 0) await sleep(ahead);
      }
      after = page.at(-1)!.entry.path;
    }
  }

  /** Scrubs in the background: a pass, then `intervalMs` of rest, until `close`. */
  startScrub(bytesPerSecond: number, intervalMs: number): void {
    if (bytesPerSecond <= 0 || this.scrubbing) return;
    const state: { stop: boolean; wake?: () => void; done: Promise<void> } = { stop: false, done: Promise.resolve() };
    const sleep = (ms: number) =>
      new Promise<void>((resolve) => {
        const t = setTimeout(resolve, ms);
        state.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
    state.done = (async () => {
      while (!state.stop) {
        try {
          const r = await this.scrubPass(bytesPerSecond, () => state.stop, sleep);
          this.logger.info(r, 'scrub pass finished');
        } catch (err) {
          this.logger.error({ err }, 'scrub pass failed; retrying after the interval');
        }
        if (!state.stop) await sleep(intervalMs);
      }
    })();
    this.scrubbing = state;
  }

  /** Waits for the commits under way, then closes the database and releases the directory lock. */
  async close(): Promise<void> {
    if (this.scrubbing) {
      this.scrubbing.stop = true;
      this.scrubbing.wake?.();
      await this.scrubbing.done;
    }
    while (this.flushing || this.background.size > 0) {
      await this.flushing;
      await Promise.all(this.background);
    }
    this.db.close();
    this.lock.release();
  }
}

/** Reads a body whose bytes are not needed to its end. */
async function drain(body: ByteSource): Promise<void> {
  for await (const _ of body) {
    // the bytes are not needed
  }
}

/** What is wrong with a received body against its declared size and SHA-256, if anything. */
function bodyMismatch(received: number, size: number, sha256: string, expectSha: string | undefined): StoreError | undefined {
  if (received !== size) return new StoreError('body_length_mismatch', `the body has ${received} of its declared ${size} bytes`);
  if (expectSha !== undefined && expectSha !== sha256) {
    return new StoreError('sha256_mismatch', `the body's SHA-256 is ${sha256}, not ${expectSha}; nothing was stored`);
  }
  return undefined;
}

function damaged(path: string): StoreError {
  return new StoreError('damaged', `the stored bytes of ${path} do not match their SHA-256; the file is set aside to be pulled again from a peer`);
}

function preconditionFailed(): StoreError {
  return new StoreError('precondition_failed', 'If-Match / If-None-Match does not hold for the current version');
}
