// The operator mode's cluster under test: the harness's local Kubernetes cluster, two operator replicas
// with leader election (the e2e suite's process replicas) and one FileCluster in a namespace of its own,
// and the nemesis that acts on it: scale up and down through the FileCluster's spec, SIGKILL of the
// operator leader, a restart of the API server, pod deletion, kill -9 of a pod's file server (its node
// restarts it) and SIGSTOP / SIGCONT of a pod. An operator replica that exits (a leader that lost its
// Lease does) is started again, as its Deployment would. Healing ends every fault and waits until the FileCluster's status describes its pods
// and the pods converged.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CoreV1Api, type V1Pod } from '@kubernetes/client-node';
import type { FileCluster } from '../../operator/src/api/v1alpha1/types.ts';
import { SERVING_LABEL, podOrdinal, podUrl } from '../../operator/src/controllers/filecluster/names.ts';
import { OperatorProcesses, clusterToken, fileClusterYaml, kubectlJson, peersOf } from '../e2e/operator/support.ts';
import { installCrd } from '../harness/filecluster-suite.ts';
import { type Cluster, startCluster, waitFor } from '../harness/index.ts';
import { checkStatus, type ObservedFileCluster, type Violation } from './checker.ts';
import type { Endpoint } from './client.ts';
import type { FaultEvent, FaultLog } from './history.ts';
import { type ChaosTarget, type RunResult, runOn } from './run-schedule.ts';
import type { Step } from './schedule.ts';

const NAME = 'chaos';
const POD_POLL_MS = 200;
const STATUS_POLL_MS = 1_000;

export interface OperatorClusterOptions {
  /** The FileCluster's replicas at the start. */
  replicas: number;
  /** How long the new FileCluster gets to come up before the run gives up. */
  startTimeoutMs: number;
}

/** The local Kubernetes cluster that operator-mode runs share (each run gets a namespace of its own). */
export async function startKubernetes(): Promise<Cluster> {
  const cluster = await startCluster({ provider: 'local' });
  try {
    await installCrd(cluster);
  } catch (err) {
    await cluster.close();
    throw err;
  }
  return cluster;
}

type PodView = ObservedFileCluster['pods'][number] & { ordinal: number; deleting: boolean };

function viewOf(pod: V1Pod): PodView | undefined {
  const name = pod.metadata?.name ?? '';
  const ordinal = podOrdinal(NAME, name);
  const ip = pod.status?.podIP;
  if (ordinal === undefined || !ip) return undefined;
  return {
    name,
    ordinal,
    url: podUrl(ip),
    ready: (pod.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True'),
    serving: pod.metadata?.labels?.[SERVING_LABEL] === 'true',
    deleting: Boolean(pod.metadata?.deletionTimestamp),
  };
}

/** Signals a process that may have exited since it was listed. */
function signal(pid: number, sig: NodeJS.Signals): boolean {
  try {
    process.kill(pid, sig);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw err;
  }
}

export interface OperatorRunOptions {
  keys: number;
  /** The FileCluster's replicas at the start. */
  replicas: number;
  /** How long healing may take, for the status and for the pods' data each. */
  quiesceMs: number;
}

/** Runs one schedule on a new FileCluster (with its own operator replicas) in `k8s`. */
export async function runOperatorSchedule(k8s: Cluster, schedule: Step[], o: OperatorRunOptions): Promise<RunResult> {
  const target = await OperatorChaosCluster.start(k8s, { replicas: o.replicas, startTimeoutMs: 180_000 });
  try {
    return await runOn(target, schedule, o);
  } finally {
    await target.close();
  }
}

export class OperatorChaosCluster implements ChaosTarget {
  readonly events: FaultEvent[] = [];
  readonly faults: FaultLog = { isolated: [], alone: [], full: [], damaged: [] };
  private readonly k8s: Cluster;
  private readonly ns: string;
  private readonly operators: OperatorProcesses;
  private readonly core: CoreV1Api;
  private pods: PodView[] = [];
  private readonly podNames = new Set<string>();
  /** Frozen processes, by pod. */
  private readonly frozen = new Map<string, number[]>();
  private polling: Promise<void> | undefined;
  private closing = false;
  private replicaCount = 0;
  private token = '';
  /** The pods the last passing status check saw: the ones whose final state is read. */
  private healed: PodView[] = [];

  private constructor(k8s: Cluster, ns: string) {
    if (!k8s.local) throw new Error('the operator chaos mode freezes and kills pod processes, which needs the local provider');
    this.k8s = k8s;
    this.ns = ns;
    this.operators = new OperatorProcesses(k8s, ns);
    this.core = k8s.kubeClient().makeApiClient(CoreV1Api);
  }

  static async start(k8s: Cluster, o: OperatorClusterOptions): Promise<OperatorChaosCluster> {
    const c = new OperatorChaosCluster(k8s, await k8s.createNamespace('fc-chaos'));
    try {
      await c.operators.start();
      c.replicaCount = 2;
      await waitFor(() => c.operators.leader(), 60_000, 'an operator replica to take the Lease');
      const spec = { replicas: o.replicas, replication: { ackTimeoutMs: 1500, catchUpIntervalSeconds: 1, tombstoneRetentionSeconds: 86_400 } };
      await c.kubectl(['apply', '-n', c.ns, '-f', '-'], fileClusterYaml(NAME, spec));
      await waitFor(async () => (await c.k8s.kubectl(['get', 'secret', `${NAME}-token`, '-n', c.ns, '-o', 'name'])).code === 0, o.startTimeoutMs, 'the token Secret');
      c.token = await clusterToken(k8s, c.ns, `${NAME}-token`);
      c.polling = c.pollPods();
      const unhealthy = await c.waitHealthy(o.startTimeoutMs);
      if (unhealthy.length > 0) throw new Error(`the new FileCluster did not come up: ${unhealthy.map((v) => v.message).join('; ')}`);
    } catch (err) {
      await c.close();
      throw err;
    }
    return c;
  }

  private async kubectl(args: string[], input?: string): Promise<string> {
    const r = await this.k8s.kubectl(args, input === undefined ? {} : { input });
    if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${r.stderr.trim()}`);
    return r.stdout;
  }

  private async listPods(): Promise<PodView[]> {
    const list = await this.core.listNamespacedPod({ namespace: this.ns, labelSelector: `app.kubernetes.io/instance=${NAME}` });
    const views = list.items.map(viewOf).filter((v): v is PodView => v !== undefined);
    for (const v of views) this.podNames.add(v.name);
    return views.sort((a, b) => a.ordinal - b.ordinal);
  }

  /** Keeps `pods` current, so an operation goes out at once to the pods that exist then. */
  private async pollPods(): Promise<void> {
    while (!this.closing) {
      try {
        this.pods = await this.listPods();
      } catch (err) {
        // The API server may be briefly unavailable; the last listing stays until it answers.
        if (this.closing) return;
        this.events.push({ at: Number.NaN, step: { t: 'heal' }, effect: `pod listing failed: ${(err as Error).message}` });
      }
      await new Promise((r) => setTimeout(r, POD_POLL_MS));
    }
  }

  endpoints(): Endpoint[] {
    return this.pods.map((p) => ({ id: p.name, url: p.url }));
  }

  readable(): Endpoint[] {
    return this.healed.map((p) => ({ id: p.name, url: p.url }));
  }

  private processesOf(pod: string): number[] {
    return this.k8s
      .local!.processes()
      .filter((p) => p.namespace === this.ns && p.pod === pod)
      .map((p) => p.pid);
  }

  /** Starts a new replica for each that exited, as the operator's Deployment would. */
  private async replaceExitedOperators(): Promise<string[]> {
    const exited = [...this.operators.replicas.values()].filter((r) => r.process.exitCode !== null || r.process.signalCode !== null).map((r) => r.identity);
    for (const identity of exited) await this.operators.kill(identity);
    while (this.operators.replicas.size < 2) this.operators.spawn(`operator-${++this.replicaCount}`);
    return exited;
  }

  async apply(step: Step, at: number): Promise<void> {
    const exited = await this.replaceExitedOperators();
    if (exited.length > 0) this.events.push({ at, step: { t: 'heal' }, effect: `operator replicas ${exited.join(', ')} had exited; started new ones` });
    let effect = 'no-op';
    const pod = 'node' in step ? `${NAME}-${step.node}` : '';
    switch (step.t) {
      case 'scale':
        await this.kubectl(['scale', '-n', this.ns, `filecluster/${NAME}`, `--replicas=${step.replicas}`]);
        effect = `set spec.replicas to ${step.replicas}`;
        break;
      case 'kill-leader': {
        const leader = await this.operators.leader();
        if (leader && this.operators.replicas.has(leader)) {
          await this.operators.kill(leader);
          const next = `operator-${++this.replicaCount}`;
          this.operators.spawn(next);
          effect = `killed the leader ${leader} (SIGKILL), started ${next}`;
        }
        break;
      }
      case 'restart-api':
        await this.k8s.local!.restartApiServer();
        effect = 'restarted the API server';
        break;
      case 'delete-pod':
        if ((await this.kubectl(['delete', 'pod', pod, '-n', this.ns, '--wait=false', '--ignore-not-found'])).trim() !== '') effect = `deleted ${pod}`;
        break;
      case 'kill': {
        const killed = this.processesOf(pod).filter((pid) => signal(pid, 'SIGKILL'));
        this.frozen.delete(pod);
        if (killed.length > 0) effect = `killed ${pod}'s file server (SIGKILL)`;
        break;
      }
      case 'pause': {
        if (this.frozen.has(pod)) break;
        const stopped = this.processesOf(pod).filter((pid) => signal(pid, 'SIGSTOP'));
        if (stopped.length > 0) {
          this.frozen.set(pod, stopped);
          effect = `froze ${pod}`;
        }
        break;
      }
      case 'resume':
        if (this.thaw(pod)) effect = `thawed ${pod}`;
        break;
      default:
        effect = `not a fault of the operator mode: ${step.t}`;
    }
    this.events.push({ at, step, effect });
  }

  private thaw(pod: string): boolean {
    const pids = this.frozen.get(pod);
    if (!pids) return false;
    this.frozen.delete(pod);
    for (const pid of pids) signal(pid, 'SIGCONT');
    return true;
  }

  /** The FileCluster and its live pods, with the peer-list generation each pod holds. */
  private async observe(): Promise<ObservedFileCluster & { pods: PodView[] }> {
    const fc = await kubectlJson<FileCluster & { spec: { replicas: number } }>(this.k8s, ['get', 'filecluster', NAME, '-n', this.ns]);
    const pods = (await this.listPods()).filter((p) => !p.deleting);
    const withGenerations = await Promise.all(
      pods.map(async (p) => {
        const held = await peersOf(p.url, this.token).catch(() => undefined);
        return held ? { ...p, peerGeneration: held.generation } : p;
      }),
    );
    return { generation: fc.metadata.generation ?? 0, replicas: fc.spec.replicas, status: fc.status ?? {}, pods: withGenerations };
  }

  /** Waits until the status describes the pods; returns the last mismatch when that does not happen in time. */
  private async waitHealthy(timeoutMs: number): Promise<Violation[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const seen = await this.observe();
      const wrong = checkStatus(seen);
      if (wrong.length === 0) {
        this.healed = seen.pods;
        return [];
      }
      if (Date.now() > deadline) return wrong;
      await new Promise((r) => setTimeout(r, STATUS_POLL_MS));
    }
  }

  /** Whether every healed pod holds the same manifest and owes its peers nothing. */
  private async quiet(): Promise<boolean> {
    const auth = { authorization: `Bearer ${this.token}` };
    const answers = await Promise.all(
      this.healed.map(async (p) => {
        const digest = await (await fetch(`${p.url}/internal/digest`, { headers: auth, signal: AbortSignal.timeout(3000) })).text();
        const status = (await (await fetch(`${p.url}/internal/status`, { headers: auth, signal: AbortSignal.timeout(3000) })).json()) as {
          peers: Array<{ pendingChanges: number }>;
        };
        return { digest, owed: status.peers.reduce((sum, peer) => sum + peer.pendingChanges, 0) };
      }),
    );
    return answers.every((a) => a.digest === answers[0]!.digest && a.owed === 0);
  }

  /**
   * Thaws every pod and brings the operator back to two replicas; then the FileCluster's status must come
   * to describe its pods and the pods must converge, each within `timeoutMs`.
   */
  async heal(at: number, timeoutMs: number): Promise<Violation[]> {
    for (const pod of [...this.frozen.keys()]) this.thaw(pod);
    const exited = await this.replaceExitedOperators();
    this.events.push({ at, step: { t: 'heal' }, effect: `thawed every pod; two operator replicas${exited.length > 0 ? ` (${exited.join(', ')} had exited)` : ''}` });
    const status = await this.waitHealthy(timeoutMs);
    if (status.length > 0) return status;
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (await this.quiet().catch(() => false)) return [];
      await new Promise((r) => setTimeout(r, 250));
    }
    return [{ property: 'converged', message: `the healed pods did not converge with an empty backlog within ${timeoutMs} ms` }];
  }

  async logs(): Promise<Record<string, string[]>> {
    const out: Record<string, string[]> = {};
    for (const pod of this.podNames) out[pod] = (await this.k8s.logs(this.ns, pod).catch((err: Error) => `no log: ${err.message}`)).split('\n');
    for (const file of (await readdir(this.operators.dir)).filter((f) => f.endsWith('.log')))
      out[file.replace(/\.log$/, '')] = (await readFile(join(this.operators.dir, file), 'utf8')).split('\n');
    return out;
  }

  async close(): Promise<void> {
    this.closing = true;
    await this.polling;
    for (const pod of [...this.frozen.keys()]) this.thaw(pod);
    await this.operators.stop();
    await this.k8s.deleteNamespace(this.ns);
  }
}
