// The operator's informers against a real API server reached through a TCP proxy that misbehaves the
// way networks do: streams cut, connections refused, a connection that silently stops carrying data.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import type { KubeConfig, V1ConfigMap } from '@kubernetes/client-node';
import { pino } from 'pino';
import { sleep, startCluster, waitFor, type Cluster } from '../../harness/index.ts';
import { ResilientInformer, type EventType, type InformerOptions } from '../../../operator/src/runtime/informer.ts';
import { Kube } from '../../../operator/src/runtime/kube.ts';
import { FaultyProxy, throughProxy } from './faulty-proxy.ts';

/** An informer on ConfigMaps with one label, and what its handlers saw. */
interface Watched {
  informer: ResilientInformer<V1ConfigMap>;
  /** Every event, in order: "type name resourceVersion". */
  events: string[];
  /** Last event type by name. */
  seen: Map<string, string>;
  /** Events during which informer.get() did not return the object reported (or returned one for a delete). */
  inconsistent: string[];
  logLines: string[];
}

function watchConfigMaps(
  kc: KubeConfig,
  ns: string,
  label: string,
  opts: Partial<InformerOptions<V1ConfigMap>> = {},
  firstHandler?: (type: EventType, cm: V1ConfigMap) => void,
): Watched {
  const logLines: string[] = [];
  const sink = new Writable({
    write: (chunk: Buffer, _enc, cb) => {
      logLines.push(chunk.toString());
      cb();
    },
  });
  const informer = new ResilientInformer<V1ConfigMap>(new Kube(kc), pino({ level: 'debug' }, sink), {
    resource: { group: '', version: 'v1', plural: 'configmaps' },
    namespaces: [ns],
    labelSelector: `e2e=${label}`,
    restartBaseMs: 200,
    restartMaxMs: 1000,
    ...opts,
  });
  const w: Watched = { informer, events: [], seen: new Map(), inconsistent: [], logLines };
  if (firstHandler) informer.on(firstHandler);
  informer.on((type, cm) => {
    const name = cm.metadata?.name ?? '';
    w.events.push(`${type} ${name} ${cm.metadata?.resourceVersion}`);
    w.seen.set(name, type);
    const held = informer.get(name, ns);
    if (type === 'delete' ? held !== undefined : held !== cm) {
      w.inconsistent.push(`${type} ${name}@${cm.metadata?.resourceVersion} while the cache held ${held ? `@${held.metadata?.resourceVersion}` : 'nothing'}`);
    }
  });
  return w;
}

describe('informers survive what the network and the API server do', { timeout: 300_000 }, () => {
  let cluster: Cluster;
  let ns: string;
  let proxy: FaultyProxy;
  let viaProxy: KubeConfig;
  let main: Watched;
  const started: Array<ResilientInformer<V1ConfigMap>> = [];

  before(async () => {
    cluster = await startCluster();
    ns = await cluster.createNamespace('fc-informer');
    ({ proxy, kubeConfig: viaProxy } = await FaultyProxy.inFrontOf(cluster.kubeClient()));
    // A short watchdog, so a stall is repaired within the test's patience.
    // The first handler throws for some objects: it must not keep the recorder after it from running.
    main = watchConfigMaps(viaProxy, ns, 'informer', { watchdogMs: 3000 }, (_type, cm) => {
      if (cm.metadata?.name?.startsWith('boom')) throw new Error(`handler bug on ${cm.metadata.name}`);
    });
    await start(main);
  });

  after(async () => {
    for (const informer of started) await informer.stop();
    await proxy?.close();
    if (ns) await cluster.deleteNamespace(ns).catch(() => {});
    await cluster?.close();
  });

  const start = async (w: Watched) => {
    started.push(w.informer);
    await w.informer.start();
    assert.equal(w.informer.synced, true);
  };
  const create = async (name: string, label = 'informer', data: Record<string, string> = { k: 'v' }) => {
    const r = await cluster.kubectl(['create', 'configmap', name, '-n', ns, ...Object.entries(data).map(([k, v]) => `--from-literal=${k}=${v}`)]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await cluster.kubectl(['label', 'configmap', name, '-n', ns, `e2e=${label}`])).code, 0);
  };
  const sees = (w: Watched, name: string, type: string, what: string) =>
    waitFor(() => w.seen.get(name) === type, 60_000, what).catch((err: unknown) => {
      throw new Error(`${(err as Error).message}\n${w.logLines.slice(-20).join('')}`);
    });
  const consistent = (w: Watched) => assert.deepEqual(w.inconsistent, [], 'inside a handler, the cache holds the object reported');

  test('a change arrives through the watch', async () => {
    await create('first');
    await sees(main, 'first', 'add', 'the first ConfigMap');
    assert.ok(main.informer.get('first', ns));
    consistent(main);
  });

  test('a cut stream is re-established and nothing is missed', async () => {
    proxy.cutAll();
    await create('after-cut');
    await sees(main, 'after-cut', 'add', 'a ConfigMap created after the cut');
    consistent(main);
  });

  test('refused connections make the watch fail and synced false; it restarts with backoff and catches up, deletions included', async () => {
    const mark = main.logLines.length;
    proxy.mode = 'refuse';
    try {
      proxy.cutAll();
      await cluster.kubectl(['delete', 'configmap', 'first', '-n', ns]);
      await create('while-refused');
      await waitFor(() => main.logLines.slice(mark).some((l) => l.includes('watch failed, restarting')), 60_000, 'the informer to notice the failure');
      assert.equal(main.informer.synced, false, 'a failing informer is not synced');
    } finally {
      proxy.mode = 'pass';
    }
    await sees(main, 'while-refused', 'add', 'the ConfigMap created while refused');
    await sees(main, 'first', 'delete', 'the deletion that happened while refused');
    assert.equal(main.informer.get('first', ns), undefined);
    await waitFor(() => main.informer.synced, 30_000, 'synced again once the watch is back');
    consistent(main);
  });

  test('a silently stalled watch is replaced by the watchdog, and its handlers see the cache they are told about', async () => {
    // A stall that lands between two watch requests (the server ends each one after about two seconds)
    // hits the next request instead, which the proxy resets: a failed watch, not a silent one. That
    // attempt says nothing about the watchdog, so the stall is made again, on the new watch.
    const attempts: string[] = [];
    for (let attempt = 1; attempt <= 3; attempt++) {
      await waitFor(() => proxy.connections > 0, 10_000, 'an open watch connection');
      const mark = main.logLines.length;
      proxy.stallAll({ resetOnSend: true });
      const name = `after-stall-${attempt}`;
      await create(name);
      await sees(main, name, 'add', 'a ConfigMap created behind the stall');
      const logged = main.logLines.slice(mark);
      if (logged.some((l) => l.includes('watch quiet for too long'))) {
        assert.equal(main.informer.synced, true);
        consistent(main);
        return;
      }
      attempts.push(`attempt ${attempt}:\n${logged.join('')}`);
      assert.ok(
        logged.some((l) => l.includes('watch failed, restarting')),
        `the event came through without the watchdog and without a failed watch:\n${attempts.join('\n')}`,
      );
    }
    assert.fail(`the watchdog never replaced the watch; each stall hit a new request instead:\n${attempts.join('\n')}`);
  });

  test('a handler that throws is logged, the other handlers still run and the watch goes on', async () => {
    await create('boom-1');
    await sees(main, 'boom-1', 'add', 'the event whose handler throws, seen by the next handler');
    assert.ok(
      main.logLines.some((l) => l.includes('event handler failed') && l.includes('boom-1')),
      'the failure is logged',
    );
    await cluster.kubectl(['label', 'configmap', 'boom-1', '-n', ns, 'more=1']);
    await sees(main, 'boom-1', 'update', 'a later change of the same object');
    await create('after-boom');
    await sees(main, 'after-boom', 'add', 'a later object');
    consistent(main);
  });

  test('a periodic relist reports only what changed and never deletes a live object, while objects keep coming', async () => {
    const w = watchConfigMaps(viaProxy, ns, 'relist', { relistMs: 1000 });
    for (const name of ['r-1', 'r-2', 'r-3']) await create(name, 'relist');
    await start(w);
    // Creations land before, during and after several relists.
    const names: string[] = [];
    for (let i = 0; i < 30; i++) {
      names.push(`r-new-${i}`);
      await create(`r-new-${i}`, 'relist');
    }
    await waitFor(() => names.every((n) => w.seen.get(n) === 'add'), 60_000, 'every new ConfigMap');
    await sleep(2500);
    assert.ok(w.logLines.filter((l) => l.includes('relist')).length >= 2, 'several relists ran');
    const byName = new Map<string, string[]>();
    for (const e of w.events) {
      const [type, name] = e.split(' ') as [string, string];
      byName.set(name, [...(byName.get(name) ?? []), type]);
    }
    const repeated = [...byName].filter(([, types]) => types.join() !== 'add').map(([name, types]) => `${name}: ${types.join(', ')}`);
    assert.deepEqual(repeated, [], 'each ConfigMap, never changed, is reported once, as added');
    consistent(w);
    await w.informer.stop();
  });

  test('a scale made while the watch lags is reconciled from the cache by the relist that reports it', async () => {
    // The issue's sequence: the watch lags, the object changes (replicas 3 -> 4), a relist reports
    // it; the reconcile it queues reads the cache, as the operator's reconcile reads its caches.
    const w = watchConfigMaps(viaProxy, ns, 'scale', { relistMs: 4000, watchdogMs: 60_000 });
    await create('scaled', 'scale', { replicas: '3' });
    await start(w);
    const reconciles: Array<{ reported: string | undefined; read: string | undefined }> = [];
    w.informer.on((_type, cm) => {
      const reported = cm.data?.['replicas'];
      // Queued, as a work queue runs a reconcile after the handler returns.
      setImmediate(() => reconciles.push({ reported, read: w.informer.get('scaled', ns)?.data?.['replicas'] }));
    });
    await waitFor(() => proxy.connections > 0, 10_000, 'an open watch connection');
    proxy.stallAll({ resetOnSend: true });
    // Again once a watch opening at the first stall (a relist in flight) has opened: the watch that
    // serves the cache is then surely the lagging one.
    await sleep(300);
    proxy.stallAll({ resetOnSend: true });
    const patch = await cluster.kubectl(['patch', 'configmap', 'scaled', '-n', ns, '--type=merge', '-p', '{"data":{"replicas":"4"}}']);
    assert.equal(patch.code, 0, patch.stderr);
    await waitFor(() => reconciles.some((r) => r.reported === '4'), 30_000, 'the relist to report replicas=4');
    await sleep(200);
    assert.deepEqual(
      reconciles.filter((r) => r.reported === '4').map((r) => r.read),
      reconciles.filter((r) => r.reported === '4').map(() => '4'),
      'every reconcile queued by the report of 4 read 4',
    );
    assert.equal(w.informer.get('scaled', ns)?.data?.['replicas'], '4');
    consistent(w);
    await w.informer.stop();
  });

  test('stop() ends every request, during a relist too, and no watch opens after it', async () => {
    const own = new FaultyProxy({ host: '127.0.0.1', port: proxy.port });
    await own.listen();
    try {
      const w = watchConfigMaps(throughProxy(viaProxy, own), ns, 'stop', { relistMs: 300 });
      await start(w);
      // Every new connection takes a while, so the first relist is still in flight at stop().
      own.connectDelayMs = 3000;
      await sleep(1500);
      await w.informer.stop();
      const events = w.events.length;
      const accepted = own.accepted;
      await create('after-stop', 'stop');
      // Past when a connection opened before stop() would be through.
      await sleep(2500);
      assert.equal(own.accepted, accepted, 'no connection opened after stop()');
      assert.equal(w.events.length, events, 'no handler ran after stop()');
    } finally {
      await own.close();
    }
  });
});
