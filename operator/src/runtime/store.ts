import type { KubernetesObject } from '@kubernetes/client-node';

export type EventType = 'add' | 'update' | 'delete';

/** What a handler is told: the change, and the object as the store now holds it (or last held it). */
export interface Change<T> {
  type: EventType;
  obj: T;
}

const keyOf = (obj: KubernetesObject): [string, string] => [obj.metadata?.namespace ?? '', obj.metadata?.name ?? ''];

/**
 * The objects one list+watch knows, by namespace and name. Each method applies what the API server
 * said and returns the changes to report, so a handler always runs against a store that already
 * holds what it is told. An object counts as changed when its resourceVersion differs.
 */
export class ObjectStore<T extends KubernetesObject> {
  private readonly byNamespace = new Map<string, Map<string, T>>();

  get(name: string, namespace: string | undefined): T | undefined {
    return this.byNamespace.get(namespace ?? '')?.get(name);
  }

  list(namespace?: string): T[] {
    if (namespace !== undefined) return [...(this.byNamespace.get(namespace)?.values() ?? [])];
    return [...this.byNamespace.values()].flatMap((objs) => [...objs.values()]);
  }

  /** An ADDED or MODIFIED event: add when new, update when its resourceVersion moved, else nothing. */
  upsert(obj: T): Change<T> | undefined {
    const [ns, name] = keyOf(obj);
    let objs = this.byNamespace.get(ns);
    if (!objs) {
      objs = new Map();
      this.byNamespace.set(ns, objs);
    }
    const held = objs.get(name);
    if (held && held.metadata?.resourceVersion !== undefined && held.metadata.resourceVersion === obj.metadata?.resourceVersion) return undefined;
    objs.set(name, obj);
    return { type: held ? 'update' : 'add', obj };
  }

  /** A DELETED event (obj is the final state): reported only if the store held it. */
  remove(obj: T): Change<T> | undefined {
    const [ns, name] = keyOf(obj);
    const objs = this.byNamespace.get(ns);
    if (!objs?.delete(name)) return undefined;
    if (objs.size === 0) this.byNamespace.delete(ns);
    return { type: 'delete', obj };
  }

  /**
   * A complete LIST, taken after every event the store applied (the watch was closed before it):
   * listed objects are added or updated, and only objects the list lacks are deleted, reported with
   * the last state the store held. The store holds the whole list before any change is reported.
   */
  replace(items: readonly T[]): Array<Change<T>> {
    const changes: Array<Change<T>> = [];
    const listed = new Set<string>();
    for (const obj of items) {
      const [ns, name] = keyOf(obj);
      listed.add(`${ns}/${name}`);
      const change = this.upsert(obj);
      if (change) changes.push(change);
    }
    for (const obj of this.list()) {
      const [ns, name] = keyOf(obj);
      if (listed.has(`${ns}/${name}`)) continue;
      const change = this.remove(obj);
      if (change) changes.push(change);
    }
    return changes;
  }
}
