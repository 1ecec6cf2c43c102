import type { KubernetesObject, V1PersistentVolumeClaim, V1Pod, V1Secret } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { KIND, type FileCluster } from '../../api/v1alpha1/types.ts';
import type { OperatorMetrics } from '../../metrics.ts';
import type { EventRecorder } from '../../runtime/events.ts';
import { ResilientInformer } from '../../runtime/informer.ts';
import { RESOURCES, type Kube } from '../../runtime/kube.ts';
import { runWorkers, spreadOver, WorkQueue } from '../../runtime/workqueue.ts';
import { FIELD_MANAGER } from './names.ts';
import { membershipFingerprint } from './membership.ts';
import { FileClusterReconciler } from './reconcile.ts';
import { fileClusterChangeKey, slimClaim, slimFileCluster, slimOwned, slimPod, slimSecret } from './slim.ts';

export interface ControllerOptions {
  namespaces: string[];
  workers: number;
  resyncMs: number;
  relistMs: number;
  watchdogMs: number;
  fileserverImage: string;
  push: { timeoutMs: number; attempts: number };
}

const MANAGED = `app.kubernetes.io/managed-by=${FIELD_MANAGER}`;
/** Data claims carry the claim template's labels, which cannot change on an existing StatefulSet. */
const CLAIMS = 'app.kubernetes.io/name=filecluster';

/**
 * Informers on FileClusters and what they own feed one work queue keyed by FileCluster. Informers run
 * from start-up on every replica (so a new leader has a warm cache); workers run only while leading.
 */
export class FileClusterController {
  readonly fileclusters: ResilientInformer<FileCluster & KubernetesObject>;
  private readonly pods: ResilientInformer<V1Pod>;
  private readonly secrets: ResilientInformer<V1Secret>;
  private readonly statefulsets: ResilientInformer<KubernetesObject>;
  private readonly services: ResilientInformer<KubernetesObject>;
  private readonly claims: ResilientInformer<V1PersistentVolumeClaim>;
  private readonly log: Logger;
  private readonly opts: ControllerOptions;
  private readonly metrics: OperatorMetrics;
  private readonly reconciler: FileClusterReconciler;
  private queue?: WorkQueue;
  private workers?: Promise<void>;
  private resync?: NodeJS.Timeout;
  /** pod uid -> what its membership depends on, to tell membership changes from other updates. */
  private readonly podMembership = new Map<string, string>();
  /** FileCluster uid -> fileClusterChangeKey, to leave status-only updates alone. */
  private readonly fileClusterChanges = new Map<string, string>();
  /** key -> when a membership change of it was first seen and not yet reconciled (for the log's timings). */
  private readonly membershipSeenAt = new Map<string, number>();

  constructor(kube: Kube, log: Logger, metrics: OperatorMetrics, events: EventRecorder, opts: ControllerOptions) {
    this.log = log;
    this.opts = opts;
    this.metrics = metrics;
    const informerOpts = { namespaces: opts.namespaces, relistMs: opts.relistMs, watchdogMs: opts.watchdogMs };
    // Each cache keeps only what is read from it (see slim.ts).
    this.fileclusters = new ResilientInformer(kube, log, { ...informerOpts, resource: RESOURCES.fileclusters, transform: slimFileCluster });
    this.pods = new ResilientInformer(kube, log, { ...informerOpts, resource: RESOURCES.pods, labelSelector: MANAGED, transform: slimPod });
    // Only the Secrets the operator generated: a Secret a FileCluster names is read with a GET when
    // reconciled, so no other Secret of the watched namespaces (nor its data) is ever listed or cached.
    this.secrets = new ResilientInformer(kube, log, { ...informerOpts, resource: RESOURCES.secrets, labelSelector: MANAGED, transform: slimSecret });
    this.statefulsets = new ResilientInformer<KubernetesObject>(kube, log, {
      ...informerOpts,
      resource: RESOURCES.statefulsets,
      labelSelector: MANAGED,
      transform: slimOwned,
    });
    this.services = new ResilientInformer<KubernetesObject>(kube, log, { ...informerOpts, resource: RESOURCES.services, labelSelector: MANAGED, transform: slimOwned });
    this.claims = new ResilientInformer(kube, log, { ...informerOpts, resource: RESOURCES.persistentvolumeclaims, labelSelector: CLAIMS, transform: slimClaim });

    this.fileclusters.on((type, fc) => {
      const uid = fc.metadata?.uid ?? '';
      const key = fileClusterChangeKey(fc);
      if (type === 'update' && this.fileClusterChanges.get(uid) === key) return;
      if (type === 'delete') this.fileClusterChanges.delete(uid);
      else this.fileClusterChanges.set(uid, key);
      this.enqueue(fc.metadata?.namespace, fc.metadata?.name);
    });
    this.pods.on((type, pod) => {
      const ns = pod.metadata?.namespace;
      const cluster = pod.metadata?.labels?.['app.kubernetes.io/instance'];
      // A change of what membership is decided on (Ready, IP, terminating, restarts) is pushed ahead of
      // the queue: every pod of the cluster waits for its new peer list. Other pod updates wait in line.
      const uid = pod.metadata?.uid ?? '';
      const seen = this.podMembership.get(uid);
      const now = type === 'delete' ? undefined : membershipFingerprint(pod);
      if (now === undefined) this.podMembership.delete(uid);
      else this.podMembership.set(uid, now);
      if (seen !== now && ns && cluster) {
        const key = `${ns}/${cluster}`;
        if (this.queue && !this.membershipSeenAt.has(key)) this.membershipSeenAt.set(key, Date.now());
        this.queue?.addUrgent(key);
      } else this.enqueue(ns, cluster);
    });
    for (const inf of [this.statefulsets, this.services]) inf.on((_t, obj) => this.enqueueOwner(obj));
    this.claims.on((_t, claim) => this.enqueue(claim.metadata?.namespace, claim.metadata?.labels?.['app.kubernetes.io/instance']));
    this.secrets.on((_t, secret) => this.enqueueOwner(secret));

    this.reconciler = new FileClusterReconciler({
      kube,
      log,
      metrics,
      events,
      pods: (ns, cluster) => this.pods.list(ns).filter((p) => p.metadata?.labels?.['app.kubernetes.io/instance'] === cluster),
      claims: (ns, cluster) => this.claims.list(ns).filter((c) => c.metadata?.labels?.['app.kubernetes.io/instance'] === cluster),
      secret: (ns, name) => this.secrets.get(name, ns),
      service: (ns, name) => this.services.get(name, ns),
      membershipSeenAt: (key) => {
        const at = this.membershipSeenAt.get(key);
        this.membershipSeenAt.delete(key);
        return at;
      },
      fileserverImage: opts.fileserverImage,
      push: opts.push,
    });
  }

  private informers(): Array<ResilientInformer<KubernetesObject>> {
    return [this.fileclusters, this.pods, this.secrets, this.statefulsets, this.services, this.claims] as Array<ResilientInformer<KubernetesObject>>;
  }

  get synced(): boolean {
    return this.informers().every((i) => i.synced);
  }

  /** Age of the quietest watch; the watchdog replaces any beyond its limit, so this stays bounded. */
  get watchAgeMs(): number {
    return Math.max(...this.informers().map((i) => i.lastActivityAgeMs));
  }

  async startInformers(): Promise<void> {
    await Promise.all(this.informers().map((i) => i.start()));
  }

  async stopInformers(): Promise<void> {
    await Promise.all(this.informers().map((i) => i.stop()));
  }

  private enqueue(namespace: string | undefined, name: string | undefined): void {
    if (namespace && name) this.queue?.add(`${namespace}/${name}`);
  }

  private enqueueOwner(obj: KubernetesObject): void {
    const owner = obj.metadata?.ownerReferences?.find((o) => o.kind === KIND && o.controller);
    if (owner) this.enqueue(obj.metadata?.namespace, owner.name);
  }

  /** Starts the workers (on becoming leader): every known FileCluster is queued once. */
  startWorkers(): void {
    if (this.queue) return;
    const queue = new WorkQueue({ onDepth: (d) => this.metrics.workqueueDepth.set(d) });
    this.queue = queue;
    // Decisions need complete caches (an empty pod cache would look like a cluster without members):
    // keys collect in the queue until every informer has listed once.
    this.workers = this.untilSynced(queue).then((live) => {
      if (!live) return;
      for (const fc of this.fileclusters.list()) this.enqueue(fc.metadata.namespace, fc.metadata.name);
      return runWorkers(
        queue,
        this.opts.workers,
        (key) => this.reconciler.reconcile(key),
        (key, err, retryInMs) => this.log.error({ cluster: key, err: err instanceof Error ? err.message : String(err), retryInMs }, 'reconcile failed'),
      );
    });
    // The safety net: every FileCluster is reconciled at least this often even if no event arrives,
    // spread over the period. Queued at once, every FileCluster's resync (two GETs, the pods'
    // re-verification) would keep all workers and the API server busy in one burst, and a membership
    // change arriving then would wait in it.
    this.resync = setInterval(() => {
      const keys = this.fileclusters.list().map((fc) => `${fc.metadata.namespace}/${fc.metadata.name}`);
      for (const [i, delay] of spreadOver(keys.length, this.opts.resyncMs).entries()) queue.addAfter(keys[i]!, delay);
    }, this.opts.resyncMs);
    this.resync.unref();
  }

  private async untilSynced(queue: WorkQueue): Promise<boolean> {
    while (!this.synced) {
      if (this.queue !== queue) return false;
      await new Promise((r) => setTimeout(r, 100));
    }
    return this.queue === queue;
  }

  /** Stops the workers (on losing leadership or shutdown) and waits for in-flight reconciles. */
  async stopWorkers(): Promise<void> {
    if (!this.queue) return;
    if (this.resync) clearInterval(this.resync);
    this.queue.shutDown();
    this.queue = undefined;
    this.membershipSeenAt.clear();
    this.metrics.workqueueDepth.set(0);
    await this.workers;
  }
}
