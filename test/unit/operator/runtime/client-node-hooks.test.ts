import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { standIn } from '../../../../operator/src/runtime/client-node-hooks.ts';

const ROOT = path.resolve(import.meta.dirname, '../../../..');
const DIST = `file://${ROOT}/node_modules/@kubernetes/client-node/dist/`;

test('only the edge into the generated code that the operator loads gets a stand-in', () => {
  assert.match(standIn(`${DIST}config.js`, `${DIST}gen/index.js`) ?? '', /^data:text\/javascript,/);
  assert.equal(standIn(`${DIST}api.js`, `${DIST}gen/index.js`), undefined, 'the package index still gets the real code');
  assert.equal(standIn(`${DIST}watch.js`, `${DIST}gen/http/http.js`), undefined);
  assert.equal(standIn(undefined, `${DIST}gen/index.js`), undefined);
});

test('the operator runtime loads and works through the hooks without any generated API or model', () => {
  // A fresh process: the hooks must be in before client-node is first imported.
  const script = `
    import { registerHooks } from 'node:module';
    const { installClientNodeHooks } = await import('${ROOT}/operator/src/runtime/client-node-hooks.ts');
    installClientNodeHooks();
    const loaded = [];
    registerHooks({ resolve(s, c, next) { const r = next(s, c); loaded.push(r.url); return r; } });
    const { Kube } = await import('${ROOT}/operator/src/runtime/kube.ts');
    const { ResilientInformer } = await import('${ROOT}/operator/src/runtime/informer.ts');
    const { KubeConfig } = await import('@kubernetes/client-node/dist/config.js');
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'c', server: 'https://127.0.0.1:1', skipTLSVerify: true }],
      users: [{ name: 'u', token: 't' }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    });
    const kube = new Kube(kc);
    new ResilientInformer(kube, { child: () => ({}) }, { resource: { group: '', version: 'v1', plural: 'pods' }, namespaces: [] });
    const generated = loaded.filter((u) => /client-node\\/dist\\/gen\\/(apis|models|index)/.test(u) || u.endsWith('client-node/dist/serializer.js'));
    console.log(JSON.stringify({ generated, standIns: loaded.filter((u) => u.startsWith('data:')).length }));
  `;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { generated: string[]; standIns: number };
  assert.deepEqual(out.generated, []);
  assert.equal(out.standIns, 1);
});
