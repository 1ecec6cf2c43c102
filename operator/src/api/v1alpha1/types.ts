// The FileCluster API, v1alpha1: what the operator reads and writes. The spec and status types are
// derived from the schema in schema.ts, which the CRD is generated from.

import type { Static } from '@sinclair/typebox';
import type { AckMode } from '../../../../contract/fileserver-settings.ts';
import type { Peer } from '../../../../contract/peer-api.ts';
import type { CONDITION_TYPES, FileClusterSpecSchema, FileClusterStatusSchema } from './schema.ts';

export type { AckMode, Peer };

export const GROUP = 'filecluster.dev';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;
export const KIND = 'FileCluster';

export type ConditionType = (typeof CONDITION_TYPES)[number];
export type ConditionStatus = Condition['status'];

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

export type FileClusterSpec = Static<typeof FileClusterSpecSchema>;
export type FileClusterStatus = Static<typeof FileClusterStatusSchema>;
export type Condition = NonNullable<FileClusterStatus['conditions']>[number];

export interface FileCluster {
  apiVersion: typeof API_VERSION;
  kind: typeof KIND;
  metadata: ObjectMeta;
  spec: FileClusterSpec;
  status?: FileClusterStatus;
}
