// One leader at a time, against the harness's real API server: a leader that cannot renew ends its term
// by the renew deadline (the operator process exits) and never leads again in that process, and the
// StatefulSet shrink goes out only if the spec and the StatefulSet it was decided on are unchanged.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createWriteStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { V1PersistentVolumeClaim, V1Pod } from '@kubernetes/client-node';
import { compiledEntrypoint } from '../../harness/assets.ts';
import { directReconciler, fileClusterSuite } from '../../harness/filecluster-suite.ts';
import { waitFor, type Cluster } from '../../harness/index.ts';
import type { FileClusterReconciler } from '../../../operator/src/controllers/filecluster/reconcile.ts';
import { DATA_VOLUME } from '../../../operator/src/controllers/filecluster/names.ts';
import { Kube } from '../../../operator/src/runtime/kube.ts';
import { LeaderElector } from '../../../operator/src/runtime/leader.ts';
import { FaultyProxy } from './faulty-proxy.ts';
import { fileClusterYaml, kubectlJson } from './support.ts';

const LEASE = { durationMs: 5000, renewDeadlineMs: 4000, retryPeriodMs: 1000 };

describe('one leader at a time', { timeout: 300_000 }, () => {
  let cluster: Cluster;
  let ns: string;
  const suite = fileClusterSuite('fc-leader');
  const { log, ok } = suite;
  before(() => ({ cluster, ns } = suite));
  /** When the Lease was last renewed (epoch ms, the holder's clock: this machine's). */
  const renewedAt = async (name: string): Promise<{ holder: string; at: number }> => {
    const lease = await kubectlJson<{ spec: { holderIdentity?: string; renewTime: string } }>(cluster, ['get', 'lease', name, '-n', ns]);
    return { holder: lease.spec.holderIdentity ?? '', at: Date.parse(lease.spec.renewTime) };
  };

  test('a leader whose renewals hang ends its term by the renew deadline and never leads again', async () => {
    const { proxy, kubeConfig } = await FaultyProxy.inFrontOf(cluster.kubeClient());
    const calls: Array<{ what: string; at: number }> = [];
    const elector = new LeaderElector(
      new Kube(kubeConfig),
      log,
      { ...LEASE, namespace: ns, name: 'in-process', identity: 'a' },
      {
        onStartedLeading: () => calls.push({ what: 'start', at: Date.now() }),
        onStoppedLeading: async () => void calls.push({ what: 'stop', at: Date.now() }),
        onLostLeadership: () => calls.push({ what: 'lost', at: Date.now() }),
      },
    );
    try {
      elector.run();
      await waitFor(() => elector.isLeader, 30_000, 'the elector to lead');
      await new Promise((r) => setTimeout(r, 2500));
      proxy.hang();
      const last = await renewedAt('in-process');
      const lost = await waitFor(() => calls.find((c) => c.what === 'lost'), 30_000, 'the term to end');
      // Another replica may take the Lease a lease duration after the last renewal it saw; the term
      // ends at the renew deadline, before that (a little scheduling slack allowed).
      assert.ok(lost.at <= last.at + LEASE.renewDeadlineMs + 300, `term ended ${lost.at - last.at} ms after the last renewal`);
      assert.equal(elector.isLeader, false);
      // The API server answers again: the Lease is free to take, but this elector stays out.
      proxy.mode = 'pass';
      proxy.cutAll();
      await new Promise((r) => setTimeout(r, LEASE.durationMs + 3 * LEASE.retryPeriodMs));
      assert.deepEqual(
        calls.map((c) => c.what),
        ['start', 'lost'],
        'one term, no second start in this process',
      );
    } finally {
      await elector.stop();
      await proxy.close();
    }
  });

  test('the operator process exits when its term ends, before another replica may take over', async () => {
    const { proxy, kubeConfig } = await FaultyProxy.inFrontOf(cluster.kubeClient());
    const dir = mkdtempSync(path.join(os.tmpdir(), 'fc-leader-'));
    const kubeconfigPath = path.join(dir, 'kubeconfig');
    writeFileSync(kubeconfigPath, kubeConfig.exportConfig(), { mode: 0o600 });
    const logFile = path.join(dir, 'operator.log');
    const child = spawn(process.execPath, [compiledEntrypoint('operator')], {
      env: {
        ...process.env,
        KUBECONFIG: kubeconfigPath,
        FC_WATCH_NAMESPACES: ns,
        FC_LEASE_NAMESPACE: ns,
        FC_LEASE_NAME: 'process',
        FC_POD_NAME: 'solo',
        FC_OPERATOR_HOST: '127.0.0.1',
        FC_OPERATOR_PORT: '0',
        FC_LEASE_DURATION_SECONDS: String(LEASE.durationMs / 1000),
        FC_LEASE_RENEW_DEADLINE_SECONDS: String(LEASE.renewDeadlineMs / 1000),
        FC_LEASE_RETRY_PERIOD_SECONDS: String(LEASE.retryPeriodMs / 1000),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out = createWriteStream(logFile);
    child.stdout.pipe(out);
    child.stderr.pipe(out);
    const exited = new Promise<{ code: number | null; at: number }>((resolve) => child.once('exit', (code) => resolve({ code, at: Date.now() })));
    try {
      await waitFor(async () => (await renewedAt('process').catch(() => undefined))?.holder === 'solo', 60_000, 'the operator to take the Lease');
      await new Promise((r) => setTimeout(r, 2500));
      proxy.hang();
      const last = await renewedAt('process');
      const end = await Promise.race([exited, new Promise<undefined>((r) => setTimeout(r, 30_000, undefined))]);
      const logText = readFileSync(logFile, 'utf8');
      assert.ok(end, `the operator kept running after losing its Lease:\n${logText.split('\n').slice(-10).join('\n')}`);
      assert.equal(end.code, 1);
      assert.ok(end.at < last.at + LEASE.durationMs, `exited ${end.at - last.at} ms after its last renewal`);
      assert.match(logText, /leadership lost/);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
      await proxy.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  describe('the StatefulSet shrink is conditional', () => {
    // Stand-ins for the file servers' peer API (named so: not file servers). The shrink races with a
    // change made at one exact moment, while the reconcile reads the leaving pod's status; a hook in
    // the stand-in makes that change, which real pods could not time.
    const reconcilerFor = (name: string, standIns: StandInPods): FileClusterReconciler =>
      directReconciler(cluster, log, 'leadership-test', {
        pods: (_ns, c) => (c === name ? standIns.pods(c) : []),
        claims: (_ns, c) => (c === name ? standIns.claims(c) : []),
        push: { timeoutMs: 2000, attempts: 1 },
      });
    const stsReplicas = async (name: string) => (await kubectlJson<{ spec: { replicas: number } }>(cluster, ['get', 'statefulset', name, '-n', ns])).spec.replicas;

    /**
     * Scales from 3 to 2 and reconciles until the leaving pod's status is read with the scale-down
     * ready to go (it holds a list published after the scale); the hook runs then. Returns the outcome
     * of that reconcile.
     */
    async function shrinkWithHook(
      name: string,
      hook: () => Promise<void>,
      body: (r: FileClusterReconciler, outcome: { error?: unknown }) => Promise<void>,
    ): Promise<void> {
      const standIns = await StandInPods.start([0, 1, 2].map((i) => `${name}-${i}`));
      try {
        // No node matches: the StatefulSet's real pods stay Pending; the stand-ins answer for them.
        await ok(['apply', '-n', ns, '-f', '-'], fileClusterYaml(name, { replicas: 3, nodeSelector: { 'filecluster.dev/test': 'nowhere' } }));
        const r = reconcilerFor(name, standIns);
        const key = `${ns}/${name}`;
        await r.reconcile(key);
        // The pods appear once the StatefulSet exists, as real ones would.
        standIns.present = true;
        await r.reconcile(key);
        await r.reconcile(key);
        assert.equal(await stsReplicas(name), 3);
        await ok(['scale', '-n', ns, `fc/${name}`, '--replicas=2']);
        standIns.hook = { pod: `${name}-2`, afterGeneration: standIns.generationOf(`${name}-2`), run: hook, ran: false };
        for (let i = 0; i < 6; i++) {
          let error: unknown;
          await r.reconcile(key).catch((err: unknown) => (error = err));
          if (standIns.hook.ran) return await body(r, error === undefined ? {} : { error });
          if (error) throw error;
        }
        throw new Error('the reconcile never read the leaving pod\u2019s status with the scale-down ready to go');
      } finally {
        await standIns.close();
        await ok(['delete', '-n', ns, `fc/${name}`, '--wait=true']);
      }
    }

    test('a scale-up made while the shrink was being decided is not undone', async () => {
      await shrinkWithHook(
        'rescaled',
        () => ok(['scale', '-n', ns, 'fc/rescaled', '--replicas=3']).then(() => undefined),
        async (r, outcome) => {
          assert.equal(outcome.error, undefined);
          assert.equal(await stsReplicas('rescaled'), 3, 'the shrink to 2 decided before the scale-up went out');
          await r.reconcile(`${ns}/rescaled`);
          assert.equal(await stsReplicas('rescaled'), 3);
        },
      );
    });

    test('a StatefulSet written by someone else meanwhile fails the shrink with a conflict; a fresh read then shrinks', async () => {
      const touch = () => ok(['annotate', '-n', ns, 'statefulset/touched', 'test/touched=yes', '--overwrite']).then(() => undefined);
      await shrinkWithHook('touched', touch, async (r, outcome) => {
        assert.match(String(outcome.error), /409/, 'the write carried the resourceVersion it was decided on');
        assert.equal(await stsReplicas('touched'), 3);
        await waitFor(
          async () => {
            await r.reconcile(`${ns}/touched`);
            return (await stsReplicas('touched')) === 2;
          },
          30_000,
          'the shrink after a fresh read',
        );
      });
    });
  });
});

/**
 * Stand-ins for file-server pods: Ready pods (as the informer cache would hold them) whose IPs are
 * loopback addresses where a tiny HTTP server answers the peer API: pushes and fences are accepted, and
 * the status reports the last generation received, whether fenced, and no backlog, so a scale-down may go ahead.
 */
class StandInPods {
  hook?: { pod: string; afterGeneration: number; run: () => Promise<void>; ran: boolean };
  present = false;
  private readonly servers: http.Server[] = [];
  private readonly ips = new Map<string, string>();
  private readonly generations = new Map<string, number>();
  private readonly leaving = new Set<string>();

  static async start(names: string[]): Promise<StandInPods> {
    const s = new StandInPods();
    // 127.3.x.y: below the harness's pod networks (127.10-250), which leave the low blocks to tests.
    const block = 1 + Math.floor(Math.random() * 250);
    for (const [i, name] of names.entries()) {
      const ip = `127.3.${block}.${i + 1}`;
      s.ips.set(name, ip);
      const server = http.createServer((req, res) => void s.answer(name, req, res));
      await new Promise<void>((resolve, reject) => server.once('error', reject).listen(8080, ip, resolve));
      s.servers.push(server);
    }
    return s;
  }

  pods(cluster: string): V1Pod[] {
    if (!this.present) return [];
    return [...this.ips.entries()].map(([name, ip]) => ({
      metadata: { name, namespace: 'any', uid: `uid-${name}`, labels: { 'app.kubernetes.io/instance': cluster, 'filecluster.dev/serving': 'true' } },
      status: { phase: 'Running', podIP: ip, conditions: [{ type: 'Ready', status: 'True' }], containerStatuses: [] },
    })) as V1Pod[];
  }

  /** The pods' data claims, joined (the pods hold acknowledged writes), as the claim informer would hold them. */
  claims(cluster: string): V1PersistentVolumeClaim[] {
    if (!this.present) return [];
    return [...this.ips.keys()].map((name) => ({ metadata: { name: `${DATA_VOLUME}-${name}`, namespace: 'any', labels: { 'app.kubernetes.io/instance': cluster } } }));
  }

  generationOf(name: string): number {
    return this.generations.get(name) ?? 0;
  }

  private async answer(name: string, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const json = (status: number, body: unknown): void => void res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    if (req.method === 'PUT' && req.url === '/internal/peers') {
      const body = JSON.parse(Buffer.concat(chunks).toString()) as { generation: number };
      this.generations.set(name, body.generation);
      return json(200, { generation: body.generation });
    }
    const generation = this.generations.get(name) ?? 0;
    if (req.method === 'PUT' && req.url === '/internal/fence') {
      const body = JSON.parse(Buffer.concat(chunks).toString()) as { leaving: boolean };
      if (body.leaving) this.leaving.add(name);
      else this.leaving.delete(name);
    }
    // A fence's answer is the status, as the file server's is.
    if (req.url === '/internal/status' || req.url === '/internal/fence') {
      const peers = [...this.ips.keys()].filter((p) => p !== name).map((id) => ({ id, pendingChanges: 0 }));
      const hook = this.hook;
      // Once the pod holds a list newer than the hook: the scale-down is then ready to go in this reconcile.
      if (hook && !hook.ran && hook.pod === name && generation > hook.afterGeneration) {
        hook.ran = true;
        await hook.run();
      }
      return json(200, { generation, syncedGeneration: generation, leaving: this.leaving.has(name), peers });
    }
    return json(200, { generation });
  }

  async close(): Promise<void> {
    await Promise.all(this.servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  }
}
