// What the operator's suites against the harness's API server share: a cluster with the FileCluster CRD
// established and one namespace of their own, and the reconciler wired as the operator wires it, for
// tests that call it directly (as kubebuilder's suite tests call Reconcile).
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { pino, type Logger } from 'pino';
import { FileClusterReconciler, type ReconcilerDeps } from '../../operator/src/controllers/filecluster/reconcile.ts';
import { FIELD_MANAGER } from '../../operator/src/controllers/filecluster/names.ts';
import { createMetrics } from '../../operator/src/metrics.ts';
import { EventRecorder } from '../../operator/src/runtime/events.ts';
import { Kube } from '../../operator/src/runtime/kube.ts';
import { CRD_FILE } from '../../scripts/generate-crd.ts';
import { startCluster } from './index.ts';
import type { Cluster, KubectlResult, StartClusterOptions } from './types.ts';

export interface FileClusterSuite {
  /** Set by the suite's `before`. */
  readonly cluster: Cluster;
  /** The suite's namespace, set by its `before` and deleted by its `after`. */
  readonly ns: string;
  /** Silent unless FC_TEST_VERBOSE is set. */
  readonly log: Logger;
  kubectl(args: string[], input?: string): Promise<KubectlResult>;
  /** Runs kubectl, fails the test unless it exits 0, and returns its stdout. */
  ok(args: string[], input?: string): Promise<string>;
  /** Runs `fn` in the suite's `after`, before the namespace and the cluster go; the last one given runs first. */
  onTeardown(fn: () => unknown): void;
}

/** Applies the FileCluster CRD and waits until the API server serves it. */
export async function installCrd(cluster: Cluster): Promise<void> {
  for (const args of [
    ['apply', '--server-side', '--force-conflicts', '-f', CRD_FILE],
    ['wait', '--for=condition=Established', '--timeout=60s', 'crd/fileclusters.filecluster.dev'],
  ]) {
    const r = await cluster.kubectl(args);
    if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${r.stderr}`);
  }
}

/** Registers the suite's `before` (cluster, CRD, namespace `<prefix>-…`) and `after` in the calling describe. */
export function fileClusterSuite(namespacePrefix: string, options?: StartClusterOptions): FileClusterSuite {
  const state: { cluster?: Cluster; ns?: string } = {};
  const teardowns: Array<() => unknown> = [];
  const suite: FileClusterSuite = {
    get cluster() {
      assert.ok(state.cluster, 'the cluster is started in before()');
      return state.cluster;
    },
    get ns() {
      assert.ok(state.ns, 'the namespace is created in before()');
      return state.ns;
    },
    log: pino({ level: process.env['FC_TEST_VERBOSE'] ? 'debug' : 'silent' }),
    kubectl: (args, input) => suite.cluster.kubectl(args, input === undefined ? {} : { input }),
    async ok(args, input) {
      const r = await suite.kubectl(args, input);
      assert.equal(r.code, 0, `kubectl ${args.join(' ')}: ${r.stderr}`);
      return r.stdout;
    },
    onTeardown: (fn) => void teardowns.unshift(fn),
  };
  before(async () => {
    state.cluster = await startCluster(options);
    await installCrd(state.cluster);
    state.ns = await state.cluster.createNamespace(namespacePrefix);
  });
  after(async () => {
    for (const fn of teardowns) await fn();
    if (state.ns) await state.cluster?.deleteNamespace(state.ns).catch(() => {});
    await state.cluster?.close();
  });
  return suite;
}

/**
 * The reconciler with nothing cached (no pods, claims or Services; the token Secret read live) and the
 * operator's default image, unless `deps` says otherwise; `name` marks the Events it records.
 */
export function directReconciler(cluster: Cluster, log: Logger, name: string, deps: Partial<ReconcilerDeps> = {}): FileClusterReconciler {
  const kube = new Kube(cluster.kubeClient());
  return new FileClusterReconciler({
    kube,
    log,
    metrics: createMetrics(),
    events: new EventRecorder(kube, log, FIELD_MANAGER, name),
    pods: () => [],
    secret: () => undefined,
    service: () => undefined,
    claims: () => [],
    membershipSeenAt: () => undefined,
    fileserverImage: 'filecluster/fileserver:0.1.0',
    push: { timeoutMs: 1000, attempts: 1 },
    ...deps,
  });
}
