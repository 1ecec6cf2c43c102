/**
 * The harness's own tests, through the local provider: a real control plane and a process node
 * running a tiny Node HTTP server as pods. One cluster serves every test of this file.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { startCluster, waitFor, type Cluster } from './index.ts';
import { isProcessAlive, portOpen } from './processes.ts';

// A pod's program: answers who it is, reports and toggles its probes, keeps a value on its volume.
const SERVER = `
const http = require('node:http');
const fs = require('node:fs');
let ready = process.env.START_READY !== 'false';
let healthy = true;
let readinessChecks = 0;
http.createServer((req, res) => {
  const path = req.url.split('?')[0];
  if (path === '/ready') { readinessChecks++; res.statusCode = ready ? 200 : 503; return res.end(); }
  if (path === '/healthz') { res.statusCode = healthy ? 200 : 500; return res.end(); }
  if (path === '/readiness-checks') return res.end(String(readinessChecks));
  if (path === '/set-ready') { ready = true; return res.end('ok'); }
  if (path === '/sick') { healthy = false; return res.end('ok'); }
  if (path === '/crash') { res.end('bye'); setTimeout(() => process.exit(3), 20); return; }
  if (path === '/data' && req.method === 'PUT') {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => { fs.writeFileSync(process.env.DATA_DIR + '/value', body); res.end('stored'); });
    return;
  }
  if (path === '/data') {
    try { return res.end(fs.readFileSync(process.env.DATA_DIR + '/value')); } catch { res.statusCode = 404; return res.end(); }
  }
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ pod: process.env.POD_NAME, ip: process.env.POD_IP, dataDir: process.env.DATA_DIR }));
}).listen(8080, process.env.POD_IP);
process.on('SIGTERM', () => process.exit(0));
`;

// An image with its own environment, as a Dockerfile's ENV gives one.
const ENV_PRINTER = {
  command: ['node', '-e', 'console.log(JSON.stringify({ fromImage: process.env.FROM_IMAGE, overridden: process.env.OVERRIDDEN }))'],
  env: { FROM_IMAGE: 'image', OVERRIDDEN: 'image' },
};

const downwardEnv = [
  { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
  { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
];

function serverContainer(extra: Record<string, unknown> = {}) {
  return {
    name: 'web',
    image: 'filecluster/node:24',
    command: ['node', '-e', SERVER],
    env: downwardEnv,
    ports: [{ name: 'http', containerPort: 8080 }],
    ...extra,
  };
}

type Pod = {
  metadata: { name: string; uid: string; deletionTimestamp?: string };
  status: {
    phase: string;
    podIP?: string;
    conditions?: { type: string; status: string }[];
    containerStatuses?: { restartCount: number; ready: boolean; state: Record<string, any>; lastState: Record<string, any> }[];
  };
};

async function http(ip: string, path: string, method = 'GET', body?: string): Promise<{ status: number; text: string }> {
  const res = await fetch(`http://${ip}:8080${path}`, { method, ...(body !== undefined ? { body } : {}), signal: AbortSignal.timeout(3000) });
  return { status: res.status, text: await res.text() };
}

function isReady(pod: Pod): boolean {
  return pod.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

describe('local provider', { timeout: 240_000 }, () => {
  let cluster: Cluster;
  let ns: string;
  const getJson = async <T>(args: string[]): Promise<T> => {
    const result = await cluster.kubectl([...args, '-n', ns, '-o', 'json']);
    if (result.code !== 0) throw new Error(result.stderr);
    return JSON.parse(result.stdout) as T;
  };
  const pods = async (selector: string) => (await getJson<{ items: Pod[] }>(['get', 'pods', '-l', selector])).items;
  const pod = (name: string) => getJson<Pod>(['get', 'pod', name]);
  /** The JSON line a one-shot pod (container `main`) printed, once it succeeded. */
  const printedJson = async (name: string): Promise<unknown> => {
    const done = await waitFor(
      async () => {
        const p = await pod(name);
        return ['Succeeded', 'Failed'].includes(p.status.phase) ? p : undefined;
      },
      60_000,
      `${name} pod to finish`,
    );
    const output = await cluster.logs(ns, name, 'main');
    assert.equal(done.status.phase, 'Succeeded', output);
    return JSON.parse(output.split('\n').find((l) => l.startsWith('{')) ?? '{}');
  };
  /** Runs a test body; on failure adds the cluster's diagnostics to the error output. */
  const withDiagnostics = (body: () => Promise<void>) => async () => {
    try {
      await body();
    } catch (err) {
      process.stderr.write(`${await cluster.diagnostics().catch(() => '')}\n`);
      throw err;
    }
  };

  before(async () => {
    cluster = await startCluster({ provider: 'local', images: { 'test/env-printer': ENV_PRINTER } });
    ns = await cluster.createNamespace('harness');
  });
  after(() => cluster?.close());

  test(
    'a StatefulSet of 3 becomes Ready with 3 distinct pod IPs that answer',
    withDiagnostics(async () => {
      await cluster.apply(
        {
          apiVersion: 'apps/v1',
          kind: 'StatefulSet',
          metadata: { name: 'web' },
          spec: {
            replicas: 3,
            serviceName: 'web',
            selector: { matchLabels: { app: 'web' } },
            template: {
              metadata: { labels: { app: 'web' } },
              spec: {
                terminationGracePeriodSeconds: 10,
                containers: [
                  serverContainer({
                    env: [...downwardEnv, { name: 'DATA_DIR', value: '/data' }],
                    volumeMounts: [{ name: 'data', mountPath: '/data' }],
                    readinessProbe: { httpGet: { path: '/ready', port: 'http' }, periodSeconds: 1 },
                  }),
                ],
              },
            },
            volumeClaimTemplates: [{ metadata: { name: 'data' }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } } }],
          },
        },
        ns,
      );
      const ready = await waitFor(
        async () => {
          const list = await pods('app=web');
          return list.length === 3 && list.every(isReady) && list;
        },
        120_000,
        '3 ready web pods',
      );
      const ips = ready.map((p) => p.status.podIP!);
      assert.equal(new Set(ips).size, 3, `distinct pod IPs: ${ips.join(', ')}`);
      for (const p of ready) {
        const answer = JSON.parse((await http(p.status.podIP!, '/')).text) as { pod: string; ip: string; dataDir: string };
        assert.equal(answer.pod, p.metadata.name);
        assert.equal(answer.ip, p.status.podIP);
        assert.notEqual(answer.dataDir, '/data', 'the volume mount path is rewritten to a host directory');
      }
      const connection = await cluster.reachPod(ns, 'web-1', 8080);
      assert.equal(connection.url, `http://${ready.find((p) => p.metadata.name === 'web-1')?.status.podIP}:8080`);
      assert.equal((JSON.parse(await (await fetch(connection.url)).text()) as { pod: string }).pod, 'web-1');
      await connection.close();
      const sts = await getJson<{ status: { readyReplicas: number } }>(['get', 'statefulset', 'web']);
      assert.equal(sts.status.readyReplicas, 3);
    }),
  );

  test(
    'a deleted pod comes back with the data its PVC held',
    withDiagnostics(async () => {
      const before = await pod('web-0');
      assert.equal((await http(before.status.podIP!, '/data', 'PUT', 'kept across restarts')).text, 'stored');
      const claim = await getJson<{ spec: { volumeName: string } }>(['get', 'pvc', 'data-web-0']);
      const volume = await getJson<{ spec: { hostPath: { path: string } } }>(['get', 'pv', claim.spec.volumeName]);
      assert.equal(readFileSync(`${volume.spec.hostPath.path}/value`, 'utf8'), 'kept across restarts');

      const deleted = await cluster.kubectl(['delete', 'pod', 'web-0', '-n', ns, '--wait=true', '--timeout=60s']);
      assert.equal(deleted.code, 0, deleted.stderr);
      const after = await waitFor(
        async () => {
          const p = await pod('web-0').catch(() => undefined);
          return p && p.metadata.uid !== before.metadata.uid && isReady(p) && p;
        },
        60_000,
        'web-0 recreated and ready',
      );
      assert.equal((await http(after.status.podIP!, '/data')).text, 'kept across restarts');
    }),
  );

  test(
    'scaling to 1 removes two pods and their processes',
    withDiagnostics(async () => {
      const doomed = cluster.local!.processes().filter((p) => p.namespace === ns && (p.pod === 'web-1' || p.pod === 'web-2'));
      assert.equal(doomed.length, 2);
      const scaled = await cluster.kubectl(['scale', 'statefulset', 'web', '-n', ns, '--replicas=1']);
      assert.equal(scaled.code, 0, scaled.stderr);
      await waitFor(async () => (await pods('app=web')).length === 1, 60_000, 'two pods to be removed');
      const [left] = await pods('app=web');
      assert.equal(left?.metadata.name, 'web-0');
      for (const gone of doomed) {
        assert.equal(isProcessAlive(gone.pid), false, `process of ${gone.pod} (pid ${gone.pid}) is gone`);
        assert.equal(await portOpen(8080, gone.podIP), false, `${gone.podIP}:8080 is closed`);
      }
      assert.deepEqual(
        cluster
          .local!.processes()
          .filter((p) => p.namespace === ns)
          .map((p) => p.pod),
        ['web-0'],
      );
    }),
  );

  test(
    'deleting the StatefulSet garbage-collects its pods',
    withDiagnostics(async () => {
      const running = cluster.local!.processes().filter((p) => p.namespace === ns && p.pod.startsWith('web-'));
      assert.ok(running.length > 0);
      const deleted = await cluster.kubectl(['delete', 'statefulset', 'web', '-n', ns, '--cascade=background']);
      assert.equal(deleted.code, 0, deleted.stderr);
      await waitFor(async () => (await pods('app=web')).length === 0, 60_000, 'web pods to be garbage-collected');
      for (const p of running) assert.equal(isProcessAlive(p.pid), false, `pid ${p.pid} of ${p.pod} is gone`);
    }),
  );

  test(
    'a failing readiness probe keeps a pod NotReady until it passes',
    withDiagnostics(async () => {
      await cluster.apply(
        {
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: { name: 'unready' },
          spec: {
            containers: [
              serverContainer({
                env: [...downwardEnv, { name: 'START_READY', value: 'false' }],
                readinessProbe: { httpGet: { path: '/ready', port: 8080 }, periodSeconds: 1, failureThreshold: 1 },
              }),
            ],
          },
        },
        ns,
      );
      const running = await waitFor(
        async () => {
          const p = await pod('unready');
          return p.status.phase === 'Running' && p.status.podIP ? p : undefined;
        },
        60_000,
        'unready pod running',
      );
      // The probe has really been run (and failed) several times while the pod stays NotReady.
      await waitFor(async () => Number((await http(running.status.podIP!, '/readiness-checks')).text) >= 3, 30_000, '3 readiness checks');
      const probed = await pod('unready');
      assert.equal(isReady(probed), false);
      assert.equal(probed.status.containerStatuses?.[0]?.ready, false);
      await http(running.status.podIP!, '/set-ready');
      await waitFor(async () => isReady(await pod('unready')), 30_000, 'pod Ready after its probe passes');
    }),
  );

  test(
    'a crashed container is restarted and counted in restartCount',
    withDiagnostics(async () => {
      await cluster.apply({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'crashy' }, spec: { containers: [serverContainer()] } }, ns);
      const first = await waitFor(
        async () => {
          const p = await pod('crashy');
          return p.status.containerStatuses?.[0]?.state['running'] && p;
        },
        60_000,
        'crashy running',
      );
      await waitFor(async () => (await http(first.status.podIP!, '/')).status === 200, 10_000, 'crashy answering');
      await http(first.status.podIP!, '/crash');
      const restarted = await waitFor(
        async () => {
          const p = await pod('crashy');
          const status = p.status.containerStatuses?.[0];
          return status && status.restartCount === 1 && status.state['running'] && p;
        },
        60_000,
        'crashy restarted',
      );
      assert.equal(restarted.status.containerStatuses?.[0]?.lastState['terminated']?.exitCode, 3);
      await waitFor(async () => (await http(restarted.status.podIP!, '/')).status === 200, 10_000, 'crashy answering again');
    }),
  );

  test(
    'a failing liveness probe restarts the container',
    withDiagnostics(async () => {
      await cluster.apply(
        {
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: { name: 'sickly' },
          spec: {
            terminationGracePeriodSeconds: 5,
            containers: [serverContainer({ livenessProbe: { httpGet: { path: '/healthz', port: 8080 }, periodSeconds: 1, failureThreshold: 2 } })],
          },
        },
        ns,
      );
      const running = await waitFor(
        async () => {
          const p = await pod('sickly');
          return p.status.containerStatuses?.[0]?.state['running'] && p;
        },
        60_000,
        'sickly running',
      );
      await waitFor(async () => (await http(running.status.podIP!, '/sick')).status === 200, 10_000, 'sickly told to fail');
      const restarted = await waitFor(
        async () => {
          const p = await pod('sickly');
          return (p.status.containerStatuses?.[0]?.restartCount ?? 0) >= 1 && p;
        },
        30_000,
        'sickly restarted by its liveness probe',
      );
      // SIGTERM from the process node, answered by the server's clean exit.
      assert.equal(restarted.status.containerStatuses?.[0]?.lastState['terminated']?.exitCode, 0);
      // Events are recorded asynchronously, beside the status.
      await waitFor(
        async () => {
          const events = await getJson<{ items: { reason: string; message: string }[] }>(['get', 'events', '--field-selector', 'involvedObject.name=sickly']);
          const unhealthy = events.items.some((e) => e.reason === 'Unhealthy' && /Liveness probe failed/.test(e.message));
          return unhealthy && events.items.filter((e) => e.reason === 'Started').length >= 2;
        },
        10_000,
        'Unhealthy and two Started events for sickly',
      );
    }),
  );

  test(
    'env comes from Secrets and ConfigMaps, and the ServiceAccount kubeconfig obeys RBAC',
    withDiagnostics(async () => {
      const script = `
        import { KubeConfig, CoreV1Api } from '@kubernetes/client-node';
        const kc = new KubeConfig();
        kc.loadFromDefault();
        const api = kc.makeApiClient(CoreV1Api);
        const ns = process.env.NS;
        const outcome = async (call) => { try { await call(); return 'allowed'; } catch (err) { return 'denied:' + err.code; } };
        console.log(JSON.stringify({
          secret: process.env.SECRET_VALUE,
          config: process.env.CONFIG_VALUE,
          configMaps: await outcome(() => api.listNamespacedConfigMap({ namespace: ns })),
          secrets: await outcome(() => api.listNamespacedSecret({ namespace: ns })),
        }));
      `;
      await cluster.apply(
        [
          { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'creds' }, stringData: { token: 's3cret' } },
          { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'settings' }, data: { mode: 'fast' } },
          { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'reader' } },
          {
            apiVersion: 'rbac.authorization.k8s.io/v1',
            kind: 'Role',
            metadata: { name: 'read-configmaps' },
            rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['list'] }],
          },
          {
            apiVersion: 'rbac.authorization.k8s.io/v1',
            kind: 'RoleBinding',
            metadata: { name: 'reader-configmaps' },
            roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'read-configmaps' },
            subjects: [{ kind: 'ServiceAccount', name: 'reader', namespace: ns }],
          },
          {
            apiVersion: 'v1',
            kind: 'Pod',
            metadata: { name: 'reader' },
            spec: {
              serviceAccountName: 'reader',
              restartPolicy: 'Never',
              containers: [
                {
                  name: 'main',
                  image: 'filecluster/node:24',
                  command: ['node', '--input-type=module', '-e', script],
                  env: [
                    { name: 'NS', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
                    { name: 'SECRET_VALUE', valueFrom: { secretKeyRef: { name: 'creds', key: 'token' } } },
                    { name: 'CONFIG_VALUE', valueFrom: { configMapKeyRef: { name: 'settings', key: 'mode' } } },
                  ],
                },
              ],
            },
          },
        ],
        ns,
      );
      assert.deepEqual(await printedJson('reader'), { secret: 's3cret', config: 'fast', configMaps: 'allowed', secrets: 'denied:403' });
    }),
  );

  test(
    "an image's own environment reaches its process, under the container's env",
    withDiagnostics(async () => {
      await cluster.apply(
        {
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: { name: 'env-printer' },
          spec: { restartPolicy: 'Never', containers: [{ name: 'main', image: 'test/env-printer:1', env: [{ name: 'OVERRIDDEN', value: 'container' }] }] },
        },
        ns,
      );
      assert.deepEqual(await printedJson('env-printer'), { fromImage: 'image', overridden: 'container' });
    }),
  );

  test(
    'an image without a local command is reported as ErrImagePull',
    withDiagnostics(async () => {
      await cluster.apply(
        { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'unmapped' }, spec: { containers: [{ name: 'main', image: 'example.org/nothing:1' }] } },
        ns,
      );
      const waiting = await waitFor(
        async () => {
          const p = await pod('unmapped');
          return p.status.containerStatuses?.[0]?.state['waiting']?.reason === 'ErrImagePull' && p.status.containerStatuses[0].state['waiting'];
        },
        60_000,
        'ErrImagePull',
      );
      assert.match(waiting.message, /example\.org\/nothing:1/);
    }),
  );

  test(
    'an added process node becomes Ready and runs the pods bound to it',
    withDiagnostics(async () => {
      const name = await cluster.local!.addNode();
      assert.deepEqual(cluster.local!.nodes(), ['process-node-1', name]);
      const node = JSON.parse((await cluster.kubectl(['get', 'node', name, '-o', 'json'])).stdout) as {
        status: { conditions: { type: string; status: string }[]; allocatable: Record<string, string> };
      };
      assert.equal(node.status.conditions.find((c) => c.type === 'Ready')?.status, 'True');
      assert.ok(Number(node.status.allocatable['pods']) > 0);
      const lease = await cluster.kubectl(['get', 'lease', name, '-n', 'kube-node-lease', '-o', 'jsonpath={.spec.holderIdentity}']);
      assert.equal(lease.stdout, name);
      await cluster.apply(
        { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'pinned' }, spec: { nodeSelector: { 'kubernetes.io/hostname': name }, containers: [serverContainer()] } },
        ns,
      );
      const running = await waitFor(
        async () => {
          const p = await pod('pinned');
          return p.status.phase === 'Running' ? p : undefined;
        },
        60_000,
        'pinned pod running',
      );
      assert.ok(cluster.local!.processes().some((p) => p.pod === 'pinned' && p.node === name));
      await waitFor(async () => (await http(running.status.podIP!, '/')).status === 200, 10_000, 'pinned pod answering');
    }),
  );

  test('after teardown no process and no port is left behind', async () => {
    const local = cluster.local!;
    const pids = [...local.controlPlanePids(), ...local.processes().map((p) => p.pid)];
    const podAddresses = local.processes().map((p) => p.podIP);
    const ports = local.controlPlanePorts();
    const dir = local.dir;
    assert.ok(pids.length >= 5, `control plane and pods are running: ${pids.join(', ')}`);
    for (const pid of pids) assert.equal(isProcessAlive(pid), true, `pid ${pid} runs before teardown`);
    await cluster.close();
    for (const pid of pids) assert.equal(isProcessAlive(pid), false, `pid ${pid} is gone`);
    for (const port of ports) assert.equal(await portOpen(port), false, `port ${port} is closed`);
    for (const ip of podAddresses) assert.equal(await portOpen(8080, ip), false, `${ip}:8080 is closed`);
    assert.equal(existsSync(dir), false, `${dir} is removed`);
  });
});
