// Informer benchmark: how far the operator's FileCluster cache trails the API server, and whether it
// ever stays behind with no event left to fix it, while its watch lags and relists. It answers
// whether the reconcile still needs live GETs of the FileCluster and StatefulSet: a cache that catches
// up within the watch's delivery time and never stays behind makes them a cost, not a safeguard.
// Each round patches spec.replicas; every third round first stalls the watch's connection (the proxy
// of test/e2e/operator/faulty-proxy.ts), so the change arrives through a relist or the watchdog.
// A "reconcile" queued by every event reads the cache, as the operator's reconcile reads its caches.
// Prints a table; no assertion.
//   node bench/operator/cache-freshness.ts [rounds]   (FC_TEST_PROVIDER=local|existing)
import { pino } from 'pino';
import type { KubernetesObject } from '@kubernetes/client-node';
import { startCluster, waitFor } from '../../test/harness/index.ts';
import { CRD_FILE, fileClusterYaml } from '../../test/e2e/operator/support.ts';
import { FaultyProxy, throughProxy } from '../../test/e2e/operator/faulty-proxy.ts';
import { ResilientInformer } from '../../operator/src/runtime/informer.ts';
import { Kube, RESOURCES, resourcePath } from '../../operator/src/runtime/kube.ts';

const rounds = Number(process.argv[2] ?? 30);
const NAME = 'bench';
/** A round whose change the cache has not shown after this long counts as a change left behind. */
const BEHIND_MS = 15_000;

type Fc = KubernetesObject & { spec?: { replicas?: number } };

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] ?? NaN;
}

const cluster = await startCluster();
const ns = await cluster.createNamespace('fc-bench-cache');
const direct = new Kube(cluster.kubeClient());
const server = new URL(cluster.kubeClient().getCurrentCluster()!.server);
const proxy = new FaultyProxy({ host: server.hostname, port: Number(server.port || 443) });
await proxy.listen();
const informer = new ResilientInformer<Fc>(new Kube(throughProxy(cluster.kubeClient(), proxy)), pino({ level: 'warn' }), {
  resource: RESOURCES.fileclusters,
  namespaces: [ns],
  // The operator's defaults are an hour and two minutes; shortened so every stalled round meets one.
  relistMs: 2000,
  watchdogMs: 4000,
});
/** Reconciles queued by events: the replicas the event reported and the replicas the cache then held. */
const reconciles: Array<{ reported: number | undefined; read: number | undefined }> = [];
informer.on((type, fc) => {
  if (type === 'delete') return;
  const reported = fc.spec?.replicas;
  setImmediate(() => reconciles.push({ reported, read: informer.get(NAME, ns)?.spec?.replicas }));
});
const stats = { normalLagMs: [] as number[], stalledLagMs: [] as number[], getMs: [] as number[], behind: 0 };
const path = resourcePath(RESOURCES.fileclusters, ns, NAME);

try {
  await cluster.kubectl(['apply', '--server-side', '--force-conflicts', '-f', CRD_FILE]);
  await cluster.kubectl(['wait', '--for=condition=Established', 'crd/fileclusters.filecluster.dev']);
  await cluster.kubectl(['apply', '-n', ns, '-f', '-'], { input: fileClusterYaml(NAME, { replicas: 1 }) });
  await informer.start();
  for (let r = 0; r < rounds; r++) {
    const stalled = r % 3 === 2;
    if (stalled) proxy.stallAll({ resetOnSend: true });
    const replicas = (r % 9) + 2;
    const patched = await direct.mergePatch<Fc>(path, { spec: { replicas } }, 'cache-freshness-bench');
    const at = performance.now();
    const rv = Number(patched.metadata?.resourceVersion);
    const seen = await waitFor(() => Number(informer.get(NAME, ns)?.metadata?.resourceVersion ?? 0) >= rv && performance.now(), BEHIND_MS, 'the cache', 2).catch(
      () => undefined,
    );
    if (seen === undefined) stats.behind++;
    else (stalled ? stats.stalledLagMs : stats.normalLagMs).push(seen - at);
    const t = performance.now();
    await direct.request('GET', path);
    stats.getMs.push(performance.now() - t);
  }
  const misread = reconciles.filter((r) => r.read !== r.reported).length;
  const row = (what: string, xs: number[]) =>
    `| ${what.padEnd(52)} | ${String(xs.length).padStart(3)} | ${percentile(xs, 50).toFixed(1).padStart(8)} | ${percentile(xs, 99).toFixed(1).padStart(8)} | ${Math.max(
      ...xs,
    )
      .toFixed(1)
      .padStart(8)} |`;
  console.log(`\nFileCluster cache freshness, provider ${cluster.provider}, ${rounds} rounds, ${new Date().toISOString()}`);
  console.log('| measurement                                          |   n |   p50 ms |   p99 ms |   max ms |');
  console.log('|------------------------------------------------------|-----|----------|----------|----------|');
  console.log(row('patch answered -> cache holds it (watch live)', stats.normalLagMs));
  console.log(row('patch answered -> cache holds it (watch stalled)', stats.stalledLagMs));
  console.log(row('live GET of the FileCluster', stats.getMs));
  console.log(`changes the cache had not shown after ${BEHIND_MS / 1000} s: ${stats.behind} of ${rounds}`);
  console.log(`reconciles queued by an event that read other replicas than the event reported: ${misread} of ${reconciles.length}`);
} finally {
  await informer.stop();
  await proxy.close();
  await cluster.deleteNamespace(ns).catch(() => {});
  await cluster.close();
}
