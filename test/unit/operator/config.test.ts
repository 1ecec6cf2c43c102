import { test } from 'node:test';
import assert from 'node:assert/strict';
import { configFromArgs, loadConfig } from '../../../operator/src/config.ts';

test('defaults: all namespaces, leader election on, lease in the pod namespace', () => {
  const c = loadConfig({ FC_POD_NAME: 'op-1', FC_POD_NAMESPACE: 'ops' });
  assert.deepEqual(c.watchNamespaces, []);
  assert.equal(c.leaderElection, true);
  assert.deepEqual(c.lease, { name: 'filecluster-operator', namespace: 'ops', durationMs: 15000, renewDeadlineMs: 10000, retryPeriodMs: 2000 });
  assert.equal(c.identity, 'op-1');
  assert.equal(c.port, 8081);
  assert.equal(c.fileserverImage, 'filecluster/fileserver:0.1.0');
  assert.equal(c.kubeconfig, undefined);
});

test('a namespace list, a kubeconfig and election off', () => {
  const c = loadConfig({ FC_WATCH_NAMESPACES: ' a, b ,,c', KUBECONFIG: '/k', FC_LEADER_ELECTION: 'false', FC_OPERATOR_PORT: '0' });
  assert.deepEqual(c.watchNamespaces, ['a', 'b', 'c']);
  assert.equal(c.lease.namespace, 'a');
  assert.equal(c.kubeconfig, '/k');
  assert.equal(c.leaderElection, false);
  assert.equal(c.port, 0);
});

test('bad values are rejected at start-up', () => {
  assert.throws(() => loadConfig({ FC_OPERATOR_PORT: '70000' }));
  assert.throws(() => loadConfig({ FC_LEADER_ELECTION: 'maybe' }));
  assert.throws(() => loadConfig({ FC_LEASE_DURATION_SECONDS: '5', FC_LEASE_RENEW_DEADLINE_SECONDS: '5' }), /shorter than/);
});

test('flags override their environment twins; unknown flags are refused', () => {
  const c = configFromArgs(['--watch-namespaces=x,y', '--port', '9000', '--leader-election=false'], { FC_WATCH_NAMESPACES: 'ignored', FC_POD_NAME: 'p' });
  assert.deepEqual(c.watchNamespaces, ['x', 'y']);
  assert.equal(c.port, 9000);
  assert.equal(c.leaderElection, false);
  assert.equal(c.identity, 'p');
  assert.throws(() => configFromArgs(['--no-such-flag=1'], {}));
});
