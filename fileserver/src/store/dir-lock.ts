import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { sqliteCode } from './db.ts';
import { StoreOpenError } from './errors.ts';

const SQLITE_BUSY = 5;
export const LOCK_FILE = 'lock';

/**
 * An exclusive lock on a data directory for as long as this process holds it. Node has no flock; an
 * SQLite database in exclusive locking mode that has written once keeps a POSIX write lock on its file
 * until the connection closes, and the kernel drops it when the process dies (kill -9 included).
 */
export class DirLock {
  private readonly db: DatabaseSync;

  private constructor(db: DatabaseSync) {
    this.db = db;
  }

  static acquire(dataDir: string): DirLock {
    const file = join(dataDir, LOCK_FILE);
    const db = new DatabaseSync(file);
    try {
      db.exec('PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE; CREATE TABLE IF NOT EXISTS holder (pid INTEGER); COMMIT');
    } catch (err) {
      db.close();
      if (sqliteCode(err) === SQLITE_BUSY) {
        throw new StoreOpenError(
          file,
          `the data directory ${dataDir} is in use by another process (its lock is held); two processes on one directory would overwrite each other's files`,
          { cause: err },
        );
      }
      throw new StoreOpenError(file, `cannot take the data directory lock: ${(err as Error).message}`, { cause: err });
    }
    return new DirLock(db);
  }

  release(): void {
    this.db.close();
  }
}
