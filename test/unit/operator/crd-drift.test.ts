// The FileCluster CRD and the operator's defaults are generated from operator/src/api/v1alpha1/schema.ts:
// this fails while a committed copy differs from what `npm run generate` writes. withDefaults applies
// those defaults the way the API server does.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { withDefaults } from '../../../operator/src/api/v1alpha1/defaults.ts';
import { SPEC_DEFAULTS } from '../../../operator/src/api/v1alpha1/defaults.generated.ts';
import { FileClusterSpecSchema } from '../../../operator/src/api/v1alpha1/schema.ts';
import { CRD_FILE, crdYaml, schemaDefaults } from '../../../scripts/generate-crd.ts';

const REPO = resolve(import.meta.dirname, '../../..');

describe('the FileCluster CRD', () => {
  it('in the chart is what npm run generate writes', () => {
    assert.equal(readFileSync(CRD_FILE, 'utf8'), crdYaml(), 'charts/filecluster/crds/ differs from operator/src/api/v1alpha1/: run npm run generate');
  });

  it("gives the operator the schema's defaults (defaults.generated.ts is what npm run generate writes)", () => {
    assert.deepEqual(SPEC_DEFAULTS, schemaDefaults(FileClusterSpecSchema), 'operator/src/api/v1alpha1/defaults.generated.ts is stale: run npm run generate');
  });

  it('in manifests/ is the chart one', () => {
    assert.deepEqual(parse(readFileSync(join(REPO, 'manifests/01-crd.yaml'), 'utf8')), parse(crdYaml()), 'manifests/01-crd.yaml is stale: run npm run generate');
  });
});

describe('withDefaults', () => {
  it('fills every field the schema gives a default, and leaves the spec it was given alone', () => {
    const spec = { replication: { maxBodyBytes: 5 } };
    assert.deepEqual(withDefaults(spec, 'img'), {
      replicas: 3,
      image: 'img',
      imagePullPolicy: 'IfNotPresent',
      storage: { size: '1Gi', whenDeleted: 'Retain' },
      resources: { requests: { cpu: '100m', memory: '128Mi' } },
      replication: { defaultAck: 'local', ackTimeoutMs: 10_000, tombstoneRetentionSeconds: 86_400, catchUpIntervalSeconds: 30, maxBodyBytes: 5 },
      logLevel: 'info',
      metrics: { enabled: true, port: 9090 },
    });
    assert.deepEqual(spec, { replication: { maxBodyBytes: 5 } });
  });

  it("gives an object that is set, even empty, its fields' defaults, not the object's own default", () => {
    const resolved = withDefaults({ storage: {}, resources: {}, replication: {}, metrics: {} });
    assert.deepEqual(resolved.resources, {});
    assert.deepEqual(resolved.storage, { size: '1Gi', whenDeleted: 'Retain' });
    assert.deepEqual(resolved.metrics, { enabled: true, port: 9090 });
  });

  it('keeps what the spec sets and turns quantities given as numbers into strings', () => {
    const resolved = withDefaults({
      replicas: 5,
      image: 'mine',
      storage: { size: '2Gi', storageClassName: 'fast' },
      resources: { limits: { cpu: 2 } },
      nodeSelector: { a: 'b' },
    });
    assert.equal(resolved.replicas, 5);
    assert.equal(resolved.image, 'mine');
    assert.deepEqual(resolved.storage, { size: '2Gi', storageClassName: 'fast', whenDeleted: 'Retain' });
    assert.deepEqual(resolved.resources, { limits: { cpu: '2' } });
    assert.deepEqual(resolved.nodeSelector, { a: 'b' });
  });
});
