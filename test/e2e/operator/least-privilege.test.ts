// Least privilege, against the harness's real API server: the operator lists and caches only the
// Secrets it generated (a Secret a FileCluster names is read by name), its ServiceAccount may change
// only the serving label of the pods it manages (the chart's ValidatingAdmissionPolicy, as installed
// from manifests/), and its merge patches are recorded under its field manager.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { fileClusterSuite } from '../../harness/filecluster-suite.ts';
import { waitFor, type Cluster } from '../../harness/index.ts';
import { FileClusterController } from '../../../operator/src/controllers/filecluster/controller.ts';
import { FIELD_MANAGER, SERVING_LABEL } from '../../../operator/src/controllers/filecluster/names.ts';
import { createMetrics } from '../../../operator/src/metrics.ts';
import { EventRecorder } from '../../../operator/src/runtime/events.ts';
import { Kube, pathResource, RESOURCES, resourcePath, type RequestOptions } from '../../../operator/src/runtime/kube.ts';
import { REPO_ROOT, condition, fileClusterStatus, fileClusterYaml, kubectlJson } from './support.ts';

const OPERATOR_NAMESPACE = 'filecluster-system';

/** The operator's client, noting every request it makes for Secrets (path and query). */
class RecordingKube extends Kube {
  readonly secretRequests: string[] = [];
  override request<T>(method: Parameters<Kube['request']>[0], p: string, opts: RequestOptions = {}): Promise<T> {
    if (pathResource(p) === 'secrets') {
      const query = new URLSearchParams(Object.entries(opts.query ?? {}).flatMap(([k, v]): Array<[string, string]> => (v === undefined ? [] : [[k, String(v)]])));
      this.secretRequests.push(`${method} ${p}${query.size ? `?${query}` : ''}`);
    }
    return super.request<T>(method, p, opts);
  }
}

describe('least privilege', { timeout: 300_000 }, () => {
  let cluster: Cluster;
  let ns: string;
  const suite = fileClusterSuite('fc-privilege');
  const { log, ok } = suite;
  before(() => ({ cluster, ns } = suite));

  test('only the generated Secrets are listed and cached; a Secret a FileCluster names is read by name', async () => {
    await ok(['create', 'secret', 'generic', 'unrelated', '-n', ns, '--from-literal=token=not-for-the-operator']);
    await ok(['create', 'secret', 'generic', 'own-token', '-n', ns, '--from-literal=token=chosen-by-the-user']);
    const kube = new RecordingKube(cluster.kubeClient());
    const controller = new FileClusterController(kube, log, createMetrics(), new EventRecorder(kube, log, FIELD_MANAGER, 'privilege-test'), {
      namespaces: [ns],
      workers: 1,
      resyncMs: 300_000,
      relistMs: 600_000,
      watchdogMs: 120_000,
      fileserverImage: 'filecluster/fileserver:0.1.0',
      push: { timeoutMs: 1000, attempts: 1 },
    });
    try {
      await controller.startInformers();
      controller.startWorkers();
      // No node matches: nothing runs; the reconcile still needs the named Secret's token.
      await ok(
        ['apply', '-n', ns, '-f', '-'],
        fileClusterYaml('named', { replicas: 1, tokenSecretName: 'own-token', nodeSelector: { 'filecluster.dev/test': 'nowhere' } }),
      );
      await waitFor(
        async () => {
          const s = await fileClusterStatus(cluster, ns, 'named');
          return s.observedGeneration !== undefined && condition(s, 'Degraded')?.status === 'False';
        },
        60_000,
        'the FileCluster reconciled with the token of the Secret it names',
      );
      const lists = kube.secretRequests.filter(
        (r) => r.startsWith(`GET ${resourcePath(RESOURCES.secrets, ns)}`) && !r.startsWith(`GET ${resourcePath(RESOURCES.secrets, ns)}/`),
      );
      assert.ok(lists.length > 0, 'the generated Secrets are watched');
      for (const list of lists) assert.match(list, /labelSelector=app\.kubernetes\.io%2Fmanaged-by%3Dfilecluster-operator/, `an unfiltered list of Secrets: ${list}`);
      assert.ok(kube.secretRequests.includes(`GET ${resourcePath(RESOURCES.secrets, ns, 'own-token')}`), 'the named Secret is read by name');
      assert.ok(!kube.secretRequests.some((r) => r.includes('unrelated')));
    } finally {
      await controller.stopWorkers();
      await controller.stopInformers();
    }
  });

  describe('the operator\u2019s ServiceAccount and pods', () => {
    let asOperator: Kube;

    before(async () => {
      // As users install it: the namespace, the ServiceAccount, RBAC and the admission policy.
      await ok(['apply', '--server-side', '--force-conflicts', '-f', path.join(REPO_ROOT, 'manifests/00-namespace.yaml')]);
      await ok(['apply', '--server-side', '--force-conflicts', '-f', path.join(REPO_ROOT, 'manifests/02-rbac.yaml')]);
      const pod = (name: string, labels: Record<string, string>) => ({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name, labels, annotations: { note: 'kept' } },
        spec: { nodeSelector: { 'filecluster.dev/test': 'nowhere' }, containers: [{ name: 'c', image: 'filecluster/fileserver:0.1.0' }] },
      });
      await cluster.apply(pod('managed', { 'app.kubernetes.io/managed-by': 'filecluster-operator', 'app.kubernetes.io/instance': 'x', [SERVING_LABEL]: 'true' }), ns);
      await cluster.apply(pod('foreign', { app: 'someone-else' }), ns);
      // The operator's own credentials: a token of its ServiceAccount.
      const token = (await ok(['create', 'token', 'filecluster', '-n', OPERATOR_NAMESPACE, '--duration=1h'])).trim();
      const admin = cluster.kubeClient();
      const kc = new KubeConfig();
      kc.loadFromOptions({
        clusters: admin.clusters,
        users: [{ name: 'operator', token }],
        contexts: [{ name: 'operator', cluster: admin.getCurrentCluster()!.name, user: 'operator' }],
        currentContext: 'operator',
      });
      asOperator = new Kube(kc);
    });

    const patchAsOperator = (pod: string, body: unknown) => asOperator.mergePatch(resourcePath(RESOURCES.pods, ns, pod), body, FIELD_MANAGER);

    test('it may move the serving label of a pod it manages, under its field manager', async () => {
      await patchAsOperator('managed', { metadata: { labels: { [SERVING_LABEL]: 'false' } } });
      const pod = await kubectlJson<{ metadata: { labels: Record<string, string>; managedFields: Array<{ manager: string; operation: string; fieldsV1: unknown }> } }>(
        cluster,
        ['get', 'pod', 'managed', '-n', ns, '--show-managed-fields'],
      );
      assert.equal(pod.metadata.labels[SERVING_LABEL], 'false');
      const mine = pod.metadata.managedFields.find((f) => f.manager === FIELD_MANAGER && f.operation === 'Update');
      assert.ok(mine, `managers: ${pod.metadata.managedFields.map((f) => f.manager).join(', ')}`);
      assert.match(JSON.stringify(mine.fieldsV1), /filecluster\.dev\/serving/);
    });

    test('it may change nothing else: other labels, annotations, the spec, or pods it does not manage', async () => {
      const denied = async (pod: string, body: unknown, message: RegExp) => {
        const err = await patchAsOperator(pod, body).then(
          () => undefined,
          (e: unknown) => e,
        );
        assert.ok(err, `the operator changed ${pod}: ${JSON.stringify(body)}`);
        assert.match(String(err), /403|422/);
        assert.match(String(err), message);
      };
      // The policy takes effect once the API server has loaded it (a new value each try: an unchanged
      // label would pass it).
      await waitFor(
        async () =>
          patchAsOperator('managed', { metadata: { labels: { probe: String(Date.now()) } } }).then(
            () => false,
            (e: unknown) => /filecluster-pod-updates/.test(String(e)),
          ),
        30_000,
        'the admission policy to deny the operator another label',
      );
      await denied('managed', { metadata: { labels: { 'app.kubernetes.io/instance': 'y' } } }, /only the filecluster\.dev\/serving label/);
      await denied('managed', { metadata: { labels: { [SERVING_LABEL]: 'maybe' } } }, /to "true" or "false"/);
      await denied('managed', { metadata: { annotations: { note: 'changed' } } }, /only the filecluster\.dev\/serving label/);
      // An image change, the one spec change pods allow (a strategic merge patch keeps the other fields).
      const image = await asOperator
        .request('PATCH', resourcePath(RESOURCES.pods, ns, 'managed'), {
          body: { spec: { containers: [{ name: 'c', image: 'somewhere/else:1' }] } },
          contentType: 'application/strategic-merge-patch+json',
        })
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      assert.match(String(image), /only the filecluster\.dev\/serving label/, 'the operator changed a pod\u2019s image');
      await denied('foreign', { metadata: { labels: { [SERVING_LABEL]: 'false' } } }, /only the pods it manages/);
      const managed = await kubectlJson<{
        metadata: { labels: Record<string, string>; annotations: Record<string, string> };
        spec: { containers: Array<{ image: string }> };
      }>(cluster, ['get', 'pod', 'managed', '-n', ns]);
      assert.equal(managed.metadata.labels['app.kubernetes.io/instance'], 'x');
      assert.equal(managed.metadata.annotations['note'], 'kept');
      assert.equal(managed.spec.containers[0]!.image, 'filecluster/fileserver:0.1.0');
      // Everyone else is untouched by the policy.
      await ok(['label', 'pod', 'managed', '-n', ns, 'team=storage']);
    });
  });
});
