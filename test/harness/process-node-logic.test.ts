/** The process node's pure decisions: image mapping, env resolution, path rewriting, pod status. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ContainerConfigError, containerEnv, expandVariables, rewriteMountPath } from './process-node/env.ts';
import { builtinImages, containerArgv, imageRepository, ImageNotMappedError } from './process-node/images.ts';
import { buildPodStatus, podPhase, restartDelayMs, restartsAfterExit, type ContainerView, type PodView } from './process-node/pod-status.ts';
import type { KubeObject } from './kube-rest.ts';
import { imageEnv } from '../../scripts/image-env.ts';

describe('images', () => {
  test('the repository ignores registry host, library prefix, tag and digest', () => {
    assert.equal(imageRepository('filecluster/fileserver:0.1.0'), 'filecluster/fileserver');
    assert.equal(imageRepository('docker.io/library/node:24@sha256:abc'), 'node');
    assert.equal(imageRepository('localhost:5000/filecluster/operator'), 'filecluster/operator');
  });

  test('own images run this repo code; generic Node images run their command with Node 24', () => {
    const table = builtinImages('/repo');
    assert.deepEqual(containerArgv('filecluster/fileserver:0.1.0', { args: ['--x'] }, table, '/bin/node24'), ['/bin/node24', '/repo/dist/fileserver/src/main.js', '--x']);
    assert.deepEqual(containerArgv('filecluster/operator:0.1.0', {}, table, '/bin/node24'), ['/bin/node24', '/repo/dist/operator/src/main.js']);
    assert.deepEqual(containerArgv('filecluster/node:24', { command: ['node', '-e', 'x'] }, table, '/bin/node24'), ['/bin/node24', '-e', 'x']);
    assert.deepEqual(containerArgv('node:24', { args: ['server.js'] }, table, '/bin/node24'), ['/bin/node24', 'server.js']);
    assert.deepEqual(containerArgv('filecluster/node:24', { command: ['sh', '-c', 'exit 0'] }, table, '/bin/node24'), ['sh', '-c', 'exit 0']);
  });

  test('own images carry the environment their Dockerfile sets', () => {
    const table = builtinImages('/repo');
    assert.deepEqual(table['filecluster/fileserver']!.env, imageEnv('fileserver'));
    assert.deepEqual(table['filecluster/operator']!.env, imageEnv('operator'));
    assert.match(table['filecluster/fileserver']!.env!['NODE_OPTIONS'] ?? '', /--max-semi-space-size=/);
  });

  test('an unknown image is refused with its name', () => {
    assert.throws(
      () => containerArgv('nginx:1', {}, builtinImages('/repo'), '/bin/node'),
      (err: Error) => err instanceof ImageNotMappedError && /nginx:1/.test(err.message),
    );
  });
});

describe('env', () => {
  const pod: KubeObject = {
    metadata: { name: 'fc-0', namespace: 'team', uid: 'u1', labels: { app: 'fc' } },
    spec: { nodeName: 'process-node-1', serviceAccountName: 'sa' },
    status: { podIP: '127.10.0.2', hostIP: '127.0.0.1' },
  };
  const data = {
    secrets: new Map([['s', { token: 't0k' }]]),
    configMaps: new Map<string, Record<string, string> | null>([
      ['c', { mode: 'fast' }],
      ['missing', null],
    ]),
  };
  const mounts = [
    { mountPath: '/data', hostPath: '/tmp/pv-1' },
    { mountPath: '/data/cache', hostPath: '/tmp/cache' },
  ];

  test('downward API, Secret, ConfigMap, $(VAR) and mount paths', () => {
    const env = containerEnv(
      pod,
      {
        envFrom: [{ configMapRef: { name: 'c' }, prefix: 'CM_' }],
        env: [
          { name: 'NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
          { name: 'IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
          { name: 'NODE', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
          { name: 'APP', valueFrom: { fieldRef: { fieldPath: "metadata.labels['app']" } } },
          { name: 'TOKEN', valueFrom: { secretKeyRef: { name: 's', key: 'token' } } },
          { name: 'URL', value: 'http://$(IP):8080/$$(IP)' },
          { name: 'DIR', value: '/data' },
          { name: 'FILE', value: '/data/cache/x' },
          { name: 'OTHER', value: '/database' },
          { name: 'OPT', valueFrom: { configMapKeyRef: { name: 'missing', key: 'k', optional: true } } },
        ],
      },
      data,
      mounts,
    );
    assert.deepEqual(env, {
      CM_mode: 'fast',
      NAME: 'fc-0',
      IP: '127.10.0.2',
      NODE: 'process-node-1',
      APP: 'fc',
      TOKEN: 't0k',
      URL: 'http://127.10.0.2:8080/$(IP)',
      DIR: '/tmp/pv-1',
      FILE: '/tmp/cache/x',
      OTHER: '/database',
    });
  });

  test('a missing required reference is a configuration error', () => {
    assert.throws(() => containerEnv(pod, { env: [{ name: 'X', valueFrom: { secretKeyRef: { name: 'nope', key: 'k' } } }] }, data, []), ContainerConfigError);
    assert.throws(() => containerEnv(pod, { env: [{ name: 'X', valueFrom: { secretKeyRef: { name: 's', key: 'other' } } }] }, data, []), ContainerConfigError);
  });

  test('rewriting and expansion leave unrelated values alone', () => {
    assert.equal(rewriteMountPath('/data2/x', mounts), '/data2/x');
    assert.equal(expandVariables('$(UNDEFINED)', {}), '$(UNDEFINED)');
  });
});

describe('pod status', () => {
  const container = (over: Partial<ContainerView> = {}): ContainerView => ({
    name: 'c',
    image: 'i',
    state: { running: { startedAt: '2026-01-01T00:00:00Z' } },
    ready: true,
    started: true,
    restartCount: 0,
    everStarted: true,
    finished: false,
    ...over,
  });
  const view = (over: Partial<PodView> = {}): PodView => ({
    podIP: '127.10.0.2',
    hostIP: '127.0.0.1',
    startTime: '2026-01-01T00:00:00Z',
    sandboxReady: true,
    initialized: true,
    initFailed: false,
    initContainers: [],
    containers: [container()],
    otherConditions: [{ type: 'PodScheduled', status: 'True' }],
    readinessGates: [],
    ...over,
  });
  const condition = (status: Record<string, unknown>, type: string) =>
    (status['conditions'] as { type: string; status: string; lastTransitionTime: string }[]).find((c) => c.type === type);

  test('phase follows the containers', () => {
    assert.equal(podPhase(view({ containers: [container({ everStarted: false })] })), 'Pending');
    assert.equal(podPhase(view()), 'Running');
    const done = (exitCode: number) => container({ finished: true, state: { terminated: { exitCode, reason: '', startedAt: '', finishedAt: '' } } });
    assert.equal(podPhase(view({ containers: [done(0)] })), 'Succeeded');
    assert.equal(podPhase(view({ containers: [done(0), done(1)] })), 'Failed');
    assert.equal(podPhase(view({ initFailed: true })), 'Failed');
  });

  test('Ready needs every container ready and every readiness gate True; transition times hold', () => {
    const ready = buildPodStatus(view(), [], 't1');
    assert.equal(condition(ready, 'Ready')?.status, 'True');
    assert.equal(condition(ready, 'PodScheduled')?.status, 'True');
    const again = buildPodStatus(view(), ready['conditions'] as never, 't2');
    assert.equal(condition(again, 'Ready')?.lastTransitionTime, 't1');
    const unready = buildPodStatus(view({ containers: [container(), container({ name: 'd', ready: false })] }), again['conditions'] as never, 't3');
    assert.equal(condition(unready, 'Ready')?.status, 'False');
    assert.equal(condition(unready, 'Ready')?.lastTransitionTime, 't3');
    const gated = buildPodStatus(view({ readinessGates: ['example.com/gate'] }), [], 't4');
    assert.equal(condition(gated, 'Ready')?.status, 'False');
    assert.equal(condition(gated, 'ContainersReady')?.status, 'True');
  });

  test('restart policy and crash-loop back-off', () => {
    assert.equal(restartsAfterExit('Always', 0), true);
    assert.equal(restartsAfterExit('OnFailure', 0), false);
    assert.equal(restartsAfterExit('OnFailure', 2), true);
    assert.equal(restartsAfterExit('Never', 2), false);
    assert.deepEqual(
      [1, 2, 3, 4, 20].map((n) => restartDelayMs(n, 10_000)),
      [0, 10_000, 20_000, 40_000, 300_000],
    );
  });
});
