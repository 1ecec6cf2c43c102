import type { Logger } from 'pino';
import { RESOURCES, resourcePath, type Kube } from './kube.ts';

export interface EventTarget {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace: string; uid?: string; resourceVersion?: string };
}

const REPEAT_WINDOW_MS = 10 * 60_000;

/**
 * Records core/v1 Events. A repeat of the same event within ten minutes bumps the count of the
 * existing Event instead of creating another, like client-go's correlator. Recording never fails
 * the caller: an API error is logged and dropped.
 */
export class EventRecorder {
  private readonly kube: Kube;
  private readonly log: Logger;
  private readonly component: string;
  private readonly host: string;
  private readonly recent = new Map<string, { name: string; count: number; at: number }>();

  constructor(kube: Kube, log: Logger, component: string, host: string) {
    this.kube = kube;
    this.log = log;
    this.component = component;
    this.host = host;
  }

  record(target: EventTarget, type: 'Normal' | 'Warning', reason: string, message: string): void {
    void this.write(target, type, reason, message).catch((err: unknown) => this.log.warn({ err: String(err), reason }, 'could not record event'));
  }

  private async write(target: EventTarget, type: string, reason: string, message: string): Promise<void> {
    const ns = target.metadata.namespace;
    const key = `${target.metadata.uid}\u0000${type}\u0000${reason}\u0000${message}`;
    const now = new Date();
    const nowIso = now.toISOString();
    for (const [k, v] of this.recent) if (now.getTime() - v.at > REPEAT_WINDOW_MS) this.recent.delete(k);
    const prev = this.recent.get(key);
    if (prev) {
      prev.count++;
      prev.at = now.getTime();
      await this.kube.mergePatch(resourcePath(RESOURCES.events, ns, prev.name), { count: prev.count, lastTimestamp: nowIso }, this.component);
      return;
    }
    const name = `${target.metadata.name}.${now.getTime().toString(16)}${Math.floor(Math.random() * 0xfff).toString(16)}`;
    this.recent.set(key, { name, count: 1, at: now.getTime() });
    await this.kube.request('POST', resourcePath(RESOURCES.events, ns), {
      body: {
        apiVersion: 'v1',
        kind: 'Event',
        metadata: { name, namespace: ns },
        involvedObject: {
          apiVersion: target.apiVersion,
          kind: target.kind,
          name: target.metadata.name,
          namespace: ns,
          uid: target.metadata.uid,
          resourceVersion: target.metadata.resourceVersion,
        },
        type,
        reason,
        message: message.slice(0, 1024),
        source: { component: this.component, host: this.host },
        reportingComponent: this.component,
        reportingInstance: this.host,
        firstTimestamp: nowIso,
        lastTimestamp: nowIso,
        count: 1,
      },
    });
  }
}
