/**
 * Materializes a pod's volumes as host directories: emptyDir under the pod's directory, PVCs at the
 * directory of their bound PersistentVolume, Secrets/ConfigMaps/downward API/projected tokens as files.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { KubeObject, KubeRest } from '../kube-rest.ts';
import { ContainerConfigError, fieldRefValue, type Mount, type ReferencedData } from './env.ts';

/** Not ready yet (e.g. an unbound claim): the pod stays ContainerCreating and is retried. */
export class VolumeNotReadyError extends Error {}

export async function fetchReferencedData(rest: KubeRest, namespace: string, names: { secrets: Set<string>; configMaps: Set<string> }): Promise<ReferencedData> {
  const data: ReferencedData = { secrets: new Map(), configMaps: new Map() };
  for (const name of names.secrets) {
    const secret = await rest.find(`/api/v1/namespaces/${namespace}/secrets/${name}`);
    data.secrets.set(
      name,
      secret
        ? Object.fromEntries(Object.entries((secret['data'] ?? {}) as Record<string, string>).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]))
        : null,
    );
  }
  for (const name of names.configMaps) {
    const configMap = await rest.find(`/api/v1/namespaces/${namespace}/configmaps/${name}`);
    const binary = Object.entries((configMap?.['binaryData'] ?? {}) as Record<string, string>).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]);
    data.configMaps.set(name, configMap ? { ...(configMap['data'] ?? {}), ...Object.fromEntries(binary) } : null);
  }
  return data;
}

export async function serviceAccountToken(rest: KubeRest, pod: KubeObject, audience?: string, expirationSeconds = 7 * 24 * 3600): Promise<string> {
  const namespace = pod.metadata.namespace ?? 'default';
  const account = pod['spec']?.serviceAccountName || 'default';
  const request = await rest.post(`/api/v1/namespaces/${namespace}/serviceaccounts/${account}/token`, {
    apiVersion: 'authentication.k8s.io/v1',
    kind: 'TokenRequest',
    spec: {
      ...(audience ? { audiences: [audience] } : {}),
      expirationSeconds,
      boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: pod.metadata.name, uid: pod.metadata.uid },
    },
  });
  return request['status'].token as string;
}

type Item = { key?: string; path: string; mode?: number; fieldRef?: { fieldPath: string } };

function writeItems(dir: string, values: Record<string, string>, items: Item[] | undefined, mode: number | undefined): void {
  const entries = items?.length
    ? items.map((item) => [item.path, values[item.key ?? ''], item.mode] as const)
    : Object.entries(values).map(([k, v]) => [k, v, undefined] as const);
  for (const [file, value, itemMode] of entries) {
    if (value === undefined) throw new ContainerConfigError(`volume item ${file}: key not found`);
    const target = path.join(dir, file);
    mkdirSync(path.dirname(target), { recursive: true });
    writeFileSync(target, value, { mode: itemMode ?? mode ?? 0o644 });
  }
}

function objectValues(kind: 'secret' | 'configMap', name: string, optional: boolean | undefined, data: ReferencedData): Record<string, string> | undefined {
  const object = (kind === 'secret' ? data.secrets : data.configMaps).get(name);
  if (object) return object;
  if (optional) return undefined;
  throw new ContainerConfigError(`${kind} "${name}" not found`);
}

/** Host directory of every volume of the pod, by volume name. */
export async function prepareVolumes(rest: KubeRest, pod: KubeObject, podDir: string, data: ReferencedData): Promise<Map<string, string>> {
  const namespace = pod.metadata.namespace ?? 'default';
  const dirs = new Map<string, string>();
  for (const volume of pod['spec']?.volumes ?? []) {
    const own = path.join(podDir, 'volumes', volume.name);
    if (volume.persistentVolumeClaim) {
      const claimName: string = volume.persistentVolumeClaim.claimName;
      const claim = await rest.find(`/api/v1/namespaces/${namespace}/persistentvolumeclaims/${claimName}`);
      if (!claim) throw new VolumeNotReadyError(`persistentvolumeclaim "${claimName}" not found`);
      const volumeName: string | undefined = claim['spec']?.volumeName;
      if (!volumeName || claim['status']?.phase !== 'Bound') throw new VolumeNotReadyError(`persistentvolumeclaim "${claimName}" is not bound`);
      const pv = await rest.get(`/api/v1/persistentvolumes/${volumeName}`);
      const hostDir: string | undefined = pv['spec']?.hostPath?.path ?? pv['spec']?.local?.path;
      if (!hostDir) throw new ContainerConfigError(`persistentvolume ${volumeName} is neither hostPath nor local`);
      mkdirSync(hostDir, { recursive: true });
      dirs.set(volume.name, hostDir);
      continue;
    }
    if (volume.hostPath) {
      if (volume.hostPath.type === 'DirectoryOrCreate') mkdirSync(volume.hostPath.path, { recursive: true });
      dirs.set(volume.name, volume.hostPath.path);
      continue;
    }
    mkdirSync(own, { recursive: true });
    dirs.set(volume.name, own);
    if (volume.emptyDir) continue;
    if (volume.secret) {
      const values = objectValues('secret', volume.secret.secretName, volume.secret.optional, data);
      if (values) writeItems(own, values, volume.secret.items, volume.secret.defaultMode);
    } else if (volume.configMap) {
      const values = objectValues('configMap', volume.configMap.name, volume.configMap.optional, data);
      if (values) writeItems(own, values, volume.configMap.items, volume.configMap.defaultMode);
    } else if (volume.downwardAPI) {
      writeDownwardItems(own, pod, volume.downwardAPI.items ?? [], volume.downwardAPI.defaultMode);
    } else if (volume.projected) {
      for (const source of volume.projected.sources ?? []) {
        if (source.serviceAccountToken) {
          const token = await serviceAccountToken(rest, pod, source.serviceAccountToken.audience, source.serviceAccountToken.expirationSeconds ?? 3607);
          writeItems(own, { token }, [{ key: 'token', path: source.serviceAccountToken.path }], volume.projected.defaultMode);
        } else if (source.secret) {
          const values = objectValues('secret', source.secret.name, source.secret.optional, data);
          if (values) writeItems(own, values, source.secret.items, volume.projected.defaultMode);
        } else if (source.configMap) {
          const values = objectValues('configMap', source.configMap.name, source.configMap.optional, data);
          if (values) writeItems(own, values, source.configMap.items, volume.projected.defaultMode);
        } else if (source.downwardAPI) {
          writeDownwardItems(own, pod, source.downwardAPI.items ?? [], volume.projected.defaultMode);
        } else {
          throw new ContainerConfigError(`volume ${volume.name}: projected source ${Object.keys(source).join(',')} is not supported`);
        }
      }
    } else {
      const kind = Object.keys(volume)
        .filter((k) => k !== 'name')
        .join(',');
      throw new ContainerConfigError(`volume ${volume.name}: type ${kind} is not supported by the process node`);
    }
  }
  return dirs;
}

function writeDownwardItems(dir: string, pod: KubeObject, items: Item[], mode: number | undefined): void {
  const values: Record<string, string> = {};
  const paths: Item[] = [];
  for (const item of items) {
    if (!item.fieldRef) throw new ContainerConfigError(`downwardAPI item ${item.path}: only fieldRef is supported`);
    values[item.path] = fieldRefValue(pod, item.fieldRef.fieldPath);
    paths.push({ key: item.path, path: item.path, ...(item.mode !== undefined ? { mode: item.mode } : {}) });
  }
  writeItems(dir, values, paths, mode);
}

/** The container's mounts as mountPath -> host path (subPath directories created). */
export function containerMounts(container: { volumeMounts?: { name: string; mountPath: string; subPath?: string }[] }, volumeDirs: Map<string, string>): Mount[] {
  return (container.volumeMounts ?? []).map((mount) => {
    const base = volumeDirs.get(mount.name);
    if (!base) throw new ContainerConfigError(`volumeMount ${mount.name}: no such volume`);
    const hostPath = mount.subPath ? path.join(base, mount.subPath) : base;
    if (mount.subPath) mkdirSync(hostPath, { recursive: true });
    return { mountPath: mount.mountPath, hostPath };
  });
}
