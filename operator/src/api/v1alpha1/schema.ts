// The FileCluster API, v1alpha1, stated once: each schema below is the CRD's openAPIV3Schema for its
// field as it is written to charts/filecluster/crds/ (`npm run generate`), the operator's TypeScript
// types are derived from it (types.ts) and its defaults are the ones the operator applies (copied into
// defaults.generated.ts by the same command, applied by defaults.ts).
// TypeBox builds plain JSON Schema objects, so Kubernetes' own keywords (x-kubernetes-*, format) pass
// through as options; maps and enums are written the way a structural CRD schema states them.

import { type Static, type TObject, type TSchema, Type } from '@sinclair/typebox';
import { ACK_MODES, API_PORT, FILESERVER_DEFAULTS, MIN_RETENTION_INTERVALS } from '../../../../contract/fileserver-settings.ts';

/** A string out of a fixed list: `enum`, as a CRD states it (TypeBox's literal unions become anyOf). */
const stringEnum = <const T extends readonly string[]>(values: T, options: object = {}) => Type.Unsafe<T[number]>({ ...options, type: 'string', enum: [...values] });

/** An object of string keys and one kind of value: `additionalProperties`, as a CRD states a map. */
const map = <T extends TSchema>(values: T, options: object = {}) => Type.Unsafe<Record<string, Static<T>>>({ ...options, type: 'object', additionalProperties: values });

/** An object Kubernetes keeps as given (affinity, tolerations): the operator passes it on unread. */
const opaqueObject = (options: object = {}) => Type.Unsafe<Record<string, unknown>>({ ...options, type: 'object', 'x-kubernetes-preserve-unknown-fields': true });

/** A resource quantity, as a JSON number or a string (100m, 1Gi). */
const intOrString = Type.Union([Type.Integer(), Type.String()], { 'x-kubernetes-int-or-string': true });

/**
 * Status objects the operator always writes whole: their TypeScript type has every field, while the API
 * server requires only `required` of them, so that status written by an older operator stays valid.
 */
function requiring<T extends TObject>(schema: T, required: string[]): T {
  const { required: _all, ...rest } = schema;
  return (required.length > 0 ? { ...rest, required } : rest) as T;
}

const immutable = (field: string, message: string) => ({
  rule: `has(self.${field}) == has(oldSelf.${field}) && (!has(self.${field}) || self.${field} == oldSelf.${field})`,
  message,
  reason: 'FieldValueForbidden',
});

const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const;
const PULL_POLICIES = ['Always', 'IfNotPresent', 'Never'] as const;

export const FileClusterSpecSchema = Type.Object(
  {
    replicas: Type.Optional(Type.Integer({ format: 'int32', minimum: 1, maximum: 64, default: 3, description: 'Number of file-server pods (1 to 64).' })),
    // No default: a FileCluster without an image runs the one the operator is configured with (defaults.ts).
    image: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 512,
        description:
          "File-server container image. When unset, the image the operator is configured with (its FC_FILESERVER_IMAGE, the chart's fileserverImage), followed across operator upgrades; status.image shows the one in use.",
      }),
    ),
    imagePullPolicy: Type.Optional(stringEnum(PULL_POLICIES, { default: 'IfNotPresent' })),
    storage: Type.Optional(
      Type.Object(
        {
          size: Type.Optional(
            Type.String({
              maxLength: 32,
              default: '1Gi',
              description: 'Requested size per pod, a Kubernetes quantity between 1Mi and 64Ti (e.g. 10Gi).',
              'x-kubernetes-validations': [
                {
                  rule: "isQuantity(self) && quantity(self).compareTo(quantity('1Mi')) >= 0 && quantity(self).compareTo(quantity('64Ti')) <= 0",
                  message: 'storage.size must be a quantity between 1Mi and 64Ti, such as 10Gi',
                },
              ],
            }),
          ),
          storageClassName: Type.Optional(Type.String({ maxLength: 253, description: 'StorageClass of the volumes; the cluster default when unset. Immutable.' })),
          whenDeleted: Type.Optional(
            stringEnum(['Retain', 'Delete'], {
              default: 'Retain',
              description:
                'What happens to the volumes when the FileCluster (or its StatefulSet) is deleted. Retain (the default) keeps them, so a deleted cluster comes back with its data; Delete removes them with the cluster.',
            }),
          ),
        },
        {
          default: {},
          description: 'The volume each pod gets (one PersistentVolumeClaim per pod).',
          'x-kubernetes-validations': [
            {
              rule: '!has(oldSelf.size) || !has(self.size) || !isQuantity(oldSelf.size) || !isQuantity(self.size) || quantity(self.size).compareTo(quantity(oldSelf.size)) >= 0',
              message: 'storage.size cannot shrink (a volume cannot be made smaller)',
              reason: 'FieldValueForbidden',
            },
            immutable('storageClassName', 'storage.storageClassName is immutable'),
          ],
        },
      ),
    ),
    resources: Type.Optional(
      Type.Object(
        { requests: Type.Optional(map(intOrString)), limits: Type.Optional(map(intOrString)) },
        { description: 'Compute resources of the file-server container.', default: { requests: { cpu: '100m', memory: '128Mi' } } },
      ),
    ),
    replication: Type.Optional(
      Type.Object(
        {
          defaultAck: Type.Optional(
            stringEnum(ACK_MODES, {
              default: FILESERVER_DEFAULTS.defaultAck,
              description: 'Write acknowledgement when the client does not ask for one (FC_DEFAULT_ACK).',
            }),
          ),
          ackTimeoutMs: Type.Optional(
            Type.Integer({
              minimum: 100,
              maximum: 600_000,
              default: FILESERVER_DEFAULTS.ackTimeoutMs,
              description: 'How long a majority/all write waits for peers (FC_ACK_TIMEOUT_MS).',
            }),
          ),
          tombstoneRetentionSeconds: Type.Optional(
            Type.Integer({
              minimum: 60,
              maximum: 31_536_000,
              default: FILESERVER_DEFAULTS.tombstoneRetentionSeconds,
              description: 'How long deletions are remembered (FC_TOMBSTONE_RETENTION_SECONDS).',
            }),
          ),
          catchUpIntervalSeconds: Type.Optional(
            Type.Integer({
              minimum: 1,
              maximum: 86_400,
              default: FILESERVER_DEFAULTS.catchUpIntervalSeconds,
              description: 'Anti-entropy interval (FC_CATCHUP_INTERVAL_SECONDS).',
            }),
          ),
          maxBodyBytes: Type.Optional(Type.Integer({ minimum: 1, description: "Largest accepted upload (FC_MAX_BODY_BYTES); the file server's default when unset." })),
        },
        {
          default: {},
          description: 'Replication settings passed to every file server.',
          // The API server applies the defaults before it validates, so both fields are always set here.
          'x-kubernetes-validations': [
            {
              rule: `!has(self.tombstoneRetentionSeconds) || !has(self.catchUpIntervalSeconds) || self.tombstoneRetentionSeconds >= ${MIN_RETENTION_INTERVALS} * self.catchUpIntervalSeconds`,
              message: `replication.tombstoneRetentionSeconds must be at least ${MIN_RETENTION_INTERVALS} times replication.catchUpIntervalSeconds: a file server without a complete catch-up for half the retention counts as stale`,
            },
          ],
        },
      ),
    ),
    tokenSecretName: Type.Optional(
      Type.String({
        maxLength: 253,
        pattern: '^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$',
        description:
          'Secret (same namespace) whose key `token` holds the peer API token. When unset the operator generates `<name>-token`. Immutable; changing the key `token` of the Secret rotates the token through a rolling update.',
      }),
    ),
    logLevel: Type.Optional(stringEnum(LOG_LEVELS, { default: 'info' })),
    nodeSelector: Type.Optional(map(Type.String())),
    tolerations: Type.Optional(Type.Array(opaqueObject())),
    affinity: Type.Optional(opaqueObject()),
    topologySpreadConstraints: Type.Optional(
      Type.Array(opaqueObject(), { description: 'Pod topology spread. When unset, pods spread across nodes (kubernetes.io/hostname, ScheduleAnyway).' }),
    ),
    metrics: Type.Optional(
      Type.Object(
        {
          enabled: Type.Optional(Type.Boolean({ default: true, description: "Expose the file server's Prometheus endpoint (port and scrape annotations)." })),
          port: Type.Optional(
            Type.Integer({
              minimum: 1024,
              maximum: 65_535,
              default: FILESERVER_DEFAULTS.metricsPort,
              'x-kubernetes-validations': [{ rule: `self != ${API_PORT}`, message: `metrics.port must differ from the API port ${API_PORT}` }],
            }),
          ),
        },
        { default: {} },
      ),
    ),
  },
  {
    description: 'The desired state of the cluster.',
    // Pods hold the token they started with: pointing the cluster at another Secret would lock the
    // running pods out of each other. A rotation changes the token inside the Secret.
    'x-kubernetes-validations': [immutable('tokenSecretName', 'spec.tokenSecretName is immutable; to rotate the peer token, change the key token of that Secret')],
  },
);

export const CONDITION_TYPES = ['Ready', 'Progressing', 'PeersSynced', 'Degraded'] as const;

const ConditionSchema = requiring(
  Type.Object({
    // Any string to the API server, as in metav1.Condition; the operator writes only its own types.
    type: Type.Unsafe<(typeof CONDITION_TYPES)[number]>({ type: 'string' }),
    status: stringEnum(['True', 'False', 'Unknown']),
    reason: Type.String(),
    message: Type.String(),
    observedGeneration: Type.Optional(Type.Integer({ format: 'int64' })),
    lastTransitionTime: Type.String({ format: 'date-time' }),
  }),
  ['type', 'status'],
);

export const FileClusterStatusSchema = Type.Object({
  observedGeneration: Type.Optional(Type.Integer({ format: 'int64' })),
  replicas: Type.Optional(Type.Integer({ format: 'int32' })),
  readyReplicas: Type.Optional(Type.Integer({ format: 'int32' })),
  selector: Type.Optional(Type.String()),
  tokenSecretName: Type.Optional(Type.String()),
  image: Type.Optional(Type.String({ description: "The file-server image the pods are given (spec.image, else the operator's)." })),
  peerGeneration: Type.Optional(Type.Integer({ format: 'int64' })),
  peersAcknowledged: Type.Optional(Type.Integer({ format: 'int32', description: 'How many running pods hold the current peer list (peerGeneration).' })),
  peers: Type.Optional(Type.Array(Type.Object({ id: Type.String(), url: Type.String() }))),
  scaleDownBlockedSince: Type.Optional(
    Type.String({ format: 'date-time', description: 'Since when a scale-down waits for its leaving pods to hand their writes over (unset when none waits).' }),
  ),
  forcedScaleDown: Type.Optional(
    requiring(
      Type.Object(
        { replicas: Type.Integer({ format: 'int32' }), generation: Type.Integer({ format: 'int64' }) },
        {
          description:
            'The scale-down the filecluster.dev/force-scale-down annotation last authorised: to which replica count, at which generation of the spec. The annotation forces that one scale-down only; remove and set it again to force another.',
        },
      ),
      [],
    ),
  ),
  conditions: Type.Optional(Type.Array(ConditionSchema, { 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['type'] })),
});

export const FileClusterSchema = Type.Object(
  {
    apiVersion: Type.Optional(Type.String()),
    kind: Type.Optional(Type.String()),
    metadata: Type.Optional(
      Type.Object({
        name: Type.Optional(Type.String({ maxLength: 40, description: 'At most 40 characters, so the names of the pods and volumes it owns stay valid.' })),
      }),
    ),
    spec: FileClusterSpecSchema,
    status: Type.Optional(FileClusterStatusSchema),
  },
  { description: 'A replicated HTTP file server cluster run by the FileCluster operator.' },
);
