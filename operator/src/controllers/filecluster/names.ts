import { API_PORT } from '../../../../contract/fileserver-settings.ts';

// Names and labels of everything a FileCluster owns, in one place so plan, membership and the e2e
// suite agree.
export const FIELD_MANAGER = 'filecluster-operator';
export { API_PORT };
export const TOKEN_KEY = 'token';
export const DATA_VOLUME = 'data';
export const SERVING_LABEL = 'filecluster.dev/serving';
export const TEMPLATE_HASH_ANNOTATION = 'filecluster.dev/template-hash';
/** Its value is the replica count whose scale-down it authorises without the write barrier. */
export const FORCE_SCALE_DOWN_ANNOTATION = 'filecluster.dev/force-scale-down';
/** On a data claim: "false" until its pod is first given a peer list (before, it holds no acknowledged write). */
export const JOINED_ANNOTATION = 'filecluster.dev/joined';
/** On a data claim: its pod was fenced and handed every write over before a scale-down; the claim may go with it. */
export const DRAINED_ANNOTATION = 'filecluster.dev/drained';

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
  return Object.entries(selectorLabels(cluster))
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}

export const statefulSetName = (cluster: string): string => cluster;
export const clientServiceName = (cluster: string): string => cluster;
export const headlessServiceName = (cluster: string): string => `${cluster}-peers`;
export const pdbName = (cluster: string): string => cluster;
export const generatedSecretName = (cluster: string): string => `${cluster}-token`;
/** The operator's own Secret: the token(s) the pods are given (see token.ts). */
export const peerTokensSecretName = (cluster: string): string => `${cluster}-peer-tokens`;
export const podName = (cluster: string, ordinal: number): string => `${cluster}-${ordinal}`;
export const pvcName = (cluster: string, ordinal: number): string => `${DATA_VOLUME}-${cluster}-${ordinal}`;

/** The ordinal of a data claim's pod (`data-<cluster>-<n>`). */
export function claimOrdinal(cluster: string, claim: string): number | undefined {
  const prefix = `${DATA_VOLUME}-`;
  return claim.startsWith(prefix) ? podOrdinal(cluster, claim.slice(prefix.length)) : undefined;
}

export function podOrdinal(cluster: string, pod: string): number | undefined {
  const prefix = `${cluster}-`;
  if (!pod.startsWith(prefix)) return undefined;
  const rest = pod.slice(prefix.length);
  return /^(0|[1-9][0-9]*)$/.test(rest) ? Number(rest) : undefined;
}

export function podUrl(ip: string): string {
  return `http://${ip.includes(':') ? `[${ip}]` : ip}:${API_PORT}`;
}
