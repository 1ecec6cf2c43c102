// The file server's settings that the operator sets (as FC_* environment variables) from a FileCluster's
// spec: the write-acknowledgement modes and the defaults. The file server applies these defaults to a
// variable that is unset, the operator to a spec field that is unset, and the CRD schema generated from
// operator/src/api/v1alpha1/schema.ts states them for kubectl users.

/** How many copies a write waits for before it is answered (X-FileCluster-Ack, FC_DEFAULT_ACK). */
export const ACK_MODES = ['local', 'majority', 'all'] as const;
export type AckMode = (typeof ACK_MODES)[number];

/**
 * The tombstone retention must be at least this many catch-up intervals: a node that has not finished a
 * catch-up round for half the retention counts as stale and defers to its peers about deletes.
 */
export const MIN_RETENTION_INTERVALS = 10;

/** The file server's API port; the metrics port must differ from it. */
export const API_PORT = 8080;

export const FILESERVER_DEFAULTS = {
  defaultAck: 'local',
  ackTimeoutMs: 10_000,
  tombstoneRetentionSeconds: 86_400,
  catchUpIntervalSeconds: 30,
  maxBodyBytes: 10 * 1024 ** 3,
  metricsPort: 9090,
} as const satisfies {
  defaultAck: AckMode;
  ackTimeoutMs: number;
  tombstoneRetentionSeconds: number;
  catchUpIntervalSeconds: number;
  maxBodyBytes: number;
  metricsPort: number;
};
