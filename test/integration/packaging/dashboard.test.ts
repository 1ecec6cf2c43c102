// charts/filecluster/files/dashboard.json is generated from scripts/dashboard/dashboard.ts by
// scripts/render-dashboard.ts; this fails when they drift apart (run the script after changing the
// module, never edit the JSON). Its queries are checked in monitoring.test.ts and prometheus.test.ts.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { renderDashboard } from '../../../scripts/dashboard/dashboard.ts';
import { DASHBOARD_FILE } from './support.ts';

describe('grafana dashboard as code', () => {
  it('the chart ships exactly what scripts/dashboard/dashboard.ts builds', () => {
    assert.equal(
      readFileSync(DASHBOARD_FILE, 'utf8'),
      renderDashboard(),
      'charts/filecluster/files/dashboard.json drifted from its source: run node scripts/render-dashboard.ts',
    );
  });
});
