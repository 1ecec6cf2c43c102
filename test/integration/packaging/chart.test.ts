// The Helm chart rendered with the real helm binary: lint, the objects of the default and the
// all-features render, least-privilege RBAC, values validation and the chart README.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ALERTS_FILE, ALL_FEATURES_VALUES, CHART, DASHBOARD_FILE, type K8sObject, find, findOne, helmBinary, helmTemplate, readYaml, run } from './support.ts';

interface Container {
  name: string;
  image: string;
  env: Array<{ name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }>;
  ports: Array<{ name: string; containerPort: number }>;
  livenessProbe?: { httpGet: { path: string; port: string } };
  readinessProbe?: { httpGet: { path: string; port: string } };
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: Record<string, unknown>;
}
interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}

const spec = (o: K8sObject): any => (o as any).spec;
const operatorContainer = (objects: K8sObject[]): Container => spec(findOne(objects, 'Deployment')).template.spec.containers[0];
const env = (c: Container, name: string) => c.env.find((e) => e.name === name);

/** resource -> sorted verbs, from a list of rules (one rule may name several resources). */
function permissions(rules: PolicyRule[]): Record<string, string> {
  const byResource: Record<string, Set<string>> = {};
  for (const rule of rules) {
    for (const resource of rule.resources) {
      const key = `${rule.apiGroups.join(',') || 'core'}/${resource}${rule.resourceNames ? `[${rule.resourceNames.join(',')}]` : ''}`;
      byResource[key] ??= new Set();
      for (const verb of rule.verbs) byResource[key].add(verb);
    }
  }
  return Object.fromEntries(Object.entries(byResource).map(([k, v]) => [k, [...v].sort().join(',')]));
}

// What the operator does, and nothing more: the requests operator/src makes (informers list and watch;
// owned objects are server-side applied (create, patch) and garbage-collected; pods patched for the serving label).
const RECONCILE_PERMISSIONS = {
  'filecluster.dev/fileclusters': 'get,list,watch',
  'filecluster.dev/fileclusters/status': 'patch',
  'filecluster.dev/fileclusters/finalizers': 'update',
  'apps/statefulsets': 'create,get,list,patch,watch',
  'core/services': 'create,list,patch,watch',
  'policy/poddisruptionbudgets': 'create,patch',
  'core/secrets': 'create,get,list,update,watch',
  'core/pods': 'list,patch,watch',
  'core/persistentvolumeclaims': 'delete,list,patch,watch',
  'core/events': 'create,patch',
};

describe('helm chart', () => {
  it('passes helm lint --strict with the default and the all-features values', () => {
    for (const args of [[], ['--values', ALL_FEATURES_VALUES]]) {
      const result = run(helmBinary(), ['lint', '--strict', CHART, ...args]);
      assert.equal(result.code, 0, result.stdout + result.stderr);
      assert.match(result.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
    }
  });

  it('renders by default: operator Deployment with 2 replicas, leader election, probes, resources, securityContext', () => {
    const objects = helmTemplate();
    assert.deepEqual(objects.map((o) => o.kind).sort(), [
      'ClusterRole',
      'ClusterRoleBinding',
      'Deployment',
      'Role',
      'RoleBinding',
      'Service',
      'ServiceAccount',
      'ValidatingAdmissionPolicy',
      'ValidatingAdmissionPolicyBinding',
    ]);
    const deployment = findOne(objects, 'Deployment', 'filecluster');
    assert.equal(spec(deployment).replicas, 2);
    const pod = spec(deployment).template.spec;
    assert.equal(pod.serviceAccountName, 'filecluster');
    assert.equal(pod.securityContext.runAsNonRoot, true);
    assert.equal(pod.securityContext.runAsUser, 65532);
    assert.equal(pod.securityContext.seccompProfile.type, 'RuntimeDefault');
    const c = operatorContainer(objects);
    assert.equal(c.image, 'filecluster/operator:0.1.0');
    assert.equal(env(c, 'FC_LEADER_ELECTION')?.value, 'true');
    assert.equal(env(c, 'FC_LEASE_NAME')?.value, 'filecluster');
    assert.equal(env(c, 'FC_LEASE_NAMESPACE')?.valueFrom?.fieldRef?.fieldPath, 'metadata.namespace');
    assert.equal(env(c, 'FC_POD_NAME')?.valueFrom?.fieldRef?.fieldPath, 'metadata.name');
    assert.equal(env(c, 'FC_WATCH_NAMESPACES')?.value, '');
    assert.equal(env(c, 'FC_FILESERVER_IMAGE')?.value, 'filecluster/fileserver:0.1.0');
    assert.equal(env(c, 'FC_OPERATOR_PORT')?.value, '8080');
    assert.deepEqual(c.ports, [{ name: 'http', containerPort: 8080, protocol: 'TCP' }]);
    assert.equal(c.livenessProbe?.httpGet.path, '/healthz');
    assert.equal(c.readinessProbe?.httpGet.path, '/readyz');
    assert.ok(c.resources?.requests?.['cpu'] && c.resources.limits?.['memory']);
    assert.deepEqual(c.securityContext, { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });

    const service = findOne(objects, 'Service', 'filecluster-metrics');
    assert.deepEqual(spec(service).selector, spec(deployment).selector.matchLabels);
    assert.equal(spec(service).ports[0].name, 'metrics');
    // The operator's pods must never match the labels the operator gives file-server pods.
    assert.notEqual(spec(deployment).selector.matchLabels['app.kubernetes.io/name'], 'filecluster');
  });

  it('grants cluster-wide only what the operator uses when it watches every namespace', () => {
    const objects = helmTemplate();
    assert.deepEqual(permissions((findOne(objects, 'ClusterRole') as any).rules), RECONCILE_PERMISSIONS);
    const binding = findOne(objects, 'ClusterRoleBinding') as any;
    assert.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: 'filecluster', namespace: 'filecluster-system' }]);
    // The policy that narrows `pods: patch` applies to exactly this ServiceAccount.
    const policy = findOne(objects, 'ValidatingAdmissionPolicy', 'filecluster-pod-updates') as any;
    assert.deepEqual(
      policy.spec.matchConditions.map((c: { expression: string }) => c.expression),
      ['request.userInfo.username == "system:serviceaccount:filecluster-system:filecluster"'],
    );
    assert.equal((findOne(objects, 'ValidatingAdmissionPolicyBinding', 'filecluster-pod-updates') as any).spec.policyName, 'filecluster-pod-updates');
    const lease = findOne(objects, 'Role', 'filecluster-leader-election') as any;
    assert.equal(lease.metadata.namespace, 'filecluster-system');
    assert.deepEqual(permissions(lease.rules), {
      'coordination.k8s.io/leases': 'create',
      'coordination.k8s.io/leases[filecluster]': 'get,update',
    });
  });

  it('uses namespaced Roles and no ClusterRole when watchNamespaces is set', () => {
    const objects = helmTemplate({ set: ['watchNamespaces={team-a,team-b}'] });
    assert.equal(find(objects, 'ClusterRole').length, 0);
    assert.equal(find(objects, 'ClusterRoleBinding').length, 0);
    const roles = find(objects, 'Role', 'filecluster');
    assert.deepEqual(roles.map((r) => r.metadata.namespace).sort(), ['team-a', 'team-b']);
    for (const role of roles) assert.deepEqual(permissions((role as any).rules), RECONCILE_PERMISSIONS);
    const bindings = find(objects, 'RoleBinding', 'filecluster');
    assert.deepEqual(bindings.map((b) => b.metadata.namespace).sort(), ['team-a', 'team-b']);
    assert.equal(env(operatorContainer(objects), 'FC_WATCH_NAMESPACES')?.value, 'team-a,team-b');
  });

  it('drops the Lease permissions when leader election is off', () => {
    const objects = helmTemplate({ set: ['leaderElection.enabled=false', 'replicaCount=1'] });
    assert.equal(find(objects, 'Role', 'filecluster-leader-election').length, 0);
    assert.equal(env(operatorContainer(objects), 'FC_LEADER_ELECTION')?.value, 'false');
  });

  it('renders every optional feature from the all-features values, from the same dashboard and alert files', () => {
    const objects = helmTemplate({ values: [ALL_FEATURES_VALUES] });
    const serviceMonitor = spec(findOne(objects, 'ServiceMonitor'));
    assert.deepEqual(serviceMonitor.selector.matchLabels, spec(findOne(objects, 'Deployment')).selector.matchLabels);
    assert.equal(serviceMonitor.endpoints[0].port, 'metrics');

    const podMonitor = spec(findOne(objects, 'PodMonitor'));
    // The labels operator/src/controllers/filecluster/names.ts gives file-server pods, and their port name.
    assert.deepEqual(podMonitor.selector.matchLabels, {
      'app.kubernetes.io/name': 'filecluster',
      'app.kubernetes.io/component': 'fileserver',
      'app.kubernetes.io/managed-by': 'filecluster-operator',
    });
    assert.deepEqual(podMonitor.namespaceSelector, { matchNames: ['fc-apps', 'fc-apps-2'] });
    assert.equal(podMonitor.podMetricsEndpoints[0].port, 'metrics');
    assert.equal(podMonitor.podMetricsEndpoints[0].relabelings[0].targetLabel, 'filecluster');

    assert.deepEqual(spec(findOne(objects, 'PrometheusRule')), readYaml(ALERTS_FILE));

    const dashboard = findOne(objects, 'ConfigMap', 'filecluster-dashboard') as any;
    assert.equal(dashboard.metadata.labels.grafana_dashboard, '1');
    assert.equal(dashboard.metadata.annotations.grafana_folder, 'FileCluster');
    assert.deepEqual(JSON.parse(dashboard.data['filecluster.json']), JSON.parse(readFileSync(DASHBOARD_FILE, 'utf8')));

    const sample = findOne(objects, 'FileCluster') as any;
    assert.equal(sample.metadata.namespace, 'fc-apps');
    assert.equal(sample.spec.replicas, 3);

    const policies = find(objects, 'NetworkPolicy');
    const fileserverPolicies = policies.filter((p) => p.metadata.name === 'filecluster-fileservers');
    assert.deepEqual(fileserverPolicies.map((p) => p.metadata.namespace).sort(), ['fc-apps', 'fc-apps-2']);
    const [http, metrics] = spec(fileserverPolicies[0]!).ingress;
    assert.deepEqual(http.ports, [{ port: 'http', protocol: 'TCP' }]);
    // Same-namespace file servers, the operator's pods, then the configured clients; nothing else.
    assert.equal(http.from.length, 3);
    assert.equal(http.from[1].podSelector.matchLabels['app.kubernetes.io/component'], 'operator');
    assert.deepEqual(metrics.ports, [{ port: 'metrics', protocol: 'TCP' }]);
    const operatorPolicy = spec(findOne(objects, 'NetworkPolicy', 'filecluster-operator'));
    assert.deepEqual(operatorPolicy.policyTypes, ['Ingress']);
  });

  it('rejects bad values at render time with a message naming the value', () => {
    const cases: Array<[string, RegExp]> = [
      ['replicaCount=0', /replicaCount.*minimum/],
      ['logLevel=verbose', /logLevel/],
      ['image.pullPolicy=Sometimes', /pullPolicy/],
      ['watchNamespaces={Not_A_Namespace}', /watchNamespaces\/0.*pattern/],
      ['metrics.podMonitor.interval=often', /interval.*pattern/],
      ['replicas=3', /additional properties 'replicas' not allowed/],
      // Two replicas without leader election would both reconcile.
      ['leaderElection.enabled=false', /replicaCount.*maximum: got 2, want 1/],
    ];
    for (const [value, message] of cases) {
      const result = run(helmBinary(), ['template', 'x', CHART, '--set', value]);
      assert.notEqual(result.code, 0, `--set ${value} was accepted`);
      assert.match(result.stderr, message, `--set ${value}: ${result.stderr}`);
    }
    assert.equal(run(helmBinary(), ['template', 'x', CHART, '--set', 'leaderElection.enabled=false', '--set', 'replicaCount=1']).code, 0);
  });

  it('documents every value of values.schema.json in the chart README', () => {
    const schema = JSON.parse(readFileSync(join(CHART, 'values.schema.json'), 'utf8'));
    const leaves: string[] = [];
    const walk = (node: any, path: string): void => {
      if (node.type === 'object' && node.additionalProperties === false && node.properties) {
        for (const [key, child] of Object.entries(node.properties)) walk(child, path ? `${path}.${key}` : key);
      } else leaves.push(path);
    };
    walk(schema, '');
    const readme = readFileSync(join(CHART, 'README.md'), 'utf8');
    const valuesSection = readme.slice(readme.indexOf('## Values'));
    const documented = new Set([...valuesSection.matchAll(/^\| `([^`]+)` \|/gm)].map((m) => m[1]));
    const missing = leaves.filter((leaf) => leaf !== 'global' && !documented.has(leaf));
    assert.deepEqual(missing, [], 'values missing from charts/filecluster/README.md');
    const unknown = [...documented].filter((key) => !leaves.includes(key!));
    assert.deepEqual(unknown, [], 'README documents values the schema does not have');
  });

  it('lists exactly the alerts of files/alerts.yaml in the chart README', () => {
    const alerts = (readYaml(ALERTS_FILE) as { groups: Array<{ rules: Array<{ alert?: string }> }> }).groups
      .flatMap((g) => g.rules.map((r) => r.alert))
      .filter((a): a is string => a !== undefined);
    const readme = readFileSync(join(CHART, 'README.md'), 'utf8');
    const listed = [...readme.matchAll(/^\| `(FileCluster[A-Za-z]+)` \|/gm)].map((m) => m[1]);
    assert.deepEqual(listed, alerts);
  });
});
