// Operator benchmark: time from `kubectl apply` to 3 Ready pods, and peer-list propagation: from the
// moment a pod's Ready change is visible in the API to the moment every Ready pod holds the new list.
// Prints a table; the target (< 1 s propagation) is a goal to compare against, not an assertion.
//   node bench/operator/propagation.ts [rounds]   (FC_TEST_PROVIDER=local|existing)
import { Watch, type V1Pod } from '@kubernetes/client-node';
import { startCluster, waitFor } from '../../test/harness/index.ts';
import { CRD_FILE, OperatorProcesses, clusterPods, clusterToken, fileClusterStatus, fileClusterYaml, peersOf } from '../../test/e2e/operator/support.ts';

const rounds = Number(process.argv[2] ?? 5);
const NAME = 'bench';

const cluster = await startCluster();
const ns = await cluster.createNamespace('fc-bench');
const operators = new OperatorProcesses(cluster, ns);
const stats = { readyMs: [] as number[], joinMs: [] as number[], leaveMs: [] as number[] };

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] ?? NaN;
}

/** Ready transitions as the API reports them, timestamped on arrival. */
const readySeen = new Map<string, { ready: boolean; at: number }>();
const podIps = new Map<string, string>();
const watch = new Watch(cluster.kubeClient());
const abort = await watch.watch(
  `/api/v1/namespaces/${ns}/pods`,
  {},
  (_type: string, pod: V1Pod) => {
    const name = pod.metadata?.name ?? '';
    const ready = (pod.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True') && !pod.metadata?.deletionTimestamp;
    if (readySeen.get(name)?.ready !== ready) readySeen.set(name, { ready, at: performance.now() });
    if (pod.status?.podIP) podIps.set(name, pod.status.podIP);
  },
  () => {},
);

/** Polls every Ready pod's list until all hold `expected` members; returns when that was first seen. */
async function allHold(token: string, expected: string[]): Promise<number> {
  return waitFor(
    async () => {
      // Pod IPs come from the watch, so one poll is just the HTTP reads (no kubectl in the loop).
      if (!expected.every((name) => readySeen.get(name)?.ready && podIps.has(name))) return false;
      const lists = await Promise.all(expected.map((name) => peersOf(`http://${podIps.get(name)!}:8080`, token).catch(() => undefined)));
      const ok = lists.every(
        (l, i) =>
          l &&
          l.peers
            .map((p) => p.id)
            .sort()
            .join() ===
            expected
              .filter((e) => e !== expected[i])
              .sort()
              .join(),
      );
      return ok ? performance.now() : false;
    },
    120_000,
    `every pod to hold ${expected.join(',')}`,
    10,
  );
}

try {
  await cluster.kubectl(['apply', '--server-side', '--force-conflicts', '-f', CRD_FILE]);
  await cluster.kubectl(['wait', '--for=condition=Established', 'crd/fileclusters.filecluster.dev']);
  await operators.start();
  await waitFor(() => operators.leader(), 30_000, 'a leader');

  const t0 = performance.now();
  await cluster.kubectl(['apply', '-n', ns, '-f', '-'], { input: fileClusterYaml(NAME, { replicas: 3 }) });
  await waitFor(async () => (await fileClusterStatus(cluster, ns, NAME)).conditions?.some((c) => c.type === 'Ready' && c.status === 'True'), 180_000, 'Ready', 50);
  stats.readyMs.push(performance.now() - t0);
  const token = await clusterToken(cluster, ns, `${NAME}-token`);

  for (let r = 0; r < rounds; r++) {
    // Join: scale 3 -> 4; measure from fc-3's Ready event to every pod holding 4 members.
    await cluster.kubectl(['scale', '-n', ns, `fc/${NAME}`, '--replicas=4']);
    const done = await allHold(
      token,
      [0, 1, 2, 3].map((i) => `${NAME}-${i}`),
    );
    const readyAt = readySeen.get(`${NAME}-3`);
    if (readyAt?.ready) stats.joinMs.push(done - readyAt.at);
    // Leave: delete pod 1; measure from its un-Ready/deletion event to the others dropping it.
    await cluster.kubectl(['delete', 'pod', `${NAME}-1`, '-n', ns, '--wait=false']);
    const goneAt = await waitFor(() => (readySeen.get(`${NAME}-1`)?.ready === false ? readySeen.get(`${NAME}-1`)!.at : false), 60_000, 'pod 1 un-Ready', 5);
    const dropped = await allHold(
      token,
      [0, 2, 3].map((i) => `${NAME}-${i}`),
    );
    stats.leaveMs.push(dropped - goneAt);
    await allHold(
      token,
      [0, 1, 2, 3].map((i) => `${NAME}-${i}`),
    );
    await cluster.kubectl(['scale', '-n', ns, `fc/${NAME}`, '--replicas=3']);
    await allHold(
      token,
      [0, 1, 2].map((i) => `${NAME}-${i}`),
    );
    await waitFor(async () => (await clusterPods(cluster, ns, NAME)).length === 3, 120_000, 'scale-down to 3');
  }

  const row = (what: string, xs: number[]) =>
    `| ${what.padEnd(44)} | ${String(xs.length).padStart(3)} | ${percentile(xs, 50).toFixed(0).padStart(7)} | ${percentile(xs, 90).toFixed(0).padStart(7)} | ${Math.max(
      ...xs,
    )
      .toFixed(0)
      .padStart(7)} |`;
  console.log(`\nFileCluster operator, provider ${cluster.provider}, ${new Date().toISOString()}`);
  console.log('| measurement                                  |   n | p50 ms  | p90 ms  | max ms  |');
  console.log('|----------------------------------------------|-----|---------|---------|---------|');
  console.log(row('apply -> 3 pods Ready (status Ready=True)', stats.readyMs));
  console.log(row('pod Ready -> every pod holds the new list', stats.joinMs));
  console.log(row('pod deleted -> every pod dropped it', stats.leaveMs));
  console.log('target: every Ready pod holds the new list within 1000 ms of the change');
} finally {
  abort.abort();
  await operators.stop();
  await cluster.deleteNamespace(ns).catch(() => {});
  await cluster.close();
}
