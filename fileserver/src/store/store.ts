import { createHash, hash, randomBytes } from 'node:crypto';
import { closeSync, constants as fsConstants, openSync, readSync } from 'node:fs';
import { mkdir, open, readdir, rename, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { HttpError, errnoCode } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import type { PeerList } from '../replication/peers.ts';
import { fsyncDir } from './fsutil.ts';
import { Journal, journalFile, type DataLocation } from './journal.ts';
import { DiskObjectFiles, type ObjectCopy, type ObjectFiles, type ObjectWriter } from './object-files.ts';
import { StoreState, type Entry, type FileEntry, type JournalRecord, type Tombstone } from './state.ts';
import { collectSmall } from '../streams.ts';
import { HybridClock, resolveIncoming, versionTimeMs, type Version } from './version.ts';
import { receivedBytes } from './young-gc.ts';

/** Bodies up to this size are made durable by the journal's group commit instead of a per-file fsync. */
export const INLINE_MAX_BYTES = 64 * 1024;
const DEFAULT_COMPACT_BYTES = 64 * 1024 * 1024;
const WRITE_BATCH_BYTES = 256 * 1024;
const RECENT_CACHE_BYTES = 4 * 1024 * 1024;
const HOT_READ_CACHE_BYTES = 4 * 1024 * 1024;
const SLAB_BYTES = 1024 * 1024;
const READ_FLAGS = fsConstants.O_RDONLY | (fsConstants.O_NOATIME ?? 0);

/** A byte-bounded map of object name to bytes, evicting the oldest first. */
export class RecentObjects {
  private readonly map = new Map<string, Buffer>();
  private bytes = 0;
  private readonly max: number;

  constructor(maxBytes: number) {
    this.max = maxBytes;
  }

  set(blob: string, data: Buffer): void {
    if (data.length > this.max) return;
    this.map.set(blob, data);
    this.bytes += data.length;
    for (const [k, v] of this.map) {
      if (this.bytes <= this.max) break;
      this.map.delete(k);
      this.bytes -= v.length;
    }
  }

  /** The bytes, if held; a hit becomes the most recently used entry. */
  get(blob: string): Buffer | undefined {
    const v = this.map.get(blob);
    if (v) {
      this.map.delete(blob);
      this.map.set(blob, v);
    }
    return v;
  }

  delete(blob: string): void {
    const v = this.map.get(blob);
    if (v) {
      this.map.delete(blob);
      this.bytes -= v.length;
    }
  }
}

export interface Conditions {
  ifMatch?: string[] | '*';
  ifNoneMatch?: string[] | '*';
}

export const etagOf = (e: Entry): string => `"${e.version}"`;

/** Whether `If-Match` / `If-None-Match` hold against the current entry (a tombstone counts as absent). */
export function conditionsHold(cur: Entry | undefined, c: Conditions): boolean {
  const live = cur && !cur.deleted ? cur : undefined;
  const tag = live ? etagOf(live) : undefined;
  const matches = (list: string[] | '*') => (list === '*' ? live !== undefined : tag !== undefined && list.some((t) => t.replace(/^W\//, '') === tag));
  if (c.ifMatch !== undefined && !matches(c.ifMatch)) return false;
  if (c.ifNoneMatch !== undefined && matches(c.ifNoneMatch)) return false;
  return true;
}

/** A tombstone may go once it is old enough and no peer is still owed it. */
export function tombstoneCollectible(t: Tombstone, nowMs: number, retentionMs: number, stillOwed: boolean): boolean {
  return !stillOwed && nowMs - versionTimeMs(t.version) >= retentionMs;
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
  blob: string;
  sha256: string;
  inline: Buffer | undefined;
}

export interface StoreOptions {
  dataDir: string;
  clock: HybridClock;
  logger: Logger;
  metrics?: Metrics;
  compactBytes?: number;
  objectFiles?: ObjectFiles;
  initialPeers: PeerList;
}

export type RemoteResult = 'applied' | 'stale';

/** Request bodies, peer streams, or in-memory chunks. */
export type ByteSource = AsyncIterable<Buffer> | Iterable<Buffer>;

/**
 * The local file store. Bytes live in immutable object files (one per version, named at random), small
 * files' bytes first in their journal record only; the journal maps paths to versions and objects, and
 * switching that mapping is the commit point.
 */
export class Store {
  readonly state: StoreState;
  readonly clock: HybridClock;
  private readonly objectsDir: string;
  private readonly journalDir: string;
  private readonly logger: Logger;
  private readonly metrics: Metrics | undefined;
  private readonly files: ObjectFiles;
  private journal!: Journal;
  private readonly locks = new Map<string, Promise<unknown>>();
  /** Object names: random per process start plus a counter, so unique across restarts without a random draw per write. */
  private readonly blobPrefix = randomBytes(8).toString('hex');
  private blobCounter = 0;
  /** Bytes of recent small local writes, so pushes to peers need not read them back from disk. */
  readonly recent = new RecentObjects(RECENT_CACHE_BYTES);
  /** Bytes of small files read recently: a hot file is then served without open, read and close. Blobs never change, so no entry can go stale. */
  private readonly hot = new RecentObjects(HOT_READ_CACHE_BYTES);
  /**
   * Small files whose bytes so far live only in their journal record: reads take them from there, and
   * compaction writes their object files before it deletes the journal. A join then costs no file
   * creation per small file, which was the largest single cost of receiving many of them.
   */
  private readonly inJournal = new Map<string, DataLocation>();
  /** Where `readSmall(…, { keep: false })` puts bytes: see `passingBuffer`. */
  private slab = Buffer.alloc(0);
  private slabUsed = 0;

  private constructor(opts: StoreOptions) {
    this.state = new StoreState(opts.initialPeers);
    this.clock = opts.clock;
    this.objectsDir = join(opts.dataDir, 'objects');
    this.journalDir = join(opts.dataDir, 'journal');
    this.logger = opts.logger;
    this.metrics = opts.metrics;
    this.files = opts.objectFiles ?? new DiskObjectFiles();
  }

  static async open(opts: StoreOptions): Promise<Store> {
    const s = new Store(opts);
    await mkdir(s.objectsDir, { recursive: true });
    await mkdir(s.journalDir, { recursive: true });
    await fsyncDir(opts.dataDir);
    const { journal, replayed } = await Journal.open(
      s.journalDir,
      {
        apply: (rec, data, at) => s.onApply(rec, data, at),
        load: (snap) => s.state.load(snap),
        snapshot: () => s.state.snapshot(),
        journalOnlyBlobs: () => [...s.inJournal.keys()],
        writeOut: (blobs) => s.writeOut(blobs),
        syncObjectsDir: () => fsyncDir(s.objectsDir),
        onCompactionError: (err) => s.logger.error({ err }, 'journal compaction failed; will retry'),
      },
      opts.compactBytes ?? DEFAULT_COMPACT_BYTES,
    );
    s.journal = journal;
    await s.removeUnreferencedObjects();
    if (replayed > 0) s.logger.info({ replayed, inJournal: s.inJournal.size }, 'replayed the journal');
    for (const e of s.state.entries.values()) s.clock.observe(e.version);
    return s;
  }

  /** Deletes object files no entry references: leftovers of writes a crash cut short. */
  private async removeUnreferencedObjects(): Promise<void> {
    const referenced = new Set<string>();
    for (const e of this.state.entries.values()) if (!e.deleted) referenced.add(e.blob);
    let removed = 0;
    for (const name of await readdir(this.objectsDir)) {
      if (!referenced.has(name)) {
        await unlink(this.objectPath(name)).catch(() => undefined);
        removed++;
      }
    }
    if (removed > 0) this.logger.info({ removed }, 'removed unreferenced object files');
  }

  private onApply(rec: JournalRecord, data: Buffer | undefined, at: DataLocation | undefined): void {
    const r = this.state.apply(rec);
    if (rec.t === 'put' && r.applied && rec.inline && at && rec.e.size > 0) {
      this.inJournal.set(rec.e.blob, at);
    }
    if (rec.t === 'put' && r.applied && rec.to.length > 0 && data) this.recent.set(rec.e.blob, data);
    if (rec.t === 'ack' && r.acked) {
      for (const a of r.acked) {
        const e = this.state.entries.get(a.path);
        if (e && !e.deleted && !this.state.outbox.isPendingAnywhere(a.path)) this.recent.delete(e.blob);
      }
    }
    if (r.orphanBlob) {
      this.recent.delete(r.orphanBlob);
      this.hot.delete(r.orphanBlob);
      // An object file may exist even while the bytes are in the journal (a compaction writing it out).
      this.inJournal.delete(r.orphanBlob);
      void unlink(this.objectPath(r.orphanBlob)).catch(() => undefined);
    }
    if (r.acked && this.metrics && rec.t === 'ack') {
      const now = Date.now();
      for (const a of r.acked) this.metrics.ackLatency.observe({ peer: rec.peer }, Math.max(0, now - a.at) / 1000);
    }
  }

  /** Object names are plain hex (plus `.tmp`), so joining needs no path normalisation. */
  private objectPath(blob: string): string {
    return `${this.objectsDir}/${blob}`;
  }

  /**
   * Gives small files that live only in journals about to be deleted their object files, durably. Until
   * the directory fsync the journal still serves their reads; a file superseded meanwhile loses its new
   * object file again.
   */
  private async writeOut(blobs: string[]): Promise<void> {
    const copies: Array<ObjectCopy & { blob: string; at: DataLocation }> = [];
    for (const blob of blobs) {
      const at = this.inJournal.get(blob);
      if (at) copies.push({ blob, at, from: journalFile(this.journalDir, at.seq), offset: at.offset, size: at.size, to: this.objectPath(blob) });
    }
    await this.files.copyOut(copies);
    await fsyncDir(this.objectsDir);
    for (const c of copies) {
      if (this.inJournal.get(c.blob) === c.at) this.inJournal.delete(c.blob);
      else await unlink(c.to).catch(() => undefined);
    }
  }

  /** False once the journal refused writes after a failed fsync; only a restart (and replay) recovers. */
  healthy(): boolean {
    return this.journal.failure === undefined;
  }

  get(path: string): Entry | undefined {
    return this.state.entries.get(path);
  }

  peerList(): PeerList {
    return this.state.peers;
  }

  /** The manifest digest: one hash per bucket, for peers to compare. */
  manifestDigest(): string[] {
    return this.state.digest.hex();
  }

  /**
   * Entries, tombstones included, in path order after `after`: up to `limit` of those `include` accepts,
   * looking at no more than `maxScanned` paths, so one call stays short however few paths match. `next`
   * is the path to go on after; undefined once the last path was looked at.
   */
  entriesAfter(after: string | undefined, limit: number, maxScanned: number, include?: (path: string) => boolean): { entries: Entry[]; next: string | undefined } {
    const paths = this.state.paths();
    let lo = 0;
    let hi = paths.length;
    while (after !== undefined && lo < hi) {
      const mid = (lo + hi) >> 1;
      if (paths[mid]! <= after) lo = mid + 1;
      else hi = mid;
    }
    const end = Math.min(paths.length, lo + Math.max(1, maxScanned));
    const entries: Entry[] = [];
    let i = lo;
    for (; i < end && entries.length < Math.max(1, limit); i++) {
      const path = paths[i]!;
      if (include && !include(path)) continue;
      const e = this.state.entries.get(path);
      if (e) entries.push(e);
    }
    return { entries, next: i < paths.length ? paths[i - 1] : undefined };
  }

  /** Live files in path order, starting after `after`, limited to `prefix`. */
  list(prefix: string, limit: number, after: string | undefined): { entries: FileEntry[]; next: string | undefined } {
    const paths = this.state.paths();
    const start = after !== undefined && after >= prefix ? after : prefix;
    let lo = 0;
    let hi = paths.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (paths[mid]! < start || (after !== undefined && paths[mid] === after)) lo = mid + 1;
      else hi = mid;
    }
    const entries: FileEntry[] = [];
    for (let i = lo; i < paths.length; i++) {
      const p = paths[i]!;
      if (!p.startsWith(prefix)) break;
      const e = this.state.entries.get(p);
      if (!e || e.deleted) continue;
      if (entries.length === limit) return { entries, next: entries[entries.length - 1]!.path };
      entries.push(e);
    }
    return { entries, next: undefined };
  }

  /**
   * Reads a small live file whole with blocking calls, the way nginx reads by default: for page-cached
   * data three syscalls cost far less than three thread-pool round trips. O_NOATIME keeps reads from
   * ever writing to the file system journal. `keep: false` reads without adding the bytes to the hot
   * cache: replication reads each file once, so keeping them would only evict what clients read, and
   * would keep every buffer alive past young-generation collections (a catch-up fetch of 10,000 files
   * promoted them all and cost the sender several full GCs).
   */
  readSmall(path: string, { keep = true }: { keep?: boolean } = {}): { entry: FileEntry; data: Buffer } | undefined {
    for (let attempt = 0; attempt < 5; attempt++) {
      const e = this.state.entries.get(path);
      if (!e || e.deleted) return undefined;
      if (e.size === 0) return { entry: e, data: Buffer.alloc(0) };
      const cached = this.recent.get(e.blob) ?? this.hot.get(e.blob);
      if (cached) return { entry: e, data: cached };
      // A journal is deleted only after its files' objects exist, so ENOENT on either means: look again.
      const at = this.inJournal.get(e.blob);
      let fd: number;
      try {
        fd = openSync(at ? journalFile(this.journalDir, at.seq) : this.objectPath(e.blob), READ_FLAGS);
      } catch (err) {
        if (errnoCode(err) === 'ENOENT') continue;
        throw err;
      }
      try {
        const data = keep ? Buffer.allocUnsafe(e.size) : this.passingBuffer(e.size);
        const base = at?.offset ?? 0;
        let off = 0;
        while (off < e.size) {
          const n = readSync(fd, data, off, e.size - off, base + off);
          if (n === 0) throw new Error(`object ${e.blob} is shorter than its recorded size`);
          off += n;
        }
        if (keep) this.hot.set(e.blob, data);
        return { entry: e, data };
      } finally {
        closeSync(fd);
      }
    }
    throw new HttpError(503, 'busy', 'the file changed too often while being opened; retry');
  }

  /**
   * Room for bytes read once and passed on: a piece of a shared slab, the way `Buffer.allocUnsafe` pools
   * allocations under 4 KiB. A catch-up fetch of 10,000 small files then allocates a few dozen
   * ArrayBuffers instead of 10,000, each of which V8 tracked and swept. Kept bytes never come from
   * here: one would pin its whole slab.
   */
  private passingBuffer(size: number): Buffer {
    if (this.slabUsed + size > this.slab.length) {
      this.slab = Buffer.allocUnsafeSlow(Math.max(SLAB_BYTES, size));
      this.slabUsed = 0;
    }
    const out = this.slab.subarray(this.slabUsed, this.slabUsed + size);
    // 8-byte aligned, as the pool aligns.
    this.slabUsed += (size + 7) & ~7;
    return out;
  }

  /**
   * Opens the current object of a live large file; retries if it is replaced between lookup and open.
   * Small files may have no object file yet: read them with `readSmall`.
   */
  async openFile(path: string): Promise<{ entry: FileEntry; fh: FileHandle } | undefined> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const e = this.state.entries.get(path);
      if (!e || e.deleted) return undefined;
      try {
        return { entry: e, fh: await open(this.objectPath(e.blob), 'r') };
      } catch (err) {
        if (errnoCode(err) !== 'ENOENT') throw err;
      }
    }
    throw new HttpError(503, 'busy', 'the file changed too often while being opened; retry');
  }

  private async withLock<T>(path: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(path);
    // A free path starts at once; chaining onto a resolved promise cost every write a turn of the microtask queue.
    const run = prev ? prev.then(fn, fn) : fn();
    const tail = run.catch(() => undefined);
    this.locks.set(path, tail);
    try {
      return await run;
    } finally {
      if (this.locks.get(path) === tail) this.locks.delete(path);
    }
  }

  private newBlob(): string {
    return `${this.blobPrefix}${(this.blobCounter++).toString(16).padStart(10, '0')}`;
  }

  private async ingest(body: ByteSource, size: number, expectSha: string | undefined): Promise<Ingested> {
    const blob = this.newBlob();
    const object = this.objectPath(blob);
    const tmp = `${object}.tmp`;
    let writer: ObjectWriter | undefined;
    let received = 0;
    try {
      let inline: Buffer | undefined;
      let sha256 = '';
      const tooLong = () => new HttpError(400, 'body_length_mismatch', 'the body is longer than its declared length');
      if (size <= INLINE_MAX_BYTES) {
        inline = await collectSmall(body, size, tooLong);
        received = inline.length;
        // The journal record carries the bytes; compaction writes the object file later.
        if (received === size) sha256 = hash('sha256', inline);
      } else {
        const hasher = createHash('sha256');
        writer = await this.files.openLarge(tmp);
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
            await writer.write(batch);
            batch = [];
            batched = 0;
          }
        }
        if (batched > 0) await writer.write(batch);
        if (received === size) await writer.sync();
        sha256 = hasher.digest('hex');
      }
      const mismatch = bodyMismatch(received, size, sha256, expectSha);
      if (mismatch) throw mismatch;
      const w = writer;
      writer = undefined;
      await w?.close();
      if (!inline) await rename(tmp, object);
      return { blob, sha256, inline };
    } catch (err) {
      await writer?.close().catch(() => undefined);
      await unlink(tmp).catch(() => undefined);
      await unlink(object).catch(() => undefined);
      throw err;
    }
  }

  private async discard(blob: string): Promise<void> {
    await unlink(this.objectPath(blob)).catch(() => undefined);
  }

  private owedTo(): string[] {
    return this.state.peers.peers.map((p) => p.id);
  }

  /** A client write: durable and owed to every current peer when this resolves. */
  async put(path: string, body: ByteSource, size: number, opts: PutOptions): Promise<FileEntry> {
    if (!conditionsHold(this.get(path), opts)) throw preconditionFailed();
    const got = await this.ingest(body, size, opts.sha256);
    try {
      return await this.withLock(path, async () => {
        if (!conditionsHold(this.get(path), opts)) throw preconditionFailed();
        const e: FileEntry = {
          path,
          version: this.clock.now(),
          deleted: false,
          size,
          sha256: got.sha256,
          contentType: opts.contentType,
          blob: got.blob,
        };
        await this.journal.append({ t: 'put', e, to: this.owedTo(), at: Date.now(), inline: got.inline !== undefined }, got.inline, {
          dirSync: got.inline === undefined,
        });
        return e;
      });
    } catch (err) {
      await this.discard(got.blob);
      throw err;
    }
  }

  /** A client delete: leaves a tombstone owed to every current peer. */
  async delete(path: string, cond: Conditions): Promise<Tombstone> {
    return this.withLock(path, async () => {
      const cur = this.get(path);
      if (!cur || cur.deleted) throw new HttpError(404, 'not_found', `no file at ${path}`);
      if (!conditionsHold(cur, cond)) throw preconditionFailed();
      const e: Tombstone = { path, version: this.clock.now(), deleted: true };
      await this.journal.append({ t: 'del', e, to: this.owedTo(), at: Date.now() });
      return e;
    });
  }

  /** A change from a peer: applied if newer than what is held (last writer wins), never owed onwards. */
  async applyRemote(h: ChangeHeader, body: ByteSource): Promise<RemoteResult> {
    this.clock.observe(h.version);
    if (resolveIncoming(this.get(h.path)?.version, h.version) === 'stale') {
      for await (const _ of body) {
        // drain: the bytes are not needed
      }
      this.countStale(h);
      return 'stale';
    }
    const got = h.deleted ? undefined : await this.ingest(body, h.size, h.sha256);
    try {
      return await this.withLock(h.path, async () => {
        if (resolveIncoming(this.get(h.path)?.version, h.version) === 'stale') {
          this.countStale(h);
          if (got) await this.discard(got.blob);
          return 'stale' as const;
        }
        await this.appendRemote(h, got);
        return 'applied' as const;
      });
    } catch (err) {
      if (got) await this.discard(got.blob);
      throw err;
    }
  }

  /**
   * Small changes from a peer whose bytes are all in memory, applied as `applyRemote` would apply each
   * (a bad one becomes its Error), with one journal group and no per-file lock chain: a join receives
   * thousands of them, and the promises and async frames of one `applyRemote` each were much of its
   * main thread's work and garbage. A path that is locked (a write to it is running) or repeats in the
   * batch takes the one-by-one way.
   */
  applyRemoteBatch(changes: Array<{ h: ChangeHeader; data: Buffer }>): Promise<Array<RemoteResult | Error>> {
    const results: Array<RemoteResult | Error | Promise<RemoteResult | Error>> = [];
    const commits: Array<Promise<void>> = [];
    const held = new Set<string>();
    for (const { h, data } of changes) {
      if (this.locks.has(h.path) || held.has(h.path)) {
        results.push(this.applyRemote(h, [data]).catch((err: Error) => err));
        continue;
      }
      this.clock.observe(h.version);
      if (resolveIncoming(this.get(h.path)?.version, h.version) === 'stale') {
        this.countStale(h);
        results.push('stale');
        continue;
      }
      const sha256 = h.deleted ? '' : hash('sha256', data);
      const mismatch = h.deleted ? undefined : bodyMismatch(data.length, h.size, sha256, h.sha256);
      if (mismatch) {
        results.push(mismatch);
        continue;
      }
      commits.push(this.appendRemote(h, h.deleted ? undefined : { blob: this.newBlob(), sha256, inline: data }));
      held.add(h.path);
      results.push('applied');
    }
    const committed = Promise.all(commits);
    if (held.size > 0) {
      const tail = committed.catch(() => undefined);
      for (const path of held) this.locks.set(path, tail);
      void tail.then(() => {
        for (const path of held) if (this.locks.get(path) === tail) this.locks.delete(path);
      });
    }
    return committed.then(() => Promise.all(results));
  }

  /** Journals a peer's change (a delete when `got` is undefined); resolves once it is durable and applied. */
  private appendRemote(h: ChangeHeader, got: Ingested | undefined): Promise<void> {
    if (!got) return this.journal.append({ t: 'del', e: { path: h.path, version: h.version, deleted: true }, to: [], at: Date.now() });
    const e: FileEntry = { path: h.path, version: h.version, deleted: false, size: h.size, sha256: got.sha256, contentType: h.contentType, blob: got.blob };
    return this.journal.append({ t: 'put', e, to: [], at: Date.now(), inline: got.inline !== undefined }, got.inline, { dirSync: got.inline === undefined });
  }

  private countStale(h: ChangeHeader): void {
    if (this.get(h.path)?.version !== h.version) this.metrics?.conflicts.inc();
  }

  /** Records that a peer holds these versions; safe to lose in a crash (the change is just sent again). */
  ack(peer: string, items: Array<[string, Version]>): void {
    if (items.length > 0) this.journal.appendLazy({ t: 'ack', peer, items });
  }

  async setPeers(list: PeerList): Promise<void> {
    await this.journal.append({ t: 'peers', list });
  }

  /** Removes tombstones that every current peer has and that are older than the retention. */
  async collectTombstones(nowMs: number, retentionMs: number): Promise<number> {
    let removed = 0;
    for (const e of [...this.state.entries.values()]) {
      if (!e.deleted || !tombstoneCollectible(e, nowMs, retentionMs, this.state.outbox.isPendingAnywhere(e.path))) continue;
      await this.withLock(e.path, () => this.journal.append({ t: 'gc', path: e.path, version: e.version }));
      removed++;
    }
    return removed;
  }

  /** Rotates the journal and waits until its snapshot is written and older journals are gone. */
  async compact(): Promise<void> {
    await this.journal.compactNow();
  }

  /**
   * Waits for writes and a running compaction. It does not compact: the journal is durable, and writing
   * out every small file still in it could outlast a pod's grace period; the next start replays it.
   */
  async close(): Promise<void> {
    await this.journal.close();
    await this.files.close();
  }
}

/** What is wrong with a received body against its declared size and SHA-256, if anything. */
function bodyMismatch(received: number, size: number, sha256: string, expectSha: string | undefined): HttpError | undefined {
  if (received !== size) return new HttpError(400, 'body_length_mismatch', `the body has ${received} of its declared ${size} bytes`);
  if (expectSha !== undefined && expectSha !== sha256) {
    return new HttpError(400, 'sha256_mismatch', `the body's SHA-256 is ${sha256}, not ${expectSha}; nothing was stored`);
  }
  return undefined;
}

function preconditionFailed(): HttpError {
  return new HttpError(412, 'precondition_failed', 'If-Match / If-None-Match does not hold for the current version');
}
