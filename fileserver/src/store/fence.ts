import { open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { HttpError } from '../errors.ts';
import { fsyncDir } from './fsutil.ts';

const MARKER = 'leaving';

/**
 * Whether this node still takes client writes. The operator fences a pod before it scales it away:
 * from then on a client write is refused, the writes already admitted finish storing, and a status
 * read taken after the fence shows every acknowledged write in the outbox, so "no backlog" means the
 * pod holds nothing the remaining pods lack. The fence is a marker file in the data directory, so a
 * restart of a leaving pod cannot start taking writes again.
 */
export class WriteFence {
  private readonly dataDir: string;
  private readonly marker: string;
  private fenced: boolean;
  private inFlight = 0;
  private idle: Array<() => void> = [];

  private constructor(dataDir: string, fenced: boolean) {
    this.dataDir = dataDir;
    this.marker = join(dataDir, MARKER);
    this.fenced = fenced;
  }

  static async open(dataDir: string): Promise<WriteFence> {
    let fenced = true;
    try {
      await (await open(join(dataDir, MARKER), 'r')).close();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      fenced = false;
    }
    return new WriteFence(dataDir, fenced);
  }

  get leaving(): boolean {
    return this.fenced;
  }

  /** Sets or lifts the fence durably; when set, resolves once every write admitted before it has stored. */
  async set(leaving: boolean): Promise<void> {
    if (leaving && !this.fenced) {
      await (await open(this.marker, 'w')).close();
      await fsyncDir(this.dataDir);
    } else if (!leaving && this.fenced) {
      await rm(this.marker, { force: true });
      await fsyncDir(this.dataDir);
    }
    this.fenced = leaving;
    if (leaving && this.inFlight > 0) await new Promise<void>((r) => this.idle.push(r));
  }

  /** Runs the storing part of a client write, or refuses it with 503 `leaving` once the fence is up. */
  async admit<T>(store: () => Promise<T>): Promise<T> {
    if (this.fenced) {
      throw new HttpError(503, 'leaving', 'this node is leaving the cluster and takes no more writes; retry through the cluster Service', undefined, [
        'Retry-After',
        '1',
      ]);
    }
    this.inFlight++;
    try {
      return await store();
    } finally {
      if (--this.inFlight === 0) for (const r of this.idle.splice(0)) r();
    }
  }
}
