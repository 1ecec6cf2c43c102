// The locally built images (scripts/build-images.sh, no base image) in a real Docker daemon: they run
// as the non-root user with a read-only root filesystem, hold only production packages, and the file
// server answers /healthz and stores a file on its data volume. Starts a private dockerd when none is
// reachable (host networking only: the daemon gets no bridge and touches no iptables).
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { chownSync, createWriteStream, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { waitFor } from '../../harness/index.ts';
import { REPO, freePort, loopbackNet, requireCommand, run, runOk } from './support.ts';

const DOCKER_HINT = 'apt-get install -y docker.io';
const UID = 65532;
const TAG = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;

let work: string;
let IP: string;
let port: number;
let metricsPort: number;
let dockerd: ChildProcess | undefined;
let env: NodeJS.ProcessEnv = process.env;
const containers: string[] = [];

const docker = (args: string[], timeoutMs = 120_000) => run(requireCommand('docker', DOCKER_HINT), args, { env, timeoutMs });
const dockerOk = (args: string[], timeoutMs = 120_000) => runOk(requireCommand('docker', DOCKER_HINT), args, { env, timeoutMs });

async function ensureDaemon(): Promise<void> {
  requireCommand('docker', DOCKER_HINT);
  if (docker(['info'], 20_000).code === 0) return;
  const binary = requireCommand('dockerd', DOCKER_HINT);
  const socket = join(work, 'docker.sock');
  dockerd = spawn(binary, [
    `--host=unix://${socket}`,
    `--data-root=${join(work, 'docker-data')}`,
    `--exec-root=${join(work, 'docker-exec')}`,
    `--pidfile=${join(work, 'docker.pid')}`,
    '--bridge=none',
    '--iptables=false',
    '--ip-masq=false',
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  const log = createWriteStream(join(work, 'dockerd.log'));
  dockerd.stdout!.pipe(log);
  dockerd.stderr!.pipe(log);
  env = { ...process.env, DOCKER_HOST: `unix://${socket}` };
  await waitFor(() => dockerd!.exitCode === null && docker(['info'], 10_000).code === 0, 60_000, 'the private dockerd', 500).catch((err: Error) => {
    throw new Error(`${err.message}\n${readFileSync(join(work, 'dockerd.log'), 'utf8').slice(-2000)}`);
  });
}

/** Uid and gid the container's main process runs with, read from the host's /proc. */
function processIds(container: string): string {
  const pid = dockerOk(['inspect', '--format', '{{.State.Pid}}', container]).trim();
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return `${/^Uid:\s+(\d+)/m.exec(status)![1]}:${/^Gid:\s+(\d+)/m.exec(status)![1]}`;
}

describe('locally built images', { timeout: 300_000 }, () => {
  const sizes: Record<string, number> = {};

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'fc-images-'));
    IP = `${loopbackNet()}.1`;
    port = await freePort(IP);
    metricsPort = await freePort(IP);
    await ensureDaemon();
    const out = runOk('bash', ['scripts/build-images.sh', '--save', join(work, 'archives')], { env, timeoutMs: 240_000 });
    for (const line of out.trim().split('\n')) {
      const [image, size] = line.split(' ');
      sizes[image!] = Number(size);
    }
  });

  after(async () => {
    for (const c of containers) docker(['rm', '--force', c]);
    if (dockerd) {
      const exited = new Promise((resolve) => dockerd!.once('exit', resolve));
      dockerd.kill('SIGTERM');
      await exited;
      // dockerd leaves its network-namespace mount behind; nothing else may hold the directory.
      const mounts = readFileSync('/proc/mounts', 'utf8').split('\n').map((l) => l.split(' ')[1] ?? '');
      for (const mount of mounts.filter((m) => m.startsWith(work + '/')).reverse()) run('umount', ['--lazy', mount]);
    }
    rmSync(work, { recursive: true, force: true });
  });

  it('builds both images, non-root, with entrypoint and no health check', (t) => {
    assert.deepEqual(Object.keys(sizes).sort(), [`filecluster/fileserver:${TAG}`, `filecluster/operator:${TAG}`]);
    for (const [image, size] of Object.entries(sizes)) {
      t.diagnostic(`${image}: ${(size / 1e6).toFixed(1)} MB`);
      const config = JSON.parse(dockerOk(['image', 'inspect', '--format', '{{json .Config}}', image]));
      assert.equal(config.User, `${UID}:${UID}`);
      assert.equal(config.WorkingDir, '/app');
      assert.equal(config.Entrypoint[0], '/usr/local/bin/node');
      assert.equal(config.Healthcheck ?? null, null);
    }
  });

  it('saves each image as a docker archive for the k3s provider', () => {
    for (const component of ['fileserver', 'operator']) {
      const manifest = runOk('tar', ['-xOf', join(work, 'archives', `${component}.tar`), 'manifest.json']);
      assert.deepEqual(JSON.parse(manifest)[0].RepoTags, [`filecluster/${component}:${TAG}`]);
    }
  });

  it('runs the file server as non-root on a read-only root filesystem; it answers /healthz and stores files', async () => {
    const data = join(work, 'data');
    mkdirSync(data);
    chownSync(data, UID, UID);
    const id = dockerOk([
      'run', '--detach', '--read-only', '--network=host', '--cap-drop=ALL', '--security-opt=no-new-privileges',
      '--tmpfs=/tmp', `--volume=${data}:/data`,
      '--env=FC_NODE_ID=image-test', `--env=FC_HOST=${IP}`, `--env=FC_PORT=${port}`, `--env=FC_METRICS_PORT=${metricsPort}`, '--env=FC_TOKEN=image-test-token',
      `filecluster/fileserver:${TAG}`,
    ]).trim();
    containers.push(id);
    const healthz = await waitFor(async () => {
      const res = await fetch(`http://${IP}:${port}/healthz`).catch(() => undefined);
      return res?.ok ? res.status : undefined;
    }, 60_000, 'the containerised file server /healthz').catch((err: Error) => {
      throw new Error(`${err.message}\n${docker(['logs', id]).stdout}${docker(['logs', id]).stderr}`);
    });
    assert.equal(healthz, 200);
    assert.equal(processIds(id), `${UID}:${UID}`);
    assert.equal(dockerOk(['inspect', '--format', '{{.HostConfig.ReadonlyRootfs}}', id]).trim(), 'true');

    const put = await fetch(`http://${IP}:${port}/files/hello.txt`, { method: 'PUT', body: 'hello from a container\n' });
    assert.ok(put.ok, `PUT answered ${put.status}: ${await put.text()}`);
    assert.equal(await (await fetch(`http://${IP}:${port}/files/hello.txt`)).text(), 'hello from a container\n');
    assert.match(await (await fetch(`http://${IP}:${metricsPort}/metrics`)).text(), /^filecluster_store_files 1$/m);
  });

  it('keeps the root filesystem unwritable even without --read-only: the app is root-owned', () => {
    const write = docker(['run', '--rm', '--network=none', '--entrypoint=/usr/local/bin/node', `filecluster/fileserver:${TAG}`,
      '-e', "require('node:fs').writeFileSync('/app/fileserver/src/main.ts', '')"]);
    assert.notEqual(write.code, 0);
    assert.match(write.stderr, /EACCES/);
  });

  it('ships only the production packages each component imports', () => {
    const listing = (image: string) =>
      docker(['run', '--rm', '--network=none', '--entrypoint=/usr/local/bin/node', image, '-e',
        "console.log(require('node:fs').readdirSync('/app/node_modules').join(' '))"]);
    const fileserver = listing(`filecluster/fileserver:${TAG}`);
    assert.equal(fileserver.code, 0, fileserver.stderr);
    for (const needed of ['koa', '@koa', 'pino', 'prom-client', 'zod']) assert.ok(fileserver.stdout.split(/\s+/).includes(needed), needed);
    for (const absent of ['@kubernetes', 'typescript', 'node', 'yaml', 'fast-check', 'testcontainers']) assert.ok(!fileserver.stdout.split(/\s+/).includes(absent), absent);
    // The operator's packages load: every import of operator/src resolves inside the image.
    const operator = docker(['run', '--rm', '--network=none', '--read-only', '--entrypoint=/usr/local/bin/node', `filecluster/operator:${TAG}`,
      '--input-type=module', '-e', "const m = await import('@kubernetes/client-node'); await import('./operator/src/app.ts'); console.log(typeof m.KubeConfig)"]);
    assert.equal(operator.code, 0, operator.stderr);
    assert.equal(operator.stdout.trim(), 'function');
  });
});
