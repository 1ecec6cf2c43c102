import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { V1Pod } from '@kubernetes/client-node';
import { memberPods, membershipFingerprint } from '../../../../../operator/src/controllers/filecluster/membership.ts';
import { fileClusterChangeKey, slimClaim, slimFileCluster, slimOwned, slimPod, slimSecret } from '../../../../../operator/src/controllers/filecluster/slim.ts';

const fullPod = (): V1Pod => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: {
    name: 'fc-1',
    namespace: 'ns',
    uid: 'u1',
    resourceVersion: '42',
    labels: { 'app.kubernetes.io/instance': 'fc', 'controller-revision-hash': 'fc-abc', 'filecluster.dev/serving': 'false' },
    annotations: { 'prometheus.io/scrape': 'true' },
    ownerReferences: [{ apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'fc', uid: 's1', controller: true }],
    creationTimestamp: new Date(0),
    deletionTimestamp: new Date(1000),
  },
  spec: { containers: [{ name: 'fileserver', image: 'img', env: [{ name: 'A', value: 'b' }] }] },
  status: {
    phase: 'Running',
    podIP: '10.0.0.2',
    hostIP: '10.0.0.1',
    conditions: [
      { type: 'Initialized', status: 'True' },
      { type: 'Ready', status: 'True', lastTransitionTime: new Date(0) },
    ],
    containerStatuses: [{ name: 'fileserver', image: 'img', imageID: 'id', ready: true, restartCount: 2, state: { running: {} } }],
  },
});

test('a slim pod keeps exactly what membership decides on', () => {
  const full = fullPod();
  const slim = slimPod(full);
  assert.deepEqual(memberPods('fc', [slim]), memberPods('fc', [full]));
  assert.equal(membershipFingerprint(slim), membershipFingerprint(full));
  assert.equal(slim.spec, undefined);
  assert.equal(slim.metadata?.annotations, undefined);
  assert.equal(slim.metadata?.resourceVersion, '42', 'the cache compares resource versions');
  assert.deepEqual(slim.status?.conditions, [{ type: 'Ready', status: 'True' }]);
});

test('a pod without status or a Ready condition stays without them', () => {
  const slim = slimPod({ metadata: { name: 'fc-0', namespace: 'ns' } });
  assert.deepEqual(slim, { metadata: { name: 'fc-0', namespace: 'ns' } });
  const pending = slimPod({ metadata: { name: 'fc-0' }, status: { phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'True' }] } });
  assert.deepEqual(pending.status, { phase: 'Pending' }, 'the phase tells a pod that can take a peer list');
  assert.equal(membershipFingerprint(pending), membershipFingerprint({ metadata: { name: 'fc-0' }, status: { phase: 'Pending' } }));
});

test('owned objects keep identity, version and owner; Secrets only their token', () => {
  const owner = [{ apiVersion: 'filecluster.dev/v1alpha1', kind: 'FileCluster', name: 'fc', uid: 'f1', controller: true }];
  assert.deepEqual(
    slimOwned({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'fc', namespace: 'ns', resourceVersion: '7', ownerReferences: owner, annotations: { a: 'b' } },
      spec: { ports: [] },
    } as never),
    {
      metadata: { name: 'fc', namespace: 'ns', resourceVersion: '7', ownerReferences: owner },
    },
  );
  assert.deepEqual(slimSecret({ metadata: { name: 's', namespace: 'ns', resourceVersion: '3' }, type: 'Opaque', data: { token: 'dA==', other: 'eA==' } }), {
    metadata: { name: 's', namespace: 'ns', resourceVersion: '3' },
    data: { token: 'dA==' },
  });
  assert.deepEqual(slimSecret({ metadata: { name: 'tls' }, data: { 'tls.crt': 'eA==' } }), { metadata: { name: 'tls' } });
});

test('a slim FileCluster keeps its generation and the operator annotations only', () => {
  const fc = {
    apiVersion: 'filecluster.dev/v1alpha1',
    kind: 'FileCluster',
    metadata: {
      name: 'a',
      namespace: 'ns',
      resourceVersion: '9',
      generation: 4,
      annotations: { 'filecluster.dev/force-scale-down': 'true', 'kubectl.kubernetes.io/last-applied-configuration': '{"spec":{}}' },
    },
    spec: { replicas: 3, tokenSecretName: 't' },
    status: { peers: [] },
  };
  assert.deepEqual(slimFileCluster(fc as never), {
    metadata: { name: 'a', namespace: 'ns', resourceVersion: '9', generation: 4, annotations: { 'filecluster.dev/force-scale-down': 'true' } },
    spec: {},
  });
  assert.deepEqual(slimFileCluster({ metadata: { name: 'b', namespace: 'ns' }, spec: {} } as never), { metadata: { name: 'b', namespace: 'ns' }, spec: {} });
});

test('a FileCluster update queues a reconcile when its spec, deletion or operator annotations change, not its status', () => {
  const fc = (over: Record<string, unknown> = {}, status: unknown = {}) =>
    slimFileCluster({ metadata: { name: 'a', namespace: 'ns', uid: 'u', generation: 2, resourceVersion: '1', ...over }, spec: {}, status } as never);
  const base = fileClusterChangeKey(fc());
  assert.equal(fileClusterChangeKey(fc({ resourceVersion: '2' }, { peerGeneration: 3 })), base, 'a status write');
  assert.equal(fileClusterChangeKey(fc({ annotations: { 'example.com/note': 'x' } })), base, 'an annotation of someone else');
  assert.notEqual(fileClusterChangeKey(fc({ generation: 3 })), base);
  assert.notEqual(fileClusterChangeKey(fc({ deletionTimestamp: new Date(0) })), base);
  assert.notEqual(fileClusterChangeKey(fc({ annotations: { 'filecluster.dev/force-scale-down': 'true' } })), base);
  assert.notEqual(fileClusterChangeKey(fc({ uid: 'v' })), base, 'recreated under the same name');
});

test('a slim claim keeps the operator marks and the requested and provisioned sizes', () => {
  const slim = slimClaim({
    metadata: {
      name: 'data-fc-0',
      namespace: 'ns',
      uid: 'c1',
      labels: { 'app.kubernetes.io/instance': 'fc' },
      annotations: { 'filecluster.dev/joined': 'true', 'pv.kubernetes.io/bind-completed': 'yes' },
    },
    spec: { accessModes: ['ReadWriteOnce'], volumeName: 'pv-1', resources: { requests: { storage: '2Gi' } } },
    status: { phase: 'Bound', capacity: { storage: '1Gi' } },
  });
  assert.deepEqual(slim, {
    metadata: { name: 'data-fc-0', namespace: 'ns', uid: 'c1', labels: { 'app.kubernetes.io/instance': 'fc' }, annotations: { 'filecluster.dev/joined': 'true' } },
    spec: { resources: { requests: { storage: '2Gi' } } },
    status: { capacity: { storage: '1Gi' } },
  });
});
