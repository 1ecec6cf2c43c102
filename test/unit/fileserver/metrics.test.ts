import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createMetrics } from '../../../fileserver/src/metrics.ts';

describe('metrics', () => {
  it('follow Prometheus naming: prefixed, _total on counters, base units, bounded labels', async () => {
    const m = createMetrics();
    m.setSource({
      peers: () => [{ id: 'fc-1', pendingChanges: 0, pendingBytes: 0, lagSeconds: 0, up: true, lastSuccessMs: 1_700_000_000_000, catchup: 'unreachable' }],
      generation: () => 3,
      tombstones: () => 2,
      stale: () => false,
      storeBytes: () => 10,
      storeFiles: () => 1,
    });
    const all = await m.registry.getMetricsAsJSON();
    const allowedLabels = new Set(['peer', 'result', 'route', 'method', 'status', 'le', 'quantile']);
    for (const metric of all) {
      assert.match(metric.name, /^filecluster_[a-z0-9_]+$/, metric.name);
      if (String(metric.type) === 'counter') assert.match(metric.name, /_total$/, metric.name);
      if (metric.name.startsWith('filecluster_process_') || metric.name.startsWith('filecluster_nodejs_')) continue;
      for (const v of metric.values) for (const l of Object.keys(v.labels)) assert.ok(allowedLabels.has(l), `${metric.name} has label ${l}`);
    }
    const text = await m.registry.metrics();
    assert.match(text, /filecluster_replication_lag_seconds\{peer="fc-1"\} 0\n/);
    assert.match(text, /filecluster_peer_list_generation 3\n/);
    assert.match(text, /filecluster_replication_last_success_timestamp_seconds\{peer="fc-1"\} 1700000000\n/);
    assert.match(text, /# TYPE filecluster_replication_ack_latency_seconds histogram/);
    assert.match(text, /filecluster_catchup_peer_unreachable\{peer="fc-1"\} 1\n/);
    m.ackLatency.observe({ peer: 'fc-1' }, 0.004);
    assert.match(await m.registry.metrics(), /filecluster_replication_ack_latency_seconds_bucket\{le="0.005",peer="fc-1"\} 1\n/);
  });

  it('per-peer gauges show only the peers currently held', async () => {
    const m = createMetrics();
    let peers = ['a', 'b'];
    m.setSource({
      peers: () => peers.map((id) => ({ id, pendingChanges: 1, pendingBytes: 5, lagSeconds: 1.5, up: false, lastSuccessMs: undefined, catchup: 'complete' })),
      generation: () => 1,
      tombstones: () => 0,
      stale: () => false,
      storeBytes: () => 0,
      storeFiles: () => 0,
    });
    assert.match(await m.registry.metrics(), /filecluster_replication_pending_changes\{peer="b"\} 1/);
    peers = ['a'];
    const text = await m.registry.metrics();
    assert.doesNotMatch(text, /peer="b"/);
    assert.match(text, /filecluster_peers 1\n/);
  });
});
