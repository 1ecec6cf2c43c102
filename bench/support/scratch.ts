// Where benchmarks keep their data, and how they delete it. On a journal-less ext4 (this project's
// machines), creating a file skips every inode of its block group deleted in the last 60 s (360 s while
// the inode table block is not yet written back), one buffer-cache lookup each: the kernel's
// recently_deleted(). After a run deleted tens of thousands of files, creates near them are tens of times
// slower for minutes, so the next run would measure the previous run's deletes. So: data lives under a parent
// marked as a top of hierarchy (chattr +T), where the allocator spreads each new directory to a fresh
// block group as it does at the root of a file system, like a new pod's volume; deletes happen only
// at the end of a run, followed by `sync`; and a run starts no sooner than 65 s after the last deletes.
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const PARENT = join(tmpdir(), 'filecluster-bench');
const DELETED_AT = join(PARENT, '.deleted-at');
const REUSE_AFTER_MS = 65_000;
let ready: Promise<void> | undefined;

async function prepare(): Promise<void> {
  await mkdir(PARENT, { recursive: true });
  try {
    execFileSync('chattr', ['+T', PARENT], { stdio: 'ignore' });
  } catch {
    // Not ext2/3/4, or chattr missing: other file systems place directories their own way.
  }
  const last = await stat(DELETED_AT).then(
    (s) => s.mtimeMs,
    () => 0,
  );
  const wait = last + REUSE_AFTER_MS - Date.now();
  if (wait > 0) {
    process.stderr.write(`waiting ${(wait / 1000).toFixed(0)} s until the file system reuses the inodes the last benchmark deleted\n`);
    await sleep(wait);
  }
}

/** A new, empty directory for benchmark data; give it to `removeScratch` at the end of the run. */
export async function scratchDir(label: string): Promise<string> {
  ready ??= prepare();
  await ready;
  return mkdtemp(join(PARENT, `${label}-`));
}

/** Deletes benchmark data at the end of a run, makes the deletes durable, and notes when. */
export async function removeScratch(dirs: string[]): Promise<void> {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  execFileSync('sync');
  await writeFile(DELETED_AT, '');
}
