import type { FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';

// Streaming large files without per-chunk garbage. fs read streams allocate a buffer per read, and the
// dead buffers wait for V8's major GC, so memory grows with every large file sent. Here a file
// is read into one buffer that is reused for every chunk, and the writer hands a chunk over only once the
// previous one is written out; the wait is also the back-pressure.

const CHUNK_BYTES = 256 * 1024;

/**
 * `length` bytes of a file from `start`, as chunks of one reused buffer: the consumer must be done with a
 * chunk (written out, not just queued) before asking for the next. Every chunk but the last fills the
 * buffer. Closes the file when done.
 */
export async function* fileChunks(fh: FileHandle, start: number, length: number): AsyncGenerator<Buffer> {
  const buf = Buffer.allocUnsafe(Math.min(CHUNK_BYTES, Math.max(1, length)));
  try {
    let done = 0;
    while (done < length) {
      const want = Math.min(buf.length, length - done);
      let filled = 0;
      while (filled < want) {
        const { bytesRead } = await fh.read(buf, filled, want - filled, start + done + filled);
        if (bytesRead === 0) throw new Error(`the file ended ${length - done - filled} bytes early`);
        filled += bytesRead;
      }
      done += filled;
      yield buf.subarray(0, filled);
    }
  } finally {
    await fh.close();
  }
}

/** An HTTP request or response body being written. */
export interface ChunkSink {
  write(chunk: Buffer, cb: (err?: Error | null) => void): boolean;
  once(event: 'close', listener: () => void): unknown;
  off(event: 'close', listener: () => void): unknown;
}

/**
 * Writes each chunk and waits until it is written out before taking the next (what fileChunks needs).
 * A sink that closes first (the other side went away) ends it with an error: a write to a destroyed
 * socket never calls back.
 */
export async function writeChunks(out: ChunkSink, source: AsyncIterable<Buffer>): Promise<void> {
  let onClose = () => {};
  const closed = new Promise<never>((_, reject) => {
    onClose = () => reject(new Error('the connection closed before the body was written'));
    out.once('close', onClose);
  });
  closed.catch(() => undefined);
  try {
    for await (const chunk of source) {
      await Promise.race([new Promise<void>((resolve, reject) => out.write(chunk, (err) => (err ? reject(err) : resolve()))), closed]);
    }
  } finally {
    out.off('close', onClose);
  }
}

const joined = (chunks: Buffer[], n: number): Buffer => (chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, n));

/**
 * A small body as one buffer, at most `limit` bytes (`tooLong` is thrown past that). A readable stream
 * (a request) is read through its events: `for await` builds an async iterator, promises and an
 * end-of-stream watcher per body, which for a 4 KiB write allocated more than storing it. A stream that
 * closes before its end (client gone) fails with ECONNRESET; one that runs over is destroyed, as leaving
 * a `for await` early would.
 */
export function collectSmall(body: AsyncIterable<Buffer> | Iterable<Buffer>, limit: number, tooLong: () => Error): Promise<Buffer> {
  if (!(body instanceof Readable)) return collectIterable(body, limit, tooLong);
  const stream = body;
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let n = 0;
    const done = (err: Error | undefined) => {
      stream.off('data', onData).off('end', onEnd).off('error', done).off('close', onClose);
      if (err) reject(err);
      else resolve(joined(chunks, n));
    };
    const onData = (c: Buffer) => {
      n += c.length;
      if (n <= limit) return void chunks.push(c);
      const err = tooLong();
      stream.destroy();
      done(err);
    };
    const onEnd = () => done(undefined);
    const onClose = () => done(Object.assign(new Error('aborted'), { code: 'ECONNRESET' }));
    stream.on('data', onData).on('end', onEnd).on('error', done).on('close', onClose);
  });
}

async function collectIterable(body: AsyncIterable<Buffer> | Iterable<Buffer>, limit: number, tooLong: () => Error): Promise<Buffer> {
  // Bytes already in memory (a replicated frame) need no iterator: `for await` over them allocated an
  // iterator and a promise per chunk, for every file of a catch-up.
  if (Array.isArray(body)) {
    const n = (body as Buffer[]).reduce((sum, c) => sum + c.length, 0);
    if (n > limit) throw tooLong();
    return joined(body as Buffer[], n);
  }
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const chunk of body) {
    n += chunk.length;
    if (n > limit) throw tooLong();
    chunks.push(chunk);
  }
  return joined(chunks, n);
}
