import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { z } from 'zod';
import { ACK_MODES, API_PORT, FILESERVER_DEFAULTS, MIN_RETENTION_INTERVALS, type AckMode } from '../../contract/fileserver-settings.ts';
import { NODE_ID_RE, parsePeerList, type Peer, type PeerList, type PeerListCheck } from '../../contract/peer-api.ts';

const port = z.coerce.number().int().min(0).max(65535);
const positiveInt = z.coerce.number().int().positive();

const EnvSchema = z.object({
  FC_NODE_ID: z
    .string()
    .regex(NODE_ID_RE, 'must be a DNS-label-like name')
    .default(() => hostname()),
  FC_HOST: z.string().min(1).default('0.0.0.0'),
  FC_PORT: port.default(API_PORT),
  FC_METRICS_PORT: port.default(FILESERVER_DEFAULTS.metricsPort),
  FC_DATA_DIR: z.string().min(1).default('/data'),
  FC_TOKEN: z.string().min(1).optional(),
  FC_TOKEN_FILE: z.string().min(1).optional(),
  // During a token rotation: the token peers that have not restarted yet still send (and accept).
  FC_PREVIOUS_TOKEN: z.string().min(1).optional(),
  FC_PEERS: z.string().default(''),
  FC_AWAIT_PEER_LIST: z.enum(['true', 'false']).default('false'),
  FC_DEFAULT_ACK: z.enum(ACK_MODES).default(FILESERVER_DEFAULTS.defaultAck),
  FC_ACK_TIMEOUT_MS: positiveInt.default(FILESERVER_DEFAULTS.ackTimeoutMs),
  FC_MAX_BODY_BYTES: positiveInt.default(FILESERVER_DEFAULTS.maxBodyBytes),
  FC_TOMBSTONE_RETENTION_SECONDS: z.coerce.number().min(0).default(FILESERVER_DEFAULTS.tombstoneRetentionSeconds),
  FC_CATCHUP_INTERVAL_SECONDS: z.coerce.number().positive().default(FILESERVER_DEFAULTS.catchUpIntervalSeconds),
  FC_SCRUB_BYTES_PER_SECOND: z.coerce
    .number()
    .int()
    .min(0)
    .default(4 * 1024 * 1024),
  FC_MAX_CLOCK_DRIFT_SECONDS: z.coerce.number().positive().default(60),
  FC_HEADERS_TIMEOUT_SECONDS: z.coerce.number().positive().default(60),
  FC_BODY_IDLE_TIMEOUT_SECONDS: z.coerce.number().positive().default(60),
  FC_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

export interface Config {
  nodeId: string;
  host: string;
  port: number;
  metricsPort: number;
  dataDir: string;
  token: string;
  /** Accepted from peers and sent to a peer that rejects `token`, while a rotation rolls through. */
  previousToken?: string;
  staticPeers: PeerList;
  /** Set by the operator: client writes are refused until a peer list of generation 1 or later arrives. */
  awaitPeerList: boolean;
  defaultAck: AckMode;
  ackTimeoutMs: number;
  maxBodyBytes: number;
  tombstoneRetentionMs: number;
  catchupIntervalMs: number;
  /** How fast the background scrub re-reads stored files; 0 turns it off. */
  scrubBytesPerSecond: number;
  /** How far ahead of this node's clock a replicated version may be; further ahead it is refused until then. */
  maxClockDriftMs: number;
  /** How long a client may take to send a request's headers. */
  headersTimeoutMs: number;
  /** How long a request body may receive nothing before the request is ended with 408. */
  bodyIdleTimeoutMs: number;
  logLevel: string;
}

/** Reads and validates the environment once; throws a readable error listing every bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv): Config {
  const parsed = EnvSchema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new Error(`invalid configuration: ${problems}`);
  }
  const e = parsed.data;
  const token = e.FC_TOKEN ?? (e.FC_TOKEN_FILE ? readFileSync(e.FC_TOKEN_FILE, 'utf8').trim() : undefined);
  if (!token) throw new Error('invalid configuration: one of FC_TOKEN or FC_TOKEN_FILE is required (and must not be empty)');
  // A node counts as stale after half the retention without a complete catch-up round
  // (replication/gc-horizon.ts): rounds must come far more often than that.
  if (e.FC_TOMBSTONE_RETENTION_SECONDS < MIN_RETENTION_INTERVALS * e.FC_CATCHUP_INTERVAL_SECONDS) {
    throw new Error(
      `invalid configuration: FC_TOMBSTONE_RETENTION_SECONDS (${e.FC_TOMBSTONE_RETENTION_SECONDS}) must be at least ${MIN_RETENTION_INTERVALS} times FC_CATCHUP_INTERVAL_SECONDS (${e.FC_CATCHUP_INTERVAL_SECONDS})`,
    );
  }
  const staticPeers = parseStaticPeers(e.FC_PEERS, e.FC_NODE_ID);
  if (!staticPeers.ok) throw new Error(`invalid configuration: FC_PEERS: ${staticPeers.message}`);
  const config: Config = {
    nodeId: e.FC_NODE_ID,
    host: e.FC_HOST,
    port: e.FC_PORT,
    metricsPort: e.FC_METRICS_PORT,
    dataDir: e.FC_DATA_DIR,
    token,
    staticPeers: staticPeers.list,
    awaitPeerList: e.FC_AWAIT_PEER_LIST === 'true',
    defaultAck: e.FC_DEFAULT_ACK,
    ackTimeoutMs: e.FC_ACK_TIMEOUT_MS,
    maxBodyBytes: e.FC_MAX_BODY_BYTES,
    tombstoneRetentionMs: e.FC_TOMBSTONE_RETENTION_SECONDS * 1000,
    catchupIntervalMs: e.FC_CATCHUP_INTERVAL_SECONDS * 1000,
    scrubBytesPerSecond: e.FC_SCRUB_BYTES_PER_SECOND,
    maxClockDriftMs: e.FC_MAX_CLOCK_DRIFT_SECONDS * 1000,
    // Node takes whole milliseconds here.
    headersTimeoutMs: Math.ceil(e.FC_HEADERS_TIMEOUT_SECONDS * 1000),
    bodyIdleTimeoutMs: e.FC_BODY_IDLE_TIMEOUT_SECONDS * 1000,
    logLevel: e.FC_LOG_LEVEL,
  };
  if (e.FC_PREVIOUS_TOKEN !== undefined && e.FC_PREVIOUS_TOKEN !== token) config.previousToken = e.FC_PREVIOUS_TOKEN;
  return config;
}

/** Parses FC_PEERS (`id=url,id=url`) into a generation-0 list. */
export function parseStaticPeers(spec: string, selfId: string): PeerListCheck {
  const peers: Peer[] = [];
  for (const item of spec
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const eq = item.indexOf('=');
    if (eq <= 0) return { ok: false, message: `"${item}" is not id=url` };
    peers.push({ id: item.slice(0, eq), url: item.slice(eq + 1) });
  }
  return parsePeerList({ generation: 0, peers }, selfId);
}
