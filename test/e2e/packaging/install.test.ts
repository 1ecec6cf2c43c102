// The chart and the plain manifests against a real API server (test/harness): every rendered object
// passes a server-side dry run, `kubectl apply -f manifests/` installs a running operator, and
// `helm install` brings up an operator that reconciles a FileCluster, whose live /metrics carry every
// operator metric the dashboard and the alerts name.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Cluster, startCluster, waitFor } from '../../harness/index.ts';
import { ProcessSupervisor, freePort, removeDir } from '../../harness/processes.ts';
import { PROMETHEUS_HINT, PrometheusServer, checkQuery, declaredFamilies } from '../../integration/packaging/prometheus-server.ts';
import { dashboardQueries, isOperatorMetric, ownLintFindings, ruleQueries, selectors, substituteVariables } from '../../integration/packaging/promql.ts';
import {
  ALERTS_FILE,
  ALL_FEATURES_VALUES,
  CHART,
  CRD_FILE,
  REPO,
  helmBinary,
  helmTemplateText,
  parseObjects,
  requireCommand,
  runAsync,
} from '../../integration/packaging/support.ts';

const STAND_IN_CRDS = join(import.meta.dirname, 'fixtures/standin-prometheus-operator-crds.yaml');
const CRD_NAME = 'fileclusters.filecluster.dev';
const STAND_IN_CRD_NAMES = ['servicemonitors.monitoring.coreos.com', 'podmonitors.monitoring.coreos.com', 'prometheusrules.monitoring.coreos.com'];

let cluster: Cluster;

async function kubectl(args: string[], input?: string): Promise<string> {
  const result = await cluster.kubectl(args, input === undefined ? {} : { input });
  if (result.code !== 0) throw new Error(`kubectl ${args.join(' ')} exited ${result.code}: ${result.stderr}\n${await cluster.diagnostics()}`);
  return result.stdout;
}

/** Applies the YAML with --dry-run=server and returns the objects the API server accepted. */
async function serverDryRun(yaml: string): Promise<{ code: number; accepted: string[]; stderr: string }> {
  const result = await cluster.kubectl(['apply', '--dry-run=server', '--server-side', '--field-manager=packaging-test', '-f', '-'], { input: yaml });
  const accepted = result.stdout.split('\n').filter((l) => / serverside-applied \(server dry run\)$/.test(l));
  return { code: result.code, accepted, stderr: result.stderr };
}

async function operatorLogs(namespace: string): Promise<string> {
  const pods = await cluster.kubectl(['get', 'pods', '-n', namespace, '-l', 'app.kubernetes.io/component=operator', '-o', 'jsonpath={.items[*].metadata.name}']);
  const logs = await Promise.all(pods.stdout.split(' ').filter(Boolean).map(async (pod) => `--- ${pod}\n${(await cluster.logs(namespace, pod)).slice(-3000)}`));
  return logs.join('\n');
}

const describeObject = (o: { kind: string; metadata: { name: string } }): string => `${o.kind.toLowerCase()}/${o.metadata.name}`;

async function helm(args: string[]): Promise<string> {
  const result = await runAsync(helmBinary(), [...args, '--kubeconfig', cluster.kubeconfigPath], { timeoutMs: 300_000 });
  if (result.code !== 0) throw new Error(`helm ${args.join(' ')} exited ${result.code}: ${result.stdout}${result.stderr}`);
  return result.stdout;
}

describe('packaging on a real API server', { timeout: 420_000 }, () => {
  before(async () => {
    cluster = await startCluster();
    await kubectl(['apply', '--server-side', '-f', CRD_FILE]);
    await kubectl(['wait', '--for=condition=Established', '--timeout=60s', `crd/${CRD_NAME}`]);
  });

  after(async () => {
    await cluster?.close();
  });

  it('accepts every object of the default and the watch-namespaces renders (server-side dry run)', async () => {
    const ns = await cluster.createNamespace('fc-dry');
    const apps = await cluster.createNamespace('fc-dry-apps');
    for (const set of [[], [`watchNamespaces={${apps}}`]]) {
      const yaml = helmTemplateText({ namespace: ns, release: 'dry', set });
      const objects = parseObjects(yaml);
      const result = await serverDryRun(yaml);
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.accepted.length, objects.length, `accepted: ${result.accepted.join(', ')}; rendered: ${objects.map(describeObject).join(', ')}`);
    }
  });

  it('accepts every object of the all-features render, with stand-in Prometheus Operator CRDs', async (t) => {
    // The test cluster has no Prometheus Operator: the ServiceMonitor, PodMonitor and PrometheusRule are
    // checked against the stand-in CRDs of fixtures/ (strict field validation), the rest against the
    // real built-in and FileCluster schemas. A cluster that has the real CRDs keeps and uses them.
    const existing = await cluster.kubectl(['get', 'crd', ...STAND_IN_CRD_NAMES, '-o', 'name']);
    if (existing.stdout.trim().split('\n').filter(Boolean).length < STAND_IN_CRD_NAMES.length) {
      await kubectl(['apply', '--server-side', '-f', STAND_IN_CRDS]);
      t.after(() => cluster.kubectl(['delete', 'crd', '-l', 'filecluster.dev/test-stand-in=true', '--wait=false']));
    }
    await kubectl(['wait', '--for=condition=Established', '--timeout=60s', ...STAND_IN_CRD_NAMES.map((n) => `crd/${n}`)]);
    const ns = await cluster.createNamespace('fc-all');
    const apps = [await cluster.createNamespace('fc-all-a'), await cluster.createNamespace('fc-all-b')];
    const set = [`watchNamespaces={${apps.join(',')}}`, `sample.namespace=${apps[0]}`];
    const yaml = helmTemplateText({ namespace: ns, release: 'all', values: [ALL_FEATURES_VALUES], set });
    const objects = parseObjects(yaml);
    assert.deepEqual(
      [...new Set(objects.map((o) => o.kind))].sort(),
      [
        'ConfigMap', 'Deployment', 'FileCluster', 'NetworkPolicy', 'PodMonitor', 'PrometheusRule', 'Role', 'RoleBinding', 'Service', 'ServiceAccount', 'ServiceMonitor',
        'ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicyBinding',
      ],
    );
    const result = await serverDryRun(yaml);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.accepted.length, objects.length, `accepted: ${result.accepted.join(', ')}`);

    // The dry run has teeth: the real FileCluster schema and the stand-ins reject bad objects.
    const badSample = await serverDryRun(helmTemplateText({ namespace: ns, release: 'all', values: [ALL_FEATURES_VALUES], set: [...set, 'sample.spec.replicas=0'] }));
    assert.notEqual(badSample.code, 0);
    assert.match(badSample.stderr, /spec\.replicas/);
    const misspelt = objects.find((o) => o.kind === 'PodMonitor')!;
    const badMonitor = await serverDryRun(JSON.stringify({ ...misspelt, spec: { ...(misspelt['spec'] as object), podMetricEndpoints: [] } }));
    assert.notEqual(badMonitor.code, 0);
    assert.match(badMonitor.stderr, /\.spec\.podMetricEndpoints: field not declared in schema/);
  });

  it('installs a running operator with `kubectl apply -f manifests/` alone', async () => {
    await kubectl(['apply', '-f', join(REPO, 'manifests')]);
    try {
      await kubectl(['rollout', 'status', '--timeout=180s', '-n', 'filecluster-system', 'deployment/filecluster']);
      const holder = await waitFor(async () => {
        const r = await cluster.kubectl(['get', 'lease', 'filecluster', '-n', 'filecluster-system', '-o', 'jsonpath={.spec.holderIdentity}']);
        return r.code === 0 && r.stdout.startsWith('filecluster-') ? r.stdout : undefined;
      }, 60_000, 'the operator to take its Lease');
      const pods = (await kubectl(['get', 'pods', '-n', 'filecluster-system', '-l', 'app.kubernetes.io/component=operator', '-o', 'jsonpath={.items[*].metadata.name}'])).split(' ');
      assert.equal(pods.length, 2);
      assert.ok(pods.includes(holder), `lease holder ${holder} is one of ${pods.join(', ')}`);
    } finally {
      // The next test installs the chart's operator; two operators watching everything would fight.
      await kubectl(['delete', '-n', 'filecluster-system', 'deployment/filecluster', '--wait=true', '--timeout=120s']);
      await kubectl(['delete', '-f', join(REPO, 'manifests/02-rbac.yaml'), '-f', join(REPO, 'manifests/03-operator.yaml'), '--ignore-not-found', '--wait=true', '--timeout=120s']);
      await kubectl(['delete', '-f', join(REPO, 'manifests/00-namespace.yaml'), '--wait=false']);
    }
  });

  it('helm install brings up an operator that reconciles a FileCluster, with the operator metrics the dashboard uses', async (t) => {
    const ns = await cluster.createNamespace('fc-helm');
    const apps = await cluster.createNamespace('fc-helm-apps');
    try {
      await helm(['install', 'e2e', CHART, '--namespace', ns, '--set', `watchNamespaces={${apps}}`, '--wait', '--timeout', '120s']);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${await operatorLogs(ns)}`);
    }
    const fc = {
      apiVersion: 'filecluster.dev/v1alpha1',
      kind: 'FileCluster',
      metadata: { name: 'packaged', namespace: apps },
      spec: { replicas: 3, storage: { size: '64Mi' } },
    };
    await cluster.apply(fc, apps);
    const ready = await cluster.kubectl(['wait', '--for=condition=Ready', '--timeout=180s', '-n', apps, 'filecluster/packaged']);
    if (ready.code !== 0) {
      const fcYaml = (await cluster.kubectl(['get', 'filecluster/packaged', '-n', apps, '-o', 'yaml'])).stdout;
      throw new Error(`FileCluster not Ready: ${ready.stderr}\n${fcYaml}\n${await operatorLogs(ns)}`);
    }
    // Ready means serving; the last pods may still be joining (Progressing), so wait for all three.
    await waitFor(async () => {
      const status = JSON.parse(await kubectl(['get', 'filecluster/packaged', '-n', apps, '-o', 'json'])).status;
      return status.readyReplicas === 3 && status.peers?.length === 3;
    }, 120_000, 'all three pods Ready and in the peer list').catch(async (err: Error) => {
      throw new Error(`${err.message}\n${await operatorLogs(ns)}`);
    });

    // Scaling down makes the operator patch pods (serving label) and shrink the StatefulSet: the RBAC
    // must allow the whole path, and nothing the operator did may have been forbidden.
    await kubectl(['patch', 'filecluster/packaged', '-n', apps, '--type=merge', '-p', '{"spec":{"replicas":2}}']);
    await waitFor(async () => {
      const fc = JSON.parse(await kubectl(['get', 'filecluster/packaged', '-n', apps, '-o', 'json']));
      const readyCondition = fc.status?.conditions?.find((c: { type: string }) => c.type === 'Ready');
      return fc.status?.observedGeneration === fc.metadata.generation && fc.status?.replicas === 2 && fc.status?.peers?.length === 2 && readyCondition?.status === 'True';
    }, 120_000, 'the FileCluster to scale down to 2 Ready pods').catch(async (err: Error) => {
      throw new Error(`${err.message}\n${await operatorLogs(ns)}`);
    });
    const logs = await operatorLogs(ns);
    assert.doesNotMatch(logs, /forbidden|\b403\b/i, 'the operator was refused a request');

    // Least privilege: nothing outside the watched namespace, no deletes, no pod creation.
    const serviceAccount = `system:serviceaccount:${ns}:e2e-filecluster`;
    const can = async (...args: string[]) => (await cluster.kubectl(['auth', 'can-i', ...args, '--as', serviceAccount])).stdout.trim();
    assert.equal(await can('patch', 'statefulsets', '-n', apps), 'yes');
    assert.equal(await can('list', 'secrets', '-n', ns), 'no');
    assert.equal(await can('list', 'secrets', '-n', 'default'), 'no');
    assert.equal(await can('delete', 'statefulsets', '-n', apps), 'no');
    assert.equal(await can('create', 'pods', '-n', apps), 'no');
    assert.equal(await can('update', 'leases', '-n', ns), 'no', 'only its own Lease');
    assert.equal(await can('update', 'leases/e2e-filecluster', '-n', ns), 'yes');

    // The operator's live /metrics: Prometheus text that promtool accepts, and a real Prometheus scraping
    // both replicas evaluates every operator expression of the dashboard and the rules.
    const podNames = (await kubectl(['get', 'pods', '-n', ns, '-l', 'app.kubernetes.io/component=operator', '-o', 'jsonpath={.items[*].metadata.name}'])).split(' ');
    assert.equal(podNames.length, 2);
    const connections = await Promise.all(podNames.map((pod) => cluster.reachPod(ns, pod, 8080)));
    const pods = podNames.map((pod, i) => [pod, new URL(connections[i]!.url).host] as const);
    t.after(() => Promise.all(connections.map((c) => c.close())));
    const expositions = await Promise.all(pods.map(async ([, host]) => (await fetch(`http://${host}/metrics`)).text()));
    for (const text of expositions) {
      const lint = await runAsync(requireCommand('promtool', PROMETHEUS_HINT), ['check', 'metrics'], { input: text });
      assert.deepEqual(ownLintFindings(lint.stdout + lint.stderr), [], 'promtool check metrics findings');
      assert.ok(lint.code === 0 || lint.code === 3, `promtool exited ${lint.code}: lint findings only, no parse error`);
    }
    const leaders = expositions.map((text) => Number(/^filecluster_operator_leader (\S+)$/m.exec(text)?.[1]));
    assert.deepEqual(leaders.sort(), [0, 1], 'exactly one replica leads');
    assert.match(expositions.join('\n'), /^filecluster_operator_reconcile_total\{result="success"\} [1-9]/m);

    const dir = mkdtempSync(join(tmpdir(), 'fc-operator-prometheus-'));
    const supervisor = new ProcessSupervisor(join(dir, 'processes'));
    supervisor.startWatchdog(dir);
    try {
      const prometheus = await PrometheusServer.start(supervisor, dir, `127.0.0.1:${await freePort('127.0.0.1')}`, {
        global: { scrape_interval: '1s', evaluation_interval: '1s' },
        rule_files: [ALERTS_FILE],
        scrape_configs: [{ job_name: 'operator', static_configs: pods.map(([pod, host]) => ({ targets: [host], labels: { namespace: ns, pod } })) }],
      });
      await waitFor(async () => ((await prometheus.query('min(count_over_time(filecluster_operator_leader[1m])) >= 3')).data?.result.length ?? 0) > 0, 30_000, 'three scrapes of both operator pods', 500);
      const exported = new Set(['up', ...expositions.flatMap(declaredFamilies)]);
      const empty: string[] = [];
      for (const { source, expr } of [...dashboardQueries(), ...ruleQueries()]) {
        if (!selectors(expr).some((x) => isOperatorMetric(x.metric))) continue;
        const result = await checkQuery(prometheus, source, substituteVariables(expr, { namespace: ns, cluster: 'packaged', rateInterval: '1m' }), exported);
        if (source.startsWith('dashboard:') && result.length === 0) empty.push(source);
      }
      // No reconcile failed, so the error panel alone has nothing to show.
      assert.deepEqual(empty, ['dashboard: Reconcile errors [A]'], 'operator dashboard queries without data');
      const rules = await waitFor(async () => {
        const data = await prometheus.api<{ groups: Array<{ name: string; rules: Array<{ name: string; health: string; lastError?: string; lastEvaluation: string }> }> }>('/api/v1/rules');
        const operatorRules = data.groups.filter((g) => g.name === 'filecluster.operator').flatMap((g) => g.rules);
        return operatorRules.length > 0 && operatorRules.every((r) => !r.lastEvaluation.startsWith('0001')) ? operatorRules : undefined;
      }, 30_000, 'the operator rules evaluated');
      for (const r of rules) assert.equal(r.health, 'ok', `${r.name}: ${r.lastError}`);
      const noLeader = await prometheus.query('ALERTS{alertname="FileClusterOperatorNoLeader"}');
      assert.deepEqual(noLeader.data?.result, [], 'one leader: FileClusterOperatorNoLeader stays quiet');
    } finally {
      await supervisor.stopAll(10_000);
      supervisor.dispose();
      removeDir(dir);
    }

    await helm(['uninstall', 'e2e', '--namespace', ns, '--wait', '--timeout', '120s']);
  });
});
