// The operator under load on the local control plane (process nodes run every file-server pod as a
// process on this machine). Prints a table:
//   - time until COUNT FileClusters of 3 replicas are all Ready, and API requests per reconcile on the way;
//   - the leader's RSS and CPU at steady state (nothing changing), and its API requests per minute then;
//   - time from a membership change (a new pod turning Ready, seen through a watch) until every pod of
//     that FileCluster holds the new peer list (p50/p99 over CHANGES scale-ups);
//   - leader failover: a batch of FileClusters is created, the leader is SIGKILLed once half of them are
//     Ready, and the time until the new leader has made all of them Ready.
// The operator replicas are processes running the compiled operator (dist/, rebuilt at the start when
// older than its sources, as the image ships it) with the Deployment's NODE_OPTIONS, talking to
// the API server directly; their API requests are read from their own metrics. (Not through a counting
// proxy in this process: with 300 pods on 2 cores its event loop would delay every request by seconds
// and make Lease renewals time out.) Each membership change is also split into
// phases from the leader's "peer list changed" log line (see propagationPhases).
//
//   node bench/operator-load/run.ts [--count 100] [--changes 20] [--idle-seconds RESYNC] [--idle-profile FILE.cpuprofile]
//
// The steady-state window starts once the leader's periodic resync runs and by default lasts one resync
// period (the operator's FC_RESYNC_SECONDS default), so it holds exactly one resync of every FileCluster.
//
// COUNT includes the failover batch (a tenth of COUNT). Before each step the benchmark checks that the
// machine still has memory for it and stops with the reason if not; run it again with a lower --count.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Watch, type V1Pod } from '@kubernetes/client-node';
import { parse as parseYaml } from 'yaml';
import { compiledEntrypoint } from '../../test/harness/assets.ts';
import { profileWindow } from '../support/inspector-profile.ts';
import { loadConfig } from '../../operator/src/config.ts';
import { startCluster, waitFor, type Cluster } from '../../test/harness/index.ts';
import { metricSamples } from '../../test/resilience/support/observe.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const CRD = path.join(ROOT, 'charts/filecluster/crds/fileclusters.filecluster.dev.yaml');
const PODS_PER_NODE = 100;
const LEASE = 'filecluster-operator';
/** Stop adding pods when less than this much memory is left for everything else. */
const MEMORY_RESERVE_BYTES = 2 * 1024 ** 3;

const { values: args } = parseArgs({
  options: {
    count: { type: 'string', default: '100' },
    changes: { type: 'string', default: '20' },
    'idle-seconds': { type: 'string' },
    // Writes a CPU profile of the leader over the idle window to this file (replicas then run with --inspect).
    'idle-profile': { type: 'string' },
  },
});
const COUNT = Number(args.count);
const CHANGES = Number(args.changes);
// The replicas run without FC_RESYNC_SECONDS, as the Deployment does: its default is their period.
const RESYNC_MS = loadConfig({}).resyncMs;
const IDLE_SECONDS = args['idle-seconds'] ? Number(args['idle-seconds']) : RESYNC_MS / 1000;
const BATCH = Math.max(3, Math.round(COUNT / 10));
const INITIAL = COUNT - BATCH;

const started = Date.now();
const say = (line: string) => process.stderr.write(`[operator-load ${((Date.now() - started) / 1000).toFixed(0)}s] ${line}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function memAvailable(): number {
  const m = /^MemAvailable:\s+(\d+) kB/m.exec(readFileSync('/proc/meminfo', 'utf8'));
  return Number(m![1]) * 1024;
}

/** User+system CPU seconds and resident bytes of a process, from /proc. */
function processStats(pid: number): { cpuSeconds: number; rssBytes: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  const rss = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return { cpuSeconds: ticks / 100, rssBytes: Number(rss![1]) * 1024 };
}

/** The request counts added since `before`, largest first, as one line. */
function breakdown(now: Map<string, number>, before: Map<string, number>): string {
  return [...now]
    .map(([k, v]) => [k, v - (before.get(k) ?? 0)] as const)
    .filter(([, v]) => v > 0)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

interface Replica {
  identity: string;
  proc: ChildProcess;
  metricsUrl: string;
  /** Inspector port, when the run profiles the idle leader. */
  inspectPort?: number;
}

/** The operator's NODE_OPTIONS as the rendered Deployment sets them, so the replicas run as deployed. */
function deployedNodeOptions(): string {
  const docs = readFileSync(path.join(ROOT, 'manifests/03-operator.yaml'), 'utf8')
    .split(/^---$/m)
    .map((d) => parseYaml(d) as unknown);
  type Env = { name: string; value?: string };
  const deployment = docs.find(
    (d): d is { spec: { template: { spec: { containers: Array<{ env?: Env[] }> } } } } => (d as { kind?: string } | null)?.kind === 'Deployment',
  );
  return deployment?.spec.template.spec.containers[0]?.env?.find((e) => e.name === 'NODE_OPTIONS')?.value ?? '';
}

/** An operator replica, a process of the compiled operator with the deployed NODE_OPTIONS. */
async function startOperator(operatorMain: string, dir: string, kubeconfig: string, namespace: string, identity: string): Promise<Replica> {
  // The operator talks to the API server directly and writes its log straight to a file: nothing of
  // the benchmark's own (busy) event loop sits between them. API requests are counted by the operator
  // itself (filecluster_operator_api_requests_total).
  const port = await freePort();
  const inspectPort = args['idle-profile'] ? await freePort() : undefined;
  const log = openSync(path.join(dir, `${identity}.log`), 'a');
  const proc = spawn(process.execPath, [operatorMain], {
    env: {
      ...process.env,
      KUBECONFIG: kubeconfig,
      FC_WATCH_NAMESPACES: namespace,
      FC_LEASE_NAMESPACE: namespace,
      FC_POD_NAME: identity,
      FC_OPERATOR_HOST: '127.0.0.1',
      FC_OPERATOR_PORT: String(port),
      FC_LOG_LEVEL: 'info',
      NODE_OPTIONS: [deployedNodeOptions(), inspectPort ? `--inspect=127.0.0.1:${inspectPort}` : ''].join(' ').trim(),
    },
    stdio: ['ignore', log, log],
  });
  closeSync(log);
  const metricsUrl = `http://127.0.0.1:${port}/metrics`;
  await waitFor(() => fetch(metricsUrl).then((r) => r.ok), 60_000, `${identity} serving metrics`, 100);
  return { identity, proc, metricsUrl, inspectPort };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

/** API requests a replica made so far, by "VERB resource" (WATCH for a watch opened). */
async function apiRequests(r: Replica): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const [labels, n] of await metricSamples(r.metricsUrl, 'filecluster_operator_api_requests_total')) {
    const verb = /verb="([^"]*)"/.exec(labels)?.[1];
    const resource = /resource="([^"]*)"/.exec(labels)?.[1];
    out.set(`${verb} ${resource}`, n);
  }
  return out;
}

async function reconciles(r: Replica): Promise<number> {
  const samples = await metricSamples(r.metricsUrl, 'filecluster_operator_reconcile_total');
  return [...samples.values()].reduce((a, b) => a + b, 0);
}

function fileClusters(names: string[]): string {
  return names
    .map(
      (name) => `apiVersion: filecluster.dev/v1alpha1
kind: FileCluster
metadata: {name: ${name}}
spec:
  replicas: 3
  storage: {size: 64Mi}
  resources: {requests: {cpu: 1m, memory: 16Mi}}
`,
    )
    .join('---\n');
}

async function kubectlOk(cluster: Cluster, a: string[], input?: string): Promise<string> {
  const r = await cluster.kubectl(a, { ...(input ? { input } : {}), timeoutMs: 600_000 });
  if (r.code !== 0) throw new Error(`kubectl ${a.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** Waits until every name is Ready, refusing to go on when the machine runs out of memory. */
async function waitReady(
  readyNow: ReadonlySet<string>,
  names: string[],
  timeoutMs: number,
  onProgress?: (ready: number) => Promise<void>,
  everyMs = 1000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = -1;
  for (;;) {
    const n = names.filter((x) => readyNow.has(x)).length;
    if (n !== last) say(`${n}/${names.length} Ready, ${(memAvailable() / 1024 ** 3).toFixed(1)} GiB available`);
    last = n;
    if (n === names.length) return;
    if (memAvailable() < MEMORY_RESERVE_BYTES) throw new Error(`out of memory at ${n} Ready FileClusters: less than ${MEMORY_RESERVE_BYTES / 1024 ** 3} GiB left`);
    if (Date.now() > deadline) throw new Error(`only ${n}/${names.length} Ready after ${timeoutMs} ms`);
    await onProgress?.(n);
    await sleep(everyMs);
  }
}

async function main(): Promise<void> {
  // The operator runs as shipped: compiled JavaScript (type stripping alone costs about 20 MiB of RSS).
  const operatorMain = compiledEntrypoint('operator');
  const nodes = Math.ceil((COUNT * 3 + CHANGES) / PODS_PER_NODE);
  say(`count ${COUNT} (initial ${INITIAL} + failover batch ${BATCH}), ${CHANGES} membership changes, ${nodes} process nodes`);
  const cluster = await startCluster({ provider: 'local', nodes });
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fc-operator-load-'));
  const replicas = new Map<string, Replica>();
  // Interrupted, the run skips its finally block: the operator replicas must not outlive it (the
  // cluster's own processes are reaped by the harness watchdog).
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      for (const r of replicas.values()) r.proc.kill('SIGKILL');
      process.exit(1);
    });
  }
  const watchAborts: AbortController[] = [];
  let stopping = false;
  try {
    await kubectlOk(cluster, ['apply', '--server-side', '-f', CRD]);
    await kubectlOk(cluster, ['wait', '--for=condition=Established', '--timeout=60s', 'crd/fileclusters.filecluster.dev']);
    const ns = await cluster.createNamespace('load');

    const watchAll = async <T>(path: string, onEvent: (type: string, obj: T) => void): Promise<void> => {
      if (stopping) return;
      watchAborts.push(
        await new Watch(cluster.kubeClient()).watch(
          path,
          {},
          onEvent,
          // The API server ends watches after a while; a new one replays the current objects.
          () => void watchAll(path, onEvent).catch((err: Error) => say(`watch of ${path} failed: ${err.message}`)),
        ),
      );
    };
    // The Lease holder from a watch as well (kubectl every second, or every 100 ms at the failover, cost CPU).
    let holderNow: string | undefined;
    await watchAll(
      `/apis/coordination.k8s.io/v1/namespaces/${ns}/leases`,
      (type: string, lease: { metadata: { name: string }; spec?: { holderIdentity?: string | null } }) => {
        if (lease.metadata.name === LEASE) holderNow = type === 'DELETED' ? undefined : (lease.spec?.holderIdentity ?? undefined);
      },
    );
    const leaseHolder = (): string | undefined => holderNow;
    for (const id of ['operator-a', 'operator-b']) replicas.set(id, await startOperator(operatorMain, dir, cluster.kubeconfigPath, ns, id));
    const operatorsStarted = Date.now();
    say(`leader: ${await waitFor(() => leaseHolder(), 60_000, 'an operator leader')}`);
    // Under load a leader can miss its renew deadline and the Lease moves; requests and reconciles are
    // therefore summed over both replicas, and each phase measures whichever replica leads at the time.
    const leader = async () => replicas.get(leaseHolder() ?? '')!;
    const live = () => [...replicas.values()].filter((r) => r.proc.exitCode === null && r.proc.signalCode === null);
    const allKinds = async () => {
      const m = new Map<string, number>();
      for (const counts of await Promise.all(live().map(apiRequests))) for (const [k, v] of counts) m.set(k, (m.get(k) ?? 0) + v);
      return m;
    };
    const allRequests = async () => [...(await allKinds()).values()].reduce((a, b) => a + b, 0);
    const allReconciles = async () => (await Promise.all(live().map(reconciles))).reduce((a, b) => a + b, 0);
    let holder = '';
    let leaseMoves = 0;
    const trackLease = async () => {
      const h = leaseHolder() ?? '';
      if (holder && h && h !== holder) leaseMoves++;
      if (h) holder = h;
    };
    await trackLease();

    // Pod readiness as a watch sees it: the moment a membership change becomes visible to anyone.
    const readyAt = new Map<string, number>();
    const podIp = new Map<string, string>();
    // FileClusters with Ready=True, from a watch too: polling with kubectl cost about a third of a core.
    const readyFileClusters = new Set<string>();
    await watchAll(`/api/v1/namespaces/${ns}/pods`, (_type: string, pod: V1Pod) => {
      const name = pod.metadata!.name!;
      if (pod.status?.podIP) podIp.set(name, pod.status.podIP);
      const ready = pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
      if (ready && !readyAt.has(name)) readyAt.set(name, performance.now());
      if (!ready) readyAt.delete(name);
    });
    type Fc = { metadata: { name: string }; status?: { conditions?: Array<{ type: string; status: string }> } };
    await watchAll(`/apis/filecluster.dev/v1alpha1/namespaces/${ns}/fileclusters`, (type: string, fc: Fc) => {
      const ready = type !== 'DELETED' && fc.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
      if (ready) readyFileClusters.add(fc.metadata.name);
      else readyFileClusters.delete(fc.metadata.name);
    });

    // 1. Scale: INITIAL FileClusters at once.
    const initial = Array.from({ length: INITIAL }, (_, i) => `fc-${String(i).padStart(3, '0')}`);
    const req0 = await allRequests();
    const kinds0 = await allKinds();
    const rec0 = await allReconciles();
    const t0 = performance.now();
    await kubectlOk(cluster, ['apply', '-n', ns, '-f', '-'], fileClusters(initial));
    await waitReady(readyFileClusters, initial, 1_800_000, trackLease);
    const scaleSeconds = (performance.now() - t0) / 1000;
    const scaleRequests = (await allRequests()) - req0;
    const scaleReconciles = (await allReconciles()) - rec0;
    const scaleLeaseMoves = leaseMoves;
    say(`scale-up requests: ${breakdown(await allKinds(), kinds0)}; the Lease moved ${scaleLeaseMoves} times`);
    say(`all ${INITIAL} Ready in ${scaleSeconds.toFixed(1)} s; ${scaleRequests} API requests over ${scaleReconciles} reconciles`);

    // 2. Steady state: nothing changes; the leader should sit idle apart from its periodic resync. Until
    // the first period has passed there is no resync yet, and a window starting then would look cheaper.
    await sleep(Math.max(15_000, operatorsStarted + RESYNC_MS - Date.now()));
    const idleLeader = await leader();
    const pid = idleLeader.proc.pid!;
    const s0 = processStats(pid);
    const idleReq0 = await allRequests();
    const idleKinds0 = await allKinds();
    const idleRec0 = await allReconciles();
    let peakRss = s0.rssBytes;
    const idleWindow = async () => {
      for (let t = 0; t < IDLE_SECONDS; t += 5) {
        await sleep(5000);
        peakRss = Math.max(peakRss, processStats(pid).rssBytes);
      }
    };
    if (args['idle-profile'] && idleLeader.inspectPort) {
      await profileWindow(idleLeader.inspectPort, args['idle-profile'], idleWindow);
      say(`CPU profile of the idle leader written to ${args['idle-profile']}`);
    } else await idleWindow();
    const s1 = processStats(pid);
    const heapUsed = (await metricSamples(idleLeader.metricsUrl, 'filecluster_operator_process_nodejs_heap_size_used_bytes')).get('') ?? NaN;
    const idleCpu = (s1.cpuSeconds - s0.cpuSeconds) / IDLE_SECONDS;
    const idleRequestsPerMin = (((await allRequests()) - idleReq0) * 60) / IDLE_SECONDS;
    const idleReconciles = (await allReconciles()) - idleRec0;
    say(`idle requests (both replicas): ${breakdown(await allKinds(), idleKinds0)}`);
    say(
      `idle: CPU ${(idleCpu * 100).toFixed(2)} %, RSS ${(s1.rssBytes / 1024 ** 2).toFixed(0)} MiB, ${idleRequestsPerMin.toFixed(0)} requests/min, ${idleReconciles} reconciles`,
    );

    // 3. Membership changes: one FileCluster at a time goes from 3 to 4 replicas.
    const latencies: number[] = [];
    const phaseSamples = new Map<string, number[]>();
    for (const name of initial.slice(0, CHANGES)) {
      if (memAvailable() < MEMORY_RESERVE_BYTES) throw new Error(`out of memory before membership change ${latencies.length + 1}`);
      // Read before the change: a kubectl call inside the measured window would count as propagation.
      const token = await podToken(cluster, ns, name);
      await kubectlOk(cluster, ['patch', 'fc', name, '-n', ns, '--type=merge', '-p', '{"spec":{"replicas":4}}']);
      const newPod = `${name}-3`;
      await waitFor(() => readyAt.has(newPod) && podIp.has(newPod), 120_000, `${newPod} Ready`, 5);
      const since = readyAt.get(newPod)!;
      const members = [0, 1, 2, 3].map((i) => `${name}-${i}`);
      // A pod that holds the new list keeps it (generations only grow): only the others are asked again.
      const holding = new Set<string>();
      await waitFor(
        async () => {
          await Promise.all(
            members
              .filter((m) => !holding.has(m))
              .map(async (m) => {
                const r = await fetch(`http://${podIp.get(m)}:8080/internal/peers`, { headers: { authorization: `Bearer ${token}` } });
                const list = (await r.json()) as { peers: Array<{ id: string }> };
                if (members.every((o) => o === m || list.peers.some((p) => p.id === o))) holding.add(m);
              }),
          );
          return holding.size === members.length;
        },
        60_000,
        `every pod of ${name} holding the new peer list`,
        5,
      );
      const took = performance.now() - since;
      latencies.push(took);
      const phases = propagationPhases(path.join(dir, `${(await leader()).identity}.log`), `${ns}/${name}`, members.length, performance.timeOrigin + since, took);
      for (const [k, v] of Object.entries(phases)) phaseSamples.set(k, [...(phaseSamples.get(k) ?? []), v]);
      say(
        `${name}: ${took.toFixed(0)} ms (${Object.entries(phases)
          .map(([k, v]) => `${k} ${v}`)
          .join(', ')})`,
      );
    }
    latencies.sort((a, b) => a - b);
    say(`peer-list propagation p50 ${percentile(latencies, 50).toFixed(0)} ms, p99 ${percentile(latencies, 99).toFixed(0)} ms`);
    const phaseSummary = [...phaseSamples]
      .map(([k, xs]) => {
        const sorted = [...xs].sort((a, b) => a - b);
        return `${k} ${percentile(sorted, 50)}/${sorted.at(-1)}`;
      })
      .join(', ');
    say(`propagation by phase, ms p50/max: ${phaseSummary}`);

    // 4. Failover mid-scale.
    const batch = Array.from({ length: BATCH }, (_, i) => `fo-${String(i).padStart(3, '0')}`);
    await kubectlOk(cluster, ['apply', '-n', ns, '-f', '-'], fileClusters(batch));
    let killedAt = 0;
    let newLeader = '';
    let killed = '';
    let leaseTakenAfter = 0;
    // Mid-scale: the first FileCluster of the batch is Ready, the others are still on their way.
    await waitReady(
      readyFileClusters,
      batch,
      1_800_000,
      async (ready) => {
        if (killedAt || ready < 1) return;
        const victim = await leader();
        killed = victim.identity;
        say(`killing leader ${killed} at ${ready}/${batch.length} Ready`);
        victim.proc.kill('SIGKILL');
        killedAt = performance.now();
        newLeader = await waitFor(
          async () => {
            const h = leaseHolder();
            return h && h !== killed ? h : undefined;
          },
          120_000,
          'a new leader',
          100,
        );
        leaseTakenAfter = (performance.now() - killedAt) / 1000;
      },
      200,
    );
    if (!killedAt) throw new Error('the failover batch became Ready before the leader could be killed mid-scale; use a larger --count');
    const failoverSeconds = (performance.now() - killedAt) / 1000;
    say(`new leader ${newLeader} took the lease after ${leaseTakenAfter.toFixed(1)} s and finished after ${failoverSeconds.toFixed(1)} s`);

    const rows: Array<[string, string, string]> = [
      ['FileClusters × replicas', `${COUNT} × 3 (${COUNT * 3} pods, +${CHANGES} from scale-ups)`, ''],
      [`time until ${INITIAL} FileClusters are Ready`, `${scaleSeconds.toFixed(1)} s`, ''],
      [
        'API requests per reconcile (scale-up, both replicas)',
        `${(scaleRequests / Math.max(1, scaleReconciles)).toFixed(2)} (${scaleRequests} / ${scaleReconciles})`,
        '',
      ],
      ['Lease moves during the scale-up (missed renew deadlines)', String(scaleLeaseMoves), ''],
      [
        'leader RSS at steady state (peak; V8 heap used)',
        `${(peakRss / 1024 ** 2).toFixed(0)} MiB (${(heapUsed / 1024 ** 2).toFixed(0)} MiB)`,
        `< 150 MiB ${peakRss < 150 * 1024 ** 2 ? 'met' : 'MISSED'}`,
      ],
      [`leader CPU at steady state (${IDLE_SECONDS} s)`, `${(idleCpu * 100).toFixed(2)} %`, `< 1 % ${idleCpu < 0.01 ? 'met' : 'MISSED'}`],
      ['API requests per minute at steady state (both replicas, Lease every 2 s)', `${idleRequestsPerMin.toFixed(0)} (${idleReconciles} reconciles)`, ''],
      [`peer-list propagation p50 (${latencies.length} changes)`, `${percentile(latencies, 50).toFixed(0)} ms`, ''],
      ['propagation by phase (ms p50/max)', phaseSummary, ''],
      ['peer-list propagation p99', `${percentile(latencies, 99).toFixed(0)} ms`, `< 1000 ms ${percentile(latencies, 99) < 1000 ? 'met' : 'MISSED'}`],
      [`failover: lease taken over after SIGKILL`, `${leaseTakenAfter.toFixed(1)} s (Lease duration 15 s)`, ''],
      [`failover: new leader finished ${BATCH} FileClusters`, `${failoverSeconds.toFixed(1)} s after the kill`, ''],
    ];
    const w0 = Math.max(...rows.map((r) => r[0].length));
    const w1 = Math.max(...rows.map((r) => r[1].length));
    process.stdout.write(`\n| ${'measure'.padEnd(w0)} | ${'value'.padEnd(w1)} | target |\n|${'-'.repeat(w0 + 2)}|${'-'.repeat(w1 + 2)}|---|\n`);
    for (const r of rows) process.stdout.write(`| ${r[0].padEnd(w0)} | ${r[1].padEnd(w1)} | ${r[2]} |\n`);
    process.stdout.write(
      `\nmachine: ${os.cpus().length} cores, ${(os.totalmem() / 1024 ** 3).toFixed(0)} GiB, load average ${os
        .loadavg()
        .map((l) => l.toFixed(1))
        .join(' ')}; logs in ${dir}\n`,
    );
  } finally {
    stopping = true;
    for (const a of watchAborts) a.abort();
    for (const r of replicas.values()) r.proc.kill('SIGKILL');
    await cluster.close();
    if (!process.env['FC_BENCH_KEEP']) rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Where one propagation's time went, from the leader's "peer list changed" log line for the new list:
 * watch (the operator saw the Ready change this much after the benchmark's watch did), queued, read
 * (live GETs), plan (applies and other work before the generation is stored), status (storing it),
 * push (to every pod), rest (until the benchmark's poll saw every pod holding it). Missing phases were
 * not logged (the reconcile that pushed was queued by something else than the Ready change).
 */
function propagationPhases(logFile: string, cluster: string, peers: number, readyWallMs: number, tookMs: number): Record<string, number> {
  let line: Record<string, number> | undefined;
  for (const text of readFileSync(logFile, 'utf8').split('\n')) {
    if (!text.includes('"peer list changed"') || !text.includes(`"cluster":"${cluster}"`)) continue;
    const entry = JSON.parse(text) as Record<string, unknown>;
    if (Array.isArray(entry['peers']) && entry['peers'].length === peers) line = entry as Record<string, number>;
  }
  if (!line) return {};
  const out: Record<string, number> = {};
  if (line['seenAt'] !== undefined) out['watch'] = Math.round(line['seenAt'] - readyWallMs);
  for (const k of ['queued', 'read', 'plan', 'status', 'push']) if (line[`${k}Ms`] !== undefined) out[k] = line[`${k}Ms`]!;
  // pino writes the line's time as an ISO string, right after the pushes.
  out['rest'] = Math.round(readyWallMs + tookMs - Date.parse(String(line['time'])));
  return out;
}

const tokens = new Map<string, string>();
/** The cluster token of a FileCluster's file servers, from the Secret the operator generated (`<name>-token`). */
async function podToken(cluster: Cluster, ns: string, fc: string): Promise<string> {
  const cached = tokens.get(fc);
  if (cached) return cached;
  const token = Buffer.from(await kubectlOk(cluster, ['get', 'secret', `${fc}-token`, '-n', ns, '-o', 'jsonpath={.data.token}']), 'base64').toString();
  tokens.set(fc, token);
  return token;
}

await main();
