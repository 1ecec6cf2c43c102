// A real multi-node kind cluster from the kind provider (scripts/kind/cluster.sh), built offline: every
// node registers and is Ready, the system pods run from the preloaded images (nothing is pulled), a pod
// resolves a Service name through CoreDNS, a pod on one worker reaches a pod on the other (the CNI's
// routes), and a PersistentVolumeClaim of the default StorageClass is bound and written (the local-path
// provisioner). The first run on a machine builds the node image, later ones reuse it.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { REPO_ROOT } from '../harness/assets.ts';
import { type Cluster, startCluster, waitFor } from '../harness/index.ts';

const run = promisify(execFile);
const BUSYBOX = 'docker.io/library/busybox:latest';

let cluster: Cluster;
let name = '';

async function kubectl(args: string[], input?: string): Promise<string> {
  const result = await cluster.kubectl(args, input === undefined ? {} : { input });
  if (result.code !== 0) throw new Error(`kubectl ${args.join(' ')} exited ${result.code}: ${result.stderr}`);
  return result.stdout;
}

/** A pod that runs `sh -c script` on the named node from the preloaded busybox image. */
function busyboxPod(pod: string, node: string, script: string, volume = false) {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: pod },
    spec: {
      // Through the scheduler (not nodeName), which is what binds a WaitForFirstConsumer claim.
      nodeSelector: { 'kubernetes.io/hostname': node },
      restartPolicy: 'Never',
      containers: [
        {
          name: 'main',
          image: BUSYBOX,
          imagePullPolicy: 'Never',
          command: ['sh', '-c', script],
          ...(volume ? { volumeMounts: [{ name: 'data', mountPath: '/data' }] } : {}),
        },
      ],
      ...(volume ? { volumes: [{ name: 'data', persistentVolumeClaim: { claimName: 'data' } }] } : {}),
    },
  };
}

async function apply(object: unknown): Promise<void> {
  await kubectl(['apply', '-f', '-'], JSON.stringify(object));
}

async function waitForPhase(pod: string, phase: string, timeoutMs = 120_000): Promise<void> {
  await waitFor(async () => (await kubectl(['get', 'pod', pod, '-o', 'jsonpath={.status.phase}'])) === phase, timeoutMs, `pod ${pod} ${phase}`, 1000);
}

describe('a kind cluster built offline (scripts/kind/cluster.sh)', { timeout: 3_600_000 }, () => {
  before(async () => {
    // Cold, this builds every binary and the node image: tens of minutes on a small machine.
    cluster = await startCluster({ provider: 'kind' });
    const nodes = (await kubectl(['get', 'nodes', '-o', 'jsonpath={.items[*].metadata.name}'])).split(' ').sort();
    name = nodes.find((n) => n.endsWith('-control-plane'))?.replace(/-control-plane$/, '') ?? '';
  });

  after(async () => {
    await cluster?.close();
  });

  it('has one control-plane and two worker nodes, all Ready, each a container of the private daemon', async () => {
    const nodes = JSON.parse(await kubectl(['get', 'nodes', '-o', 'json'])) as {
      items: Array<{ metadata: { name: string; labels: Record<string, string> }; status: { conditions: Array<{ type: string; status: string }> } }>;
    };
    const names = nodes.items.map((n) => n.metadata.name).sort();
    assert.deepEqual(names, [`${name}-control-plane`, `${name}-worker`, `${name}-worker2`]);
    for (const node of nodes.items) {
      assert.equal(node.status.conditions.find((c) => c.type === 'Ready')?.status, 'True', `${node.metadata.name} Ready`);
    }
    const controlPlanes = nodes.items.filter((n) => 'node-role.kubernetes.io/control-plane' in n.metadata.labels);
    assert.deepEqual(
      controlPlanes.map((n) => n.metadata.name),
      [`${name}-control-plane`],
    );
    const dockerHost = (await run('bash', [join(REPO_ROOT, 'scripts/kind/cluster.sh'), 'env'])).stdout.match(/^DOCKER_HOST=(.*)$/m)?.[1];
    const containers = await run('docker', ['ps', '--format', '{{.Names}}', '--filter', `label=io.x-k8s.kind.cluster=${name}`], {
      env: { ...process.env, DOCKER_HOST: dockerHost },
    });
    assert.deepEqual(containers.stdout.trim().split('\n').sort(), names);
  });

  it('runs every system pod from a preloaded image, pulling none', async () => {
    const pods = JSON.parse(await kubectl(['get', 'pods', '-A', '-o', 'json'])) as {
      items: Array<{ metadata: { name: string; namespace: string }; status: { phase: string } }>;
    };
    const notRunning = pods.items.filter((p) => p.status.phase !== 'Running').map((p) => `${p.metadata.namespace}/${p.metadata.name} ${p.status.phase}`);
    assert.deepEqual(notRunning, []);
    const names = pods.items.map((p) => p.metadata.name);
    for (const prefix of [
      'etcd-',
      'kube-apiserver-',
      'kube-controller-manager-',
      'kube-scheduler-',
      'coredns-',
      'kube-proxy-',
      'node-routes-',
      'local-path-provisioner-',
    ]) {
      assert.ok(
        names.some((n) => n.startsWith(prefix)),
        `a ${prefix}* pod runs: ${names.join(' ')}`,
      );
    }
    const events = await kubectl(['get', 'events', '-A', '--field-selector', 'reason=Pulling', '-o', 'name']);
    assert.equal(events.trim(), '', 'no image was pulled');
  });

  it('resolves a Service name from a pod through CoreDNS', async () => {
    await apply(busyboxPod('dns-probe', `${name}-worker`, 'nslookup kubernetes.default.svc.cluster.local'));
    await waitForPhase('dns-probe', 'Succeeded');
    const log = await kubectl(['logs', 'dns-probe']);
    const serviceIp = (await kubectl(['get', 'service', 'kubernetes', '-o', 'jsonpath={.spec.clusterIP}'])).trim();
    assert.match(log, new RegExp(`Address: ${serviceIp.replaceAll('.', '\\.')}`), log);
  });

  it('carries a request from a pod on one worker to a pod on the other', async () => {
    await apply(busyboxPod('web', `${name}-worker2`, 'echo served-by-worker2 > /tmp/index.html && httpd -f -p 8080 -h /tmp'));
    await waitForPhase('web', 'Running');
    const webIp = (await kubectl(['get', 'pod', 'web', '-o', 'jsonpath={.status.podIP}'])).trim();
    await apply(busyboxPod('client', `${name}-worker`, `for i in $(seq 30); do wget -q -O - http://${webIp}:8080/index.html && exit 0; sleep 1; done; exit 1`));
    await waitForPhase('client', 'Succeeded');
    assert.equal((await kubectl(['logs', 'client'])).trim(), 'served-by-worker2');
  });

  it('binds a claim of the default StorageClass and keeps what a pod wrote to it', async () => {
    await apply({
      apiVersion: 'v1',
      kind: 'PersistentVolumeClaim',
      metadata: { name: 'data' },
      spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '10Mi' } } },
    });
    await apply(busyboxPod('writer', `${name}-worker`, 'echo kept > /data/file && cat /data/file', true));
    await waitForPhase('writer', 'Succeeded', 180_000);
    assert.equal((await kubectl(['logs', 'writer'])).trim(), 'kept');
    assert.equal((await kubectl(['get', 'pvc', 'data', '-o', 'jsonpath={.status.phase}'])).trim(), 'Bound');
  });
});
