import { open, type FileHandle } from 'node:fs/promises';

/** Makes directory entries (creates, renames, unlinks) durable. */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Writes all of `chunks` in order with writev (no copy into a joined buffer), at `position` or, when it
 * is undefined, at the file position; a short write continues where it stopped.
 */
export async function writevAll(fh: FileHandle, chunks: Buffer[], position?: number): Promise<void> {
  let rest = chunks;
  let at = position;
  while (rest.length > 0) {
    let n = (await fh.writev(rest, at)).bytesWritten;
    if (at !== undefined) at += n;
    const left: Buffer[] = [];
    for (const c of rest) {
      if (n >= c.length) {
        n -= c.length;
        continue;
      }
      left.push(n > 0 ? c.subarray(n) : c);
      n = 0;
    }
    rest = left;
  }
}
