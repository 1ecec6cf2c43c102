// A real Prometheus (Debian's package) for the packaging tests, and the check every dashboard and rule
// expression must pass against it.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { waitFor } from '../../harness/index.ts';
import type { ProcessSupervisor } from '../../harness/processes.ts';
import { family, groupingLabels, selectors } from './promql.ts';
import { requireCommand } from './support.ts';

export const PROMETHEUS_HINT = 'apt-get install -y prometheus (Debian package, ships prometheus and promtool)';

export interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}

export class PrometheusServer {
  readonly address: string;

  private constructor(address: string) {
    this.address = address;
  }

  /**
   * Runs Prometheus under `supervisor` (whose stopAll() ends it) with the configuration (an object) on
   * `address`, storing under `dir`.
   */
  static async start(supervisor: ProcessSupervisor, dir: string, address: string, config: object): Promise<PrometheusServer> {
    const binary = requireCommand('prometheus', PROMETHEUS_HINT);
    writeFileSync(join(dir, 'prometheus.yml'), JSON.stringify(config));
    supervisor.spawn(
      'prometheus',
      [binary, `--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'tsdb')}`, `--web.listen-address=${address}`, '--log.level=warn'],
      { env: { PATH: process.env['PATH'] }, logFile: join(dir, 'prometheus.log') },
    );
    const server = new PrometheusServer(address);
    await waitFor(async () => (await fetch(`http://${address}/-/ready`).catch(() => undefined))?.ok, 30_000, 'Prometheus ready');
    return server;
  }

  async query(expr: string): Promise<{ status: string; error?: string; data?: { result: Sample[] } }> {
    const res = await fetch(`http://${this.address}/api/v1/query?query=${encodeURIComponent(expr)}`);
    return (await res.json()) as never;
  }

  async api<T>(path: string): Promise<T> {
    const body = (await (await fetch(`http://${this.address}${path}`)).json()) as { status: string; data: T; error?: string };
    assert.equal(body.status, 'success', `${path}: ${body.error}`);
    return body.data;
  }

  /** Label names the series of a metric carry in this Prometheus (empty when it has none). */
  async seriesLabels(metric: string): Promise<Set<string>> {
    const series = await this.api<Array<Record<string, string>>>(`/api/v1/series?match[]=${encodeURIComponent(metric)}`);
    return new Set(series.flatMap((s) => Object.keys(s)));
  }
}

/**
 * Evaluates one expression and fails unless it evaluates without error, every metric it names is in
 * `exported`, and every label it matches or groups by is carried by the series of its metrics (when
 * they have series). Returns the series it answered.
 */
export async function checkQuery(prometheus: PrometheusServer, source: string, expr: string, exported: Set<string>): Promise<Sample[]> {
  const answer = await prometheus.query(expr);
  assert.equal(answer.status, 'success', `${source}: ${answer.error}\n${expr}`);
  const labels = new Set<string>(['le']);
  for (const s of selectors(expr)) {
    assert.ok(exported.has(family(s.metric)), `${source}: ${s.metric} is not exported`);
    const present = await prometheus.seriesLabels(s.metric);
    if (present.size === 0) continue; // declared, but no series yet (e.g. no change ever dropped)
    for (const m of s.matchers) assert.ok(present.has(m.label), `${source}: ${s.metric} has no label ${m.label}`);
    for (const l of present) labels.add(l);
  }
  for (const l of groupingLabels(expr)) assert.ok(labels.has(l), `${source}: groups by ${l}, which its series do not carry`);
  return answer.data?.result ?? [];
}

/** Metric families a /metrics exposition declares (`# TYPE` lines, present even before a first sample). */
export const declaredFamilies = (exposition: string): string[] => [...exposition.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!);
