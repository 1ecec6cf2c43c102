/**
 * Child processes of the harness: each runs in its own process group (so its children die with it),
 * writes to a log file, and is recorded in a registry file that a watchdog process reads to kill
 * everything if the harness itself dies without cleaning up (test crash, SIGKILL, timeout).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { sleep } from './wait.ts';

export interface SpawnOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** File receiving stdout and stderr (appended). */
  logFile: string;
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // already gone
  }
}

const liveSupervisors = new Set<ProcessSupervisor>();
let hooksInstalled = false;

function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', () => {
    for (const supervisor of liveSupervisors) supervisor.killAllNow();
  });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = () => {
      // A program with its own handler (e.g. scripts/local-cluster.ts) shuts down gracefully itself.
      if (process.listenerCount(signal) > 1) return;
      for (const supervisor of liveSupervisors) supervisor.killAllNow();
      process.exit(128 + (signal === 'SIGINT' ? 2 : signal === 'SIGTERM' ? 15 : 1));
    };
    process.on(signal, onSignal);
  }
}

export class ProcessSupervisor {
  readonly registryFile: string;
  private readonly groups = new Map<number, string>();
  private watchdog: ChildProcess | undefined;

  constructor(registryFile: string) {
    this.registryFile = registryFile;
    this.persist();
    liveSupervisors.add(this);
    installExitHooks();
  }

  /** Starts the process that kills every recorded group and removes `dir` if this process dies. */
  startWatchdog(dir: string): void {
    const script = fileURLToPath(new URL('./watchdog.ts', import.meta.url));
    this.watchdog = spawn(process.execPath, [script, String(process.pid), this.registryFile, dir], {
      detached: true,
      stdio: 'ignore',
    });
    this.watchdog.unref();
  }

  spawn(name: string, argv: string[], opts: SpawnOptions): ChildProcess {
    const [command, ...args] = argv;
    if (!command) throw new Error(`empty command for ${name}`);
    const fd = openSync(opts.logFile, 'a');
    try {
      const child = spawn(command, args, {
        cwd: opts.cwd,
        env: opts.env,
        detached: true,
        stdio: ['ignore', fd, fd],
      });
      if (child.pid !== undefined) {
        this.groups.set(child.pid, name);
        this.persist();
        child.once('exit', () => {
          // Its own children may outlive it; the group is forgotten only once it is empty.
          if (!groupAlive(child.pid!)) this.forget(child.pid!);
        });
      }
      child.unref();
      return child;
    } finally {
      closeSync(fd);
    }
  }

  /** SIGTERM to the process group, SIGKILL after `graceMs`; resolves when the group is empty. */
  async stop(pgid: number, graceMs: number): Promise<void> {
    signalGroup(pgid, 'SIGTERM');
    const deadline = Date.now() + graceMs;
    while (groupAlive(pgid) && Date.now() < deadline) await sleep(50);
    if (groupAlive(pgid)) signalGroup(pgid, 'SIGKILL');
    const killDeadline = Date.now() + 10_000;
    while (groupAlive(pgid) && Date.now() < killDeadline) await sleep(20);
    this.forget(pgid);
  }

  private forget(pgid: number): void {
    if (this.groups.delete(pgid)) this.persist();
  }

  /** Records the live groups only: a pid that ended may be reused by an unrelated process. */
  private persist(): void {
    const temporary = `${this.registryFile}.tmp`;
    try {
      writeFileSync(temporary, [...this.groups.keys()].map((pgid) => `${pgid}\n`).join(''));
      renameSync(temporary, this.registryFile);
    } catch (err) {
      // After teardown removed the directory there is nothing left to record.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }

  async stopAll(graceMs: number): Promise<void> {
    await Promise.all([...this.groups.keys()].map((pgid) => this.stop(pgid, graceMs)));
  }

  killAllNow(): void {
    for (const pgid of this.groups.keys()) signalGroup(pgid, 'SIGKILL');
  }

  /** Stops the watchdog and forgets this supervisor; call after stopAll. */
  dispose(): void {
    if (this.watchdog?.pid !== undefined) signalGroup(this.watchdog.pid, 'SIGKILL');
    liveSupervisors.delete(this);
  }
}

export function isGroupAlive(pgid: number): boolean {
  return groupAlive(pgid);
}

export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A port that was free on `host` a moment ago (the kernel picks it). */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** True when something accepts TCP connections on host:port. */
export function portOpen(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host });
    socket.setTimeout(1000);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(false));
  });
}

/** The last `lines` lines of a log file ('' if it does not exist). */
export async function tail(file: string, lines = 40): Promise<string> {
  let handle;
  try {
    handle = await open(file, 'r');
  } catch {
    return '';
  }
  try {
    const { size } = await handle.stat();
    const length = Math.min(size, 64 * 1024);
    const buffer = Buffer.alloc(length);
    await handle.read(buffer, 0, length, size - length);
    return buffer
      .toString('utf8')
      .split('\n')
      .slice(-lines - 1)
      .join('\n');
  } finally {
    await handle.close();
  }
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
}
