// The Grafana dashboard the chart ships (charts/filecluster/files/dashboard.json), written with Grafana's
// foundation SDK so panels and queries are typed and reviewed as code. `node scripts/render-dashboard.ts`
// writes the JSON; test/integration/packaging/dashboard.test.ts fails when the committed file differs
// from what this module builds, and monitoring.test.ts checks every metric it names against the
// components' own registries.
import * as common from '@grafana/grafana-foundation-sdk/common';
import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import * as prometheus from '@grafana/grafana-foundation-sdk/prometheus';
import * as stat from '@grafana/grafana-foundation-sdk/stat';
import * as timeseries from '@grafana/grafana-foundation-sdk/timeseries';

/** Every panel and variable queries the data source the user picks. */
const DATASOURCE = { type: 'prometheus', uid: '${datasource}' };
const GRID_COLUMNS = 24;
const PANEL_HEIGHT = 8;

/** A file-server series, filtered by the dashboard's namespace and FileCluster variables. */
function fileServer(metric: string, ...matchers: string[]): string {
  return `${metric}{${['namespace=~"$namespace"', 'filecluster=~"$cluster"', ...matchers].join(', ')}}`;
}

/** `rate()` over Grafana's rate interval. */
const rate = (series: string): string => `rate(${series}[$__rate_interval])`;

/** A quantile of a histogram, summed over everything but `le` and the `by` labels. */
function quantile(q: number, bucketSeries: string, by: string[] = []): string {
  return `histogram_quantile(${q}, sum by (${['le', ...by].join(', ')}) (${rate(bucketSeries)}))`;
}

interface Query {
  expr: string;
  legend: string;
}

interface PanelSpec {
  title: string;
  description: string;
  unit: string;
  queries: Query[];
  /** Columns of the 24-column grid, when not the row's panelWidth. */
  width?: number;
  kind?: 'timeseries' | 'stat';
}

interface RowSpec {
  title: string;
  /** Columns of the 24-column grid each panel takes, unless it says otherwise. */
  panelWidth: number;
  panels: PanelSpec[];
}

const q = (expr: string, legend: string): Query => ({ expr, legend });

/** A counter's per-second rate, summed by `labels`. */
const ratePer = (labels: string, series: string, legend: string): Query => q(`sum by (${labels}) (${rate(series)})`, legend);

/** A gauge, aggregated by `labels`. */
const valuePer = (aggregation: 'max' | 'min' | 'sum', labels: string, series: string, legend: string): Query => q(`${aggregation} by (${labels}) (${series})`, legend);

const ROWS: RowSpec[] = [
  {
    title: 'Replication',
    panelWidth: 8,
    panels: [
      {
        title: 'Replication lag by pod and peer',
        description: 'Age of the oldest change a pod has not yet delivered to a peer. Grows while a peer is down or slow.',
        unit: 's',
        queries: [valuePer('max', 'pod, peer', fileServer('filecluster_replication_lag_seconds'), '{{pod}} → {{peer}}')],
      },
      {
        title: 'Pending changes',
        description: 'Changes queued for delivery, per pod and peer.',
        unit: 'short',
        queries: [valuePer('sum', 'pod, peer', fileServer('filecluster_replication_pending_changes'), '{{pod}} → {{peer}}')],
      },
      {
        title: 'Pending bytes',
        description: 'Bytes queued for delivery, per pod and peer.',
        unit: 'bytes',
        queries: [valuePer('sum', 'pod, peer', fileServer('filecluster_replication_pending_bytes'), '{{pod}} → {{peer}}')],
      },
      {
        title: 'Replication latency',
        description: "Quantiles of the time from a local write to the peer's acknowledgement (histogram).",
        unit: 's',
        queries: [0.5, 0.9, 0.99].map((p) => q(quantile(p, fileServer('filecluster_replication_ack_latency_seconds_bucket')), `p${Math.round(p * 100)}`)),
      },
      {
        title: 'Push attempts by result',
        description: 'Replication pushes per second, per pod, peer and result.',
        unit: 'ops',
        queries: [ratePer('pod, peer, result', fileServer('filecluster_replication_attempts_total'), '{{pod}} → {{peer}} {{result}}')],
      },
      {
        title: 'Replication traffic',
        description: 'Bytes per second pushed to peers and received from peers.',
        unit: 'Bps',
        queries: [
          ratePer('pod', fileServer('filecluster_replication_sent_bytes_total'), '{{pod}} sent'),
          ratePer('pod', fileServer('filecluster_replication_received_bytes_total'), '{{pod}} received'),
        ],
      },
      {
        title: 'Dropped changes',
        description: 'Changes given up on (left to catch-up), per second.',
        unit: 'ops',
        queries: [ratePer('pod, peer', fileServer('filecluster_replication_dropped_changes_total'), '{{pod}} → {{peer}}')],
      },
      {
        title: 'Time since last successful push',
        description: 'Seconds since each pod last delivered a change to each peer.',
        unit: 's',
        queries: [q(`time() - max by (pod, peer) (${fileServer('filecluster_replication_last_success_timestamp_seconds')})`, '{{pod}} → {{peer}}')],
      },
      {
        title: 'Peer reachability',
        description: '1 when a pod can reach a peer, 0 when not.',
        unit: 'short',
        queries: [valuePer('min', 'pod, peer', fileServer('filecluster_peer_up'), '{{pod}} → {{peer}}')],
      },
    ],
  },
  {
    title: 'Membership',
    panelWidth: 6,
    panels: [
      {
        title: 'Pods answering',
        description: '1 while Prometheus can scrape a file-server pod, 0 when it is down or unreachable.',
        unit: 'none',
        queries: [valuePer('max', 'pod', fileServer('up'), '{{pod}}')],
      },
      {
        title: 'Peer-list generation per pod',
        description: 'The peer-list generation each pod holds. Pods of one cluster on different lines are out of sync.',
        unit: 'none',
        queries: [valuePer('max', 'pod', fileServer('filecluster_peer_list_generation'), '{{pod}}')],
      },
      {
        title: 'Generation spread',
        description: 'Newest minus oldest peer-list generation held in a cluster; above 0 means some pods have not got the latest list.',
        unit: 'none',
        kind: 'stat',
        queries: [
          q(
            `max by (namespace, filecluster) (${fileServer('filecluster_peer_list_generation')}) - min by (namespace, filecluster) (${fileServer('filecluster_peer_list_generation')})`,
            '{{namespace}}/{{filecluster}}',
          ),
        ],
      },
      {
        title: 'Peers known per pod',
        description: "Number of peers in each pod's list.",
        unit: 'none',
        queries: [valuePer('max', 'pod', fileServer('filecluster_peers'), '{{pod}}')],
      },
    ],
  },
  {
    title: 'Catch-up and conflicts',
    panelWidth: 8,
    panels: [
      {
        title: 'Catch-up runs by result',
        description: 'Anti-entropy runs per second.',
        unit: 'ops',
        queries: [ratePer('pod, result', fileServer('filecluster_catchup_runs_total'), '{{pod}} {{result}}')],
      },
      {
        title: 'Files repaired and conflicts resolved',
        description: 'Files fetched by catch-up and concurrent writes settled by the conflict rule, per second.',
        unit: 'ops',
        queries: [
          ratePer('pod', fileServer('filecluster_catchup_files_repaired_total'), '{{pod}} repaired'),
          ratePer('pod', fileServer('filecluster_conflicts_resolved_total'), '{{pod}} conflicts'),
        ],
      },
      {
        title: 'Tombstones',
        description: 'Deletion markers held per pod.',
        unit: 'short',
        queries: [valuePer('max', 'pod', fileServer('filecluster_tombstones'), '{{pod}}')],
      },
    ],
  },
  {
    title: 'HTTP',
    panelWidth: 8,
    panels: [
      {
        title: 'Writes',
        description: 'File writes and deletes per second, per pod.',
        unit: 'reqps',
        queries: [ratePer('pod, method', fileServer('filecluster_http_requests_total', 'method=~"PUT|POST|DELETE"', 'route!~"/internal.*"'), '{{pod}} {{method}}')],
      },
      {
        title: 'Reads',
        description: 'File reads per second, per pod.',
        unit: 'reqps',
        queries: [ratePer('pod, method', fileServer('filecluster_http_requests_total', 'method=~"GET|HEAD"', 'route!~"/internal.*"'), '{{pod}} {{method}}')],
      },
      {
        title: 'Errors',
        description: 'Requests answered with 4xx or 5xx, per second, by route and status.',
        unit: 'reqps',
        queries: [ratePer('route, status', fileServer('filecluster_http_requests_total', 'status=~"4..|5.."'), '{{route}} {{status}}')],
      },
      {
        title: 'Request latency (p99)',
        description: '99th percentile request duration by route.',
        unit: 's',
        width: 12,
        queries: [q(quantile(0.99, fileServer('filecluster_http_request_duration_seconds_bucket'), ['route']), '{{route}}')],
      },
      {
        title: '5xx ratio',
        description: 'Share of requests answered with a server error.',
        unit: 'percentunit',
        width: 12,
        queries: [q(`sum(${rate(fileServer('filecluster_http_requests_total', 'status=~"5.."'))}) / sum(${rate(fileServer('filecluster_http_requests_total'))})`, '5xx')],
      },
    ],
  },
  {
    title: 'Storage',
    panelWidth: 12,
    panels: [
      {
        title: 'Disk usage',
        description: 'Bytes of file content stored per pod.',
        unit: 'bytes',
        queries: [valuePer('max', 'pod', fileServer('filecluster_store_bytes'), '{{pod}}')],
      },
      {
        title: 'Files',
        description: 'Files stored per pod.',
        unit: 'short',
        queries: [valuePer('max', 'pod', fileServer('filecluster_store_files'), '{{pod}}')],
      },
    ],
  },
  {
    // The operator's series carry the operator's namespace and pod, not a FileCluster: unfiltered.
    title: 'Operator',
    panelWidth: 8,
    panels: [
      {
        title: 'Reconciles by result',
        description: 'Reconciliations per second.',
        unit: 'ops',
        queries: [ratePer('result', 'filecluster_operator_reconcile_total', '{{result}}')],
      },
      {
        title: 'Reconcile errors',
        description: 'Failed reconciliations per second.',
        unit: 'ops',
        queries: [q(`sum(${rate('filecluster_operator_reconcile_total{result="error"}')})`, 'errors')],
      },
      {
        title: 'Work queue depth',
        description: 'FileClusters waiting to be reconciled, per operator pod.',
        unit: 'short',
        queries: [q('max by (pod) (filecluster_operator_workqueue_depth)', '{{pod}}')],
      },
      {
        title: 'Reconcile duration',
        description: 'Quantiles of reconcile duration.',
        unit: 's',
        queries: [0.5, 0.99].map((p) => q(quantile(p, 'filecluster_operator_reconcile_duration_seconds_bucket'), `p${Math.round(p * 100)}`)),
      },
      {
        title: 'Peer-list pushes',
        description: 'Peer-list pushes to file-server pods per second by result, and their p99 duration.',
        unit: 'short',
        queries: [
          ratePer('result', 'filecluster_operator_peer_push_total', '{{result}}'),
          q(quantile(0.99, 'filecluster_operator_peer_push_duration_seconds_bucket'), 'p99 duration (s)'),
        ],
      },
      {
        title: 'Leader',
        description: '1 on the operator pod holding the Lease.',
        unit: 'none',
        queries: [q('max by (pod) (filecluster_operator_leader)', '{{pod}}')],
      },
    ],
  },
];

function targets(queries: Query[]): prometheus.DataqueryBuilder[] {
  return queries.map((query, i) =>
    new prometheus.DataqueryBuilder()
      .datasource(DATASOURCE)
      .expr(query.expr)
      .legendFormat(query.legend)
      .refId(String.fromCharCode('A'.charCodeAt(0) + i))
      .range(),
  );
}

function panel(spec: PanelSpec, id: number, gridPos: dashboard.GridPos): timeseries.PanelBuilder | stat.PanelBuilder {
  if (spec.kind === 'stat') {
    return new stat.PanelBuilder()
      .id(id)
      .title(spec.title)
      .description(spec.description)
      .datasource(DATASOURCE)
      .gridPos(gridPos)
      .unit(spec.unit)
      .colorMode(common.BigValueColorMode.Value)
      .graphMode(common.BigValueGraphMode.None)
      .reduceOptions(new common.ReduceDataOptionsBuilder().calcs(['lastNotNull']).fields('').values(false))
      .withTarget(targets(spec.queries)[0]!);
  }
  const built = new timeseries.PanelBuilder()
    .id(id)
    .title(spec.title)
    .description(spec.description)
    .datasource(DATASOURCE)
    .gridPos(gridPos)
    .unit(spec.unit)
    .legend(
      new common.VizLegendOptionsBuilder()
        .showLegend(true)
        .displayMode(common.LegendDisplayMode.Table)
        .placement(common.LegendPlacement.Bottom)
        .calcs(['lastNotNull', 'max']),
    )
    .tooltip(new common.VizTooltipOptionsBuilder().mode(common.TooltipDisplayMode.Multi).sort(common.SortOrder.Descending));
  for (const target of targets(spec.queries)) built.withTarget(target);
  return built;
}

/** A query variable over the label values of a series the file servers always export. */
function labelVariable(name: string, label: string, query: string): dashboard.QueryVariableBuilder {
  return new dashboard.QueryVariableBuilder(name)
    .label(label)
    .datasource(DATASOURCE)
    .definition(query)
    .query({ query, refId: name })
    .includeAll(true)
    .multi(true)
    .allValue('.*')
    .refresh(dashboard.VariableRefresh.OnTimeRangeChanged)
    .sort(dashboard.VariableSort.AlphabeticalAsc);
}

export function buildDashboard(): dashboard.Dashboard {
  const builder = new dashboard.DashboardBuilder('FileCluster')
    .uid('filecluster-overview')
    .description('Replication, membership, HTTP, storage and operator metrics of FileCluster.')
    .tags(['filecluster'])
    .timezone('browser')
    .editable()
    .tooltip(dashboard.DashboardCursorSync.Crosshair)
    .refresh('30s')
    .time({ from: 'now-1h', to: 'now' })
    .withVariable(new dashboard.DatasourceVariableBuilder('datasource').label('Data source').type('prometheus'))
    .withVariable(labelVariable('namespace', 'Namespace', 'label_values(filecluster_peer_list_generation, namespace)'))
    .withVariable(labelVariable('cluster', 'FileCluster', 'label_values(filecluster_peer_list_generation{namespace=~"$namespace"}, filecluster)'));

  // Rows and panels flow left to right, top to bottom; ids follow the same order.
  let id = 0;
  let y = 0;
  for (const row of ROWS) {
    builder.withRow(new dashboard.RowBuilder(row.title).id(++id).gridPos({ x: 0, y, w: GRID_COLUMNS, h: 1 }));
    y += 1;
    let x = 0;
    for (const spec of row.panels) {
      const width = spec.width ?? row.panelWidth;
      if (x + width > GRID_COLUMNS) {
        x = 0;
        y += PANEL_HEIGHT;
      }
      builder.withPanel(panel(spec, ++id, { x, y, w: width, h: PANEL_HEIGHT }));
      x += width;
    }
    y += PANEL_HEIGHT;
  }
  return builder.build();
}

/** The file the chart ships: the dashboard as indented JSON. */
export function renderDashboard(): string {
  return `${JSON.stringify(buildDashboard(), null, 2)}\n`;
}
