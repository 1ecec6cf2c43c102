/**
 * Pod IPs on loopback: each cluster claims one 127.N.0.0/16 block (a lock file per N, so clusters
 * running at the same time on this machine never share an address) and hands out 127.N.x.y per pod.
 */
import { mkdirSync, openSync, closeSync, readFileSync, rmSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isProcessAlive } from '../processes.ts';

const LOCK_DIR = path.join(os.tmpdir(), 'filecluster-pod-networks');
// 127.0.x and the low blocks are left to tests that pick loopback addresses themselves.
const FIRST_BLOCK = 10;
const LAST_BLOCK = 250;

export class PodNetwork {
  readonly block: number;
  private readonly lockFile: string;
  private next = 2;
  private readonly assigned = new Map<string, string>();

  private constructor(block: number, lockFile: string) {
    this.block = block;
    this.lockFile = lockFile;
  }

  static claim(): PodNetwork {
    mkdirSync(LOCK_DIR, { recursive: true });
    for (let block = FIRST_BLOCK; block <= LAST_BLOCK; block++) {
      const lockFile = path.join(LOCK_DIR, `${block}.lock`);
      for (let attempt = 0; attempt < 2; attempt++) {
        try {
          const fd = openSync(lockFile, 'wx');
          writeSync(fd, String(process.pid));
          closeSync(fd);
          return new PodNetwork(block, lockFile);
        } catch {
          let owner = 0;
          try {
            owner = Number(readFileSync(lockFile, 'utf8'));
          } catch {
            // removed meanwhile: try again
          }
          if (owner && isProcessAlive(owner)) break;
          rmSync(lockFile, { force: true });
        }
      }
    }
    throw new Error(`no free pod network block in 127.${FIRST_BLOCK}-${LAST_BLOCK}.0.0/16`);
  }

  /** The pod's address; the same uid keeps its address. Addresses are not reused within a cluster. */
  assign(uid: string): string {
    let ip = this.assigned.get(uid);
    if (!ip) {
      if (this.next > 0xfffe) throw new Error('pod network exhausted');
      ip = `127.${this.block}.${this.next >> 8}.${this.next & 0xff}`;
      this.next++;
      if ((this.next & 0xff) === 0xff) this.next += 3; // skip .255 and .0/.1
      this.assigned.set(uid, ip);
    }
    return ip;
  }

  release(uid: string): void {
    this.assigned.delete(uid);
  }

  dispose(): void {
    rmSync(this.lockFile, { force: true });
  }
}
