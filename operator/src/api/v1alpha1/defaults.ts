import { FILESERVER_DEFAULTS } from '../../../../contract/fileserver-settings.ts';
import type { AckMode, FileClusterSpec } from './types.ts';

// The same defaults as the CRD schema (test/unit/operator/crd-drift.test.ts keeps them equal). The API
// server applies them on write; the operator applies them again so that objects stored before a default
// existed, or created with defaulting skipped, still work. The file server's settings take their
// defaults from contract/fileserver-settings.ts, which the file server applies too. The image is the
// exception: the schema has no default for it, so a FileCluster without spec.image runs the image the
// operator is configured with (FC_FILESERVER_IMAGE, the chart's fileserverImage) and follows it when the
// operator is upgraded or pointed at a mirror.
export const DEFAULT_IMAGE = 'filecluster/fileserver:0.1.0';

export interface ResolvedSpec {
  replicas: number;
  image: string;
  imagePullPolicy: 'Always' | 'IfNotPresent' | 'Never';
  storage: { size: string; storageClassName?: string; whenDeleted: 'Retain' | 'Delete' };
  resources: { requests?: Record<string, string>; limits?: Record<string, string> };
  replication: {
    defaultAck: AckMode;
    ackTimeoutMs: number;
    tombstoneRetentionSeconds: number;
    catchUpIntervalSeconds: number;
    maxBodyBytes?: number;
  };
  tokenSecretName?: string;
  logLevel: string;
  nodeSelector?: Record<string, string>;
  tolerations?: Array<Record<string, unknown>>;
  affinity?: Record<string, unknown>;
  topologySpreadConstraints?: Array<Record<string, unknown>>;
  metrics: { enabled: boolean; port: number };
}

export function withDefaults(spec: FileClusterSpec, defaultImage: string = DEFAULT_IMAGE): ResolvedSpec {
  const r = spec.replication ?? {};
  const resolved: ResolvedSpec = {
    replicas: spec.replicas ?? 3,
    image: spec.image ?? defaultImage,
    imagePullPolicy: spec.imagePullPolicy ?? 'IfNotPresent',
    storage: { size: spec.storage?.size ?? '1Gi', whenDeleted: spec.storage?.whenDeleted ?? 'Retain' },
    resources: resources(spec.resources ?? { requests: { cpu: '100m', memory: '128Mi' } }),
    replication: {
      defaultAck: r.defaultAck ?? FILESERVER_DEFAULTS.defaultAck,
      ackTimeoutMs: r.ackTimeoutMs ?? FILESERVER_DEFAULTS.ackTimeoutMs,
      tombstoneRetentionSeconds: r.tombstoneRetentionSeconds ?? FILESERVER_DEFAULTS.tombstoneRetentionSeconds,
      catchUpIntervalSeconds: r.catchUpIntervalSeconds ?? FILESERVER_DEFAULTS.catchUpIntervalSeconds,
    },
    logLevel: spec.logLevel ?? 'info',
    metrics: { enabled: spec.metrics?.enabled ?? true, port: spec.metrics?.port ?? FILESERVER_DEFAULTS.metricsPort },
  };
  if (spec.storage?.storageClassName !== undefined) resolved.storage.storageClassName = spec.storage.storageClassName;
  if (r.maxBodyBytes !== undefined) resolved.replication.maxBodyBytes = r.maxBodyBytes;
  if (spec.tokenSecretName !== undefined) resolved.tokenSecretName = spec.tokenSecretName;
  if (spec.nodeSelector !== undefined) resolved.nodeSelector = spec.nodeSelector;
  if (spec.tolerations !== undefined) resolved.tolerations = spec.tolerations;
  if (spec.affinity !== undefined) resolved.affinity = spec.affinity;
  if (spec.topologySpreadConstraints !== undefined) resolved.topologySpreadConstraints = spec.topologySpreadConstraints;
  return resolved;
}

// Quantities may arrive as JSON numbers (int-or-string); the pod spec wants strings.
function resources(r: NonNullable<FileClusterSpec['resources']>): ResolvedSpec['resources'] {
  const asStrings = (m: Record<string, string | number>): Record<string, string> => Object.fromEntries(Object.entries(m).map(([k, v]) => [k, String(v)]));
  const out: ResolvedSpec['resources'] = {};
  if (r.requests) out.requests = asStrings(r.requests);
  if (r.limits) out.limits = asStrings(r.limits);
  return out;
}
