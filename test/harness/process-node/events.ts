/** Events about pods, as the kubelet records them, so `kubectl describe` and diagnostics show them. */
import type { KubeObject, KubeRest } from '../kube-rest.ts';

export type EventType = 'Normal' | 'Warning';

export function podEvent(pod: KubeObject, node: string, type: EventType, reason: string, message: string, now = new Date()): Record<string, unknown> {
  const time = now.toISOString().replace(/\.\d+Z$/, 'Z');
  return {
    apiVersion: 'v1',
    kind: 'Event',
    metadata: { generateName: `${pod.metadata.name}.`, namespace: pod.metadata.namespace },
    involvedObject: { apiVersion: 'v1', kind: 'Pod', namespace: pod.metadata.namespace, name: pod.metadata.name, uid: pod.metadata.uid },
    type,
    reason,
    message,
    source: { component: 'process-node', host: node },
    reportingComponent: 'process-node',
    reportingInstance: node,
    firstTimestamp: time,
    lastTimestamp: time,
    count: 1,
  };
}

/** Records an event; a failure to record is logged, never raised (events are best effort). */
export function recordPodEvent(rest: KubeRest, pod: KubeObject, node: string, type: EventType, reason: string, message: string, log: (line: string) => void): void {
  rest
    .post(`/api/v1/namespaces/${pod.metadata.namespace}/events`, podEvent(pod, node, type, reason, message))
    .catch((err: Error) => log(`event ${reason} for ${pod.metadata.namespace}/${pod.metadata.name}: ${err.message}`));
}
