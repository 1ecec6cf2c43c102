// The FileCluster reconciler called directly, as kubebuilder's suite tests call Reconcile, against the
// harness's real API server (no process nodes: pods stay Pending, which these cases do not need).
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { API_VERSION, KIND, type FileCluster } from '../../../operator/src/api/v1alpha1/types.ts';
import type { FileClusterReconciler } from '../../../operator/src/controllers/filecluster/reconcile.ts';
import { Kube, RESOURCES, resourcePath } from '../../../operator/src/runtime/kube.ts';
import { directReconciler, fileClusterSuite } from '../../harness/filecluster-suite.ts';

describe('FileCluster reconciler against a real API server', { timeout: 300_000 }, () => {
  const suite = fileClusterSuite('reconcile', { provider: 'local', nodes: 0 });
  let kube: Kube;
  let reconciler: FileClusterReconciler;
  let ns: string;

  before(() => {
    ns = suite.ns;
    kube = new Kube(suite.cluster.kubeClient());
    // Nothing cached: the reconciler reads the token Secret live, and no pod runs.
    reconciler = directReconciler(suite.cluster, suite.log, 'test');
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
