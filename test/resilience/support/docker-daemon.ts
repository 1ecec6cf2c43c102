// A Docker daemon for container tests: the one DOCKER_HOST (or the default socket) points at when it
// answers, otherwise a private dockerd started here with its own socket, data root and exec root in a
// temp directory, removed again by close(). No image is ever pulled: tests run images built locally by
// scripts/build-images.sh, which buildLocalImages() runs against the same daemon.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join, resolve } from 'node:path';
import { waitFor } from '../../harness/index.ts';
import { ProcessSupervisor, removeDir, tail } from '../../harness/processes.ts';

const REPO = resolve(import.meta.dirname, '../../..');
const INSTALL_HINT = 'apt-get install -y docker.io';

export interface DockerDaemon {
  /** Environment for `docker` and scripts/build-images.sh (DOCKER_HOST set when the daemon is private). */
  env: NodeJS.ProcessEnv;
  /** Runs the docker CLI against this daemon. */
  docker(args: string[], timeoutMs?: number): { code: number; stdout: string; stderr: string };
  /** Stops the daemon if this process started it. */
  close(): Promise<void>;
}

function command(name: string): string {
  for (const dir of [...(process.env['PATH'] ?? '').split(delimiter), '/usr/sbin', '/usr/bin', '/sbin']) {
    if (dir && existsSync(join(dir, name))) return join(dir, name);
  }
  throw new Error(`${name} not found; install it with: ${INSTALL_HINT}`);
}

function runDocker(env: NodeJS.ProcessEnv, args: string[], timeoutMs = 120_000) {
  const r = spawnSync(command('docker'), args, { env, encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 });
  if (r.error) throw r.error;
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/**
 * Returns a reachable daemon, starting a private one when none answers. Also sets process.env.DOCKER_HOST
 * for the private daemon, so that testcontainers (which reads it on first use) talks to the same one.
 * The private daemon runs in its own process group under the harness supervisor, whose watchdog kills
 * it and removes its directory if this process dies without calling close().
 *
 * It has no default bridge and publishes ports on 127.0.0.1 by default. It manages iptables (the
 * default): on hosts where br_netfilter sends bridged frames through a FORWARD chain with policy DROP,
 * containers on a user-defined network reach each other only through the accept rules the daemon adds
 * for that network, and it removes them with the network.
 */
export async function ensureDockerDaemon(): Promise<DockerDaemon> {
  command('docker');
  if (runDocker(process.env, ['info'], 20_000).code === 0) {
    return { env: process.env, docker: (a, t) => runDocker(process.env, a, t), close: async () => undefined };
  }
  const work = mkdtempSync(join(tmpdir(), 'fc-dockerd-'));
  const logFile = join(work, 'dockerd.log');
  const socket = join(work, 'docker.sock');
  const supervisor = new ProcessSupervisor(join(work, 'processes'));
  supervisor.startWatchdog(work);
  const dockerd = supervisor.spawn(
    'dockerd',
    [
      command('dockerd'),
      `--host=unix://${socket}`,
      `--data-root=${join(work, 'data')}`,
      `--exec-root=${join(work, 'exec')}`,
      `--pidfile=${join(work, 'docker.pid')}`,
      '--bridge=none',
      '--ip=127.0.0.1',
    ],
    { logFile },
  );
  const env = { ...process.env, DOCKER_HOST: `unix://${socket}` };
  process.env['DOCKER_HOST'] = env.DOCKER_HOST;

  const close = async () => {
    await supervisor.stop(dockerd.pid!, 30_000);
    supervisor.dispose();
    // dockerd can leave mounts (network namespaces, overlay layers) under its roots.
    const mounts = readFileSync('/proc/mounts', 'utf8')
      .split('\n')
      .map((l) => l.split(' ')[1] ?? '');
    for (const m of mounts.filter((m) => m.startsWith(`${work}/`)).reverse()) spawnSync('umount', ['--lazy', m]);
    removeDir(work);
  };
  try {
    await waitFor(() => dockerd.exitCode === null && runDocker(env, ['info'], 10_000).code === 0, 60_000, 'the private dockerd', 300);
  } catch (err) {
    const log = await tail(logFile);
    await close();
    throw new Error(`${(err as Error).message}\n${log}`);
  }
  return { env, docker: (a, t) => runDocker(env, a, t), close };
}

/** Builds the named images from the working tree (a few seconds) and returns their names. */
export function buildLocalImages(daemon: DockerDaemon, components: Array<'fileserver' | 'operator'>): string[] {
  const r = spawnSync('bash', ['scripts/build-images.sh', ...components], { cwd: REPO, env: daemon.env, encoding: 'utf8', timeout: 300_000 });
  if (r.status !== 0) throw new Error(`scripts/build-images.sh failed (${r.status}): ${r.stderr}${r.stdout}`);
  return r.stdout
    .trim()
    .split('\n')
    .map((l) => l.split(' ')[0]!);
}
