import { SPEC_DEFAULTS } from './defaults.generated.ts';
import type { FileClusterSpec } from './types.ts';

// The defaults are the schema's (schema.ts; `npm run generate` copies them into defaults.generated.ts, so
// that the operator's process does not load the schema builder). The API server applies them on write;
// the operator applies them again so that objects stored before a default existed, or created with
// defaulting skipped, still work. The file server's settings take their defaults from contract/fileserver-settings.ts, which the
// file server applies too. The image is the exception: the schema has no default for it, so a
// FileCluster without spec.image runs the image the operator is configured with (FC_FILESERVER_IMAGE,
// the chart's fileserverImage) and follows it when the operator is upgraded or pointed at a mirror.
export const DEFAULT_IMAGE = 'filecluster/fileserver:0.1.0';

type Spec = FileClusterSpec;
type WithRequired<T, K extends keyof T> = T & { [P in K]-?: NonNullable<T[P]> };

/** The spec with the schema's defaults applied: the fields that have one are set. */
export type ResolvedSpec = Omit<Spec, 'replicas' | 'image' | 'imagePullPolicy' | 'storage' | 'resources' | 'replication' | 'logLevel' | 'metrics'> & {
  replicas: number;
  image: string;
  imagePullPolicy: NonNullable<Spec['imagePullPolicy']>;
  storage: WithRequired<NonNullable<Spec['storage']>, 'size' | 'whenDeleted'>;
  /** Quantities may arrive as JSON numbers (int-or-string); the pod spec wants strings. */
  resources: { requests?: Record<string, string>; limits?: Record<string, string> };
  replication: WithRequired<NonNullable<Spec['replication']>, 'defaultAck' | 'ackTimeoutMs' | 'tombstoneRetentionSeconds' | 'catchUpIntervalSeconds'>;
  logLevel: NonNullable<Spec['logLevel']>;
  metrics: Required<NonNullable<Spec['metrics']>>;
};

export function withDefaults(spec: FileClusterSpec, defaultImage: string = DEFAULT_IMAGE): ResolvedSpec {
  const defaulted = applyDefaults(SPEC_DEFAULTS, spec) as Omit<ResolvedSpec, 'image' | 'resources'> & Pick<Spec, 'resources'>;
  return { ...defaulted, image: spec.image ?? defaultImage, resources: resources(defaulted.resources ?? {}) };
}

/** A schema's defaults where they stand: a field's own, and those of the fields inside it. */
export interface SchemaDefaults {
  default?: unknown;
  properties?: Record<string, SchemaDefaults>;
}

/**
 * Structural defaulting as the API server does it: a missing field with a default gets a copy of it, then
 * defaulting goes on inside. An object that is given, even empty, keeps what it has (TypeBox's own
 * Value.Default would merge the object's default into it, which the API server does not).
 */
function applyDefaults(schema: SchemaDefaults, value: unknown): unknown {
  const v = value === undefined && schema.default !== undefined ? structuredClone(schema.default) : value;
  if (v === null || typeof v !== 'object' || Array.isArray(v) || !schema.properties) return v;
  const out: Record<string, unknown> = { ...v };
  for (const [name, property] of Object.entries(schema.properties)) {
    const defaulted = applyDefaults(property, out[name]);
    if (defaulted !== undefined) out[name] = defaulted;
  }
  return out;
}

function resources(r: NonNullable<FileClusterSpec['resources']>): ResolvedSpec['resources'] {
  const asStrings = (m: Record<string, string | number>): Record<string, string> => Object.fromEntries(Object.entries(m).map(([k, v]) => [k, String(v)]));
  const out: ResolvedSpec['resources'] = {};
  if (r.requests) out.requests = asStrings(r.requests);
  if (r.limits) out.limits = asStrings(r.limits);
  return out;
}
