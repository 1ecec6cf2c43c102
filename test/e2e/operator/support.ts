// Helpers of the operator end-to-end suite: operator replicas as processes, and the file server's HTTP
// API reached through pod IPs, as a user on the cluster's network would.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { before } from 'node:test';
import { fileURLToPath } from 'node:url';
import { compiledEntrypoint } from '../../harness/assets.ts';
import type { FileClusterSuite } from '../../harness/filecluster-suite.ts';
import { waitFor, type Cluster } from '../../harness/index.ts';
import type { PodConnection } from '../../harness/types.ts';

export const REPO_ROOT = fileURLToPath(new URL('../../..', import.meta.url));
export { CRD_FILE } from '../../../scripts/generate-crd.ts';

export interface OperatorReplica {
  identity: string;
  process: ChildProcess;
  logFile: string;
  exited: Promise<number | null>;
}

/**
 * Registers, in the calling describe, a `before` that starts the operator replicas on the suite's namespace
 * and waits for a leader, and a teardown that stops them; `access` reaches the namespace's pods.
 */
export function withOperators(suite: FileClusterSuite): { operators: Operators; access: PodAccess } {
  const running = {} as { operators: Operators; access: PodAccess };
  before(async () => {
    running.access = new PodAccess(suite.cluster, suite.ns);
    running.operators = operatorsFor(suite.cluster, suite.ns);
    await running.operators.start();
    await waitFor(() => running.operators.leader(), 60_000, 'an operator replica to take the Lease');
  });
  suite.onTeardown(async () => {
    await running.access?.close();
    await running.operators?.stop();
  });
  return running;
}

/** Two operator replicas and what the suite does to them. */
export interface Operators {
  /** Installs or starts two replicas. */
  start(): Promise<void>;
  /** The Lease holder. */
  leader(): Promise<string | undefined>;
  /** Identities of the running replicas. */
  identities(): Promise<string[]>;
  /** Kills a replica without a chance to hand the Lease over, or (graceful) stops it as a rollout would. */
  kill(identity: string, graceful?: boolean): Promise<void>;
  /** Brings the replica count back to two after a kill. */
  restore(identity: string): Promise<void>;
  logs(): Promise<string>;
  /** Base URL of the leader's health and metrics server. */
  endpoint(): Promise<string>;
  stop(): Promise<void>;
}

/**
 * FC_E2E_OPERATOR=process (default): replicas are processes on this machine with the cluster's
 * kubeconfig. The same on the local provider and on any existing cluster whose pod IPs this machine
 * reaches; needs no operator image in the cluster; the kill is a real SIGKILL.
 * FC_E2E_OPERATOR=deployment: the operator as users install it (manifests/: the Deployment with two
 * replicas and its RBAC), for existing clusters whose pod network is not reachable from here (kind); the
 * kill is a forced pod deletion.
 */
export function operatorsFor(cluster: Cluster, namespace: string): Operators {
  const mode = process.env['FC_E2E_OPERATOR'] ?? 'process';
  if (mode === 'deployment') return new OperatorDeployment(cluster);
  if (mode !== 'process') throw new Error(`FC_E2E_OPERATOR must be process or deployment, not ${mode}`);
  return new OperatorProcesses(cluster, namespace);
}

export class OperatorProcesses implements Operators {
  private readonly cluster: Cluster;
  private readonly namespace: string;
  readonly dir = mkdtempSync(path.join(os.tmpdir(), 'fc-operator-e2e-'));
  readonly replicas = new Map<string, OperatorReplica>();

  constructor(cluster: Cluster, namespace: string) {
    this.cluster = cluster;
    this.namespace = namespace;
  }

  async start(): Promise<void> {
    this.spawn('operator-a');
    this.spawn('operator-b');
  }

  spawn(identity: string): OperatorReplica {
    const logFile = path.join(this.dir, `${identity}.log`);
    const out = createWriteStream(logFile);
    const child = spawn(process.execPath, [compiledEntrypoint('operator')], {
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

  async kill(identity: string, graceful = false): Promise<void> {
    const r = this.replicas.get(identity);
    if (!r) return;
    if (r.process.exitCode === null && r.process.signalCode === null) r.process.kill(graceful ? 'SIGTERM' : 'SIGKILL');
    await r.exited;
    this.replicas.delete(identity);
  }

  async restore(identity: string): Promise<void> {
    this.spawn(identity);
  }

  async identities(): Promise<string[]> {
    return [...this.replicas.keys()];
  }

  async leader(): Promise<string | undefined> {
    return leaseHolder(this.cluster, this.namespace, 'filecluster-operator');
  }

  async endpoint(): Promise<string> {
    const leader = await this.leader();
    const replica = leader ? this.replicas.get(leader) : undefined;
    if (!replica) throw new Error('no leader among the replicas started here');
    const line = readFileSync(replica.logFile, 'utf8')
      .split('\n')
      .find((l) => l.includes('"operator listening"'));
    const port = line ? (JSON.parse(line) as { port: number }).port : undefined;
    if (!port) throw new Error(`${leader} has not logged its port`);
    return `http://127.0.0.1:${port}`;
  }

  async logs(): Promise<string> {
    return [...this.replicas.values()].map((r) => `--- ${r.identity}\n${tailOf(r.logFile, 40)}`).join('\n');
  }

  async stop(): Promise<void> {
    await Promise.all([...this.replicas.keys()].map((id) => this.kill(id, true)));
    rmSync(this.dir, { recursive: true, force: true });
  }
}

const OPERATOR_NAMESPACE = 'filecluster-system';
const OPERATOR_SELECTOR = 'app.kubernetes.io/name=filecluster-operator';

export class OperatorDeployment implements Operators {
  private readonly cluster: Cluster;
  private lease = 'filecluster';

  constructor(cluster: Cluster) {
    this.cluster = cluster;
  }

  private async kubectl(args: string[]): Promise<string> {
    const r = await this.cluster.kubectl(args, { timeoutMs: 240_000 });
    if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${r.stderr.trim()}`);
    return r.stdout;
  }

  async start(): Promise<void> {
    const dir = path.join(REPO_ROOT, 'manifests');
    for (const file of readdirSync(dir)
      .filter((f) => f.endsWith('.yaml'))
      .sort()) {
      await this.kubectl(['apply', '--server-side', '--force-conflicts', '-f', path.join(dir, file)]);
    }
    const deployment = await kubectlJson<{ spec: { template: { spec: { containers: Array<{ env?: Array<{ name: string; value?: string }> }> } } } }>(this.cluster, [
      'get',
      'deployment',
      'filecluster',
      '-n',
      OPERATOR_NAMESPACE,
    ]);
    this.lease = deployment.spec.template.spec.containers[0]?.env?.find((e) => e.name === 'FC_LEASE_NAME')?.value ?? this.lease;
    await this.kubectl(['rollout', 'status', 'deployment/filecluster', '-n', OPERATOR_NAMESPACE, '--timeout=180s']);
  }

  async leader(): Promise<string | undefined> {
    return leaseHolder(this.cluster, OPERATOR_NAMESPACE, this.lease);
  }

  async identities(): Promise<string[]> {
    const pods = await kubectlJson<{ items: Array<{ metadata: { name: string; deletionTimestamp?: string } }> }>(this.cluster, [
      'get',
      'pods',
      '-n',
      OPERATOR_NAMESPACE,
      '-l',
      OPERATOR_SELECTOR,
    ]);
    return pods.items.filter((p) => !p.metadata.deletionTimestamp).map((p) => p.metadata.name);
  }

  async kill(identity: string, graceful = false): Promise<void> {
    const how = graceful ? [] : ['--grace-period=0', '--force'];
    await this.kubectl(['delete', 'pod', identity, '-n', OPERATOR_NAMESPACE, ...how, '--wait=false']);
  }

  async restore(): Promise<void> {
    await this.kubectl(['rollout', 'status', 'deployment/filecluster', '-n', OPERATOR_NAMESPACE, '--timeout=180s']);
  }

  private conn?: PodConnection;

  async endpoint(): Promise<string> {
    const leader = await this.leader();
    if (!leader) throw new Error('no leader');
    await this.conn?.close();
    this.conn = await this.cluster.reachPod(OPERATOR_NAMESPACE, leader, 8080);
    return this.conn.url;
  }

  async logs(): Promise<string> {
    const pods = await this.identities().catch(() => []);
    const logs = await Promise.all(
      pods.map(async (p) => `--- ${p}\n${(await this.cluster.logs(OPERATOR_NAMESPACE, p).catch(() => '')).split('\n').slice(-40).join('\n')}`),
    );
    return logs.join('\n');
  }

  async stop(): Promise<void> {
    await this.conn?.close();
    await this.cluster.kubectl(['delete', '-f', path.join(REPO_ROOT, 'manifests/03-operator.yaml'), '--ignore-not-found', '--wait=true']);
  }
}

async function leaseHolder(cluster: Cluster, namespace: string, name: string): Promise<string | undefined> {
  const r = await cluster.kubectl(['get', 'lease', name, '-n', namespace, '-o', 'jsonpath={.spec.holderIdentity}']);
  return r.code === 0 && r.stdout.trim() ? r.stdout.trim() : undefined;
}

/** URLs of pods' port 8080 as seen from here: the pod IP, or a port-forward where that is unreachable. */
export class PodAccess {
  private readonly cluster: Cluster;
  private readonly namespace: string;
  private readonly open = new Map<string, PodConnection>();

  constructor(cluster: Cluster, namespace: string) {
    this.cluster = cluster;
    this.namespace = namespace;
  }

  async url(pod: PodInfo): Promise<string> {
    const key = `${pod.name}/${pod.uid}/${pod.ip}`;
    let conn = this.open.get(key);
    if (!conn) {
      conn = await this.cluster.reachPod(this.namespace, pod.name, 8080);
      this.open.set(key, conn);
    }
    return conn.url;
  }

  async close(): Promise<void> {
    await Promise.all([...this.open.values()].map((c) => c.close()));
    this.open.clear();
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
  const list = await kubectlJson<{
    items: Array<{
      metadata: { name: string; uid: string; deletionTimestamp?: string };
      status: { podIP?: string; conditions?: Array<{ type: string; status: string }> };
    }>;
  }>(cluster, ['get', 'pods', '-n', namespace, '-l', `app.kubernetes.io/instance=${name}`]);
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

export async function peersOf(base: string, token: string): Promise<{ generation: number; peers: Array<{ id: string; url: string }> }> {
  const res = await fetch(`${base}/internal/peers`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(3000) });
  if (!res.ok) throw new Error(`GET ${base}/internal/peers: ${res.status}`);
  return (await res.json()) as { generation: number; peers: Array<{ id: string; url: string }> };
}

export async function putFile(base: string, file: string, content: string, ack: 'local' | 'majority' | 'all' = 'local'): Promise<number> {
  const res = await fetch(`${base}/files/${file}`, {
    method: 'PUT',
    headers: { 'content-type': 'text/plain', 'x-filecluster-ack': ack },
    body: content,
    signal: AbortSignal.timeout(15_000),
  });
  await res.arrayBuffer();
  return res.status;
}

export async function getFile(base: string, file: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`${base}/files/${file}`, { signal: AbortSignal.timeout(5000) });
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

/**
 * Waits until the FileCluster has `n` pods, all Ready, its status counts them Ready and holding the peer
 * list, its Ready condition is True, and `holds` agrees; on a timeout the error carries the status.
 */
export async function convergedPods(
  cluster: Cluster,
  namespace: string,
  name: string,
  n: number,
  wait: { timeoutMs: number; what: string; holds: (status: FileClusterStatusView, pods: PodInfo[]) => Promise<boolean> },
): Promise<PodInfo[]> {
  return waitFor(
    async () => {
      const status = await fileClusterStatus(cluster, namespace, name);
      const pods = await clusterPods(cluster, namespace, name);
      if (pods.length !== n || !pods.every((p) => p.ready)) return false;
      if (status.readyReplicas !== n || status.peersAcknowledged !== n || status.peers?.length !== n) return false;
      if (condition(status, 'Ready')?.status !== 'True') return false;
      return (await wait.holds(status, pods)) && pods;
    },
    wait.timeoutMs,
    wait.what,
    500,
  ).catch(async (err: unknown) => {
    const status = await fileClusterStatus(cluster, namespace, name).catch(() => ({}));
    throw new Error(`${(err as Error).message}\nstatus: ${JSON.stringify(status)}`);
  });
}

/** The reasons of the Events recorded on a FileCluster, space-separated. */
export async function fileClusterEventReasons(cluster: Cluster, namespace: string, name: string): Promise<string> {
  const r = await cluster.kubectl([
    'get',
    'events',
    '-n',
    namespace,
    '--field-selector',
    `involvedObject.name=${name},involvedObject.kind=FileCluster`,
    '-o',
    'jsonpath={.items[*].reason}',
  ]);
  if (r.code !== 0) throw new Error(`kubectl get events for ${namespace}/${name}: ${r.stderr}`);
  return r.stdout;
}

export function fileClusterYaml(name: string, spec: Record<string, unknown>): string {
  return JSON.stringify({ apiVersion: 'filecluster.dev/v1alpha1', kind: 'FileCluster', metadata: { name }, spec });
}
