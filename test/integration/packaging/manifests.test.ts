// manifests/ is rendered from the chart by scripts/render-manifests.sh; this fails when they drift apart
// (re-run the script after changing the chart) and checks that the plain install is self-contained.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';
import { CRD_FILE, REPO, parseObjects, readYaml, runOk } from './support.ts';

const MANIFESTS = join(REPO, 'manifests');
// Written by hand (by the operator's maintainers), not rendered from the chart.
const HAND_WRITTEN = new Set(['examples/filecluster-sample.yaml']);

function files(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)))
    .filter((f) => !HAND_WRITTEN.has(f))
    .sort();
}

describe('plain manifests', () => {
  it('are exactly what scripts/render-manifests.sh renders from the chart', (t) => {
    const out = mkdtempSync(join(tmpdir(), 'fc-manifests-'));
    t.after(() => rmSync(out, { recursive: true, force: true }));
    runOk('bash', ['scripts/render-manifests.sh', out]);
    assert.deepEqual(files(MANIFESTS), files(out), 'manifests/ has other files than the script renders');
    for (const file of files(out)) {
      assert.equal(
        readFileSync(join(MANIFESTS, file), 'utf8'),
        readFileSync(join(out, file), 'utf8'),
        `manifests/${file} drifted from the chart: run scripts/render-manifests.sh`,
      );
    }
  });

  it('hold the namespace, the CRD, RBAC and the operator, in apply order', () => {
    const top = readdirSync(MANIFESTS)
      .filter((f) => f.endsWith('.yaml'))
      .sort();
    const objects = top.flatMap((f) => parseObjects(readFileSync(join(MANIFESTS, f), 'utf8')));
    assert.deepEqual(
      objects.map((o) => o.kind),
      [
        'Namespace',
        'CustomResourceDefinition',
        'ServiceAccount',
        'ClusterRole',
        'ClusterRoleBinding',
        'Role',
        'RoleBinding',
        'ValidatingAdmissionPolicy',
        'ValidatingAdmissionPolicyBinding',
        'Deployment',
        'Service',
      ],
    );
    assert.deepEqual(objects[1], readYaml(CRD_FILE));
    for (const o of objects.slice(2)) {
      if (!/^(Cluster|ValidatingAdmissionPolicy)/.test(o.kind)) assert.equal(o.metadata.namespace, 'filecluster-system', `${o.kind} ${o.metadata.name}`);
    }
  });
});
