/**
 * Provider selection, the `existing` provider against a cluster run by scripts/local-cluster.ts, and
 * cleanup by the watchdog when the process that started a local cluster is killed outright.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { REPO_ROOT } from './assets.ts';
import { providerFromEnv, startCluster, waitFor } from './index.ts';
import { isGroupAlive } from './processes.ts';

describe('provider selection', () => {
  test('FC_TEST_PROVIDER picks the provider, local by default, and refuses unknown names', () => {
    assert.equal(providerFromEnv({}), 'local');
    assert.equal(providerFromEnv({ FC_TEST_PROVIDER: 'existing' }), 'existing');
    assert.equal(providerFromEnv({ FC_TEST_PROVIDER: 'k3s' }), 'k3s');
    assert.equal(providerFromEnv({ FC_TEST_PROVIDER: 'kind' }), 'kind');
    assert.throws(() => providerFromEnv({ FC_TEST_PROVIDER: 'k3d' }), /must be one of local, existing, k3s, kind/);
  });

  test('the existing provider needs a kubeconfig that exists', async () => {
    await assert.rejects(startCluster({ provider: 'existing', kubeconfig: '/nonexistent/kubeconfig' }), /does not exist/);
  });
});

describe('a cluster from scripts/local-cluster.ts', { timeout: 180_000 }, () => {
  const work = mkdtempSync(path.join(os.tmpdir(), 'fc-harness-test-'));
  const kubeconfig = path.join(work, 'kubeconfig');
  const child = spawn(process.execPath, [path.join(REPO_ROOT, 'scripts/local-cluster.ts'), '--quiet', '--kubeconfig', kubeconfig], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  after(() => {
    child.kill('SIGKILL');
    rmSync(work, { recursive: true, force: true });
  });

  test('serves the existing provider, which leaves the cluster running on close', async () => {
    await waitFor(() => existsSync(kubeconfig) || child.exitCode !== null, 120_000, 'the local cluster kubeconfig');
    assert.equal(child.exitCode, null, output);
    const cluster = await startCluster({ provider: 'existing', kubeconfig });
    assert.equal(cluster.provider, 'existing');
    assert.equal(cluster.local, undefined);
    const ns = await cluster.createNamespace('existing');
    await cluster.apply(
      {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'sleeper' },
        spec: {
          containers: [
            {
              name: 'main',
              image: 'filecluster/node:24',
              command: ['node', '-e', "require('node:http').createServer((q, s) => s.end('pong')).listen(8080, process.env.POD_IP)"],
              env: [{ name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } }],
            },
          ],
        },
      },
      ns,
    );
    await waitFor(
      async () => (await cluster.kubectl(['get', 'pod', 'sleeper', '-n', ns, '-o', 'jsonpath={.status.phase}'])).stdout === 'Running',
      60_000,
      'the pod to run',
    );
    const connection = await waitFor(() => cluster.reachPod(ns, 'sleeper', 8080), 30_000, 'the pod to answer');
    assert.equal(await (await fetch(connection.url)).text(), 'pong');
    await connection.close();
    await cluster.close();
    const nodes = await cluster.kubectl(['get', 'nodes', '-o', 'name']);
    assert.equal(nodes.code, 0, nodes.stderr);
    assert.match(nodes.stdout, /node\/process-node-1/);
  });

  test('killing its process with SIGKILL still removes every process and the directory', async () => {
    const dir = /files: (\S+)\)/.exec(output)?.[1];
    assert.ok(dir, output);
    const groups = readFileSync(path.join(dir, 'process-groups'), 'utf8').split('\n').filter(Boolean).map(Number);
    // etcd, apiserver, controller manager, scheduler and the pod
    assert.ok(groups.length >= 5, `recorded process groups: ${groups.join(', ')}`);
    assert.ok(groups.every(isGroupAlive));
    child.kill('SIGKILL');
    await waitFor(() => groups.every((g) => !isGroupAlive(g)) && !existsSync(dir), 30_000, 'the watchdog to clean up');
  });
});
