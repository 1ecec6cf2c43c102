// Where benchmarks keep their data. On a journal-less ext4 (this project's machines), creating a file
// skips every inode of its block group deleted in the last one to six minutes, one buffer-cache lookup
// each (the kernel's recently_deleted()): after a run deleted tens of thousands of files, creates in
// the same groups took 850 µs instead of 25 µs for minutes. A new directory lands next to its parent's
// block group, so a benchmark in a plain temp dir measured the previous run's deletes. Under a parent
// marked as a top of hierarchy (chattr +T) the allocator spreads each new directory to a fresh group,
// as it does for directories at the root of a file system, like a new pod's volume.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

let parent: string | undefined;

/** A new, empty directory for one benchmark phase's data; the caller deletes it. */
export function scratchDir(label: string): string {
  if (!parent) {
    parent = join(tmpdir(), 'filecluster-bench');
    mkdirSync(parent, { recursive: true });
    try {
      execFileSync('chattr', ['+T', parent], { stdio: 'ignore' });
    } catch {
      // Not ext2/3/4, or chattr missing: other file systems place directories their own way.
    }
  }
  return mkdtempSync(join(parent, `${label}-`));
}
