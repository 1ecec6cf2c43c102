import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** What the scrape-time gauges read; filled in by the replication layer once it exists. */
export interface MetricsSource {
  peers(): Array<{ id: string; pendingChanges: number; pendingBytes: number; lagSeconds: number; up: boolean; lastSuccessMs: number | undefined; catchup: string }>;
  generation(): number;
  tombstones(): number;
  /** The node has not finished a catch-up round for half the tombstone retention (replication/gc-horizon.ts). */
  stale(): boolean;
  storeBytes(): number;
  storeFiles(): number;
}

export type Metrics = ReturnType<typeof createMetrics>;

/** The `result` label of `filecluster_replication_attempts_total`. */
type PushResult = 'success' | 'failure';
const PUSH_RESULTS: readonly PushResult[] = ['success', 'failure'];

/** Counts and times answered HTTP requests (`filecluster_http_requests_total`, `..._request_duration_seconds`). */
export interface RequestMetrics {
  /** One answered request; `startedMs` is its `performance.now()` at arrival. */
  record(route: string, method: string, status: number, startedMs: number): void;
}

/** Label children are bound once per label set and found again through maps, so a request builds no label objects or status strings. */
function requestMetrics(requests: Counter<'route' | 'method' | 'status'>, duration: Histogram<'route' | 'method'>): RequestMetrics {
  const routes = new Map<string, Map<string, { timer: { observe(v: number): void }; counters: Map<number, { inc(): void }> }>>();
  return {
    record(route, method, status, startedMs) {
      let methods = routes.get(route);
      if (!methods) {
        methods = new Map();
        routes.set(route, methods);
      }
      let m = methods.get(method);
      if (!m) {
        m = { timer: duration.labels(route, method), counters: new Map() };
        methods.set(method, m);
      }
      let counter = m.counters.get(status);
      if (!counter) {
        counter = requests.labels(route, method, String(status));
        m.counters.set(status, counter);
      }
      counter.inc();
      m.timer.observe((performance.now() - startedMs) / 1000);
    },
  };
}

export function createMetrics() {
  const registry = new Registry();
  // prom-client samples event-loop delay on a timer; at its default of every 10 ms that timer alone is a
  // visible share of an idle process's CPU, once per pod on a node.
  collectDefaultMetrics({ register: registry, prefix: 'filecluster_', eventLoopMonitoringPrecision: 100 });
  let source: MetricsSource | undefined;
  const registers = [registry];

  const perPeerGauge = (name: string, help: string, pick: (p: ReturnType<MetricsSource['peers']>[number]) => number | undefined) =>
    new Gauge({
      name,
      help,
      labelNames: ['peer'] as const,
      registers,
      collect() {
        this.reset();
        for (const p of source?.peers() ?? []) {
          const v = pick(p);
          if (v !== undefined) this.set({ peer: p.id }, v);
        }
      },
    });

  const scalarGauge = (name: string, help: string, pick: (s: MetricsSource) => number) =>
    new Gauge({
      name,
      help,
      registers,
      collect() {
        if (source) this.set(pick(source));
      },
    });

  const httpRequests = new Counter({
    name: 'filecluster_http_requests_total',
    help: 'HTTP requests by route, method and status',
    labelNames: ['route', 'method', 'status'] as const,
    registers,
  });
  const httpDuration = new Histogram({
    name: 'filecluster_http_request_duration_seconds',
    help: 'HTTP request duration by route and method',
    labelNames: ['route', 'method'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers,
  });

  const m = {
    registry,
    setSource(s: MetricsSource) {
      source = s;
    },
    pendingChanges: perPeerGauge('filecluster_replication_pending_changes', 'Changes not yet acknowledged by the peer', (p) => p.pendingChanges),
    pendingBytes: perPeerGauge('filecluster_replication_pending_bytes', 'Bytes of changes not yet acknowledged by the peer', (p) => p.pendingBytes),
    lagSeconds: perPeerGauge(
      'filecluster_replication_lag_seconds',
      'Now minus the accept time of the oldest change the peer has not acknowledged; 0 when caught up',
      (p) => p.lagSeconds,
    ),
    peerUp: perPeerGauge('filecluster_peer_up', '1 if the last exchange with the peer succeeded', (p) => (p.up ? 1 : 0)),
    lastSuccess: perPeerGauge('filecluster_replication_last_success_timestamp_seconds', 'Unix time of the last successful push to the peer', (p) =>
      p.lastSuccessMs === undefined ? undefined : p.lastSuccessMs / 1000,
    ),
    ackLatency: new Histogram({
      name: 'filecluster_replication_ack_latency_seconds',
      help: 'Time from local commit of a change to its acknowledgement by a peer',
      labelNames: ['peer'] as const,
      buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60],
      registers,
    }),
    attempts: new Counter({
      name: 'filecluster_replication_attempts_total',
      help: 'Push attempts to a peer by result',
      labelNames: ['peer', 'result'] as const,
      registers,
    }),
    dropped: new Counter({
      name: 'filecluster_replication_dropped_changes_total',
      help: 'Changes owed to a peer that could not be sent and were given up (should stay 0)',
      labelNames: ['peer'] as const,
      registers,
    }),
    sentBytes: new Counter({
      name: 'filecluster_replication_sent_bytes_total',
      help: 'File bytes pushed to a peer',
      labelNames: ['peer'] as const,
      registers,
    }),
    receivedBytes: new Counter({
      name: 'filecluster_replication_received_bytes_total',
      help: 'File bytes received from peers (pushes and catch-up pulls)',
      registers,
    }),
    generation: scalarGauge('filecluster_peer_list_generation', 'Generation of the peer list this node holds', (s) => s.generation()),
    peers: scalarGauge('filecluster_peers', 'Number of peers in the list this node holds', (s) => s.peers().length),
    catchupRuns: new Counter({
      name: 'filecluster_catchup_runs_total',
      help: 'Catch-up runs against a peer by result: success, failure (the peer answered, then the run failed) or unreachable (no answer)',
      labelNames: ['result'] as const,
      registers,
    }),
    catchupUnreachable: perPeerGauge(
      'filecluster_catchup_peer_unreachable',
      '1 if the last catch-up attempt with the peer got no answer; such a peer does not hold back readiness',
      (p) => (p.catchup === 'unreachable' ? 1 : 0),
    ),
    catchupPages: new Counter({
      name: 'filecluster_catchup_manifest_pages_total',
      help: 'Manifest pages received from peers by catch-up',
      registers,
    }),
    catchupCompared: new Counter({
      name: 'filecluster_catchup_entries_compared_total',
      help: 'Manifest entries of peers compared with the local ones by catch-up (progress of a catch-up)',
      registers,
    }),
    filesRepaired: new Counter({
      name: 'filecluster_catchup_files_repaired_total',
      help: 'Files and deletes pulled from peers by catch-up',
      registers,
    }),
    catchupRefused: new Counter({
      name: 'filecluster_catchup_refused_total',
      help: "Peers' files this node lacks below its tombstone horizon, not pulled: deleted here long ago, or held by a node away longer than the retention",
      registers,
    }),
    catchupForgotten: new Counter({
      name: 'filecluster_catchup_forgotten_total',
      help: 'Files a stale node forgot because a peer deleted them and collected the tombstone',
      registers,
    }),
    quarantined: new Counter({
      name: 'filecluster_store_quarantined_files_total',
      help: 'Files whose stored bytes no longer matched their SHA-256 when re-read: set aside and left for catch-up to pull again',
      registers,
    }),
    conflicts: new Counter({
      name: 'filecluster_conflicts_resolved_total',
      help: 'Replicated changes discarded because this node held a newer version (last writer wins)',
      registers,
    }),
    contentConflicts: new Counter({
      name: 'filecluster_content_conflicts_total',
      help: 'Replicated changes of a version held here with different content (should stay 0; the higher SHA-256 wins)',
      registers,
    }),
    clockDriftRejections: new Counter({
      name: 'filecluster_clock_drift_rejections_total',
      help: "Replicated changes refused because their version lies further ahead of this node's clock than the allowed drift, by the node whose clock made it (retried later)",
      labelNames: ['origin'] as const,
      registers,
    }),
    tombstones: scalarGauge('filecluster_tombstones', 'Delete markers held', (s) => s.tombstones()),
    stale: scalarGauge('filecluster_stale', '1 while the node has not finished a catch-up round for half the tombstone retention', (s) => (s.stale() ? 1 : 0)),
    requests: requestMetrics(httpRequests, httpDuration),
    storeBytes: scalarGauge('filecluster_store_bytes', 'Bytes of live files held', (s) => s.storeBytes()),
    storeFiles: scalarGauge('filecluster_store_files', 'Live files held', (s) => s.storeFiles()),
    /** A peer entered the list: its counters exist from the start, so "must stay 0" alerts and rate() see a 0 rather than nothing. */
    addPeer(peer: string) {
      m.dropped.inc({ peer }, 0);
      for (const result of PUSH_RESULTS) m.attempts.inc({ peer, result }, 0);
      m.sentBytes.inc({ peer }, 0);
    },
    /**
     * A peer left the list: its series go with it. Pod names come and go with scaling, and a departed
     * peer's series would otherwise be exported, and alerted on, for the life of the process. (The
     * scrape-time gauges list only current peers anyway.)
     */
    removePeer(peer: string) {
      m.dropped.remove({ peer });
      for (const result of PUSH_RESULTS) m.attempts.remove({ peer, result });
      m.sentBytes.remove({ peer });
      m.ackLatency.remove({ peer });
    },
  };
  return m;
}
