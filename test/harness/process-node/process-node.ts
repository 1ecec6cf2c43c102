/**
 * A process node: a Kubernetes Node whose pods run as local processes (not a kubelet). It registers
 * the Node with capacity and a Ready condition, renews its Lease in kube-node-lease, watches the pods
 * bound to it and hands each to a PodWorker.
 */
import os from 'node:os';
import { Informer, KubeError, type KubeObject } from '../kube-rest.ts';
import { PodWorker, type NodeContext } from './pod-worker.ts';

const LEASE_SECONDS = 40;
const LEASE_RENEW_MS = 10_000;
const STATUS_REFRESH_MS = 60_000;

function microTime(date = new Date()): string {
  return date.toISOString().replace(/Z$/, '000Z');
}

function seconds(date = new Date()): string {
  return date.toISOString().replace(/\.\d+Z$/, 'Z');
}

export class ProcessNode {
  readonly name: string;
  private readonly ctx: NodeContext;
  private readonly kubeletVersion: string;
  private readonly workers = new Map<string, PodWorker>();
  private informer: Informer | undefined;
  private leaseTimer: NodeJS.Timeout | undefined;
  private statusTimer: NodeJS.Timeout | undefined;
  private nodeUid = '';

  constructor(ctx: NodeContext, kubeletVersion: string) {
    this.ctx = ctx;
    this.name = ctx.nodeName;
    this.kubeletVersion = kubeletVersion;
  }

  private nodeStatus(): Record<string, unknown> {
    const now = seconds();
    const capacity = {
      cpu: String(os.availableParallelism()),
      memory: `${Math.floor(os.totalmem() / 1024)}Ki`,
      pods: '110',
      'ephemeral-storage': '100Gi',
    };
    const condition = (type: string, status: string, reason: string, message: string) => ({
      type,
      status,
      reason,
      message,
      lastHeartbeatTime: now,
      lastTransitionTime: this.startedAt,
    });
    return {
      capacity,
      allocatable: capacity,
      conditions: [
        condition('MemoryPressure', 'False', 'ProcessNodeHasSufficientMemory', 'process node has sufficient memory available'),
        condition('DiskPressure', 'False', 'ProcessNodeHasNoDiskPressure', 'process node has no disk pressure'),
        condition('PIDPressure', 'False', 'ProcessNodeHasSufficientPID', 'process node has sufficient PID available'),
        condition('Ready', 'True', 'ProcessNodeReady', 'process node is posting ready status'),
      ],
      addresses: [
        { type: 'InternalIP', address: this.ctx.hostIP },
        { type: 'Hostname', address: this.name },
      ],
      daemonEndpoints: { kubeletEndpoint: { Port: 0 } },
      nodeInfo: {
        machineID: '',
        systemUUID: '',
        bootID: '',
        kernelVersion: os.release(),
        osImage: `${os.type()} (process node)`,
        containerRuntimeVersion: `process-node://${process.versions.node}`,
        kubeletVersion: this.kubeletVersion,
        kubeProxyVersion: '',
        operatingSystem: 'linux',
        architecture: process.arch === 'x64' ? 'amd64' : process.arch,
      },
    };
  }

  private readonly startedAt = seconds();

  async start(): Promise<void> {
    const { rest } = this.ctx;
    const existing = await rest.find<KubeObject>(`/api/v1/nodes/${this.name}`);
    const node =
      existing ??
      (await rest.post<KubeObject>('/api/v1/nodes', {
        apiVersion: 'v1',
        kind: 'Node',
        metadata: {
          name: this.name,
          labels: {
            'kubernetes.io/hostname': this.name,
            'kubernetes.io/os': 'linux',
            'kubernetes.io/arch': process.arch === 'x64' ? 'amd64' : process.arch,
            'node.kubernetes.io/instance-type': 'process-node',
          },
        },
        spec: {},
      }));
    this.nodeUid = node.metadata.uid ?? '';
    await this.refreshStatus();
    await this.renewLease();
    this.leaseTimer = setInterval(() => void this.renewLease().catch((err) => this.ctx.log(`lease ${this.name}: ${(err as Error).message}`)), LEASE_RENEW_MS);
    this.statusTimer = setInterval(
      () => void this.refreshStatus().catch((err) => this.ctx.log(`node status ${this.name}: ${(err as Error).message}`)),
      STATUS_REFRESH_MS,
    );
    this.informer = new Informer(
      rest,
      `/api/v1/pods?fieldSelector=${encodeURIComponent(`spec.nodeName=${this.name}`)}`,
      (pods) => this.reconcile(pods),
      (err) => this.ctx.log(`node ${this.name} pod watch: ${(err as Error).message}`),
      2000,
    );
    this.informer.start();
  }

  private async refreshStatus(): Promise<void> {
    await this.ctx.rest.patch(`/api/v1/nodes/${this.name}/status`, { status: this.nodeStatus() }, 'strategic');
  }

  private async renewLease(): Promise<void> {
    const path = `/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/${this.name}`;
    const spec = { holderIdentity: this.name, leaseDurationSeconds: LEASE_SECONDS, renewTime: microTime() };
    try {
      await this.ctx.rest.patch(path, { spec });
    } catch (err) {
      if (!(err instanceof KubeError && err.status === 404)) throw err;
      await this.ctx.rest.post('/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases', {
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: { name: this.name, ownerReferences: [{ apiVersion: 'v1', kind: 'Node', name: this.name, uid: this.nodeUid }] },
        spec,
      });
    }
  }

  private async reconcile(pods: KubeObject[]): Promise<void> {
    const seen = new Set<string>();
    for (const pod of pods) {
      const uid = pod.metadata.uid!;
      seen.add(uid);
      let worker = this.workers.get(uid);
      if (!worker) {
        const phase = pod['status']?.phase;
        if (phase === 'Succeeded' || phase === 'Failed') continue;
        worker = new PodWorker(this.ctx, pod);
        this.workers.set(uid, worker);
      }
      void worker.reconcile(pod);
    }
    for (const [uid, worker] of this.workers) {
      if (seen.has(uid)) continue;
      // Deleted from the API (e.g. force-deleted): stop whatever still runs, report nothing.
      this.workers.delete(uid);
      worker.gone = true;
      void worker.terminate(false);
    }
  }

  /** Pods this node runs (those not yet removed). */
  pods(): PodWorker[] {
    return [...this.workers.values()];
  }

  /** Stops watching and kills every container (the cluster is going away; pod objects stay). */
  async stop(graceMs = 2000): Promise<void> {
    clearInterval(this.leaseTimer);
    clearInterval(this.statusTimer);
    await this.informer?.stop();
    await Promise.all(
      [...this.workers.values()].map((worker) => {
        worker.gone = true;
        worker.pod.metadata.deletionGracePeriodSeconds = Math.ceil(graceMs / 1000);
        return worker.terminate(false);
      }),
    );
    this.workers.clear();
  }
}
