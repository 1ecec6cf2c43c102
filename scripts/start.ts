// `npm start`: a local Kubernetes control plane with a process node, the FileCluster operator installed
// from manifests/ (CRD, RBAC, a 2-replica Deployment), and a sample 3-replica FileCluster. Prints how to
// reach it, stays up until Ctrl-C, then stops everything it started.
// `npm start -- --provider kind`: the same on a 3-node kind cluster built offline (scripts/kind/), with
// this tree's images built and loaded into its nodes.
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { kubernetesAssets } from '../test/harness/assets.ts';
import { startCluster, waitFor, type Cluster } from '../test/harness/index.ts';
import { buildImagesForKind } from '../test/harness/providers/kind.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SAMPLE = path.join(ROOT, 'manifests/examples/filecluster-sample.yaml');
const NAMESPACE = 'default';
const NAME = 'sample';
const started = Date.now();
const elapsed = (): string => `${((Date.now() - started) / 1000).toFixed(1)}s`;
const say = (line: string): void => void process.stderr.write(`[start ${elapsed()}] ${line}\n`);

async function kubectl(cluster: Cluster, args: string[], input?: string): Promise<string> {
  const r = await cluster.kubectl(args, { ...(input === undefined ? {} : { input }), timeoutMs: 300_000 });
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed:\n${r.stderr}`);
  return r.stdout;
}

const { values } = parseArgs({ options: { provider: { type: 'string', default: 'local' } } });
if (values.provider !== 'local' && values.provider !== 'kind') throw new Error(`--provider must be local or kind, got ${values.provider}`);
const provider = values.provider;

async function main(): Promise<void> {
  if (provider === 'kind') {
    say('building the images and the kind cluster (the first run builds the node image: about 30 minutes)');
    process.env['FC_KIND_IMAGES'] = (await buildImagesForKind((line) => say(line))).join(',');
  } else {
    say('starting the local cluster (the first run builds the Kubernetes binaries; that takes several minutes)');
  }
  const cluster = await startCluster({ provider, log: (line) => say(line) });
  let closing = false;
  const close = async (signal: string, code = 0): Promise<void> => {
    if (closing) return;
    closing = true;
    say(`${signal}: stopping the cluster and removing its files`);
    await cluster.close();
    say('stopped');
    process.exit(code);
  };
  process.on('SIGINT', () => void close('SIGINT'));
  process.on('SIGTERM', () => void close('SIGTERM'));

  try {
    const manifests = readdirSync(path.join(ROOT, 'manifests'))
      .filter((f) => f.endsWith('.yaml'))
      .sort();
    say(`installing the CRD and the operator: ${manifests.map((f) => `manifests/${f}`).join(', ')}`);
    for (const file of manifests) await kubectl(cluster, ['apply', '--server-side', '-f', path.join(ROOT, 'manifests', file)]);
    await kubectl(cluster, ['wait', '--for=condition=Established', '--timeout=60s', 'crd/fileclusters.filecluster.dev']);
    await kubectl(cluster, ['rollout', 'status', '-n', 'filecluster-system', 'deployment/filecluster', '--timeout=180s']);
    say('operator running');

    const applied = Date.now();
    await kubectl(cluster, ['apply', '-n', NAMESPACE, '-f', SAMPLE]);
    say(`applied ${path.relative(ROOT, SAMPLE)}; waiting for 3 Ready pods`);
    let lastProgress = '';
    await waitFor(
      async () => {
        const out = await kubectl(cluster, [
          'get',
          'fc',
          NAME,
          '-n',
          NAMESPACE,
          '-o',
          'jsonpath={.status.readyReplicas}/{.spec.replicas} ready, peers acknowledged {.status.peersAcknowledged}, Ready={.status.conditions[?(@.type=="Ready")].status}',
        ]);
        if (out !== lastProgress) say(out);
        lastProgress = out;
        return out.endsWith('Ready=True');
      },
      300_000,
      'the sample FileCluster to become Ready',
      500,
    );
    const readyIn = ((Date.now() - applied) / 1000).toFixed(1);

    const pods = (
      await kubectl(cluster, [
        'get',
        'pods',
        '-n',
        NAMESPACE,
        '-l',
        `app.kubernetes.io/instance=${NAME}`,
        '-o',
        'jsonpath={range .items[*]}{.metadata.name}={.status.podIP}{"\\n"}{end}',
      ])
    )
      .trim()
      .split('\n')
      .map((l) => l.split('='));
    const kubectlBinary = path.join(await kubernetesAssets(), 'kubectl');
    const [firstName, firstIp] = pods[0] ?? ['', ''];
    const lines = [
      '',
      `FileCluster "${NAME}" is Ready: ${pods.length} pods, Ready ${readyIn}s after apply (cluster up in ${elapsed()} total).`,
      '',
      'kubectl:',
      `  export KUBECONFIG=${cluster.kubeconfigPath}`,
      `  alias kubectl=${kubectlBinary}      # if kubectl is not installed`,
      `  kubectl get fc,statefulsets,pods,svc -n ${NAMESPACE}`,
      `  kubectl describe fc ${NAME} -n ${NAMESPACE}`,
      `  kubectl scale fc/${NAME} -n ${NAMESPACE} --replicas=5`,
      `  kubectl get events -n ${NAMESPACE} --field-selector involvedObject.kind=FileCluster`,
      ...(cluster.local ? [`  logs of every component and pod: ${cluster.local.dir}`] : []),
      '',
      ...(provider === 'kind'
        ? [
            'curl (pod IPs live inside the kind network; forward the client Service):',
            `  kubectl port-forward -n ${NAMESPACE} svc/${NAME} 8080:8080 &`,
            `  curl -X PUT --data-binary 'hello' -H 'X-FileCluster-Ack: all' http://127.0.0.1:8080/files/hello.txt`,
            '  curl http://127.0.0.1:8080/files/hello.txt',
            `  kubectl logs -n ${NAMESPACE} ${firstName}`,
          ]
        : [
            'curl (pod IPs are loopback addresses on this machine):',
            ...pods.map(([n, ip]) => `  ${n}: http://${ip}:8080`),
            `  curl -X PUT --data-binary 'hello' -H 'X-FileCluster-Ack: all' http://${firstIp}:8080/files/hello.txt   # through ${firstName}`,
            ...pods.slice(1).map(([, ip]) => `  curl http://${ip}:8080/files/hello.txt`),
            `  curl http://${firstIp}:8080/files                 # list`,
            `  curl http://${firstIp}:9090/metrics               # Prometheus metrics`,
          ]),
      '',
      'Ctrl-C stops the cluster and cleans up.',
      '',
    ];
    process.stdout.write(lines.join('\n'));
  } catch (err) {
    say(`failed: ${err instanceof Error ? err.message : String(err)}`);
    say(await cluster.diagnostics().catch(() => ''));
    await close('error', 1);
  }
}

void main();
