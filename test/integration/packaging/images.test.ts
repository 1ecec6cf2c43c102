// The locally built images (scripts/build-images.sh, no base image) in a real Docker daemon: they run
// as the non-root user with a read-only root filesystem, hold only production packages, and the file
// server answers /healthz and stores a file on its data volume. Uses the Docker daemon that answers, or
// starts a private one (test/resilience/support/docker-daemon.ts); containers use the host network.
import assert from 'node:assert/strict';
import { chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { waitFor } from '../../harness/index.ts';
import { type DockerDaemon, ensureDockerDaemon } from '../../resilience/support/docker-daemon.ts';
import { freePort } from '../../harness/processes.ts';
import { REPO, loopbackNet, runOk } from './support.ts';

const UID = 65532;
const TAG = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;

let work: string;
let IP: string;
let port: number;
let metricsPort: number;
let daemon: DockerDaemon;
const containers: string[] = [];

const docker = (args: string[], timeoutMs = 120_000) => daemon.docker(args, timeoutMs);
function dockerOk(args: string[], timeoutMs = 120_000): string {
  const result = docker(args, timeoutMs);
  if (result.code !== 0) throw new Error(`docker ${args.join(' ')} exited ${result.code}: ${result.stderr}`);
  return result.stdout;
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
    daemon = await ensureDockerDaemon();
    const out = runOk('bash', ['scripts/build-images.sh', '--save', join(work, 'archives')], { env: daemon.env, timeoutMs: 240_000 });
    for (const line of out.trim().split('\n')) {
      const [image, size] = line.split(' ');
      sizes[image!] = Number(size);
    }
  });

  after(async () => {
    for (const c of containers) docker(['rm', '--force', c]);
    await daemon?.close();
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
    const fileserverEnv = JSON.parse(dockerOk(['image', 'inspect', '--format', '{{json .Config.Env}}', `filecluster/fileserver:${TAG}`])) as string[];
    assert.ok(fileserverEnv.includes('NODE_OPTIONS=--max-semi-space-size=4'), `the Dockerfile's V8 flags: ${fileserverEnv.join(' ')}`);
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
      'run',
      '--detach',
      '--read-only',
      '--network=host',
      '--cap-drop=ALL',
      '--security-opt=no-new-privileges',
      '--tmpfs=/tmp',
      `--volume=${data}:/data`,
      '--env=FC_NODE_ID=image-test',
      `--env=FC_HOST=${IP}`,
      `--env=FC_PORT=${port}`,
      `--env=FC_METRICS_PORT=${metricsPort}`,
      '--env=FC_TOKEN=image-test-token',
      `filecluster/fileserver:${TAG}`,
    ]).trim();
    containers.push(id);
    const healthz = await waitFor(
      async () => {
        const res = await fetch(`http://${IP}:${port}/healthz`).catch(() => undefined);
        return res?.ok ? res.status : undefined;
      },
      60_000,
      'the containerised file server /healthz',
    ).catch((err: Error) => {
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
    const write = docker([
      'run',
      '--rm',
      '--network=none',
      '--entrypoint=/usr/local/bin/node',
      `filecluster/fileserver:${TAG}`,
      '-e',
      "require('node:fs').writeFileSync('/app/dist/fileserver/src/main.js', '')",
    ]);
    assert.notEqual(write.code, 0);
    assert.match(write.stderr, /EACCES/);
  });

  it('ships only the production packages each component imports', () => {
    const listing = (image: string) =>
      docker([
        'run',
        '--rm',
        '--network=none',
        '--entrypoint=/usr/local/bin/node',
        image,
        '-e',
        "console.log(require('node:fs').readdirSync('/app/node_modules').join(' '))",
      ]);
    const fileserver = listing(`filecluster/fileserver:${TAG}`);
    assert.equal(fileserver.code, 0, fileserver.stderr);
    for (const needed of ['koa', '@koa', 'pino', 'prom-client', 'zod']) assert.ok(fileserver.stdout.split(/\s+/).includes(needed), needed);
    for (const absent of ['@kubernetes', 'typescript', 'node', 'yaml', 'fast-check', 'testcontainers'])
      assert.ok(!fileserver.stdout.split(/\s+/).includes(absent), absent);
    // The operator's packages load: every import of the compiled operator resolves inside the image.
    const operator = docker([
      'run',
      '--rm',
      '--network=none',
      '--read-only',
      '--entrypoint=/usr/local/bin/node',
      `filecluster/operator:${TAG}`,
      '--input-type=module',
      '-e',
      "const m = await import('@kubernetes/client-node'); await import('./dist/operator/src/app.js'); console.log(typeof m.KubeConfig)",
    ]);
    assert.equal(operator.code, 0, operator.stderr);
    assert.equal(operator.stdout.trim(), 'function');
  });
});
