import { API_PORT } from '../../../../contract/fileserver-settings.ts';

// Names and labels of everything a FileCluster owns, in one place so plan, membership and the e2e
// suite agree.
export const FIELD_MANAGER = 'filecluster-operator';
export { API_PORT };
export const TOKEN_KEY = 'token';
export const DATA_VOLUME = 'data';
export const SERVING_LABEL = 'filecluster.dev/serving';
export const TEMPLATE_HASH_ANNOTATION = 'filecluster.dev/template-hash';
export const FORCE_SCALE_DOWN_ANNOTATION = 'filecluster.dev/force-scale-down';

export function selectorLabels(cluster: string): Record<string, string> {
  return { 'app.kubernetes.io/name': 'filecluster', 'app.kubernetes.io/instance': cluster };
}

export function commonLabels(cluster: string): Record<string, string> {
  return {
    ...selectorLabels(cluster),
    'app.kubernetes.io/component': 'fileserver',
    'app.kubernetes.io/managed-by': FIELD_MANAGER,
  };
}

export function selectorString(cluster: string): string {
  return Object.entries(selectorLabels(cluster)).map(([k, v]) => `${k}=${v}`).join(',');
}

export const statefulSetName = (cluster: string): string => cluster;
export const clientServiceName = (cluster: string): string => cluster;
export const headlessServiceName = (cluster: string): string => `${cluster}-peers`;
export const pdbName = (cluster: string): string => cluster;
export const generatedSecretName = (cluster: string): string => `${cluster}-token`;
export const podName = (cluster: string, ordinal: number): string => `${cluster}-${ordinal}`;
export const pvcName = (cluster: string, ordinal: number): string => `${DATA_VOLUME}-${cluster}-${ordinal}`;

export function podOrdinal(cluster: string, pod: string): number | undefined {
  const prefix = `${cluster}-`;
  if (!pod.startsWith(prefix)) return undefined;
  const rest = pod.slice(prefix.length);
  return /^(0|[1-9][0-9]*)$/.test(rest) ? Number(rest) : undefined;
}

export function podUrl(ip: string): string {
  return `http://${ip.includes(':') ? `[${ip}]` : ip}:${API_PORT}`;
}
