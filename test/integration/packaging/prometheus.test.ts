// A real Prometheus (Debian's) scrapes three live file servers, each of which also owes changes to a
// fourth peer that is down, loads the alert rules, and evaluates every PromQL expression of the dashboard
// and the rules: none may error, name a metric the servers do not export, or filter or group by a label
// their series do not carry. promtool also lints each server's live /metrics.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { compiledEntrypoint } from '../../harness/assets.ts';
import { waitFor } from '../../harness/index.ts';
import { ProcessSupervisor, freePort, removeDir } from '../../harness/processes.ts';
import { PROMETHEUS_HINT, PrometheusServer, checkQuery, declaredFamilies } from './prometheus-server.ts';
import { dashboardQueries, isOperatorMetric, loadDashboard, ownLintFindings, ruleQueries, selectors, substituteVariables } from './promql.ts';
import { ALERTS_FILE, REPO, loopbackNet, requireCommand, run } from './support.ts';

const NAMESPACE = 'apps';
const CLUSTER = 'fc';
const TOKEN = 'packaging-test-token';
// Dashboard queries over events this test does not cause (no change is ever dropped, no request fails
// with 5xx): they must evaluate, but may return nothing.
const MAY_BE_EMPTY = new Set(['dashboard: Dropped changes [A]', 'dashboard: 5xx ratio [A]']);

interface Server {
  id: string;
  ip: string;
  port: number;
  metricsPort: number;
}
let servers: Server[];
let deadPeer: Server;

let work: string;
let supervisor: ProcessSupervisor;
let prometheus: PrometheusServer;

async function traffic(round: number): Promise<void> {
  for (const [i, s] of servers.entries()) {
    const base = `http://${s.ip}:${s.port}`;
    const put = await fetch(`${base}/files/round-${round}/file-${i}.txt`, { method: 'PUT', body: `content ${round} ${i}\n`.repeat(50) });
    assert.ok(put.ok, `PUT ${put.status}: ${await put.text()}`);
    assert.equal((await fetch(`${base}/files/round-${round}/file-${i}.txt`)).status, 200);
    assert.equal((await fetch(`${base}/files/never-written-${round}.txt`)).status, 404);
    if (i === 0) assert.ok((await fetch(`${base}/files/round-${round}/file-${i}.txt`, { method: 'DELETE' })).ok);
  }
}

describe('dashboard and alert rules on a real Prometheus scraping live file servers', { timeout: 180_000 }, () => {
  const expositions: string[] = [];

  before(async () => {
    requireCommand('prometheus', PROMETHEUS_HINT);
    requireCommand('promtool', PROMETHEUS_HINT);
    work = mkdtempSync(join(tmpdir(), 'fc-prometheus-'));
    // Every process in its own group, killed (and work removed) by a watchdog should this process die.
    supervisor = new ProcessSupervisor(join(work, 'processes'));
    supervisor.startWatchdog(work);
    // A loopback address and free ports per server; the down peer's ports are free, so nothing answers.
    const net = loopbackNet();
    const server = async (i: number): Promise<Server> => {
      const ip = `${net}.${i + 1}`;
      return { id: `${CLUSTER}-${i}`, ip, port: await freePort(ip), metricsPort: await freePort(ip) };
    };
    servers = [await server(0), await server(1), await server(2)];
    deadPeer = await server(3);
    const node = process.execPath;
    for (const s of servers) {
      const peers = [...servers, deadPeer]
        .filter((p) => p.id !== s.id)
        .map((p) => `${p.id}=http://${p.ip}:${p.port}`)
        .join(',');
      const dataDir = join(work, s.id);
      mkdirSync(dataDir);
      supervisor.spawn(s.id, [node, compiledEntrypoint('fileserver')], {
        cwd: REPO,
        logFile: join(work, `${s.id}.log`),
        env: {
          PATH: process.env['PATH'],
          FC_NODE_ID: s.id,
          FC_HOST: s.ip,
          FC_PORT: String(s.port),
          FC_METRICS_PORT: String(s.metricsPort),
          FC_DATA_DIR: dataDir,
          FC_TOKEN: TOKEN,
          FC_PEERS: peers,
          FC_CATCHUP_INTERVAL_SECONDS: '1',
          FC_LOG_LEVEL: 'warn',
        },
      });
    }
    for (const s of servers) {
      await waitFor(async () => (await fetch(`http://${s.ip}:${s.port}/healthz`).catch(() => undefined))?.ok, 30_000, `${s.id} /healthz`);
    }
    const target = (s: Server) => ({ targets: [`${s.ip}:${s.metricsPort}`], labels: { namespace: NAMESPACE, filecluster: CLUSTER, pod: s.id } });
    prometheus = await PrometheusServer.start(supervisor, work, `${net}.10:${await freePort(`${net}.10`)}`, {
      global: { scrape_interval: '1s', evaluation_interval: '1s' },
      rule_files: [ALERTS_FILE],
      scrape_configs: [{ job_name: 'fileservers', static_configs: [...servers, deadPeer].map(target) }],
    });

    // Traffic until Prometheus holds rates and histogram quantiles for every live server.
    let round = 0;
    await waitFor(
      async () => {
        await traffic(round++);
        const rates = await prometheus.query(
          'count(sum by (pod) (rate(filecluster_replication_ack_latency_seconds_count[1m])) > 0) == 3 and count(sum by (pod) (rate(filecluster_catchup_runs_total[1m])) > 0) == 3',
        );
        return (rates.data?.result.length ?? 0) > 0;
      },
      60_000,
      'rates of three live servers in Prometheus',
      1000,
    );
    for (const s of servers) expositions.push(await (await fetch(`http://${s.ip}:${s.metricsPort}/metrics`)).text());
  });

  after(async () => {
    await supervisor?.stopAll(10_000);
    supervisor?.dispose();
    if (work) removeDir(work);
  });

  it("promtool check metrics finds nothing in the file servers' own metrics", () => {
    for (const text of expositions) {
      const result = run(requireCommand('promtool', PROMETHEUS_HINT), ['check', 'metrics'], { input: text });
      assert.deepEqual(ownLintFindings(result.stdout + result.stderr), [], 'promtool findings');
      assert.ok(result.code === 0 || result.code === 3, `promtool exited ${result.code}: lint findings only, no parse error`);
    }
  });

  it('evaluates every dashboard and rule expression without error, on metrics and labels the servers export', async () => {
    const exported = new Set(['up', ...expositions.flatMap(declaredFamilies)]);
    const empty: string[] = [];
    for (const { source, expr: raw } of [...dashboardQueries(), ...ruleQueries()]) {
      const expr = substituteVariables(raw, { namespace: NAMESPACE, cluster: CLUSTER, rateInterval: '1m' });
      // Operator expressions are evaluated against a live operator in test/e2e/packaging/install.test.ts.
      if (selectors(expr).every((s) => isOperatorMetric(s.metric))) continue;
      const result = await checkQuery(prometheus, source, expr, exported);
      if (source.startsWith('dashboard:') && result.length === 0) empty.push(source);
    }
    assert.deepEqual(
      empty.filter((s) => !MAY_BE_EMPTY.has(s)),
      [],
      'dashboard queries without data',
    );
  });

  it('shows the down peer: lag, reachability and the dashboard variables', async () => {
    const lag = await prometheus.query(
      substituteVariables(dashboardQueries().find((q) => q.source.startsWith('dashboard: Replication lag'))!.expr, {
        namespace: NAMESPACE,
        cluster: CLUSTER,
        rateInterval: '1m',
      }),
    );
    const toDead = lag.data!.result.filter((r) => r.metric['peer'] === deadPeer.id);
    assert.deepEqual(
      toDead.map((r) => r.metric['pod']).sort(),
      servers.map((s) => s.id),
    );
    for (const r of toDead) assert.ok(Number(r.value[1]) > 0, 'lag to the down peer grows');
    const up = await prometheus.query(`min by (pod, peer) (filecluster_peer_up{peer="${deadPeer.id}"})`);
    assert.ok(up.data!.result.every((r) => r.value[1] === '0'));

    const dashboard = loadDashboard();
    for (const variable of dashboard.templating.list.filter((v) => v.type === 'query')) {
      const m = /^label_values\((.+), (\w+)\)$/.exec(variable.definition ?? '');
      assert.ok(m, `variable ${variable.name} uses label_values(selector, label)`);
      const selector = substituteVariables(m[1]!, { namespace: NAMESPACE, cluster: CLUSTER, rateInterval: '1m' });
      const values = await prometheus.api<string[]>(`/api/v1/label/${m[2]}/values?match[]=${encodeURIComponent(selector)}`);
      assert.deepEqual(values, [variable.name === 'namespace' ? NAMESPACE : CLUSTER]);
    }
  });

  it('loads and evaluates every alert rule; the down peer makes its alerts pending', async () => {
    const expected = ruleQueries().map((q) => q.source.replace('alert: ', ''));
    const rules = await waitFor(
      async () => {
        const data = await prometheus.api<{ groups: Array<{ rules: Array<{ name: string; health: string; lastError?: string; lastEvaluation: string }> }> }>(
          '/api/v1/rules',
        );
        const all = data.groups.flatMap((g) => g.rules);
        return all.length === expected.length && all.every((r) => !r.lastEvaluation.startsWith('0001')) ? all : undefined;
      },
      30_000,
      'every rule evaluated',
    );
    assert.deepEqual(
      rules.map((r) => r.name),
      expected,
    );
    for (const r of rules) assert.equal(r.health, 'ok', `${r.name}: ${r.lastError}`);

    const alerts = await waitFor(
      async () => {
        const data = await prometheus.api<{ alerts: Array<{ labels: Record<string, string>; state: string }> }>('/api/v1/alerts');
        const names = new Set(data.alerts.map((a) => a.labels['alertname']));
        return ['FileClusterPeerUnreachable', 'FileClusterPodDown', 'FileClusterReplicationPushesFailing'].every((n) => names.has(n)) ? data.alerts : undefined;
      },
      30_000,
      "the down peer's alerts",
    );
    const unreachable = alerts.filter((a) => a.labels['alertname'] === 'FileClusterPeerUnreachable');
    assert.deepEqual([...new Set(unreachable.map((a) => a.labels['peer']))], [deadPeer.id]);
    assert.ok(
      unreachable.every((a) => a.state === 'pending'),
      'pending until `for` passes',
    );
    const down = alerts.filter((a) => a.labels['alertname'] === 'FileClusterPodDown');
    assert.deepEqual(
      down.map((a) => a.labels['pod']),
      [deadPeer.id],
    );
  });
});
