// The FileCluster operator end to end, on the harness's cluster (FC_TEST_PROVIDER: local by default, or
// existing), through kubectl and the file servers' HTTP API as a user would.
import { before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { fileClusterSuite } from '../../harness/filecluster-suite.ts';
import { waitFor, type Cluster } from '../../harness/index.ts';
import {
  type PodAccess,
  withOperators,
  type Operators,
  clusterPods,
  clusterToken,
  condition,
  convergedPods,
  fileClusterEventReasons,
  fileClusterStatus,
  fileClusterYaml,
  getFile,
  kubectlJson,
  peersOf,
  putFile,
  type PodInfo,
} from './support.ts';

const NAME = 'files';
const CONVERGE_MS = 150_000;

describe('FileCluster operator', { timeout: 600_000 }, () => {
  let cluster: Cluster;
  let ns: string;
  let operators: Operators;
  let access: PodAccess;
  let token: string;
  const urlOf = (pod: PodInfo) => access.url(pod);

  const suite = fileClusterSuite('fc-e2e');
  const running = withOperators(suite);
  before(() => {
    ({ cluster, ns } = suite);
    ({ operators, access } = running);
  });
  const { kubectl, ok } = suite;

  /** Waits until `n` pods are Ready, the status says so, and every pod holds the published list. */
  const converged = (n: number): Promise<PodInfo[]> =>
    convergedPods(cluster, ns, NAME, n, {
      timeoutMs: CONVERGE_MS,
      what: `${n} Ready pods holding the same peer list`,
      holds: async (status, pods) => {
        if (condition(status, 'PeersSynced')?.status !== 'True') return false;
        const published = [...(status.peers ?? [])].sort((a, b) => a.id.localeCompare(b.id));
        assert.deepEqual(
          published.map((p) => p.id),
          pods.map((p) => p.name),
        );
        for (const pod of pods) {
          const held = await peersOf(await urlOf(pod), token);
          if (held.generation !== status.peerGeneration) return false;
          // A node never lists itself; everyone else must be there with the published URL.
          const expected = published.filter((p) => p.id !== pod.name);
          assert.deepEqual(
            [...held.peers].sort((a, b) => a.id.localeCompare(b.id)),
            expected,
            `peer list of ${pod.name}`,
          );
        }
        return true;
      },
    });

  /** On failure: the pods (restarts included), the file servers' and operators' log tails. */
  async function explain(err: unknown): Promise<never> {
    const pods = await kubectl(['get', 'pods,fc', '-n', ns, '-o', 'wide']);
    const logs = await Promise.all(
      (await clusterPods(cluster, ns, NAME).catch(() => [])).map(
        async (p) => `--- ${p.name}\n${(await cluster.logs(ns, p.name).catch(() => '')).split('\n').slice(-15).join('\n')}`,
      ),
    );
    const message = err instanceof Error ? err.message : String(err);
    throw new Error(`${message}\n${pods.stdout}\n${logs.join('\n')}\n${await operators.logs()}`, { cause: err });
  }
  const step = (name: string, fn: (t: TestContext) => Promise<void>) => test(name, (t) => fn(t).catch(explain));

  step('the API server rejects invalid FileClusters with the schema\u2019s messages', async () => {
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ replicas: -1 }, /spec\.replicas.*greater than or equal to 1/],
      [{ replicas: 1000 }, /spec\.replicas.*less than or equal to 64/],
      [{ storage: { size: 'lots' } }, /storage\.size must be a quantity between 1Mi and 64Ti/],
      [{ replication: { defaultAck: 'quorum' } }, /spec\.replication\.defaultAck: Unsupported value: "quorum"/],
      [{ metrics: { port: 8080 } }, /metrics\.port must differ from the API port 8080/],
      [
        { replication: { tombstoneRetentionSeconds: 299, catchUpIntervalSeconds: 30 } },
        /tombstoneRetentionSeconds must be at least 10 times replication\.catchUpIntervalSeconds/,
      ],
      [{ replication: { catchUpIntervalSeconds: 9000 } }, /tombstoneRetentionSeconds must be at least 10 times/],
    ];
    for (const [spec, message] of cases) {
      const r = await kubectl(['apply', '-n', ns, '-f', '-'], fileClusterYaml('invalid', spec));
      assert.notEqual(r.code, 0, `accepted ${JSON.stringify(spec)}`);
      assert.match(r.stderr, message);
    }
    // Transition rules: storage may grow but never shrink, and its class is fixed.
    await ok(['apply', '-n', ns, '-f', '-'], fileClusterYaml('shrink', { replicas: 1, storage: { size: '2Gi' } }));
    await ok(['scale', '-n', ns, 'fc/shrink', '--replicas=1']);
    const shrink = await kubectl(['apply', '-n', ns, '-f', '-'], fileClusterYaml('shrink', { replicas: 1, storage: { size: '1Gi' } }));
    assert.match(shrink.stderr, /storage\.size cannot shrink/);
    const reclass = await kubectl(['apply', '-n', ns, '-f', '-'], fileClusterYaml('shrink', { replicas: 1, storage: { size: '2Gi', storageClassName: 'other' } }));
    assert.match(reclass.stderr, /storageClassName is immutable/);
    await ok(['delete', '-n', ns, 'fc/shrink', '--wait=true']);
  });

  step('a 3-replica FileCluster gets 3 Ready pods that all hold the same peer list', async () => {
    await ok(['apply', '-n', ns, '-f', '-'], fileClusterYaml(NAME, { replicas: 3 }));
    await waitFor(async () => (await kubectl(['get', 'secret', `${NAME}-token`, '-n', ns])).code === 0, 60_000, 'the generated token Secret');
    token = await clusterToken(cluster, ns, `${NAME}-token`);
    const pods = await converged(3);
    assert.deepEqual(
      pods.map((p) => p.name),
      ['files-0', 'files-1', 'files-2'],
    );
    // The status follows the pods: the operator writes it after the reconcile that saw them all Ready.
    await waitFor(
      async () => {
        const status = await fileClusterStatus(cluster, ns, NAME);
        return condition(status, 'Degraded')?.status === 'False' && condition(status, 'Progressing')?.status === 'False';
      },
      30_000,
      'Degraded and Progressing False',
    );
    // The printer columns and the owned objects are what kubectl users see.
    const table = await ok(['get', 'fc', NAME, '-n', ns]);
    assert.match(table, /REPLICAS\s+READY\s+PEERS-SYNCED\s+AGE/);
    assert.match(table, new RegExp(`${NAME}\\s+3\\s+3\\s+True`));
    for (const obj of ['statefulset/files', 'service/files', 'service/files-peers', 'poddisruptionbudget/files', 'secret/files-token']) {
      const owner = await ok(['get', obj, '-n', ns, '-o', 'jsonpath={.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name}']);
      assert.equal(owner, `FileCluster/${NAME}`, obj);
    }
  });

  step('drift in an owned object is put back, fields of other managers stay', async () => {
    await ok(['label', 'service', NAME, '-n', ns, 'team=storage']);
    await ok(['patch', 'service', NAME, '-n', ns, '--type=merge', '-p', JSON.stringify({ spec: { selector: { 'app.kubernetes.io/instance': 'elsewhere' } } })]);
    await waitFor(
      async () => (await ok(['get', 'service', NAME, '-n', ns, '-o', 'jsonpath={.spec.selector.app\\.kubernetes\\.io/instance}'])) === NAME,
      60_000,
      'the operator to restore the Service selector',
    );
    assert.equal(await ok(['get', 'service', NAME, '-n', ns, '-o', 'jsonpath={.metadata.labels.team}']), 'storage');
  });

  step('a file written through one pod is readable from every pod', async () => {
    const pods = await clusterPods(cluster, ns, NAME);
    assert.equal(await putFile(await urlOf(pods[0]!), 'docs/hello.txt', 'hello from files-0', 'all'), 201);
    for (const pod of pods) {
      await waitFor(async () => (await getFile(await urlOf(pod), 'docs/hello.txt')).body === 'hello from files-0', 30_000, `hello.txt on ${pod.name}`);
    }
  });

  step('kubectl scale to 5: the new pods join every peer list and catch up', async () => {
    await ok(['scale', '-n', ns, `fc/${NAME}`, '--replicas=5']);
    const pods = await converged(5);
    for (const pod of pods.slice(3)) {
      await waitFor(async () => (await getFile(await urlOf(pod), 'docs/hello.txt')).body === 'hello from files-0', 60_000, `hello.txt caught up on ${pod.name}`);
    }
    const scale = JSON.parse(await ok(['get', '--raw', `/apis/filecluster.dev/v1alpha1/namespaces/${ns}/fileclusters/${NAME}/scale`])) as {
      spec: { replicas: number };
      status: { replicas: number; selector: string };
    };
    assert.equal(scale.spec.replicas, 5);
    assert.equal(scale.status.replicas, 5);
    assert.equal(scale.status.selector, `app.kubernetes.io/name=filecluster,app.kubernetes.io/instance=${NAME}`);
  });

  step('scale to 2: the lists shrink first, the StatefulSet after, and no acknowledged file is lost', async () => {
    const pods = await clusterPods(cluster, ns, NAME);
    // Writes acknowledged by the pods about to leave, and only by them.
    const written: string[] = [];
    for (const pod of pods) {
      for (let i = 0; i < 5; i++) {
        const file = `scale-down/${pod.name}-${i}.txt`;
        assert.ok([200, 201].includes(await putFile(await urlOf(pod), file, `${pod.name} ${i}`, 'local')));
        written.push(file);
      }
    }
    await ok(['scale', '-n', ns, `fc/${NAME}`, '--replicas=2']);
    const remaining = await converged(2);
    for (const pod of remaining) {
      for (const file of written) {
        const got = await waitFor(
          async () => {
            const r = await getFile(await urlOf(pod), file);
            return r.status === 200 ? r.body : false;
          },
          30_000,
          `${file} on ${pod.name}`,
        );
        assert.equal(got, file.slice('scale-down/'.length).replace(/-(\d+)\.txt$/, ' $1'));
      }
    }
    const sts = await kubectlJson<{ spec: { replicas: number } }>(cluster, ['get', 'statefulset', NAME, '-n', ns]);
    assert.equal(sts.spec.replicas, 2);
    const events = await fileClusterEventReasons(cluster, ns, NAME);
    assert.match(events, /ScalingDown/);
  });

  step('a scale-down waits, and says why, while a leaving pod cannot confirm its writes are replicated', async (t) => {
    const local = cluster.local;
    if (!local) return t.skip("freezing a pod's process needs the local provider");
    await ok(['scale', '-n', ns, `fc/${NAME}`, '--replicas=3']);
    const pods = await converged(3);
    assert.equal([200, 201].includes(await putFile(await urlOf(pods[2]!), 'gated/late.txt', 'written to files-2', 'local')), true);
    const frozen = local.processes().filter((p) => p.namespace === ns && p.pod === `${NAME}-2`);
    assert.ok(frozen.length > 0);
    const signal = (sig: NodeJS.Signals) => {
      for (const p of frozen) process.kill(p.pid, sig);
    };
    signal('SIGSTOP');
    try {
      await waitFor(async () => !(await clusterPods(cluster, ns, NAME)).find((p) => p.name === `${NAME}-2`)?.ready, 60_000, 'files-2 to turn not Ready');
      await ok(['scale', '-n', ns, `fc/${NAME}`, '--replicas=2']);
      const waiting = await waitFor(
        async () => {
          const c = condition(await fileClusterStatus(cluster, ns, NAME), 'Progressing');
          return c?.reason === 'ScaleDownWaitingForReplication' ? c : false;
        },
        60_000,
        'Progressing=ScaleDownWaitingForReplication',
      );
      assert.match(waiting.message, /scale-down from 3 to 2 waits \(for \d+s\): files-2 is not Ready/);
      const sts = await kubectlJson<{ spec: { replicas: number } }>(cluster, ['get', 'statefulset', NAME, '-n', ns]);
      assert.equal(sts.spec.replicas, 3, 'the StatefulSet keeps the leaving pod');
    } finally {
      signal('SIGCONT');
    }
    const remaining = await converged(2);
    for (const pod of remaining) {
      await waitFor(async () => (await getFile(await urlOf(pod), 'gated/late.txt')).body === 'written to files-2', 30_000, `late.txt on ${pod.name}`);
    }
  });

  step('a deleted pod comes back on its own volume and catches up on what it missed', async () => {
    const before = await clusterPods(cluster, ns, NAME);
    const claimUid = await ok(['get', 'pvc', `data-${NAME}-1`, '-n', ns, '-o', 'jsonpath={.metadata.uid}']);
    await ok(['delete', 'pod', `${NAME}-1`, '-n', ns, '--wait=false']);
    // Written while files-1 is away; only files-0 acknowledges it.
    await waitFor(
      async () => [200, 201].includes(await putFile(await urlOf(before[0]!), 'missed/while-away.txt', 'you were away', 'local')),
      30_000,
      'a write to files-0',
    );
    const pods = await waitFor(
      async () => {
        const p = await clusterPods(cluster, ns, NAME);
        const back = p.find((x) => x.name === `${NAME}-1`);
        return back && back.uid !== before[1]!.uid && back.ready ? p : false;
      },
      CONVERGE_MS,
      `${NAME}-1 to come back`,
    );
    await converged(2);
    const back = pods.find((p) => p.name === `${NAME}-1`)!;
    assert.equal(await ok(['get', 'pvc', `data-${NAME}-1`, '-n', ns, '-o', 'jsonpath={.metadata.uid}']), claimUid, 'same volume');
    assert.equal((await getFile(await urlOf(back), 'docs/hello.txt')).body, 'hello from files-0');
    await waitFor(async () => (await getFile(await urlOf(back), 'missed/while-away.txt')).body === 'you were away', 60_000, 'the missed write on the returned pod');
  });

  step('a spec the schema allows but that cannot work is Degraded with an Event; other clusters keep working', async () => {
    await ok(['apply', '-n', ns, '-f', '-'], fileClusterYaml('broken', { replicas: 1, tokenSecretName: 'no-such-secret' }));
    await waitFor(
      async () => condition(await fileClusterStatus(cluster, ns, 'broken'), 'Degraded')?.reason === 'TokenSecretMissing',
      60_000,
      'Degraded TokenSecretMissing',
    );
    const degraded = condition(await fileClusterStatus(cluster, ns, 'broken'), 'Degraded');
    assert.equal(degraded?.status, 'True');
    assert.match(degraded?.message ?? '', /Secret "no-such-secret" not found/);
    const events = await ok(['get', 'events', '-n', ns, '--field-selector', 'involvedObject.name=broken', '-o', 'jsonpath={.items[*].reason}']);
    assert.match(events, /TokenSecretMissing/);

    // Meanwhile the healthy cluster still follows its spec.
    await ok(['scale', '-n', ns, `fc/${NAME}`, '--replicas=3']);
    await converged(3);

    await ok(['create', 'secret', 'generic', 'no-such-secret', '-n', ns, '--from-literal=wrong=x']);
    await waitFor(
      async () => condition(await fileClusterStatus(cluster, ns, 'broken'), 'Degraded')?.reason === 'TokenSecretKeyMissing',
      60_000,
      'Degraded TokenSecretKeyMissing',
    );
    await ok(['delete', 'secret', 'no-such-secret', '-n', ns]);
    await ok(['create', 'secret', 'generic', 'no-such-secret', '-n', ns, '--from-literal=token=fixed-token']);
    await waitFor(
      async () => {
        const s = await fileClusterStatus(cluster, ns, 'broken');
        return condition(s, 'Degraded')?.status === 'False' && condition(s, 'Ready')?.status === 'True';
      },
      CONVERGE_MS,
      'the fixed cluster to become Ready',
    );
    await ok(['delete', '-n', ns, 'fc/broken', '--wait=true']);
  });

  step('a pod template change rolls one pod at a time, each Ready before the next restarts', async () => {
    const pods = await converged(3);
    const sts = () =>
      kubectlJson<{
        metadata: { generation: number };
        status: { observedGeneration?: number; updateRevision?: string; currentRevision?: string; updatedReplicas?: number };
      }>(cluster, ['get', 'statefulset', NAME, '-n', ns]);
    const before = await sts();
    await ok(['patch', 'fc', NAME, '-n', ns, '--type=merge', '-p', JSON.stringify({ spec: { logLevel: 'debug' } })]);
    let mostDown = 0;
    await waitFor(
      async () => {
        const now = await clusterPods(cluster, ns, NAME);
        mostDown = Math.max(mostDown, 3 - now.filter((p) => p.ready).length);
        const s = await sts();
        return (
          s.status.observedGeneration === s.metadata.generation &&
          s.status.updateRevision !== before.status.updateRevision &&
          s.status.currentRevision === s.status.updateRevision &&
          s.status.updatedReplicas === 3
        );
      },
      CONVERGE_MS,
      'the rollout to finish',
      100,
    );
    assert.ok(mostDown <= 1, `at most one pod down at a time, saw ${mostDown}`);
    const after = await converged(3);
    assert.ok(
      after.every((p, i) => p.uid !== pods[i]!.uid),
      'every pod was replaced',
    );
    const env = await ok(['get', 'statefulset', NAME, '-n', ns, '-o', 'jsonpath={.spec.template.spec.containers[0].env[?(@.name=="FC_LOG_LEVEL")].value}']);
    assert.equal(env, 'debug');
    const events = await fileClusterEventReasons(cluster, ns, NAME);
    assert.match(events, /RollingUpdate/);
    assert.equal((await getFile(await urlOf(after[2]!), 'docs/hello.txt')).body, 'hello from files-0');
  });

  step('the operator serves health, readiness and its metrics', async () => {
    const base = await operators.endpoint();
    assert.equal((await fetch(`${base}/healthz`)).status, 200);
    assert.equal((await fetch(`${base}/readyz`)).status, 200);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    assert.match(metrics, /^filecluster_operator_leader 1$/m);
    const pushes = /^filecluster_operator_peer_push_total\{result="success"\} (\d+)$/m.exec(metrics);
    assert.ok(pushes && Number(pushes[1]) > 0, 'successful peer pushes are counted');
    assert.match(metrics, /^filecluster_operator_reconcile_total\{result="success"\} \d+$/m);
    assert.match(metrics, /^filecluster_operator_reconcile_duration_seconds_count \d+$/m);
    assert.match(metrics, /^filecluster_operator_workqueue_depth \d+$/m);
    assert.match(metrics, /^filecluster_operator_peer_push_duration_seconds_bucket/m);
    // A leader renews by writing onto the Lease it last wrote: renewals go on (retry period 1 s here)
    // without reading the Lease first.
    const leaseRequests = async (verb: string) =>
      Number(
        new RegExp(`^filecluster_operator_api_requests_total\\{verb="${verb}",resource="leases"\\} (\\d+)$`, 'm').exec(
          await (await fetch(`${base}/metrics`)).text(),
        )?.[1] ?? 0,
      );
    const [gets, puts] = [await leaseRequests('GET'), await leaseRequests('PUT')];
    await new Promise((r) => setTimeout(r, 3500));
    assert.ok((await leaseRequests('PUT')) >= puts + 2, 'the leader keeps renewing its Lease');
    assert.equal(await leaseRequests('GET'), gets, 'renewals do not read the Lease');
  });

  step('killing the leading operator mid-change: the other replica takes the Lease and finishes', async () => {
    const leader = await waitFor(() => operators.leader(), 30_000, 'a leader');
    assert.ok(
      (await operators.identities()).some((id) => id !== leader),
      'a second replica runs',
    );
    await ok(['scale', '-n', ns, `fc/${NAME}`, '--replicas=4']);
    await waitFor(
      async () => (await kubectlJson<{ spec: { replicas: number } }>(cluster, ['get', 'statefulset', NAME, '-n', ns])).spec.replicas === 4,
      30_000,
      'the change to start',
    );
    await operators.kill(leader);
    const successor = await waitFor(
      async () => {
        const holder = await operators.leader();
        return holder !== undefined && holder !== leader ? holder : false;
      },
      60_000,
      'another replica to take the Lease',
    );
    assert.ok((await operators.identities()).includes(successor));
    await converged(4);
    await operators.restore(leader);
  });

  step('a leader that stops gracefully hands the Lease over', async () => {
    const leader = await waitFor(() => operators.leader(), 60_000, 'a leader');
    await waitFor(async () => (await operators.identities()).some((id) => id !== leader), 120_000, 'a second replica');
    await operators.kill(leader, true);
    const successor = await waitFor(
      async () => {
        const holder = await operators.leader();
        return holder !== undefined && holder !== leader ? holder : false;
      },
      60_000,
      'another replica to take the released Lease',
    );
    assert.ok((await operators.identities()).includes(successor));
    // The new leader keeps reconciling: a change made now is carried out.
    await ok(['scale', '-n', ns, `fc/${NAME}`, '--replicas=3']);
    await converged(3);
    await operators.restore(leader);
  });

  step('deleting the FileCluster deletes everything it owned and keeps the data claims', async () => {
    const claims = (await ok(['get', 'persistentvolumeclaims', '-n', ns, '-o', 'name'])).split('\n').filter((l) => l.includes(`data-${NAME}-`));
    assert.ok(claims.length > 0);
    await ok(['delete', '-n', ns, `fc/${NAME}`, '--wait=true']);
    await waitFor(
      async () => {
        const left = await ok(['get', 'statefulsets,services,poddisruptionbudgets,secrets,pods', '-n', ns, '-o', 'name']);
        const owned = left.split('\n').filter((l) => l.includes(`/${NAME}`));
        return owned.length === 0;
      },
      120_000,
      'the owned objects to be garbage-collected',
    );
    const left = (await ok(['get', 'persistentvolumeclaims', '-n', ns, '-o', 'name'])).split('\n').filter((l) => l.includes(`data-${NAME}-`));
    assert.deepEqual(left, claims, 'spec.storage.whenDeleted defaults to Retain');
  });
});
