// FileCluster on real nodes: the images users deploy, run by kubelets of a 3-node kind cluster built
// offline (scripts/kind/cluster.sh). `helm install` runs the operator image itself (non-root, read-only
// root file system, probes) and the operator makes a FileCluster Ready; its pods spread over the workers;
// an in-cluster client writes through the client Service's DNS name and reads back through each pod's
// name under the headless Service; `kubectl logs` and `kubectl exec` reach a file-server pod; a worker
// node stops and returns; a rolling update to a second image tag under client load loses no acknowledged write.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { REPO_ROOT } from '../harness/assets.ts';
import { type Cluster, startCluster, waitFor } from '../harness/index.ts';
import { buildImagesForKind, kindDockerHost } from '../harness/providers/kind.ts';
import { CHART, helmBinary, runAsync } from '../integration/packaging/support.ts';

const run = promisify(execFile);
const VERSION = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const FILESERVER_IMAGE = `filecluster/fileserver:${VERSION}`;
const OPERATOR_IMAGE = `filecluster/operator:${VERSION}`;
/** The image a rolling update moves the file servers to: the same program, another image. */
const NEXT_FILESERVER_IMAGE = `filecluster/fileserver:${VERSION}-next`;
const FC = 'files';
const NODE = '/usr/local/bin/node';

let cluster: Cluster;
let ns = '';
let dockerHost = '';

async function kubectl(args: string[], input?: string): Promise<string> {
  const result = await cluster.kubectl(args, input === undefined ? { timeoutMs: 300_000 } : { input, timeoutMs: 300_000 });
  if (result.code !== 0) throw new Error(`kubectl ${args.join(' ')} exited ${result.code}: ${result.stderr}`);
  return result.stdout;
}

async function helm(args: string[]): Promise<string> {
  const result = await runAsync(helmBinary(), [...args, '--kubeconfig', cluster.kubeconfigPath], { timeoutMs: 300_000 });
  if (result.code !== 0) throw new Error(`helm ${args.join(' ')} exited ${result.code}: ${result.stdout}${result.stderr}`);
  return result.stdout;
}

/** A pod that runs `script` with the file-server image's Node (the image has no shell), and its output once it ended. */
async function nodePod(name: string, script: string, timeoutMs = 180_000): Promise<string> {
  await kubectl(
    ['apply', '-n', ns, '-f', '-'],
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name },
      spec: {
        restartPolicy: 'Never',
        securityContext: { runAsNonRoot: true, runAsUser: 65532 },
        containers: [{ name: 'main', image: FILESERVER_IMAGE, imagePullPolicy: 'Never', command: [NODE, '-e', script] }],
      },
    }),
  );
  let phase = '';
  await waitFor(
    async () => {
      phase = (await kubectl(['get', 'pod', name, '-n', ns, '-o', 'jsonpath={.status.phase}'])).trim();
      return phase === 'Succeeded' || phase === 'Failed';
    },
    timeoutMs,
    `pod ${name} ended`,
    1000,
  );
  const logs = await kubectl(['logs', name, '-n', ns]);
  assert.equal(phase, 'Succeeded', `${name}: ${logs}`);
  return logs;
}

interface PodInfo {
  metadata: { name: string };
  spec: { nodeName: string; containers: Array<{ name: string; securityContext?: { readOnlyRootFilesystem?: boolean; runAsNonRoot?: boolean } }> };
  status: { phase: string; containerStatuses?: Array<{ ready: boolean; image: string }> };
}

async function pods(selector: string): Promise<PodInfo[]> {
  return (JSON.parse(await kubectl(['get', 'pods', '-n', ns, '-l', selector, '-o', 'json'])) as { items: PodInfo[] }).items;
}

/**
 * From a pod in the cluster: a write through the client Service (when `body` is given), then a read of
 * `path` from one pod by its own name under the headless Service.
 */
async function throughDns(client: string, path: string, readFrom: number, body?: string): Promise<{ put?: number; read: [number, string] }> {
  const put =
    body === undefined
      ? ''
      : `out.put = (await fetch('http://${FC}.${ns}.svc:8080/files/${path}', { method: 'PUT', body: '${body}', headers: { 'x-filecluster-ack': 'all' } })).status;`;
  const script = `
    (async () => {
      const out = {};
      ${put}
      const r = await fetch('http://${FC}-${readFrom}.${FC}-peers.${ns}.svc:8080/files/${path}');
      out.read = [r.status, await r.text()];
      console.log(JSON.stringify(out));
    })().catch((err) => { console.error(err); process.exit(1); });`;
  return JSON.parse((await nodePod(client, script)).trim().split('\n').at(-1)!) as { put?: number; read: [number, string] };
}

async function nodeReady(node: string): Promise<boolean> {
  return (await kubectl(['get', 'node', node, '-o', 'jsonpath={.status.conditions[?(@.type=="Ready")].status}'])).trim() === 'True';
}

async function readyReplicas(): Promise<number> {
  return Number((await kubectl(['get', 'filecluster', FC, '-n', ns, '-o', 'jsonpath={.status.readyReplicas}'])).trim() || '0');
}

async function docker(args: string[]): Promise<void> {
  await run('docker', args, { env: { ...process.env, DOCKER_HOST: dockerHost } });
}

describe('a FileCluster on a kind cluster built offline', { timeout: 3_600_000 }, () => {
  before(async () => {
    // The images go into the kind daemon, then into every node: nothing is pulled from a registry.
    dockerHost = await kindDockerHost();
    const images = await buildImagesForKind();
    // A second image of its own (another ID, not only another name), so a pod's status shows which one it runs.
    const holder = `fc-next-image-${process.pid}`;
    await docker(['create', '--name', holder, FILESERVER_IMAGE]);
    await docker(['commit', '--change', `LABEL dev.filecluster.build=${NEXT_FILESERVER_IMAGE}`, holder, NEXT_FILESERVER_IMAGE]);
    await docker(['rm', holder]);
    process.env['FC_KIND_IMAGES'] = [...images, NEXT_FILESERVER_IMAGE].join(',');
    cluster = await startCluster({ provider: 'kind' });
    ns = await cluster.createNamespace('fc-kind');
  });

  after(async () => {
    await cluster?.close();
  });

  it('helm install runs the operator image non-root on a read-only root file system, and it turns Ready', async () => {
    await helm(['install', 'filecluster', CHART, '--namespace', ns, '--wait', '--timeout', '5m']);
    const operators = await pods('app.kubernetes.io/component=operator');
    assert.ok(operators.length > 0, 'operator pods exist');
    for (const pod of operators) {
      assert.equal(pod.status.phase, 'Running', pod.metadata.name);
      assert.ok(
        pod.status.containerStatuses?.every((c) => c.ready && c.image.endsWith(OPERATOR_IMAGE)),
        `${pod.metadata.name} ready from ${OPERATOR_IMAGE}`,
      );
    }
    const pod = operators[0]!.metadata.name;
    const uid = await kubectl(['exec', '-n', ns, pod, '--', NODE, '-e', 'process.stdout.write(String(process.getuid()))']);
    assert.notEqual(uid.trim(), '0', 'the operator runs as a non-root user');
    const write = await cluster.kubectl(['exec', '-n', ns, pod, '--', NODE, '-e', "require('node:fs').writeFileSync('/probe', 'x')"]);
    assert.notEqual(write.code, 0, 'the root file system is read-only');
    assert.match(write.stderr, /EROFS|read-only/);
  });

  it('makes a 3-replica FileCluster Ready, its pods spread over both workers', async () => {
    await kubectl(
      ['apply', '-n', ns, '-f', '-'],
      JSON.stringify({
        apiVersion: 'filecluster.dev/v1alpha1',
        kind: 'FileCluster',
        metadata: { name: FC },
        spec: { replicas: 3, image: FILESERVER_IMAGE, imagePullPolicy: 'Never', storage: { size: '64Mi' }, replication: { defaultAck: 'all' } },
      }),
    );
    // Ready comes with the first serving pod; the rest of the rollout shows in Progressing.
    await kubectl(['wait', '-n', ns, '--for=condition=Ready', `filecluster/${FC}`, '--timeout=300s']);
    await kubectl(['wait', '-n', ns, '--for=condition=Progressing=False', `filecluster/${FC}`, '--timeout=300s']);
    assert.equal(await readyReplicas(), 3);
    const servers = await pods(`app.kubernetes.io/name=filecluster,app.kubernetes.io/instance=${FC}`);
    assert.equal(servers.length, 3);
    assert.ok(servers.every((p) => p.status.containerStatuses?.every((c) => c.ready)));
    const nodes = new Set(servers.map((p) => p.spec.nodeName));
    assert.equal(nodes.size, 2, `spread over both workers: ${[...nodes].join(' ')}`);
    assert.ok([...nodes].every((n) => !n.endsWith('-control-plane')));
  });

  it('an in-cluster client writes through the Service name and reads back from every pod by its own name', async () => {
    const service = `http://${FC}.${ns}.svc:8080`;
    const podNames = [0, 1, 2].map((i) => `http://${FC}-${i}.${FC}-peers.${ns}.svc:8080`);
    const script = `
      (async () => {
        const put = await fetch('${service}/files/kind/hello.txt', { method: 'PUT', body: 'through the Service', headers: { 'x-filecluster-ack': 'all' } });
        const out = { put: put.status, reads: [] };
        for (const base of ${JSON.stringify(podNames)}) {
          const r = await fetch(base + '/files/kind/hello.txt');
          out.reads.push([r.status, await r.text()]);
        }
        console.log(JSON.stringify(out));
      })().catch((err) => { console.error(err); process.exit(1); });`;
    const out = JSON.parse((await nodePod('client', script)).trim().split('\n').at(-1)!) as { put: number; reads: Array<[number, string]> };
    assert.equal(out.put, 201, JSON.stringify(out));
    assert.deepEqual(
      out.reads,
      podNames.map(() => [200, 'through the Service']),
    );
  });

  it('kubectl logs, exec and port-forward reach the file servers', async () => {
    const logs = await kubectl(['logs', '-n', ns, `${FC}-0`]);
    const records = logs
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { msg?: string });
    assert.ok(
      records.some((r) => r.msg === 'listening'),
      `a JSON "listening" line: ${logs.slice(0, 2000)}`,
    );
    const got = await kubectl([
      'exec',
      '-n',
      ns,
      `${FC}-1`,
      '--',
      NODE,
      '-e',
      "fetch('http://127.0.0.1:8080/files/kind/hello.txt').then(async (r) => console.log(await r.text()))",
    ]);
    assert.equal(got.trim(), 'through the Service');
    // Pod IPs do not answer from this machine: this is a kubectl port-forward, which connects to
    // localhost inside the pod, so it works only while the servers listen on every address of their pod.
    const connection = await cluster.reachPod(ns, `${FC}-2`, 8080);
    try {
      const res = await fetch(`${connection.url}/files/kind/hello.txt`);
      const text = await res.text();
      assert.equal(text, 'through the Service', `${connection.url}: ${res.status} ${JSON.stringify([...res.headers])}`);
    } finally {
      await connection.close();
    }
  });

  it('keeps taking writes while a worker node is down, and the pod on it catches up when the node returns', async () => {
    const servers = await pods(`app.kubernetes.io/name=filecluster,app.kubernetes.io/instance=${FC}`);
    const perNode = new Map<string, string[]>();
    for (const p of servers) perNode.set(p.spec.nodeName, [...(perNode.get(p.spec.nodeName) ?? []), p.metadata.name]);
    // The worker with one pod goes down: two of three stay, as with any single-node failure.
    const [down, [victim]] = [...perNode.entries()].find(([, names]) => names.length === 1)!;
    const ordinal = Number(victim!.slice(FC.length + 1));
    // A node failure: the node's container stops, kubelet, containerd and the pod with it.
    await docker(['stop', down]);
    try {
      await waitFor(async () => !(await nodeReady(down)), 180_000, `node ${down} NotReady`, 2000);
      await waitFor(async () => (await readyReplicas()) === 2, 180_000, 'the FileCluster counts 2 ready replicas', 2000);
      const during = await throughDns('while-down', 'kind/during.txt', (ordinal + 1) % 3, 'written while a node was down');
      assert.deepEqual(during, { put: 201, read: [200, 'written while a node was down'] });
    } finally {
      await docker(['start', down]);
    }
    await waitFor(() => nodeReady(down), 300_000, `node ${down} Ready again`, 2000);
    await kubectl(['wait', '-n', ns, '--for=condition=Ready', `pod/${victim}`, '--timeout=300s']);
    await waitFor(async () => (await readyReplicas()) === 3, 300_000, 'the FileCluster counts 3 ready replicas again', 2000);
    const back = await throughDns('after-return', 'kind/during.txt', ordinal);
    assert.deepEqual(back.read, [200, 'written while a node was down'], `${victim}, back on ${down}, holds the write it missed`);
  });
  it('rolls to a second image tag under client load through the Service, losing no acknowledged write', async () => {
    const service = `http://${FC}.${ns}.svc:8080`;
    // Writes through the Service, one after another, until the test writes roll/stop; then the tally.
    const load = `
      (async () => {
        const acked = [];
        const failed = {};
        const started = Date.now();
        for (let n = 0; Date.now() - started < 600000; n++) {
          if (n % 20 === 0) {
            const stop = await fetch('${service}/files/roll/stop').then((r) => r.status, () => 0);
            if (stop === 200) break;
          }
          const path = 'roll/w' + n;
          try {
            const r = await fetch('${service}/files/' + path, { method: 'PUT', body: path, headers: { 'x-filecluster-ack': 'majority' }, signal: AbortSignal.timeout(15000) });
            await r.arrayBuffer();
            if (r.status === 201) acked.push(path);
            else failed[r.status] = (failed[r.status] ?? 0) + 1;
          } catch (err) {
            const why = err.cause?.code ?? err.name;
            failed[why] = (failed[why] ?? 0) + 1;
          }
        }
        console.log(JSON.stringify({ acked, failed }));
      })().catch((err) => { console.error(err); process.exit(1); });`;
    const loader = nodePod('roll-load', load, 900_000);
    await waitFor(
      async () => (await kubectl(['get', 'pod', 'roll-load', '-n', ns, '-o', 'jsonpath={.status.phase}'])).trim() === 'Running',
      120_000,
      'the load pod running',
      1000,
    );
    await new Promise((r) => setTimeout(r, 5000));
    await kubectl(['patch', 'filecluster', FC, '-n', ns, '--type=merge', '-p', JSON.stringify({ spec: { image: NEXT_FILESERVER_IMAGE } })]);
    await waitFor(
      async () => {
        const servers = await pods(`app.kubernetes.io/name=filecluster,app.kubernetes.io/instance=${FC}`);
        return servers.length === 3 && servers.every((p) => p.status.containerStatuses?.every((c) => c.ready && c.image.endsWith(NEXT_FILESERVER_IMAGE)));
      },
      600_000,
      'every file server on the new tag and Ready',
      2000,
    );
    await kubectl(['wait', '-n', ns, '--for=condition=Progressing=False', `filecluster/${FC}`, '--timeout=300s']);
    await new Promise((r) => setTimeout(r, 5000));
    assert.equal((await throughDns('roll-stop', 'roll/stop', 0, 'stop')).put, 201);
    const tally = JSON.parse((await loader).trim().split('\n').at(-1)!) as { acked: string[]; failed: Record<string, number> };
    const failures = Object.values(tally.failed).reduce((a, b) => a + b, 0);
    console.log(`rolling update under load: ${tally.acked.length} writes acknowledged, ${failures} failed ${JSON.stringify(tally.failed)}`);
    assert.ok(tally.acked.length > 50, `the load ran through the update: ${tally.acked.length} acknowledged`);

    // Every acknowledged write is on every pod, read by listing each one through its own name.
    const podNames = [0, 1, 2].map((i) => `http://${FC}-${i}.${FC}-peers.${ns}.svc:8080`);
    const check = `
      (async () => {
        const out = {};
        for (const base of ${JSON.stringify(podNames)}) {
          const paths = [];
          let cursor = '';
          for (;;) {
            const page = await (await fetch(base + '/files?prefix=roll/w&limit=10000' + (cursor ? '&cursor=' + encodeURIComponent(cursor) : ''))).json();
            paths.push(...page.entries.map((e) => e.path));
            if (!page.nextCursor) break;
            cursor = page.nextCursor;
          }
          out[base] = paths;
        }
        console.log(JSON.stringify(out));
      })().catch((err) => { console.error(err); process.exit(1); });`;
    const held = JSON.parse((await nodePod('roll-check', check)).trim().split('\n').at(-1)!) as Record<string, string[]>;
    for (const base of podNames) {
      const there = new Set(held[base]);
      const missing = tally.acked.filter((p) => !there.has(p));
      assert.deepEqual(missing.slice(0, 10), [], `${base} lacks ${missing.length} of ${tally.acked.length} acknowledged writes`);
    }
  });
});
