// Writes the chart's Grafana dashboard (charts/filecluster/files/dashboard.json) from its TypeScript
// source, scripts/dashboard/dashboard.ts. Edit that module, then run:
//
//   node scripts/render-dashboard.ts
//
// test/integration/packaging/dashboard.test.ts fails when the committed JSON drifts from the module.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderDashboard } from './dashboard/dashboard.ts';

const DASHBOARD_JSON = join(import.meta.dirname, '../charts/filecluster/files/dashboard.json');

writeFileSync(DASHBOARD_JSON, renderDashboard());
process.stdout.write(`wrote ${DASHBOARD_JSON}\n`);
