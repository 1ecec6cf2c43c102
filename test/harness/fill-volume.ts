import { open } from 'node:fs/promises';

/** Writes `file` until its file system has not one byte left (down to single bytes); the bytes written. */
export async function fillVolume(file: string): Promise<number> {
  const fh = await open(file, 'w');
  let at = 0;
  try {
    for (const chunk of [1024 * 1024, 64 * 1024, 4096, 512, 1]) {
      const buf = Buffer.alloc(chunk, 0x5a);
      for (;;) {
        try {
          const { bytesWritten } = await fh.write(buf, 0, chunk, at);
          at += bytesWritten;
          if (bytesWritten < chunk) break;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
          break;
        }
      }
    }
  } finally {
    await fh.close();
  }
  return at;
}
