/**
 * Runs detached beside a harness: when the harness process is gone, kills every process group listed
 * in the registry file and removes the harness directory. Exits quietly once the directory is removed
 * by a normal teardown. Usage: node watchdog.ts <harness-pid> <registry-file> <dir>
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';

const [parentArg, registryFile, dir] = process.argv.slice(2);
const parentPid = Number(parentArg);
if (!parentPid || !registryFile || !dir) process.exit(2);

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const timer = setInterval(() => {
  if (!existsSync(dir)) process.exit(0);
  if (alive(parentPid)) return;
  clearInterval(timer);
  const groups = readFileSync(registryFile, 'utf8').split('\n').filter(Boolean).map(Number);
  for (const pgid of groups) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  setTimeout(() => {
    rmSync(dir, { recursive: true, force: true });
    process.exit(0);
  }, 500);
}, 1000);
