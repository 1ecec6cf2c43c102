// The alert rules and the Grafana dashboard, checked with Debian's promtool and against the metric
// names the components define. The live evaluation against real file servers is prometheus.test.ts.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { Registry } from 'prom-client';
import { createMetrics as createFileServerMetrics } from '../../../fileserver/src/metrics.ts';
import { createMetrics as createOperatorMetrics } from '../../../operator/src/metrics.ts';
import { dashboardPanels, dashboardQueries, family, isOperatorMetric, loadDashboard, ruleQueries, selectors } from './promql.ts';
import { ALERTS_FILE, REPO, requireCommand, runOk } from './support.ts';

const PROMTOOL_HINT = 'apt-get install -y prometheus (Debian package, ships promtool)';

/** The metric families a component's registry exports, its process metrics included. */
const exported = (registry: Registry): Set<string> => new Set(registry.getMetricsAsArray().map((m) => m.name));

describe('alert rules', () => {
  it('pass promtool check rules', () => {
    const out = runOk(requireCommand('promtool', PROMTOOL_HINT), ['check', 'rules', ALERTS_FILE]);
    // Every rule of the file parsed: promtool counts what it loaded.
    assert.match(out, new RegExp(`SUCCESS: ${ruleQueries().length} rules found`));
  });

  it('fire on the conditions they describe and stay quiet on a healthy cluster (promtool test rules)', () => {
    const out = runOk(requireCommand('promtool', PROMTOOL_HINT), ['test', 'rules', 'alerts.promtest.yaml'], {
      cwd: join(REPO, 'test/integration/packaging/fixtures'),
    });
    assert.match(out, /SUCCESS/);
  });

  it('cover lag, peers out of sync, failed pushes and pods down, and name a severity and a description', () => {
    const rules = ruleQueries();
    const expr = (name: string) => rules.find((r) => r.source === `alert: ${name}`)?.expr ?? '';
    assert.match(expr('FileClusterReplicationLagHigh'), /filecluster_replication_lag_seconds/);
    assert.match(expr('FileClusterPeerListOutOfSync'), /filecluster_peer_list_generation/);
    assert.match(expr('FileClusterReplicationPushesFailing'), /filecluster_replication_attempts_total/);
    assert.match(expr('FileClusterPodDown'), /\bup\{/);
  });
});

describe('grafana dashboard', () => {
  const dashboard = loadDashboard();

  it('takes the datasource, the namespace and the FileCluster as variables', () => {
    const variables = dashboard.templating.list;
    assert.deepEqual(
      variables.map((v) => [v.name, v.type]),
      [
        ['datasource', 'datasource'],
        ['namespace', 'query'],
        ['cluster', 'query'],
      ],
    );
    assert.equal(variables[0]!.query, 'prometheus');
    for (const v of variables.slice(1)) assert.equal(v.datasource?.uid, '${datasource}');
    for (const panel of dashboardPanels(dashboard)) {
      assert.equal(panel.datasource?.uid, '${datasource}', `panel ${panel.title} must use the datasource variable`);
      for (const target of panel.targets ?? []) assert.equal(target.datasource?.uid, '${datasource}', panel.title);
    }
  });

  it('filters every file-server query by the namespace and cluster variables', () => {
    for (const { source, expr } of dashboardQueries(dashboard)) {
      for (const s of selectors(expr).filter((s) => !isOperatorMetric(s.metric))) {
        const matchers = Object.fromEntries(s.matchers.map((m) => [m.label, `${m.op}${m.value}`]));
        assert.equal(matchers['namespace'], '=~$namespace', `${source}: ${s.metric}`);
        assert.equal(matchers['filecluster'], '=~$cluster', `${source}: ${s.metric}`);
      }
    }
  });

  it('shows what the issue asks for', () => {
    const exprs = dashboardQueries(dashboard)
      .map((q) => q.expr)
      .join('\n');
    for (const needed of [
      /max by \(pod, peer\) \(filecluster_replication_lag_seconds/,
      /filecluster_replication_pending_changes/,
      /filecluster_replication_pending_bytes/,
      /histogram_quantile\(0\.99, sum by \(le\) \(rate\(filecluster_replication_ack_latency_seconds_bucket/,
      /method=~"PUT\|POST\|DELETE"/,
      /method=~"GET\|HEAD"/,
      /status=~"4\.\.\|5\.\."/,
      /max by \(pod\) \(filecluster_peer_list_generation/,
      /filecluster_catchup_runs_total/,
      /filecluster_store_bytes/,
      /filecluster_operator_reconcile_total\{result="error"\}/,
      /filecluster_operator_workqueue_depth/,
    ]) {
      assert.match(exprs, needed);
    }
    const ids = dashboard.panels.map((p) => (p as unknown as { id: number }).id);
    assert.equal(new Set(ids).size, ids.length, 'panel ids are unique');
  });

  it('lays its panels out on the 24-column grid without overlap', () => {
    type Grid = { x: number; y: number; w: number; h: number };
    const boxes = dashboard.panels.map((p) => ({ title: p.title, ...(p as unknown as { gridPos: Grid }).gridPos }));
    for (const [i, a] of boxes.entries()) {
      assert.ok(a.x >= 0 && a.w > 0 && a.x + a.w <= 24, `${a.title} fits the grid`);
      for (const b of boxes.slice(i + 1)) {
        const overlap = a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
        assert.ok(!overlap, `${a.title} overlaps ${b.title}`);
      }
    }
  });
});

describe('metric names of the dashboard and the alerts', () => {
  // Checked against the registries the components build at start, so a renamed or removed metric fails
  // here; file-server queries are also evaluated live in prometheus.test.ts, operator queries in
  // test/e2e/packaging/install.test.ts.
  const used = [...dashboardQueries(), ...ruleQueries()].flatMap((q) => selectors(q.expr).map((s) => ({ ...q, metric: s.metric })));

  it('name only metrics the operator exports (operator/src/metrics.ts)', () => {
    const operator = exported(createOperatorMetrics().registry);
    const operatorUsed = used.filter((u) => isOperatorMetric(u.metric));
    assert.ok(operatorUsed.length >= 8, 'the dashboard and alerts use operator metrics');
    const unknown = operatorUsed.filter((u) => !operator.has(family(u.metric))).map((u) => `${u.source}: ${u.metric}`);
    assert.deepEqual(unknown, [], 'metrics the operator does not export');
  });

  it("name only metrics the file server exports (fileserver/src/metrics.ts), or Prometheus's own up", () => {
    const fileServer = exported(createFileServerMetrics().registry);
    const unknown = used.filter((u) => !isOperatorMetric(u.metric) && u.metric !== 'up' && !fileServer.has(family(u.metric))).map((u) => `${u.source}: ${u.metric}`);
    assert.deepEqual(unknown, [], 'metrics the file server does not export');
  });
});
