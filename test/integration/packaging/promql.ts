// The PromQL of the dashboard and the alert rules, and what each expression names: metrics, label
// matchers and grouping labels. Enough of PromQL for the expressions these files use (vector selectors
// with label matchers, aggregations with `by`), checked against real Prometheus by the tests.
import { readFileSync } from 'node:fs';
import { ALERTS_FILE, DASHBOARD_FILE, readYaml } from './support.ts';

export interface Query {
  /** Where the expression comes from: "dashboard: <panel> [A]" or "alert: <name>". */
  source: string;
  expr: string;
}

export interface Selector {
  metric: string;
  matchers: Array<{ label: string; op: string; value: string }>;
}

interface Panel {
  title: string;
  type: string;
  targets?: Array<{ expr: string; refId: string; datasource?: { uid?: string } }>;
  datasource?: { uid?: string };
  panels?: Panel[];
}

export interface Dashboard {
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: Array<{ name: string; type: string; query: unknown; definition?: string; datasource?: { uid?: string } }> };
}

export const loadDashboard = (): Dashboard => JSON.parse(readFileSync(DASHBOARD_FILE, 'utf8')) as Dashboard;

export function dashboardPanels(dashboard: Dashboard = loadDashboard()): Panel[] {
  return dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]).filter((p) => p.type !== 'row');
}

export function dashboardQueries(dashboard: Dashboard = loadDashboard()): Query[] {
  return dashboardPanels(dashboard).flatMap((p) => (p.targets ?? []).map((t) => ({ source: `dashboard: ${p.title} [${t.refId}]`, expr: t.expr })));
}

export function ruleQueries(): Query[] {
  const file = readYaml(ALERTS_FILE) as { groups: Array<{ rules: Array<{ alert?: string; record?: string; expr: string }> }> };
  return file.groups.flatMap((g) => g.rules.map((r) => ({ source: `alert: ${r.alert ?? r.record}`, expr: String(r.expr) })));
}

/** Grafana variables replaced by what a user picking one namespace and one FileCluster would send. */
export function substituteVariables(expr: string, values: { namespace: string; cluster: string; rateInterval: string }): string {
  return expr.replaceAll('$__rate_interval', values.rateInterval).replaceAll('$namespace', values.namespace).replaceAll('$cluster', values.cluster);
}

const SELECTOR = /\b(filecluster_[a-z0-9_]+|up(?=\s*\{))\s*(\{[^}]*\})?/g;
const MATCHER = /([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"/g;

export function selectors(expr: string): Selector[] {
  return [...expr.matchAll(SELECTOR)].map((m) => ({
    metric: m[1]!,
    matchers: [...(m[2] ?? '').matchAll(MATCHER)].map((x) => ({ label: x[1]!, op: x[2]!, value: x[3]! })),
  }));
}

/** Labels named in `by (...)` and `on (...)`/`ignoring (...)` clauses. */
export function groupingLabels(expr: string): string[] {
  return [...expr.matchAll(/\b(?:by|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g)].flatMap((m) =>
    m[1]!
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  );
}

/** The metric family a series name belongs to (histograms expose _bucket, _sum and _count series). */
export const family = (metric: string): string => metric.replace(/_(bucket|sum|count)$/, '');

export const isOperatorMetric = (metric: string): boolean => metric.startsWith('filecluster_operator_');

/**
 * promtool findings about prom-client's built-in Node.js collector, which names three gauges *_total.
 * They are the library's names, not ours; the tests accept these and no other finding.
 */
const PROM_CLIENT_DEFAULT_FINDING =
  /^filecluster_(operator_process_)?nodejs_active_(handles|requests|resources)_total non-counter metrics should not have "_total" suffix$/;

/** The findings of `promtool check metrics` output that concern the components' own metrics. */
export function ownLintFindings(promtoolOutput: string): string[] {
  return promtoolOutput
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !PROM_CLIENT_DEFAULT_FINDING.test(l));
}
