import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { KubeConfig } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { portOpen } from './processes.ts';
import type { Cluster, KubectlOptions, KubectlResult, LocalCluster, PodConnection, ProviderName } from './types.ts';
import { waitFor } from './wait.ts';

export interface ClusterParts {
  provider: ProviderName;
  kubeconfigPath: string;
  kubectlPath: string;
  close: () => Promise<void>;
  logs?: Cluster['logs'];
  diagnostics?: Cluster['diagnostics'];
  local?: LocalCluster;
  /**
   * The pod network is not routed to this machine (kind): `reachPod` port-forwards at once and never
   * sends a probe to a pod IP, which here would reach whatever else owns that address.
   */
  podNetworkUnrouted?: boolean;
}

export function runKubectl(kubectlPath: string, kubeconfigPath: string, args: string[], opts: KubectlOptions = {}): Promise<KubectlResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(kubectlPath, ['--kubeconfig', kubeconfigPath, ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, KUBECONFIG: kubeconfigPath },
    });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => {
      stderr += `\nkubectl killed after ${opts.timeoutMs ?? 120_000} ms`;
      child.kill('SIGKILL');
    }, opts.timeoutMs ?? 120_000);
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ stdout, stderr, code: code ?? (signal ? 128 : 1) });
    });
    // kubectl may exit before reading its input (e.g. a usage error); the exit code reports that, not EPIPE.
    child.stdin.on('error', () => {});
    child.stdin.end(opts.input ?? '');
  });
}

/** `kubectl port-forward` to a pod on a loopback port the kernel picks; resolves once it forwards. */
function portForward(kubectlPath: string, kubeconfigPath: string, namespace: string, pod: string, port: number): Promise<PodConnection> {
  return new Promise((resolve, reject) => {
    const child = spawn(kubectlPath, ['--kubeconfig', kubeconfigPath, 'port-forward', '-n', namespace, `pod/${pod}`, `:${port}`, '--address', '127.0.0.1'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`kubectl port-forward to ${namespace}/${pod}:${port} did not start: ${output}`));
    }, 30_000);
    const close = () =>
      new Promise<void>((done) => {
        if (child.exitCode !== null || child.signalCode !== null) return done();
        child.once('exit', () => done());
        child.kill('SIGTERM');
      });
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const match = /Forwarding from 127\.0\.0\.1:(\d+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve({ url: `http://127.0.0.1:${match[1]}`, close });
      }
    });
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`kubectl port-forward to ${namespace}/${pod}:${port} exited ${code}: ${output}`));
    });
  });
}

function toYaml(manifest: string | object | object[]): string {
  if (typeof manifest === 'string') return manifest;
  const docs = Array.isArray(manifest) ? manifest : [manifest];
  return docs.map((doc) => stringify(doc)).join('---\n');
}

/** The provider-independent half of a Cluster: everything that needs only a kubeconfig and kubectl. */
export function assembleCluster(parts: ClusterParts): Cluster {
  const kubectl = (args: string[], opts?: KubectlOptions) => runKubectl(parts.kubectlPath, parts.kubeconfigPath, args, opts);
  let closed: Promise<void> | undefined;
  const cluster: Cluster = {
    provider: parts.provider,
    kubeconfigPath: parts.kubeconfigPath,
    kubectl,
    kubeClient() {
      const kc = new KubeConfig();
      kc.loadFromFile(parts.kubeconfigPath);
      return kc;
    },
    async apply(manifest, namespace) {
      const args = ['apply', '--server-side', '--force-conflicts', '--field-manager=filecluster-tests', '-f', '-'];
      if (namespace) args.push('--namespace', namespace);
      const result = await kubectl(args, { input: toYaml(manifest) });
      if (result.code !== 0) throw new Error(`kubectl apply failed (exit ${result.code}): ${result.stderr.trim()}`);
    },
    async createNamespace(prefix) {
      const name = `${prefix}-${randomBytes(3).toString('hex')}`;
      const created = await kubectl(['create', 'namespace', name]);
      if (created.code !== 0) throw new Error(`creating namespace ${name}: ${created.stderr.trim()}`);
      // Pods are refused until the ServiceAccount controller has made the namespace's default account.
      await waitFor(async () => (await kubectl(['get', 'serviceaccount', 'default', '-n', name])).code === 0, 60_000, `default ServiceAccount in ${name}`);
      return name;
    },
    async deleteNamespace(name) {
      await kubectl(['delete', 'namespace', name, '--ignore-not-found', '--wait=false']);
      await waitFor(
        async () => {
          const got = await kubectl(['get', 'namespace', name]);
          return got.code !== 0 && /NotFound/.test(got.stderr);
        },
        120_000,
        `namespace ${name} to be deleted`,
        500,
      );
    },
    async reachPod(namespace, pod, port) {
      const got = await kubectl(['get', 'pod', pod, '-n', namespace, '-o', 'jsonpath={.status.podIP}']);
      if (got.code !== 0) throw new Error(`pod ${namespace}/${pod}: ${got.stderr.trim()}`);
      const ip = got.stdout.trim();
      if (ip && !parts.podNetworkUnrouted && (await portOpen(port, ip))) return { url: `http://${ip.includes(':') ? `[${ip}]` : ip}:${port}`, close: async () => {} };
      if (parts.local) throw new Error(`pod ${namespace}/${pod} does not answer on ${ip || '(no IP yet)'}:${port}`);
      return portForward(parts.kubectlPath, parts.kubeconfigPath, namespace, pod, port);
    },
    logs:
      parts.logs ??
      (async (namespace, pod, container) => {
        const args = ['logs', '-n', namespace, pod];
        if (container) args.push('-c', container);
        const result = await kubectl(args);
        return result.stdout + result.stderr;
      }),
    diagnostics:
      parts.diagnostics ??
      (async () => {
        const result = await kubectl(['get', 'nodes,pods,events', '-A', '-o', 'wide']);
        return result.stdout + result.stderr;
      }),
    close() {
      closed ??= parts.close();
      return closed;
    },
  };
  if (parts.local) cluster.local = parts.local;
  return cluster;
}
