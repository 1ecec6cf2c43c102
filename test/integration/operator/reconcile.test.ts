// The FileCluster reconciler called directly, as kubebuilder's suite tests call Reconcile, against the
// harness's real API server (no process nodes: pods stay Pending, which these cases do not need).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { API_VERSION, KIND, type FileCluster } from '../../../operator/src/api/v1alpha1/types.ts';
import { FileClusterReconciler } from '../../../operator/src/controllers/filecluster/reconcile.ts';
import { createMetrics } from '../../../operator/src/metrics.ts';
import { EventRecorder } from '../../../operator/src/runtime/events.ts';
import { Kube, RESOURCES, resourcePath } from '../../../operator/src/runtime/kube.ts';
import { startCluster, waitFor, type Cluster } from '../../harness/index.ts';

const CRD_FILE = join(resolve(import.meta.dirname, '../../..'), 'charts/filecluster/crds/fileclusters.filecluster.dev.yaml');

describe('FileCluster reconciler against a real API server', { timeout: 300_000 }, () => {
  let cluster: Cluster;
  let kube: Kube;
  let reconciler: FileClusterReconciler;
  let ns: string;

  before(async () => {
    cluster = await startCluster({ provider: 'local', nodes: 0 });
    await cluster.apply(readFileSync(CRD_FILE, 'utf8'));
    await waitFor(async () => (await cluster.kubectl(['get', 'fileclusters'])).code === 0, 60_000, 'the FileCluster CRD is served');
    ns = await cluster.createNamespace('reconcile');
    kube = new Kube(cluster.kubeClient());
    const log = pino({ level: 'silent' });
    reconciler = new FileClusterReconciler({
      kube,
      log,
      metrics: createMetrics(),
      events: new EventRecorder(kube, log, 'filecluster-operator', 'test'),
      // Nothing cached: the reconciler reads the token Secret live, and no pod runs.
      pods: () => [],
      secret: () => undefined,
      service: () => undefined,
      claims: () => [],
      membershipSeenAt: () => undefined,
      fileserverImage: 'filecluster/fileserver:0.1.0',
      push: { timeoutMs: 1000, attempts: 1 },
    });
  });

  after(async () => {
    await cluster?.close();
  });

  const path = (name: string) => resourcePath(RESOURCES.fileclusters, ns, name);
  const degraded = async (name: string) => (await kube.request<FileCluster>('GET', path(name))).status?.conditions?.find((c) => c.type === 'Degraded');

  it('reports a StatefulSet the API server rejects as Degraded/ApplyRejected, does not retry it, and recovers once the spec changes', async () => {
    // The CRD keeps tolerations as free-form objects; the StatefulSet's validation refuses this one.
    const fc = {
      apiVersion: API_VERSION,
      kind: KIND,
      metadata: { name: 'rejected', namespace: ns },
      spec: { replicas: 1, tolerations: [{ key: 'x', operator: 'Sometimes' }] },
    };
    await kube.request('POST', resourcePath(RESOURCES.fileclusters, ns), { body: fc });

    const first = await reconciler.reconcile(`${ns}/rejected`);
    assert.deepEqual(first, {}, 'a terminal error waits for a change instead of a requeue');
    const condition = await degraded('rejected');
    assert.equal(condition?.status, 'True');
    assert.equal(condition?.reason, 'ApplyRejected');
    assert.match(condition?.message ?? '', /Sometimes/);
    assert.equal(await kube.getIfExists(resourcePath(RESOURCES.statefulsets, ns, 'rejected')), undefined);

    await kube.mergePatch(path('rejected'), { spec: { tolerations: null } }, 'reconcile-test');
    const second = await reconciler.reconcile(`${ns}/rejected`);
    assert.ok(await kube.getIfExists(resourcePath(RESOURCES.statefulsets, ns, 'rejected')), 'the StatefulSet exists once the spec is valid');
    assert.notEqual((await degraded('rejected'))?.status, 'True');
    assert.ok(second.requeueAfterMs !== undefined, 'waiting for the pods is requeued as before');
  });
});
