import { open, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { errnoCode, isDiskFull } from '../errors.ts';

export const RESERVE_FILE = 'reserve';
const CHUNK = 1024 * 1024;

/**
 * Space held back on the data volume so that deletes and tombstones still commit when writes have
 * filled it: a file of zeros (real blocks, written and fsync'd) that is unlinked when such a commit hits
 * ENOSPC, and written again once there is room.
 */
export class Reserve {
  private readonly file: string;
  private readonly bytes: number;
  held = false;

  constructor(dataDir: string, bytes: number) {
    this.file = join(dataDir, RESERVE_FILE);
    this.bytes = bytes;
  }

  /** Makes sure the reserve exists at full size; false if the volume has no room for it now. */
  async fill(): Promise<boolean> {
    if (this.held || this.bytes === 0) return this.held;
    const existing = await stat(this.file).catch((err: unknown) => {
      if (errnoCode(err) === 'ENOENT') return undefined;
      throw err;
    });
    if (existing && existing.blocks * 512 >= this.bytes) {
      this.held = true;
      return true;
    }
    const fh = await open(this.file, 'w');
    try {
      const zeros = Buffer.alloc(Math.min(CHUNK, this.bytes));
      for (let done = 0; done < this.bytes; done += zeros.length) await fh.write(zeros, 0, Math.min(zeros.length, this.bytes - done), done);
      await fh.datasync();
      this.held = true;
    } catch (err) {
      if (!isDiskFull(err)) throw err;
    } finally {
      await fh.close();
    }
    if (!this.held) await this.release();
    return this.held;
  }

  /** Gives the reserved space back to the volume. */
  async release(): Promise<void> {
    this.held = false;
    await unlink(this.file).catch((err: unknown) => {
      if (errnoCode(err) !== 'ENOENT') throw err;
    });
  }
}
