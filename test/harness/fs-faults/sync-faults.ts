// FAULT INJECTION: fsync and fdatasync that fail with EIO on chosen files of a process started with
// env(), through the preload library fs-faults.c (compiled here with the C compiler).
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

export class SyncFaults {
  private readonly dir: string;

  private constructor(dir: string) {
    this.dir = dir;
  }

  /** Compiles the preload library into a fresh directory that also holds its controls. */
  static async build(): Promise<SyncFaults> {
    const dir = await mkdtemp(join(tmpdir(), 'fc-sync-faults-'));
    await promisify(execFile)('cc', ['-shared', '-fPIC', '-O2', '-o', join(dir, 'fs-faults.so'), join(import.meta.dirname, 'fs-faults.c'), '-ldl']);
    return new SyncFaults(dir);
  }

  /** What a process needs in its environment for its syncs to be controlled from here. */
  env(): Record<string, string> {
    return { LD_PRELOAD: join(this.dir, 'fs-faults.so'), FC_FS_FAULTS: this.dir };
  }

  /** From now on, every sync of a file whose path contains `pathPart` fails with EIO. */
  async fail(pathPart: string): Promise<void> {
    await writeFile(join(this.dir, 'fsync'), pathPart);
  }

  /** Syncs succeed again. */
  async heal(): Promise<void> {
    await rm(join(this.dir, 'fsync'), { force: true });
  }

  /** The paths of the syncs made to fail so far, in order. */
  async failed(): Promise<string[]> {
    const text = await readFile(join(this.dir, 'fsync.hits'), 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return '';
      throw err;
    });
    return text.split('\n').filter(Boolean);
  }

  async close(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}
