import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KubernetesObject } from '@kubernetes/client-node';
import { ObjectStore } from '../../../../operator/src/runtime/store.ts';

const obj = (name: string, rv: string, namespace = 'ns'): KubernetesObject => ({ metadata: { name, namespace, resourceVersion: rv } });
const summary = (changes: Array<{ type: string; obj: KubernetesObject }>) => changes.map((c) => `${c.type} ${c.obj.metadata?.name}@${c.obj.metadata?.resourceVersion}`);

test('watch events: add when new, update when the resourceVersion moved, nothing for a replay', () => {
  const s = new ObjectStore();
  assert.deepEqual(s.upsert(obj('a', '1'))?.type, 'add');
  assert.equal(s.upsert(obj('a', '1')), undefined);
  assert.deepEqual(s.upsert(obj('a', '2'))?.type, 'update');
  assert.equal(s.get('a', 'ns')?.metadata?.resourceVersion, '2');
  assert.equal(s.remove(obj('a', '3'))?.type, 'delete');
  assert.equal(s.remove(obj('a', '3')), undefined, 'a second delete of the same object is not reported');
  assert.deepEqual(s.list(), []);
});

test('a relist of unchanged live objects reports nothing, and never a delete', () => {
  const s = new ObjectStore();
  s.upsert(obj('a', '1'));
  s.upsert(obj('b', '2'));
  assert.deepEqual(s.replace([obj('a', '1'), obj('b', '2')]), []);
  assert.equal(s.list().length, 2);
});

test('a relist reports what changed against the store: added, updated, deleted only when the list lacks it', () => {
  const s = new ObjectStore();
  s.upsert(obj('kept', '1'));
  s.upsert(obj('changed', '2'));
  s.upsert(obj('gone', '3'));
  s.upsert(obj('other-ns', '4', 'elsewhere'));
  const changes = s.replace([obj('kept', '1'), obj('changed', '5'), obj('new', '6')]);
  assert.deepEqual(summary(changes), ['update changed@5', 'add new@6', 'delete gone@3', 'delete other-ns@4']);
  assert.deepEqual(
    s
      .list()
      .map((o) => o.metadata?.name)
      .sort(),
    ['changed', 'kept', 'new'],
  );
  assert.deepEqual(s.list('elsewhere'), []);
});

test('the store holds the whole list before any change is reported', () => {
  const s = new ObjectStore();
  s.upsert(obj('a', '1'));
  const changes = s.replace([obj('a', '2'), obj('b', '3')]);
  for (const { type, obj: o } of changes) {
    const held = s.get(o.metadata!.name!, o.metadata!.namespace);
    if (type === 'delete') assert.equal(held, undefined);
    else assert.equal(held, o, `${type} of ${o.metadata?.name} is what the store holds`);
  }
});

test('objects are kept per namespace', () => {
  const s = new ObjectStore();
  s.upsert(obj('a', '1', 'x'));
  s.upsert(obj('a', '2', 'y'));
  assert.equal(s.get('a', 'x')?.metadata?.resourceVersion, '1');
  assert.equal(s.get('a', 'y')?.metadata?.resourceVersion, '2');
  assert.equal(s.list('x').length, 1);
  assert.equal(s.list().length, 2);
});
