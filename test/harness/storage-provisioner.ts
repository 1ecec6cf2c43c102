/**
 * Dynamic provisioning for the local cluster: a default StorageClass whose claims get a hostPath
 * PersistentVolume on a directory this provisioner creates. A claim keeps its volume (and directory)
 * until the claim is deleted, so a pod recreated with the same claim finds its data.
 */
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { Informer, KubeError, type KubeObject, type KubeRest } from './kube-rest.ts';

export const STORAGE_CLASS = 'standard';
export const PROVISIONER = 'filecluster.dev/process-node-hostpath';

export function storageClassManifest(): KubeObject {
  return {
    apiVersion: 'storage.k8s.io/v1',
    kind: 'StorageClass',
    metadata: { name: STORAGE_CLASS, annotations: { 'storageclass.kubernetes.io/is-default-class': 'true' } },
    provisioner: PROVISIONER,
    reclaimPolicy: 'Delete',
    volumeBindingMode: 'Immediate',
    allowVolumeExpansion: true,
  };
}

/** The PersistentVolume for a pending claim: pre-bound to it, backed by `dir`. */
export function volumeForClaim(claim: KubeObject, dir: string, reclaimPolicy: string): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolume',
    metadata: { name: `pvc-${claim.metadata.uid}`, annotations: { 'pv.kubernetes.io/provisioned-by': PROVISIONER } },
    spec: {
      capacity: { storage: claim['spec']?.resources?.requests?.storage ?? '1Gi' },
      accessModes: claim['spec']?.accessModes ?? ['ReadWriteOnce'],
      volumeMode: claim['spec']?.volumeMode ?? 'Filesystem',
      persistentVolumeReclaimPolicy: reclaimPolicy,
      storageClassName: claim['spec']?.storageClassName,
      hostPath: { path: dir, type: 'DirectoryOrCreate' },
      claimRef: {
        apiVersion: 'v1',
        kind: 'PersistentVolumeClaim',
        namespace: claim.metadata.namespace,
        name: claim.metadata.name,
        uid: claim.metadata.uid,
      },
    },
  };
}

export class StorageProvisioner {
  private readonly rest: KubeRest;
  private readonly root: string;
  private readonly log: (line: string) => void;
  private claims: Informer | undefined;
  private volumes: Informer | undefined;

  constructor(rest: KubeRest, root: string, log: (line: string) => void) {
    this.rest = rest;
    this.root = root;
    this.log = log;
  }

  async start(): Promise<void> {
    try {
      await this.rest.post('/apis/storage.k8s.io/v1/storageclasses', storageClassManifest());
    } catch (err) {
      if (!(err instanceof KubeError && err.status === 409)) throw err;
    }
    const onError = (err: unknown) => this.log(`storage provisioner: ${(err as Error).message}`);
    this.claims = new Informer(this.rest, '/api/v1/persistentvolumeclaims', () => this.provision(), onError, 2000);
    this.volumes = new Informer(this.rest, '/api/v1/persistentvolumes', () => this.reclaim(), onError, 2000);
    this.claims.start();
    this.volumes.start();
  }

  async stop(): Promise<void> {
    await Promise.all([this.claims?.stop(), this.volumes?.stop()]);
  }

  private async classOf(claim: KubeObject): Promise<KubeObject | undefined> {
    const name: string | undefined = claim['spec']?.storageClassName;
    if (!name) return undefined;
    const storageClass = await this.rest.find(`/apis/storage.k8s.io/v1/storageclasses/${name}`);
    return storageClass?.['provisioner'] === PROVISIONER ? storageClass : undefined;
  }

  private async provision(): Promise<void> {
    const existing = new Set((this.volumes?.list() ?? []).map((pv) => pv['spec']?.claimRef?.uid));
    for (const claim of this.claims?.list() ?? []) {
      if (claim['status']?.phase !== 'Pending' || claim['spec']?.volumeName || claim.metadata.deletionTimestamp) continue;
      if (existing.has(claim.metadata.uid)) continue;
      const storageClass = await this.classOf(claim);
      if (!storageClass) continue;
      const dir = path.join(this.root, `${claim.metadata.namespace}_${claim.metadata.name}_${claim.metadata.uid}`);
      mkdirSync(dir, { recursive: true });
      try {
        await this.rest.post('/api/v1/persistentvolumes', volumeForClaim(claim, dir, storageClass['reclaimPolicy'] ?? 'Delete'));
        this.log(`provisioned ${dir} for claim ${claim.metadata.namespace}/${claim.metadata.name}`);
      } catch (err) {
        if (!(err instanceof KubeError && err.status === 409)) throw err;
      }
    }
  }

  private async reclaim(): Promise<void> {
    for (const pv of this.volumes?.list() ?? []) {
      if (pv.metadata.annotations?.['pv.kubernetes.io/provisioned-by'] !== PROVISIONER) continue;
      if (pv['status']?.phase !== 'Released' || pv['spec']?.persistentVolumeReclaimPolicy !== 'Delete') continue;
      const dir: string | undefined = pv['spec']?.hostPath?.path;
      try {
        await this.rest.delete(`/api/v1/persistentvolumes/${pv.metadata.name}`);
      } catch (err) {
        if (!(err instanceof KubeError && err.status === 404)) throw err;
      }
      if (dir?.startsWith(this.root + path.sep)) rmSync(dir, { recursive: true, force: true });
    }
  }
}
