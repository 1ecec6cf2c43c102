import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export const EVENT_LOOP_SAMPLE_MS = 100;

export interface OperatorMetrics {
  registry: Registry;
  reconcileTotal: Counter<'result'>;
  reconcileDuration: Histogram;
  workqueueDepth: Gauge;
  peerPushTotal: Counter<'result'>;
  peerPushDuration: Histogram;
  leader: Gauge;
  scaleDownBlockedSeconds: Gauge<'namespace' | 'name'>;
  apiRequests: Counter<'verb' | 'resource'>;
}

export function createMetrics(): OperatorMetrics {
  const registry = new Registry();
  // The event-loop delay histogram samples on a timer: at prom-client's default of every 10 ms that
  // timer alone would be a large share of an idle operator's CPU; every 100 ms is precise enough.
  collectDefaultMetrics({ register: registry, prefix: 'filecluster_operator_process_', eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
  return {
    registry,
    reconcileTotal: new Counter({
      name: 'filecluster_operator_reconcile_total',
      help: 'Reconciles of FileClusters by result (success, requeue, error).',
      labelNames: ['result'],
      registers: [registry],
    }),
    reconcileDuration: new Histogram({
      name: 'filecluster_operator_reconcile_duration_seconds',
      help: 'Duration of one FileCluster reconcile.',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    workqueueDepth: new Gauge({
      name: 'filecluster_operator_workqueue_depth',
      help: 'FileCluster keys waiting in the work queue.',
      registers: [registry],
    }),
    peerPushTotal: new Counter({
      name: 'filecluster_operator_peer_push_total',
      help: 'Peer-list pushes to pods by result (success, conflict, error).',
      labelNames: ['result'],
      registers: [registry],
    }),
    peerPushDuration: new Histogram({
      name: 'filecluster_operator_peer_push_duration_seconds',
      help: 'Duration of one peer-list push to one pod, retries included.',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    apiRequests: new Counter({
      name: 'filecluster_operator_api_requests_total',
      help: 'Requests to the Kubernetes API by verb (WATCH for a watch opened) and resource.',
      labelNames: ['verb', 'resource'],
      registers: [registry],
    }),
    scaleDownBlockedSeconds: new Gauge({
      name: 'filecluster_operator_scale_down_blocked_seconds',
      help: "How long a FileCluster's scale-down has waited for its leaving pods to hand their writes over (0 when none waits).",
      labelNames: ['namespace', 'name'],
      registers: [registry],
    }),
    leader: new Gauge({
      name: 'filecluster_operator_leader',
      help: '1 while this replica holds the leader Lease.',
      registers: [registry],
    }),
  };
}
