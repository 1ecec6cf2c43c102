// Helpers of the operator end-to-end suite: operator replicas as processes, and the file server's HTTP
// API reached through pod IPs, as a user on the cluster's network would.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Cluster } from '../../harness/index.ts';

export const REPO_ROOT = fileURLToPath(new URL('../../..', import.meta.url));
export const CRD_FILE = path.join(REPO_ROOT, 'charts/filecluster/crds/fileclusters.filecluster.dev.yaml');

export interface OperatorReplica {
  identity: string;
  process: ChildProcess;
  logFile: string;
  exited: Promise<number | null>;
}

/**
 * Operator replicas run as processes with the cluster's kubeconfig: that works the same on the local
 * provider and on an existing cluster (where no operator image may be loadable), and lets the suite
 * SIGKILL the leader at a chosen moment.
 */
export class OperatorReplicas {
  private readonly cluster: Cluster;
  private readonly namespace: string;
  readonly dir = mkdtempSync(path.join(os.tmpdir(), 'fc-operator-e2e-'));
  readonly replicas = new Map<string, OperatorReplica>();

  constructor(cluster: Cluster, namespace: string) {
    this.cluster = cluster;
    this.namespace = namespace;
  }

  start(identity: string): OperatorReplica {
    const logFile = path.join(this.dir, `${identity}.log`);
    const out = createWriteStream(logFile);
    const child = spawn(process.execPath, [path.join(REPO_ROOT, 'operator/src/main.ts')], {
      env: {
        ...process.env,
        KUBECONFIG: this.cluster.kubeconfigPath,
        FC_WATCH_NAMESPACES: this.namespace,
        FC_LEASE_NAMESPACE: this.namespace,
        FC_POD_NAME: identity,
        FC_OPERATOR_HOST: '127.0.0.1',
        FC_OPERATOR_PORT: '0',
        // Short lease so a takeover fits the suite's time budget.
        FC_LEASE_DURATION_SECONDS: '6',
        FC_LEASE_RENEW_DEADLINE_SECONDS: '4',
        FC_LEASE_RETRY_PERIOD_SECONDS: '1',
        FC_LOG_LEVEL: 'debug',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout?.pipe(out);
    child.stderr?.pipe(out);
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const replica = { identity, process: child, logFile, exited };
    this.replicas.set(identity, replica);
    return replica;
  }

  async kill(identity: string, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const r = this.replicas.get(identity);
    if (!r) return;
    if (r.process.exitCode === null && r.process.signalCode === null) r.process.kill(signal);
    await r.exited;
    this.replicas.delete(identity);
  }

  async leader(): Promise<string | undefined> {
    const r = await this.cluster.kubectl(['get', 'lease', 'filecluster-operator', '-n', this.namespace, '-o', 'jsonpath={.spec.holderIdentity}']);
    return r.code === 0 && r.stdout.trim() ? r.stdout.trim() : undefined;
  }

  logs(): string {
    return [...this.replicas.values()].map((r) => `--- ${r.identity}\n${tailOf(r.logFile, 40)}`).join('\n');
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.replicas.keys()].map((id) => this.kill(id, 'SIGTERM')));
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function tailOf(file: string, lines: number): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

export async function kubectlJson<T>(cluster: Cluster, args: string[]): Promise<T> {
  const r = await cluster.kubectl([...args, '-o', 'json']);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${r.stderr.trim()}`);
  return JSON.parse(r.stdout) as T;
}

export interface PodInfo {
  name: string;
  ip: string;
  ready: boolean;
  uid: string;
}

export async function clusterPods(cluster: Cluster, namespace: string, name: string): Promise<PodInfo[]> {
  const list = await kubectlJson<{ items: Array<{ metadata: { name: string; uid: string; deletionTimestamp?: string }; status: { podIP?: string; conditions?: Array<{ type: string; status: string }> } }> }>(
    cluster,
    ['get', 'pods', '-n', namespace, '-l', `app.kubernetes.io/instance=${name}`],
  );
  return list.items
    .filter((p) => !p.metadata.deletionTimestamp)
    .map((p) => ({
      name: p.metadata.name,
      uid: p.metadata.uid,
      ip: p.status.podIP ?? '',
      ready: (p.status.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True'),
    }))
    .sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true }));
}

export async function clusterToken(cluster: Cluster, namespace: string, secret: string): Promise<string> {
  const r = await cluster.kubectl(['get', 'secret', secret, '-n', namespace, '-o', 'jsonpath={.data.token}']);
  if (r.code !== 0) throw new Error(r.stderr);
  return Buffer.from(r.stdout.trim(), 'base64').toString('utf8');
}

export const podUrl = (ip: string): string => `http://${ip}:8080`;

export async function peersOf(ip: string, token: string): Promise<{ generation: number; peers: Array<{ id: string; url: string }> }> {
  const res = await fetch(`${podUrl(ip)}/internal/peers`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(3000) });
  if (!res.ok) throw new Error(`GET /internal/peers on ${ip}: ${res.status}`);
  return (await res.json()) as { generation: number; peers: Array<{ id: string; url: string }> };
}

export async function putFile(ip: string, file: string, content: string, ack: 'local' | 'majority' | 'all' = 'local'): Promise<number> {
  const res = await fetch(`${podUrl(ip)}/files/${file}`, {
    method: 'PUT',
    headers: { 'content-type': 'text/plain', 'x-filecluster-ack': ack },
    body: content,
    signal: AbortSignal.timeout(15_000),
  });
  await res.arrayBuffer();
  return res.status;
}

export async function getFile(ip: string, file: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`${podUrl(ip)}/files/${file}`, { signal: AbortSignal.timeout(5000) });
  return { status: res.status, body: await res.text() };
}

export interface FileClusterStatusView {
  observedGeneration?: number;
  replicas?: number;
  readyReplicas?: number;
  peerGeneration?: number;
  peersAcknowledged?: number;
  peers?: Array<{ id: string; url: string }>;
  conditions?: Array<{ type: string; status: string; reason: string; message: string }>;
}

export async function fileClusterStatus(cluster: Cluster, namespace: string, name: string): Promise<FileClusterStatusView> {
  const fc = await kubectlJson<{ status?: FileClusterStatusView }>(cluster, ['get', 'filecluster', name, '-n', namespace]);
  return fc.status ?? {};
}

export function condition(status: FileClusterStatusView, type: string): { status: string; reason: string; message: string } | undefined {
  return status.conditions?.find((c) => c.type === type);
}

export function fileClusterYaml(name: string, spec: Record<string, unknown>): string {
  return JSON.stringify({ apiVersion: 'filecluster.dev/v1alpha1', kind: 'FileCluster', metadata: { name }, spec });
}
