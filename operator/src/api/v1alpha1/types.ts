// The FileCluster API, v1alpha1. The CRD schema (charts/filecluster/crds/) is the source of truth for
// validation and defaults; these types describe what the operator reads and writes, with the same
// fields, kinds and enums (test/unit/operator/crd-drift.test.ts).

import type { AckMode } from '../../../../contract/fileserver-settings.ts';
import type { Peer } from '../../../../contract/peer-api.ts';

export type { AckMode, Peer };

export const GROUP = 'filecluster.dev';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;
export const KIND = 'FileCluster';

export type ConditionType = 'Ready' | 'Progressing' | 'PeersSynced' | 'Degraded';
export type ConditionStatus = 'True' | 'False' | 'Unknown';

export interface ObjectMeta {
  name: string;
  namespace: string;
  uid?: string;
  generation?: number;
  resourceVersion?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  creationTimestamp?: string;
  deletionTimestamp?: string;
}

export interface FileClusterSpec {
  replicas?: number;
  image?: string;
  imagePullPolicy?: 'Always' | 'IfNotPresent' | 'Never';
  /** whenDeleted: what a delete of the FileCluster (or its StatefulSet) does to the volumes. */
  storage?: { size?: string; storageClassName?: string; whenDeleted?: 'Retain' | 'Delete' };
  resources?: { requests?: Record<string, string | number>; limits?: Record<string, string | number> };
  replication?: {
    defaultAck?: AckMode;
    ackTimeoutMs?: number;
    tombstoneRetentionSeconds?: number;
    catchUpIntervalSeconds?: number;
    maxBodyBytes?: number;
  };
  tokenSecretName?: string;
  logLevel?: string;
  nodeSelector?: Record<string, string>;
  tolerations?: Array<Record<string, unknown>>;
  affinity?: Record<string, unknown>;
  topologySpreadConstraints?: Array<Record<string, unknown>>;
  metrics?: { enabled?: boolean; port?: number };
}

export interface Condition {
  type: ConditionType;
  status: ConditionStatus;
  reason: string;
  message: string;
  observedGeneration?: number;
  lastTransitionTime: string;
}

export interface FileClusterStatus {
  observedGeneration?: number;
  replicas?: number;
  readyReplicas?: number;
  selector?: string;
  tokenSecretName?: string;
  /** The file-server image the pods are given: spec.image, else the operator's configured one. */
  image?: string;
  peerGeneration?: number;
  peersAcknowledged?: number;
  peers?: Peer[];
  /** Since when a scale-down waits for its leaving pods (RFC 3339), while one does. */
  scaleDownBlockedSince?: string;
  /** The scale-down the force annotation last authorised (it forces that one only). */
  forcedScaleDown?: { replicas: number; generation: number };
  conditions?: Condition[];
}

export interface FileCluster {
  apiVersion: typeof API_VERSION;
  kind: typeof KIND;
  metadata: ObjectMeta;
  spec: FileClusterSpec;
  status?: FileClusterStatus;
}
