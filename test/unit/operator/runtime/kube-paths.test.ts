import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pathResource, RESOURCES, resourcePath } from '../../../../operator/src/runtime/kube.ts';

test('request metrics name the resource of a path, with its subresource', () => {
  assert.equal(pathResource(resourcePath(RESOURCES.pods, 'ns')), 'pods');
  assert.equal(pathResource(resourcePath(RESOURCES.pods, 'ns', 'fc-0')), 'pods');
  assert.equal(pathResource(resourcePath(RESOURCES.fileclusters, 'ns', 'fc', 'status')), 'fileclusters/status');
  assert.equal(pathResource(resourcePath(RESOURCES.leases, 'ns', 'filecluster-operator')), 'leases');
  assert.equal(pathResource(resourcePath(RESOURCES.statefulsets)), 'statefulsets');
  assert.equal(pathResource(`${resourcePath(RESOURCES.secrets, 'ns')}?labelSelector=a%3Db`), 'secrets');
});
