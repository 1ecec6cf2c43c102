// The operator's informers against a real API server reached through a TCP proxy that misbehaves the
// way networks do: streams cut, connections refused, a connection that silently stops carrying data.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import type { V1ConfigMap } from '@kubernetes/client-node';
import { pino } from 'pino';
import { startCluster, waitFor, type Cluster } from '../../harness/index.ts';
import { ResilientInformer } from '../../../operator/src/runtime/informer.ts';
import { Kube } from '../../../operator/src/runtime/kube.ts';
import { FaultyProxy } from './faulty-proxy.ts';

describe('informers survive what the network and the API server do', { timeout: 300_000 }, () => {
  let cluster: Cluster;
  let ns: string;
  let proxy: FaultyProxy;
  let informer: ResilientInformer<V1ConfigMap>;
  const logLines: string[] = [];
  const seen = new Map<string, string>();

  before(async () => {
    cluster = await startCluster();
    ns = await cluster.createNamespace('fc-informer');
    const made = await FaultyProxy.inFrontOf(cluster.kubeClient());
    proxy = made.proxy;
    const viaProxy = made.kubeConfig;
    const sink = new Writable({ write: (chunk: Buffer, _enc, cb) => { logLines.push(chunk.toString()); cb(); } });
    informer = new ResilientInformer<V1ConfigMap>(new Kube(viaProxy), pino({ level: 'debug' }, sink), {
      resource: { group: '', version: 'v1', plural: 'configmaps' },
      namespaces: [ns],
      labelSelector: 'e2e=informer',
      // Far below the library's 30 s idle timeout, so a repaired stall proves the watchdog did it.
      watchdogMs: 3000,
      restartBaseMs: 200,
      restartMaxMs: 1000,
    });
    informer.on((type, cm) => seen.set(cm.metadata?.name ?? '', type));
    await informer.start();
    assert.equal(informer.synced, true);
  });

  after(async () => {
    await informer?.stop();
    await proxy?.close();
    if (ns) await cluster.deleteNamespace(ns).catch(() => {});
    await cluster?.close();
  });

  const create = async (name: string) => {
    const r = await cluster.kubectl(['create', 'configmap', name, '-n', ns, '--from-literal=k=v']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await cluster.kubectl(['label', 'configmap', name, '-n', ns, 'e2e=informer'])).code, 0);
  };
  const sees = (name: string, type: string, what: string) =>
    waitFor(() => seen.get(name) === type, 60_000, what).catch((err: unknown) => {
      throw new Error(`${(err as Error).message}\n${logLines.slice(-20).join('')}`);
    });

  test('a change arrives through the watch', async () => {
    await create('first');
    await sees('first', 'add', 'the first ConfigMap');
    assert.ok(informer.get('first', ns));
  });

  test('a cut stream is re-established and nothing is missed', async () => {
    proxy.cutAll();
    await create('after-cut');
    await sees('after-cut', 'add', 'a ConfigMap created after the cut');
  });

  test('refused connections make the watch fail; it restarts with backoff and catches up, deletions included', async () => {
    const mark = logLines.length;
    proxy.mode = 'refuse';
    proxy.cutAll();
    await cluster.kubectl(['delete', 'configmap', 'first', '-n', ns]);
    await create('while-refused');
    await waitFor(() => logLines.slice(mark).some((l) => l.includes('watch failed, restarting')), 60_000, 'the informer to notice the failure');
    proxy.mode = 'pass';
    await sees('while-refused', 'add', 'the ConfigMap created while refused');
    await sees('first', 'delete', 'the deletion that happened while refused');
    assert.equal(informer.get('first', ns), undefined);
  });

  test('a silently stalled watch is replaced by the watchdog with a fresh list', async () => {
    await waitFor(() => proxy.connections > 0, 10_000, 'an open watch connection');
    const mark = logLines.length;
    proxy.stallAll();
    await create('after-stall');
    await sees('after-stall', 'add', 'a ConfigMap created behind the stall');
    assert.ok(logLines.slice(mark).some((l) => l.includes('watch quiet for too long')), 'the watchdog replaced the informer');
    assert.equal(informer.synced, true);
  });
});
