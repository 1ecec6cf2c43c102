/**
 * Pure translation of a pod spec into what a local process gets: environment (values, downward API,
 * Secret and ConfigMap references, $(VAR) expansion) and paths under volume mounts rewritten to the
 * host directories backing them.
 */
import type { KubeObject } from '../kube-rest.ts';

export interface Mount {
  mountPath: string;
  hostPath: string;
}

/** Data of the Secrets and ConfigMaps a pod refers to (decoded); null = does not exist. */
export interface ReferencedData {
  secrets: Map<string, Record<string, string> | null>;
  configMaps: Map<string, Record<string, string> | null>;
}

/** A container cannot start because of its configuration (Kubernetes: CreateContainerConfigError). */
export class ContainerConfigError extends Error {}

/** value, or the host path when value is a mount path or a path under one (longest mount wins). */
export function rewriteMountPath(value: string, mounts: Mount[]): string {
  const sorted = [...mounts].sort((a, b) => b.mountPath.length - a.mountPath.length);
  for (const { mountPath, hostPath } of sorted) {
    const base = mountPath.replace(/\/+$/, '') || '/';
    if (value === base) return hostPath;
    const prefix = base === '/' ? '/' : `${base}/`;
    if (value.startsWith(prefix)) return `${hostPath.replace(/\/+$/, '')}/${value.slice(prefix.length)}`;
  }
  return value;
}

/** Kubernetes $(VAR) expansion: defined names are replaced, $$ escapes, anything else stays. */
export function expandVariables(value: string, vars: Record<string, string>): string {
  return value.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (match, name: string | undefined) => {
    if (match === '$$') return '$';
    return name !== undefined && Object.hasOwn(vars, name) ? vars[name]! : match;
  });
}

function bracketKey(selector: string, field: 'labels' | 'annotations'): string | undefined {
  const match = new RegExp(`^metadata\\.${field}\\['(.+)'\\]$`).exec(selector);
  return match?.[1];
}

/** A downward-API fieldRef value of `pod` (which carries the podIP the process node assigned). */
export function fieldRefValue(pod: KubeObject, fieldPath: string): string {
  const meta = pod.metadata;
  switch (fieldPath) {
    case 'metadata.name':
      return meta.name;
    case 'metadata.namespace':
      return meta.namespace ?? 'default';
    case 'metadata.uid':
      return meta.uid ?? '';
    case 'spec.nodeName':
      return pod['spec']?.nodeName ?? '';
    case 'spec.serviceAccountName':
      return pod['spec']?.serviceAccountName ?? '';
    case 'status.podIP':
      return pod['status']?.podIP ?? '';
    case 'status.podIPs':
      return (pod['status']?.podIPs ?? []).map((entry: { ip: string }) => entry.ip).join(',');
    case 'status.hostIP':
      return pod['status']?.hostIP ?? '';
    case 'status.hostIPs':
      return (pod['status']?.hostIPs ?? []).map((entry: { ip: string }) => entry.ip).join(',');
  }
  const label = bracketKey(fieldPath, 'labels');
  if (label !== undefined) return meta.labels?.[label] ?? '';
  const annotation = bracketKey(fieldPath, 'annotations');
  if (annotation !== undefined) return meta.annotations?.[annotation] ?? '';
  throw new ContainerConfigError(`fieldRef ${fieldPath} is not supported`);
}

interface KeyRef {
  name: string;
  key: string;
  optional?: boolean;
}

function keyRefValue(kind: 'Secret' | 'ConfigMap', ref: KeyRef, data: ReferencedData): string | undefined {
  const objects = kind === 'Secret' ? data.secrets : data.configMaps;
  const object = objects.get(ref.name);
  if (!object) {
    if (ref.optional) return undefined;
    throw new ContainerConfigError(`${kind.toLowerCase()} "${ref.name}" not found`);
  }
  if (!Object.hasOwn(object, ref.key)) {
    if (ref.optional) return undefined;
    throw new ContainerConfigError(`couldn't find key ${ref.key} in ${kind} ${ref.name}`);
  }
  return object[ref.key];
}

/** Names of the Secrets and ConfigMaps the containers' env and the volumes refer to. */
export function referencedObjects(pod: KubeObject): { secrets: Set<string>; configMaps: Set<string> } {
  const secrets = new Set<string>();
  const configMaps = new Set<string>();
  const spec = pod['spec'] ?? {};
  for (const container of [...(spec.initContainers ?? []), ...(spec.containers ?? [])]) {
    for (const env of container.env ?? []) {
      if (env.valueFrom?.secretKeyRef) secrets.add(env.valueFrom.secretKeyRef.name);
      if (env.valueFrom?.configMapKeyRef) configMaps.add(env.valueFrom.configMapKeyRef.name);
    }
    for (const from of container.envFrom ?? []) {
      if (from.secretRef) secrets.add(from.secretRef.name);
      if (from.configMapRef) configMaps.add(from.configMapRef.name);
    }
  }
  for (const volume of spec.volumes ?? []) {
    if (volume.secret) secrets.add(volume.secret.secretName);
    if (volume.configMap) configMaps.add(volume.configMap.name);
    for (const source of volume.projected?.sources ?? []) {
      if (source.secret) secrets.add(source.secret.name);
      if (source.configMap) configMaps.add(source.configMap.name);
    }
  }
  return { secrets, configMaps };
}

/**
 * The environment of `container` in `pod`, in Kubernetes order (envFrom, then env, each $(VAR)-expanded
 * against what came before), with mount paths rewritten to host paths.
 */
export function containerEnv(pod: KubeObject, container: KubeObject | Record<string, any>, data: ReferencedData, mounts: Mount[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const from of container['envFrom'] ?? []) {
    const prefix: string = from.prefix ?? '';
    const kind = from.secretRef ? 'Secret' : 'ConfigMap';
    const ref = from.secretRef ?? from.configMapRef;
    const object = (kind === 'Secret' ? data.secrets : data.configMaps).get(ref.name);
    if (!object) {
      if (ref.optional) continue;
      throw new ContainerConfigError(`${kind.toLowerCase()} "${ref.name}" not found`);
    }
    for (const [key, value] of Object.entries(object)) env[prefix + key] = value;
  }
  for (const entry of container['env'] ?? []) {
    let value: string | undefined;
    if (entry.valueFrom?.fieldRef) value = fieldRefValue(pod, entry.valueFrom.fieldRef.fieldPath);
    else if (entry.valueFrom?.secretKeyRef) value = keyRefValue('Secret', entry.valueFrom.secretKeyRef, data);
    else if (entry.valueFrom?.configMapKeyRef) value = keyRefValue('ConfigMap', entry.valueFrom.configMapKeyRef, data);
    else if (entry.valueFrom) throw new ContainerConfigError(`env ${entry.name}: only fieldRef, secretKeyRef and configMapKeyRef are supported`);
    else value = expandVariables(entry.value ?? '', env);
    if (value !== undefined) env[entry.name] = value;
  }
  for (const [name, value] of Object.entries(env)) env[name] = rewriteMountPath(value, mounts);
  return env;
}

/** command/args with $(VAR) expanded against the container env and mount paths rewritten. */
export function expandArgv(argv: string[], env: Record<string, string>, mounts: Mount[]): string[] {
  return argv.map((arg) => rewriteMountPath(expandVariables(arg, env), mounts));
}
