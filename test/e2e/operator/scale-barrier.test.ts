// Scale-downs as a write barrier, claims kept unless asked, and pods that serve only once they joined:
// the operator on the harness's cluster, checked through kubectl, a watch on the pods and the file
// servers' HTTP API. Freezing pods (SIGSTOP) needs the local provider; those steps skip elsewhere.
import { before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { Watch, type V1Pod } from '@kubernetes/client-node';
import { fileClusterSuite } from '../../harness/filecluster-suite.ts';
import { waitFor, type Cluster } from '../../harness/index.ts';
import {
  type PodAccess,
  clusterPods,
  clusterToken,
  condition,
  convergedPods,
  fileClusterStatus,
  fileClusterYaml,
  getFile,
  kubectlJson,
  withOperators,
  peersOf,
  putFile,
  type Operators,
  type PodInfo,
} from './support.ts';

const NAME = 'barrier';
const CONVERGE_MS = 150_000;
const SERVING = 'filecluster.dev/serving';

describe('scale-down barrier, kept claims, serving only once joined', { timeout: 900_000 }, () => {
  let cluster: Cluster;
  let ns: string;
  let operators: Operators;
  let access: PodAccess;
  let token: string;
  let stopWatch: (() => void) | undefined;
  /** Every pod event seen: what the pod looked like at that moment. */
  const podEvents: Array<{ type: string; name: string; uid: string; serving?: string; deleting: boolean; revision?: string }> = [];
  const urlOf = (pod: PodInfo) => access.url(pod);

  const suite = fileClusterSuite('fc-barrier');
  const running = withOperators(suite);
  const { ok } = suite;
  const stsReplicas = async () => (await kubectlJson<{ spec: { replicas: number } }>(cluster, ['get', 'statefulset', NAME, '-n', ns])).spec.replicas;
  const claims = async () => (await ok(['get', 'pvc', '-n', ns, '-o', 'jsonpath={.items[*].metadata.name}'])).split(' ').filter(Boolean).sort();
  const events = async (reason: string) =>
    kubectlJson<{ items: Array<{ reason: string; message: string; type: string; count?: number }> }>(cluster, [
      'get',
      'events',
      '-n',
      ns,
      '--field-selector',
      `involvedObject.name=${NAME},involvedObject.kind=FileCluster,reason=${reason}`,
    ]);
  const freeze = (pods: string[], on: boolean) => {
    for (const p of cluster.local!.processes().filter((x) => x.namespace === ns && pods.includes(x.pod))) process.kill(p.pid, on ? 'SIGSTOP' : 'SIGCONT');
  };

  const converged = (n: number): Promise<PodInfo[]> =>
    convergedPods(cluster, ns, NAME, n, {
      timeoutMs: CONVERGE_MS,
      what: `${n} serving pods holding the same peer list`,
      holds: async (status, pods) => {
        if (condition(status, 'Progressing')?.status !== 'False') return false;
        const serving = await ok(['get', 'pods', '-n', ns, '-l', `app.kubernetes.io/instance=${NAME},${SERVING}=true`, '-o', 'name']);
        if (serving.trim().split('\n').filter(Boolean).length !== n) return false;
        for (const pod of pods) if ((await peersOf(await urlOf(pod), token)).generation !== status.peerGeneration) return false;
        return true;
      },
    });

  async function explain(err: unknown): Promise<never> {
    const pods = await cluster.kubectl(['get', 'pods,pvc,fc', '-n', ns, '-o', 'wide', '--show-labels']);
    throw new Error(`${err instanceof Error ? err.message : String(err)}\n${pods.stdout}\n${await operators.logs()}`, { cause: err });
  }
  // The steps share one cluster; once a step that needs the local provider skipped, the cluster is not in
  // the state the later steps start from, so they skip too.
  let localOnlySkipped = false;
  const step = (name: string, fn: (t: TestContext) => Promise<void>) =>
    test(name, (t) => (localOnlySkipped ? t.skip('follows a step that needs the local provider') : fn(t).catch(explain)));

  before(async () => {
    ({ cluster, ns } = suite);
    ({ operators, access } = running);
    const controller = await new Watch(cluster.kubeClient()).watch(
      `/api/v1/namespaces/${ns}/pods`,
      { labelSelector: `app.kubernetes.io/instance=${NAME}` },
      (type: string, pod: V1Pod) => {
        const labels = pod.metadata?.labels ?? {};
        const e: (typeof podEvents)[number] = { type, name: pod.metadata?.name ?? '', uid: pod.metadata?.uid ?? '', deleting: Boolean(pod.metadata?.deletionTimestamp) };
        if (labels[SERVING] !== undefined) e.serving = labels[SERVING];
        if (labels['controller-revision-hash'] !== undefined) e.revision = labels['controller-revision-hash'];
        podEvents.push(e);
      },
      () => {},
    );
    stopWatch = () => controller.abort();
  });

  suite.onTeardown(() => stopWatch?.());

  step('new pods enter the client Service only after they hold the peer list and caught up', async () => {
    await ok(['apply', '-n', ns, '-f', '-'], fileClusterYaml(NAME, { replicas: 2 }));
    await waitFor(async () => (await ok(['get', 'secret', `${NAME}-token`, '-n', ns, '--ignore-not-found', '-o', 'name'])) !== '', 60_000, 'the token Secret');
    token = await clusterToken(cluster, ns, `${NAME}-token`);
    const pods = await converged(2);
    assert.equal(await putFile(await urlOf(pods[0]!), 'docs/first.txt', 'first', 'all'), 201);
    for (const pod of pods) {
      const first = podEvents.find((e) => e.uid === pod.uid);
      assert.ok(first, `a watch event of ${pod.name}`);
      assert.notEqual(first.serving, 'true', `${pod.name} was created serving, before it held any peer list`);
    }
  });

  step('a scale-up keeps the cluster Ready; the motion shows in Progressing', async () => {
    const seen = new Set<string>();
    let progressing = false;
    await ok(['scale', '-n', ns, `fc/${NAME}`, '--replicas=3']);
    const until = Date.now() + 120_000;
    for (;;) {
      const status = await fileClusterStatus(cluster, ns, NAME);
      const ready = condition(status, 'Ready');
      seen.add(`${ready?.status}/${ready?.reason}`);
      if (condition(status, 'Progressing')?.status === 'True') progressing = true;
      const pods = await clusterPods(cluster, ns, NAME);
      if (progressing && pods.length === 3 && pods.every((p) => p.ready) && condition(status, 'Progressing')?.status === 'False') break;
      assert.ok(Date.now() < until, `scale-up did not finish; seen ${[...seen].join(', ')}`);
      await new Promise((r) => setTimeout(r, 150));
    }
    assert.deepEqual([...seen], ['True/ClusterReady'], 'Ready stayed True through the scale-up');
    const pods = await converged(3);
    const added = pods.find((p) => p.name === `${NAME}-2`)!;
    assert.notEqual(podEvents.find((e) => e.uid === added.uid)?.serving, 'true', 'the new pod was created not serving');
    assert.equal((await getFile(await urlOf(added), 'docs/first.txt')).body, 'first', 'a serving pod has caught up');
  });

  step('a scale-down fences the leaving pod: it refuses writes while it waits, and hands over what it acknowledged', async (t) => {
    if (!cluster.local) {
      localOnlySkipped = true;
      return t.skip('freezing pods needs the local provider');
    }
    const pods = await clusterPods(cluster, ns, NAME);
    const leaving = pods.find((p) => p.name === `${NAME}-2`)!;
    const leavingUrl = await urlOf(leaving);
    assert.equal(await putFile(leavingUrl, 'fenced/before.txt', 'acknowledged by the leaving pod', 'local'), 201);
    const acknowledged: string[] = [];
    let refusedFile = '';
    // The remaining pods are frozen: the leaving pod cannot hand its writes over, so the scale-down waits.
    const remaining = [`${NAME}-0`, `${NAME}-1`];
    freeze(remaining, true);
    try {
      await waitFor(
        async () => (await clusterPods(cluster, ns, NAME)).filter((p) => remaining.includes(p.name) && p.ready).length === 0,
        60_000,
        'the remaining pods to turn not Ready',
      );
      await ok(['scale', '-n', ns, `fc/${NAME}`, '--replicas=2']);
      // Written until the fence holds: every write answered 2xx must reach the remaining pods.
      let attempt = 0;
      const refused = await waitFor(
        async () => {
          const file = `fenced/try-${attempt++}.txt`;
          const res = await fetch(`${leavingUrl}/files/${file}`, { method: 'PUT', body: file, signal: AbortSignal.timeout(5000) });
          const body = await res.text();
          if (res.status === 503) return { file, body, retryAfter: res.headers.get('retry-after') };
          assert.ok([200, 201].includes(res.status), `${file}: ${res.status} ${body}`);
          acknowledged.push(file);
          return false;
        },
        60_000,
        'the leaving pod to refuse writes',
        50,
      );
      refusedFile = refused.file;
      assert.equal(JSON.parse(refused.body).error, 'leaving');
      assert.equal(refused.retryAfter, '1');
      const waiting = await waitFor(
        async () => {
          const s = await fileClusterStatus(cluster, ns, NAME);
          return condition(s, 'Progressing')?.reason === 'ScaleDownWaitingForReplication' ? s : false;
        },
        60_000,
        'the scale-down to wait',
      );
      assert.match(condition(waiting, 'Progressing')!.message, /scale-down from 3 to 2 waits \(for \d+s\): no Ready pod remains/);
      assert.ok((waiting as { scaleDownBlockedSince?: string }).scaleDownBlockedSince, 'status.scaleDownBlockedSince');
      assert.equal(await stsReplicas(), 3, 'the StatefulSet keeps the leaving pod');
      const base = await operators.endpoint();
      await waitFor(
        async () => {
          const metrics = await (await fetch(`${base}/metrics`)).text();
          const blocked = new RegExp(`^filecluster_operator_scale_down_blocked_seconds\\{namespace="${ns}",name="${NAME}"\\} (\\S+)$`, 'm').exec(metrics);
          return blocked !== null && Number(blocked[1]) > 0;
        },
        30_000,
        'the blocked time to be exported',
      );
    } finally {
      freeze(remaining, false);
    }
    const after2 = await converged(2);
    for (const pod of after2) {
      await waitFor(async () => (await getFile(await urlOf(pod), 'fenced/before.txt')).body === 'acknowledged by the leaving pod', 30_000, `before.txt on ${pod.name}`);
      for (const file of acknowledged) assert.equal((await getFile(await urlOf(pod), file)).body, file, `${file}, acknowledged before the fence, on ${pod.name}`);
      assert.equal((await getFile(await urlOf(pod), refusedFile)).status, 404, 'the refused write was not stored');
    }
    // The leaving pod was drained: its claim goes with it, so a later scale-up starts empty.
    await waitFor(async () => !(await claims()).includes(`data-${NAME}-2`), 60_000, 'the drained claim to be deleted');
    assert.equal(((await fileClusterStatus(cluster, ns, NAME)) as { scaleDownBlockedSince?: string }).scaleDownBlockedSince, undefined);
  });

  step('a pod that never got a peer list does not block a scale-down', async () => {
    const nodes = (await ok(['get', 'nodes', '-o', 'jsonpath={.items[*].metadata.name}'])).split(' ').filter(Boolean);
    for (const node of nodes) await ok(['cordon', node]);
    try {
      await ok(['scale', '-n', ns, `fc/${NAME}`, '--replicas=3']);
      await waitFor(
        async () => (await ok(['get', 'pod', `${NAME}-2`, '-n', ns, '--ignore-not-found', '-o', 'jsonpath={.status.phase}'])) === 'Pending',
        60_000,
        'the new pod to stay Pending',
      );
      const s = await fileClusterStatus(cluster, ns, NAME);
      assert.equal(condition(s, 'Ready')?.status, 'True', 'a serving cluster waiting for a pod is still Ready');
      assert.equal(condition(s, 'Progressing')?.reason, 'ScalingUp');
      await ok(['scale', '-n', ns, `fc/${NAME}`, '--replicas=2']);
      await waitFor(async () => (await stsReplicas()) === 2, 60_000, 'the StatefulSet to shrink without waiting for the pod that never joined');
    } finally {
      for (const node of nodes) await ok(['uncordon', node]);
    }
    await converged(2);
    await waitFor(async () => !(await claims()).includes(`data-${NAME}-2`), 60_000, 'the never-joined claim to be deleted');
  });

  step('the force annotation forces the one scale-down it names, with a Warning, and keeps the undrained claim', async (t) => {
    if (!cluster.local) return t.skip('freezing pods needs the local provider');
    const leaving = `${NAME}-1`;
    freeze([leaving], true);
    try {
      await waitFor(async () => !(await clusterPods(cluster, ns, NAME)).find((p) => p.name === leaving)?.ready, 60_000, `${leaving} to turn not Ready`);
      await ok(['scale', '-n', ns, `fc/${NAME}`, '--replicas=1']);
      await ok(['annotate', '--overwrite', 'fc', NAME, '-n', ns, 'filecluster.dev/force-scale-down=true']);
      const ignored = await waitFor(
        async () => {
          const c = condition(await fileClusterStatus(cluster, ns, NAME), 'Progressing');
          return c?.reason === 'ScaleDownWaitingForReplication' && /does not authorise/.test(c.message) ? c : false;
        },
        60_000,
        'the scale-down to wait despite an annotation naming no count',
      );
      assert.match(ignored.message, new RegExp(`${leaving} is not Ready`));
      assert.equal(await stsReplicas(), 2);
      await ok(['annotate', '--overwrite', 'fc', NAME, '-n', ns, 'filecluster.dev/force-scale-down=1']);
      await waitFor(async () => (await stsReplicas()) === 1, 60_000, 'the forced scale-down');
    } finally {
      freeze([leaving], false);
    }
    const warning = await waitFor(async () => (await events('ForcedScaleDown')).items[0] ?? false, 30_000, 'a ForcedScaleDown event');
    assert.equal(warning.type, 'Warning');
    assert.match(warning.message, new RegExp(`kept claims data-${NAME}-1`));
    await waitFor(
      async () => ((await fileClusterStatus(cluster, ns, NAME)) as { forcedScaleDown?: { replicas: number } }).forcedScaleDown?.replicas === 1,
      60_000,
      'status.forcedScaleDown',
    );
    await converged(1);
    assert.ok((await claims()).includes(`data-${NAME}-1`), 'the claim of a pod that did not drain is kept');
    await ok(['annotate', 'fc', NAME, '-n', ns, 'filecluster.dev/force-scale-down-']);
    await ok(['scale', '-n', ns, `fc/${NAME}`, '--replicas=2']);
    await converged(2);
  });

  step('after a volume resize the claims are compared, not patched on every reconcile', async () => {
    const base = await operators.endpoint();
    const claimPatches = async () =>
      Number(
        /^filecluster_operator_api_requests_total\{verb="PATCH",resource="persistentvolumeclaims"\} (\d+)$/m.exec(await (await fetch(`${base}/metrics`)).text())?.[1] ??
          0,
      );
    await ok(['patch', 'fc', NAME, '-n', ns, '--type=merge', '-p', JSON.stringify({ spec: { storage: { size: '2Gi' } } })]);
    const requested = (claim: string) => ok(['get', 'pvc', claim, '-n', ns, '-o', 'jsonpath={.spec.resources.requests.storage}']);
    await waitFor(async () => (await requested(`data-${NAME}-0`)) === '2Gi' && (await requested(`data-${NAME}-1`)) === '2Gi', 60_000, 'the claims to request 2Gi');
    const before = await claimPatches();
    // Each annotation change of the operator's own prefix queues a reconcile.
    for (let i = 0; i < 5; i++) {
      await ok(['annotate', '--overwrite', 'fc', NAME, '-n', ns, `filecluster.dev/poke=${i}`]);
      await new Promise((r) => setTimeout(r, 400));
    }
    assert.equal(await claimPatches(), before, 'no claim was patched again once it requested the size');
  });

  step('a rolling update takes each pod out of the client Service before it restarts', async () => {
    const from = podEvents.length;
    const before = await clusterPods(cluster, ns, NAME);
    await ok(['patch', 'fc', NAME, '-n', ns, '--type=merge', '-p', JSON.stringify({ spec: { logLevel: 'debug' } })]);
    await waitFor(
      async () => {
        const now = await clusterPods(cluster, ns, NAME);
        return now.length === before.length && now.every((p, i) => p.uid !== before[i]!.uid);
      },
      CONVERGE_MS,
      'every pod to be replaced',
    );
    await converged(2);
    const deletions = podEvents.slice(from).filter((e) => e.deleting && before.some((p) => p.uid === e.uid));
    assert.ok(deletions.length >= before.length, 'the watch saw the old pods deleted');
    for (const e of deletions) assert.equal(e.serving, 'false', `${e.name} was deleted while still in the client Service`);
  });

  step('deleting the FileCluster keeps the claims, and a FileCluster of the same name comes back with the data', async () => {
    const kept = await claims();
    await ok(['delete', '-n', ns, `fc/${NAME}`, '--wait=true']);
    await waitFor(async () => (await clusterPods(cluster, ns, NAME)).length === 0, 120_000, 'the pods to go');
    await new Promise((r) => setTimeout(r, 2000));
    assert.deepEqual(await claims(), kept, 'the claims outlive the FileCluster');
    await ok(['apply', '-n', ns, '-f', '-'], fileClusterYaml(NAME, { replicas: 2, storage: { size: '2Gi', whenDeleted: 'Delete' } }));
    token = await waitFor(async () => clusterToken(cluster, ns, `${NAME}-token`).catch(() => false), 60_000, 'a token');
    const pods = await converged(2);
    assert.equal((await getFile(await urlOf(pods[1]!), 'docs/first.txt')).body, 'first');
    assert.equal(await ok(['get', 'statefulset', NAME, '-n', ns, '-o', 'jsonpath={.spec.persistentVolumeClaimRetentionPolicy.whenDeleted}']), 'Delete');
    await ok(['delete', '-n', ns, `fc/${NAME}`, '--wait=true']);
    await waitFor(async () => (await claims()).length === 0, 120_000, 'the claims to go with the cluster when asked');
  });
});
