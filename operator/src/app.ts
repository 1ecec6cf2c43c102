import { createServer, type Server } from 'node:http';
// A deep import: the package index would load every generated API and model (see client-node-hooks.ts).
import { KubeConfig } from '@kubernetes/client-node/dist/config.js';
import type { Logger } from 'pino';
import type { OperatorConfig } from './config.ts';
import { FileClusterController } from './controllers/filecluster/controller.ts';
import { FIELD_MANAGER } from './controllers/filecluster/names.ts';
import { createMetrics, type OperatorMetrics } from './metrics.ts';
import { EventRecorder } from './runtime/events.ts';
import { Kube } from './runtime/kube.ts';
import { LeaderElector } from './runtime/leader.ts';

export interface Operator {
  controller: FileClusterController;
  metrics: OperatorMetrics;
  /** Starts informers, the health/metrics server and the leader election; resolves once listening. */
  start(): Promise<{ port: number }>;
  /** Graceful stop: finish in-flight reconciles, release the Lease, close watches and the server. */
  stop(): Promise<void>;
}

export function loadKubeConfig(config: OperatorConfig): KubeConfig {
  const kc = new KubeConfig();
  if (config.kubeconfig) kc.loadFromFile(config.kubeconfig);
  else kc.loadFromCluster();
  return kc;
}

/**
 * What the host does when leadership is lost (the renew deadline passed): start.ts exits the process,
 * as controller-runtime's manager does. Every reconcile, push and API request of the lost term stops
 * with it, which no cancellation threaded through each await could promise (a request already being
 * written, a push over node:http); and the next term starts from empty memory in a new process, so no
 * queue, cache or acknowledgement of an old term survives into it.
 */
export interface OperatorHooks {
  onLostLeadership: () => void;
}

export function buildOperator(config: OperatorConfig, kc: KubeConfig, log: Logger, hooks: OperatorHooks): Operator {
  const metrics = createMetrics();
  const kube = new Kube(kc, (verb, resource) => metrics.apiRequests.inc({ verb, resource }));
  const events = new EventRecorder(kube, log, FIELD_MANAGER, config.identity);
  const controller = new FileClusterController(kube, log, metrics, events, {
    namespaces: config.watchNamespaces,
    workers: config.workers,
    resyncMs: config.resyncMs,
    relistMs: config.relistMs,
    watchdogMs: config.watchdogMs,
    fileserverImage: config.fileserverImage,
    push: config.push,
  });
  const lead = (): void => {
    metrics.leader.set(1);
    controller.startWorkers();
  };
  const follow = async (): Promise<void> => {
    await controller.stopWorkers();
    metrics.leader.set(0);
  };
  const lost = (): void => {
    metrics.leader.set(0);
    hooks.onLostLeadership();
  };
  const elector = config.leaderElection
    ? new LeaderElector(
        kube,
        log,
        { ...config.lease, namespace: config.lease.namespace, identity: config.identity },
        { onStartedLeading: lead, onStoppedLeading: follow, onLostLeadership: lost },
      )
    : undefined;

  let server: Server | undefined;
  const handler = async (path: string): Promise<{ status: number; type: string; body: string }> => {
    if (path === '/healthz') {
      // Alive as long as no watch is stuck beyond twice the watchdog (which should have replaced it).
      const ok = controller.watchAgeMs < config.watchdogMs * 2;
      return { status: ok ? 200 : 503, type: 'application/json', body: JSON.stringify({ ok }) };
    }
    if (path === '/readyz') {
      const ok = controller.synced;
      return { status: ok ? 200 : 503, type: 'application/json', body: JSON.stringify({ ok, leader: elector ? elector.isLeader : true }) };
    }
    if (path === '/metrics') return { status: 200, type: metrics.registry.contentType, body: await metrics.registry.metrics() };
    return { status: 404, type: 'application/json', body: JSON.stringify({ error: 'not_found', message: `no route ${path}` }) };
  };

  return {
    controller,
    metrics,
    async start() {
      server = createServer((req, res) => {
        void handler(new URL(req.url ?? '/', 'http://x').pathname).then(
          (r) => res.writeHead(r.status, { 'content-type': r.type }).end(r.body),
          (err: unknown) => res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'internal', message: String(err) })),
        );
      });
      const port = await new Promise<number>((resolve, reject) => {
        server!.once('error', reject);
        server!.listen(config.port, config.host, () => {
          const addr = server!.address();
          resolve(typeof addr === 'object' && addr ? addr.port : config.port);
        });
      });
      log.info({ port, namespaces: config.watchNamespaces.length ? config.watchNamespaces : 'all', identity: config.identity }, 'operator listening');
      await controller.startInformers();
      log.info({ synced: controller.synced }, 'informers started');
      if (elector) elector.run();
      else lead();
      return { port };
    },
    async stop() {
      // The elector stops the workers while it still holds the Lease, then releases it.
      if (elector) await elector.stop();
      else await controller.stopWorkers();
      await controller.stopInformers();
      await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
      server?.closeAllConnections();
    },
  };
}
