import type { Readable } from 'node:stream';
import { HttpError } from '../errors.ts';
import { checkPath } from '../store/paths.ts';
import type { ChangeHeader, RemoteResult, Store } from '../store/store.ts';
import { INLINE_MAX_BYTES } from '../store/store.ts';
import { isVersion } from '../store/version.ts';

// Wire format shared by pushes and catch-up pulls: for each change, u32 header length, JSON header,
// then `size` bytes of file content (none for deletes).
const MAX_HEADER_BYTES = 8 * 1024;

export interface OutgoingChange {
  header: ChangeHeader;
  /** A small file's bytes in memory, or a large file's chunks as they are read. */
  body?: Buffer | AsyncIterable<Buffer>;
}

const COALESCE_BYTES = 256 * 1024;

/** Encodes changes; small pieces are joined into larger buffers so a batch of small files takes few socket writes. */
export async function* encodeChanges(changes: AsyncIterable<OutgoingChange>): AsyncGenerator<Buffer> {
  let parts: Buffer[] = [];
  let size = 0;
  const add = (b: Buffer) => {
    parts.push(b);
    size += b.length;
  };
  const flush = () => {
    const out = parts.length === 1 ? parts[0]! : Buffer.concat(parts, size);
    parts = [];
    size = 0;
    return out;
  };
  for await (const c of changes) {
    const json = JSON.stringify(c.header);
    const jsonBytes = Buffer.byteLength(json);
    const head = Buffer.allocUnsafe(4 + jsonBytes);
    head.writeUInt32BE(jsonBytes);
    head.write(json, 4);
    add(head);
    // A small file's bytes are taken as they are: `for await` over them cost an iterator and promises
    // per file, thousands of times in a catch-up fetch.
    if (Buffer.isBuffer(c.body)) {
      if (c.body.length > 0) add(c.body);
      if (size >= COALESCE_BYTES) yield flush();
      continue;
    }
    for await (const chunk of c.body ?? []) {
      // A large chunk goes out as it is; copying it into a joined buffer would only cost time.
      if (chunk.length >= COALESCE_BYTES) {
        if (size > 0) yield flush();
        yield chunk;
        continue;
      }
      add(chunk);
      if (size >= COALESCE_BYTES) yield flush();
    }
  }
  if (size > 0) yield flush();
}

// Bytes read ahead of the parser before the source is paused.
const READ_AHEAD_BYTES = 1024 * 1024;

/**
 * Reads exact byte counts from a stream. Chunks are queued as they came: a read that fits in the first
 * chunk is a view of it, and only a read that spans chunks copies (its own bytes, once). Joining the
 * unread rest with every new chunk instead copied the whole stream again, a large part of a join's CPU.
 * The stream is read through its events, paused past a read-ahead: its async iterator cost a `read()`,
 * a buffer-list walk and a promise per socket read, thousands of them in a join.
 */
export class ByteReader {
  private readonly source: Readable;
  private readonly queue: Buffer[] = [];
  private buffered = 0;
  private ended = false;
  private failure: unknown;
  private wake: (() => void) | undefined;

  constructor(source: Readable) {
    this.source = source;
    const woken = () => {
      const w = this.wake;
      this.wake = undefined;
      w?.();
    };
    source.on('data', (chunk: Buffer) => {
      if (chunk.length === 0) return;
      this.queue.push(chunk);
      this.buffered += chunk.length;
      if (this.buffered >= READ_AHEAD_BYTES) source.pause();
      woken();
    });
    source.on('end', () => {
      this.ended = true;
      woken();
    });
    source.on('error', (err) => {
      this.failure ??= err;
      woken();
    });
    // Closed before its end without an error of its own: the sender went away mid-stream.
    source.on('close', () => {
      if (!this.ended) this.failure ??= new Error('the change stream was cut off');
      woken();
    });
  }

  /** Waits until more bytes arrived or the stream ended; throws what broke it. */
  private async more(): Promise<void> {
    if (this.failure) throw this.failure;
    if (this.ended) return;
    const woken = new Promise<void>((resolve) => (this.wake = resolve));
    this.source.resume();
    await woken;
    if (this.failure) throw this.failure;
  }

  /** Up to `n` bytes from the first queued chunk (which must exist), as a view. */
  private take(n: number): Buffer {
    const first = this.queue[0]!;
    const out = first.length <= n ? first : first.subarray(0, n);
    if (out === first) this.queue.shift();
    else this.queue[0] = first.subarray(n);
    this.buffered -= out.length;
    return out;
  }

  /** `n` bytes, or undefined if the stream ended cleanly before any of them. */
  async readExact(n: number): Promise<Buffer | undefined> {
    while (this.buffered < n) {
      if (this.ended) {
        if (this.buffered === 0) return undefined;
        throw new HttpError(400, 'truncated_stream', 'the change stream ended in the middle of a frame');
      }
      await this.more();
    }
    return this.readBuffered(n)!;
  }

  /**
   * `n` bytes if they have already arrived, else undefined (and nothing is consumed). Most frames of a
   * stream of small files are whole in the last socket read; taking them without `await` saves three
   * promises and event-loop turns per file.
   */
  readBuffered(n: number): Buffer | undefined {
    if (this.buffered < n) return undefined;
    if (n === 0) return Buffer.alloc(0);
    if (this.queue[0]!.length >= n) return this.take(n);
    const out = Buffer.allocUnsafe(n);
    for (let off = 0; off < n; ) off += this.take(n - off).copy(out, off);
    return out;
  }

  /** The next `n` bytes as a stream of chunks. */
  async *chunks(n: number): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      while (this.buffered === 0) {
        if (this.ended) throw new HttpError(400, 'truncated_stream', 'the change stream ended in the middle of a file');
        await this.more();
      }
      const out = this.take(left);
      left -= out.length;
      yield out;
    }
  }
}

const SHA256_HEX = /^([0-9a-f]{64})?$/;

/**
 * A change header from its JSON, or what is wrong with it. Checked field by field, not with a schema:
 * a catch-up checks one header per file, and zod's checks took longer than parsing the JSON.
 */
function checkHeader(json: unknown): ChangeHeader | string {
  if (typeof json !== 'object' || json === null) return 'not an object';
  const { path, version, deleted, size, sha256, contentType } = json as Record<string, unknown>;
  if (typeof path !== 'string') return 'path is not a string';
  if (!isVersion(version)) return 'version is not a version';
  if (typeof deleted !== 'boolean') return 'deleted is not a boolean';
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) return 'size is not a byte count';
  if (typeof sha256 !== 'string' || !SHA256_HEX.test(sha256)) return 'sha256 is not a hex SHA-256';
  if (typeof contentType !== 'string' || contentType.length > 256) return 'contentType is not a string of at most 256 characters';
  return { path, version, deleted, size, sha256, contentType };
}

/**
 * A change header, its path in the one spelling the store keeps (NFC), and the path as the sender
 * spelled it: the answer names the change that way, so that a sender holding a path in another
 * spelling (an older release) recognises the acknowledgement.
 */
function parseHeader(raw: Buffer): { h: ChangeHeader; sentPath: string } {
  let json: unknown;
  try {
    json = JSON.parse(raw.toString());
  } catch {
    throw new HttpError(400, 'bad_frame', 'a change header is not JSON');
  }
  const h = checkHeader(json);
  if (typeof h === 'string') throw new HttpError(400, 'bad_frame', `a change header is malformed: ${h}`);
  const p = checkPath(h.path);
  if (!p.ok) throw new HttpError(400, 'bad_frame', `a change header has a bad path: ${p.message}`);
  if (h.deleted && h.size !== 0) throw new HttpError(400, 'bad_frame', 'a delete carries no bytes');
  return { h: p.path === h.path ? h : { ...h, path: p.path }, sentPath: h.path };
}

export interface AppliedChange {
  path: string;
  version: string;
  result: RemoteResult;
}

// Large files whose bytes are on disk but whose fsync and database commit are still running. Their
// durability work overlaps with receiving the next file; the bound caps open handles.
const MAX_LARGE_SYNCING = 4;

/** Resolves once `source` has been read to its end, so the caller may read what follows it. */
function consumedSignal(source: AsyncIterable<Buffer>): { body: AsyncGenerator<Buffer>; consumed: Promise<void> } {
  let done!: () => void;
  const consumed = new Promise<void>((resolve) => (done = resolve));
  async function* body(): AsyncGenerator<Buffer> {
    yield* source;
    done();
  }
  return { body: body(), consumed };
}

// Small files whose frames have arrived wait in a batch until the stream holds no whole frame more (or
// this many): then the batch goes to the store while the network delivers the next ones.
const SMALL_BATCH = 256;

/**
 * Applies a change stream. Small files are read whole and committed in batches (database group
 * commits cover each). A large file is streamed to disk (hashed on the way); the next frame is read as
 * soon as its bytes are written, while its fsync and commit finish in the background. A file counts as
 * present only once its commit resolved, after its bytes were made durable. `onApplied` hears of each
 * change as it commits, also when the stream fails later.
 */
export async function applyChangeStream(
  store: Store,
  source: Readable,
  onBytes: (n: number) => void,
  onApplied: (c: AppliedChange) => void = () => undefined,
): Promise<AppliedChange[]> {
  const reader = new ByteReader(source);
  const pending: Array<Promise<AppliedChange[]>> = [];
  let syncing: Array<Promise<unknown>> = [];
  let smalls: Array<{ h: ChangeHeader; data: Buffer; sentPath: string }> = [];
  const track = (p: Promise<AppliedChange[]>) => {
    p.catch(() => undefined); // handled below; keeps an early failure from counting as unhandled
    pending.push(p);
  };
  const committed = (h: ChangeHeader, sentPath: string, result: RemoteResult): AppliedChange => {
    const c = { path: sentPath, version: h.version, result };
    onApplied(c);
    return c;
  };
  const commitSmalls = () => {
    if (smalls.length === 0) return;
    const batch = smalls;
    smalls = [];
    track(
      store.applyRemoteBatch(batch).then((results) => {
        const out: AppliedChange[] = [];
        let failure: Error | undefined;
        results.forEach((r, i) => {
          if (r instanceof Error) failure ??= r;
          else out.push(committed(batch[i]!.h, batch[i]!.sentPath, r));
        });
        if (failure) throw failure;
        return out;
      }),
    );
  };
  const waitFor = (n: number) => {
    commitSmalls();
    return reader.readExact(n);
  };
  try {
    for (;;) {
      const lenBuf = reader.readBuffered(4) ?? (await waitFor(4));
      if (!lenBuf) break;
      const len = lenBuf.readUInt32BE(0);
      if (len === 0 || len > MAX_HEADER_BYTES) throw new HttpError(400, 'bad_frame', 'a change header has a bad length');
      const { h, sentPath } = parseHeader(reader.readBuffered(len) ?? (await waitFor(len)) ?? Buffer.alloc(0));
      onBytes(h.size);
      if (h.size <= INLINE_MAX_BYTES) {
        const data = reader.readBuffered(h.size) ?? (await waitFor(h.size));
        if (!data) throw new HttpError(400, 'truncated_stream', 'the change stream ended before a file');
        smalls.push({ h, data, sentPath });
        if (smalls.length >= SMALL_BATCH) commitSmalls();
      } else {
        commitSmalls();
        const { body, consumed } = consumedSignal(reader.chunks(h.size));
        const applied = store.applyRemote(h, body).then((r) => [committed(h, sentPath, r)]);
        track(applied);
        // The reader may move on only when this file's bytes were all taken (or its apply failed).
        await Promise.race([consumed, applied]);
        syncing.push(applied);
        if (syncing.length >= MAX_LARGE_SYNCING) {
          await syncing[0];
          syncing = syncing.slice(1);
        }
      }
    }
  } finally {
    // Whole frames read before a failure still count; every started commit settles before the answer.
    commitSmalls();
    await Promise.allSettled(pending);
  }
  return (await Promise.all(pending)).flat();
}
