// Routine operations on the harness's real API server: the file-server image comes from the operator
// unless a FileCluster pins one (and status says which), and the token Secret a FileCluster names
// cannot be swapped under running pods.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { FileClusterReconciler } from '../../../operator/src/controllers/filecluster/reconcile.ts';
import { directReconciler, fileClusterSuite } from '../../harness/filecluster-suite.ts';
import { waitFor, type Cluster } from '../../harness/index.ts';
import {
  type PodAccess,
  clusterPods,
  condition,
  fileClusterEventReasons,
  fileClusterStatus,
  fileClusterYaml,
  getFile,
  putFile,
  type Operators,
  withOperators,
} from './support.ts';

// No node matches: the StatefulSets' pods stay Pending, which these checks do not need.
const NOWHERE = { 'filecluster.dev/test': 'nowhere' };

describe('image and token Secret of a FileCluster', { timeout: 300_000 }, () => {
  let cluster: Cluster;
  let ns: string;
  const suite = fileClusterSuite('fc-image');
  const { log, kubectl, ok } = suite;
  before(() => ({ cluster, ns } = suite));
  /** A reconciler as an operator configured with `image` (FC_FILESERVER_IMAGE) runs it. */
  const operatorWithImage = (image: string): FileClusterReconciler => directReconciler(cluster, log, 'image-test', { fileserverImage: image });
  const stsImage = (name: string) => ok(['get', 'statefulset', name, '-n', ns, '-o', 'jsonpath={.spec.template.spec.containers[0].image}']);

  test('without spec.image the pods run the operator\u2019s configured image, follow it on upgrade, and status shows it', async () => {
    await ok(['apply', '-n', ns, '-f', '-'], fileClusterYaml('mirrored', { replicas: 1, nodeSelector: NOWHERE }));
    assert.equal(await ok(['get', 'fc', 'mirrored', '-n', ns, '-o', 'jsonpath={.spec.image}']), '', 'the API server stores no image');
    const mirror = 'registry.mirror.example/filecluster/fileserver:0.1.0';
    await operatorWithImage(mirror).reconcile(`${ns}/mirrored`);
    assert.equal(await stsImage('mirrored'), mirror);
    assert.equal(((await fileClusterStatus(cluster, ns, 'mirrored')) as { image?: string }).image, mirror);
    assert.match(await ok(['get', 'fc', 'mirrored', '-n', ns, '-o', 'wide']), /IMAGE[\s\S]*registry\.mirror\.example\/filecluster\/fileserver:0\.1\.0/);

    // The operator is upgraded (a new configured image): the cluster moves with it.
    const upgraded = 'registry.mirror.example/filecluster/fileserver:0.2.0';
    await operatorWithImage(upgraded).reconcile(`${ns}/mirrored`);
    assert.equal(await stsImage('mirrored'), upgraded);
    assert.equal(((await fileClusterStatus(cluster, ns, 'mirrored')) as { image?: string }).image, upgraded);

    // A FileCluster that names its image keeps it, whatever the operator's.
    await ok(['patch', 'fc', 'mirrored', '-n', ns, '--type=merge', '-p', JSON.stringify({ spec: { image: 'pinned.example/fileserver:7' } })]);
    await operatorWithImage(upgraded).reconcile(`${ns}/mirrored`);
    assert.equal(await stsImage('mirrored'), 'pinned.example/fileserver:7');
    assert.equal(((await fileClusterStatus(cluster, ns, 'mirrored')) as { image?: string }).image, 'pinned.example/fileserver:7');
  });

  test('spec.tokenSecretName cannot be set, changed or removed after creation', async () => {
    await ok(['apply', '-n', ns, '-f', '-'], fileClusterYaml('named', { replicas: 1, tokenSecretName: 'first', nodeSelector: NOWHERE }));
    await ok(['apply', '-n', ns, '-f', '-'], fileClusterYaml('unnamed', { replicas: 1, nodeSelector: NOWHERE }));
    const attempts: Array<[string, Record<string, unknown>]> = [
      ['named', { replicas: 1, tokenSecretName: 'second', nodeSelector: NOWHERE }],
      ['named', { replicas: 1, nodeSelector: NOWHERE }],
      ['unnamed', { replicas: 1, tokenSecretName: 'late', nodeSelector: NOWHERE }],
    ];
    for (const [name, spec] of attempts) {
      const r = await kubectl(['apply', '-n', ns, '-f', '-'], fileClusterYaml(name, spec));
      assert.notEqual(r.code, 0, `accepted ${name}: ${JSON.stringify(spec)}`);
      assert.match(r.stderr, /spec\.tokenSecretName is immutable/);
    }
    assert.equal(await ok(['get', 'fc', 'named', '-n', ns, '-o', 'jsonpath={.spec.tokenSecretName}']), 'first');
    // Other changes still go through.
    await ok(['scale', '-n', ns, 'fc/named', '--replicas=2']);
  });

  describe('the peer token of running pods', () => {
    let operators: Operators;
    let access: PodAccess;
    const CONVERGE_MS = 240_000;
    const running = withOperators(suite);
    before(() => ({ operators, access } = running));

    /** `n` Ready pods, every one holding the published peer list; the cluster Ready. */
    const converged = (name: string, n: number) =>
      waitFor(
        async () => {
          const s = await fileClusterStatus(cluster, ns, name);
          const pods = await clusterPods(cluster, ns, name);
          const ready = pods.length === n && pods.every((p) => p.ready) && s.peersAcknowledged === n && condition(s, 'Ready')?.status === 'True';
          return ready ? pods : false;
        },
        CONVERGE_MS,
        `${name}: ${n} Ready pods holding the peer list`,
      ).catch(async (err: unknown) => {
        throw new Error(`${(err as Error).message}\nstatus: ${JSON.stringify(await fileClusterStatus(cluster, ns, name).catch(() => ({})))}\n${await operators.logs()}`, {
          cause: err,
        });
      });
    const answers = async (url: string, token: string) =>
      (await fetch(`${url}/internal/peers`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(3000) })).status;
    const eventReasons = (name: string) => fileClusterEventReasons(cluster, ns, name);

    test('a token changed in the Secret rolls through the pods; replication works throughout and the old token ends refused', async () => {
      await ok(['create', 'secret', 'generic', 'rotating', '-n', ns, '--from-literal=token=the-first-token']);
      await ok(['apply', '-n', ns, '-f', '-'], fileClusterYaml('rotated', { replicas: 2, tokenSecretName: 'rotating' }));
      const before = await converged('rotated', 2);
      assert.equal(await putFile(await access.url(before[0]!), 'rotation/before.txt', 'before', 'all'), 201);

      await ok(['create', 'secret', 'generic', 'rotating', '-n', ns, '--from-literal=token=the-second-token', '--dry-run=client', '-o', 'yaml']).then((yaml) =>
        ok(['apply', '-n', ns, '-f', '-'], yaml),
      );
      // Two rollouts: the pods restart with both tokens, then with the new one alone.
      let seen = '';
      await waitFor(
        async () => {
          const pods = await clusterPods(cluster, ns, 'rotated');
          seen = `pods ${JSON.stringify(pods.map((p) => ({ name: p.name, uid: p.uid, ready: p.ready })))}`;
          if (pods.length !== 2 || !pods.every((p) => p.ready)) return false;
          const codes = await Promise.all(
            pods.map(async (p) => [
              await answers(await access.url(p), 'the-first-token').catch(() => 0),
              await answers(await access.url(p), 'the-second-token').catch(() => 0),
            ]),
          );
          seen += ` answers to the first and the second token ${JSON.stringify(codes)}`;
          return codes.every(([first, second]) => first === 401 && second === 200);
        },
        CONVERGE_MS,
        'every pod to accept only the new token',
      ).catch(async (err: Error) => {
        const sts = await ok(['get', 'statefulset', 'rotated', '-n', ns, '-o', 'jsonpath={.status}']).catch((e: Error) => e.message);
        throw new Error(`${err.message}; last seen: ${seen}; StatefulSet status ${sts}; events: ${await eventReasons('rotated')}`);
      });
      const after = await converged('rotated', 2);
      assert.ok(
        after.every((p) => !before.some((b) => b.uid === p.uid)),
        'every pod restarted',
      );
      // The pods replicate to each other with the new token.
      assert.equal(await putFile(await access.url(after[1]!), 'rotation/after.txt', 'after', 'all'), 201);
      assert.equal((await getFile(await access.url(after[0]!), 'rotation/after.txt')).body, 'after');
      assert.equal((await getFile(await access.url(after[1]!), 'rotation/before.txt')).body, 'before');
      assert.match(await eventReasons('rotated'), /TokenRotationStarted.*TokenRotationFinished|TokenRotationFinished.*TokenRotationStarted/);
    });

    test('a generated token Secret deleted while pods run is not silently replaced: Degraded until it is back', async () => {
      await ok(['apply', '-n', ns, '-f', '-'], fileClusterYaml('generated', { replicas: 1 }));
      const pods = await converged('generated', 1);
      const token = await ok(['get', 'secret', 'generated-token', '-n', ns, '-o', 'jsonpath={.data.token}']);
      await ok(['delete', 'secret', 'generated-token', '-n', ns]);
      const degraded = await waitFor(
        async () => {
          if ((await kubectl(['get', 'secret', 'generated-token', '-n', ns])).code === 0) return 'regenerated';
          const c = condition(await fileClusterStatus(cluster, ns, 'generated'), 'Degraded');
          return c?.status === 'True' ? c : false;
        },
        120_000,
        'Degraded, or a new Secret',
      );
      assert.ok(degraded !== 'regenerated', 'a new token was generated while the pods hold the old one');
      assert.equal(degraded.reason, 'TokenSecretDeleted');
      assert.match(degraded.message, /Secret "generated-token" .* was deleted while the cluster has pods/);
      assert.equal((await kubectl(['get', 'secret', 'generated-token', '-n', ns])).code, 1, 'no new token was generated');
      // The pods keep their token and keep serving.
      assert.equal(await putFile(await access.url(pods[0]!), 'kept/while-degraded.txt', 'still here', 'local'), 201);
      const restored = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'generated-token', namespace: ns }, data: { token } };
      await ok(['apply', '-f', '-'], JSON.stringify(restored));
      await waitFor(
        async () => condition(await fileClusterStatus(cluster, ns, 'generated'), 'Degraded')?.status === 'False',
        120_000,
        'Degraded=False once the Secret is back',
      );
      await converged('generated', 1);
    });
  });
});
