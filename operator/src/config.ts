import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { DEFAULT_IMAGE } from './api/v1alpha1/defaults.ts';

const bool = z.enum(['true', 'false', '1', '0', 'yes', 'no']).transform((v) => v === 'true' || v === '1' || v === 'yes');
const positiveInt = z.coerce.number().int().positive();

const schema = z.object({
  FC_WATCH_NAMESPACES: z.string().default(''),
  KUBECONFIG: z.string().optional(),
  FC_OPERATOR_HOST: z.string().default('0.0.0.0'),
  FC_OPERATOR_PORT: z.coerce.number().int().min(0).max(65535).default(8081),
  FC_LEADER_ELECTION: bool.default(true),
  FC_LEASE_NAME: z.string().default('filecluster-operator'),
  FC_LEASE_NAMESPACE: z.string().optional(),
  FC_LEASE_DURATION_SECONDS: positiveInt.default(15),
  FC_LEASE_RENEW_DEADLINE_SECONDS: positiveInt.default(10),
  FC_LEASE_RETRY_PERIOD_SECONDS: positiveInt.default(2),
  FC_POD_NAME: z.string().optional(),
  FC_POD_NAMESPACE: z.string().optional(),
  FC_FILESERVER_IMAGE: z.string().min(1).default(DEFAULT_IMAGE),
  FC_WORKERS: positiveInt.default(4),
  // Every change the operator acts on arrives through a watch; the resync only repairs what a lost event
  // or a pod that lost its list would leave behind. Each one costs two GETs and a push per pod, so a
  // short period makes resyncs the bulk of an idle leader's CPU.
  FC_RESYNC_SECONDS: positiveInt.default(300),
  FC_RELIST_SECONDS: positiveInt.default(3600),
  FC_WATCHDOG_SECONDS: positiveInt.default(120),
  FC_PUSH_TIMEOUT_MS: positiveInt.default(2000),
  FC_PUSH_ATTEMPTS: positiveInt.default(3),
  FC_LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal']).default('info'),
});

export interface OperatorConfig {
  /** [] means every namespace. */
  watchNamespaces: string[];
  kubeconfig?: string;
  host: string;
  port: number;
  leaderElection: boolean;
  lease: { name: string; namespace: string; durationMs: number; renewDeadlineMs: number; retryPeriodMs: number };
  identity: string;
  fileserverImage: string;
  workers: number;
  resyncMs: number;
  relistMs: number;
  watchdogMs: number;
  push: { timeoutMs: number; attempts: number };
  logLevel: string;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): OperatorConfig {
  const e = schema.parse(env);
  if (e.FC_LEASE_RENEW_DEADLINE_SECONDS >= e.FC_LEASE_DURATION_SECONDS) {
    throw new Error('FC_LEASE_RENEW_DEADLINE_SECONDS must be shorter than FC_LEASE_DURATION_SECONDS');
  }
  const watchNamespaces = e.FC_WATCH_NAMESPACES.split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const config: OperatorConfig = {
    watchNamespaces,
    host: e.FC_OPERATOR_HOST,
    port: e.FC_OPERATOR_PORT,
    leaderElection: e.FC_LEADER_ELECTION,
    lease: {
      name: e.FC_LEASE_NAME,
      namespace: e.FC_LEASE_NAMESPACE ?? e.FC_POD_NAMESPACE ?? watchNamespaces[0] ?? 'default',
      durationMs: e.FC_LEASE_DURATION_SECONDS * 1000,
      renewDeadlineMs: e.FC_LEASE_RENEW_DEADLINE_SECONDS * 1000,
      retryPeriodMs: e.FC_LEASE_RETRY_PERIOD_SECONDS * 1000,
    },
    // Unique per process so two replicas on one host never share an identity.
    identity: e.FC_POD_NAME ?? `${hostname()}-${process.pid}`,
    fileserverImage: e.FC_FILESERVER_IMAGE,
    workers: e.FC_WORKERS,
    resyncMs: e.FC_RESYNC_SECONDS * 1000,
    relistMs: e.FC_RELIST_SECONDS * 1000,
    watchdogMs: e.FC_WATCHDOG_SECONDS * 1000,
    push: { timeoutMs: e.FC_PUSH_TIMEOUT_MS, attempts: e.FC_PUSH_ATTEMPTS },
    logLevel: e.FC_LOG_LEVEL,
  };
  if (e.KUBECONFIG) config.kubeconfig = e.KUBECONFIG;
  return config;
}

/** Command-line flags, each the twin of an environment variable (a flag wins over the variable). */
const FLAGS: Record<string, string> = {
  'watch-namespaces': 'FC_WATCH_NAMESPACES',
  kubeconfig: 'KUBECONFIG',
  host: 'FC_OPERATOR_HOST',
  port: 'FC_OPERATOR_PORT',
  'leader-election': 'FC_LEADER_ELECTION',
  'lease-name': 'FC_LEASE_NAME',
  'lease-namespace': 'FC_LEASE_NAMESPACE',
  identity: 'FC_POD_NAME',
  'fileserver-image': 'FC_FILESERVER_IMAGE',
  workers: 'FC_WORKERS',
  'log-level': 'FC_LOG_LEVEL',
};

export function configFromArgs(argv: string[], env: NodeJS.ProcessEnv): OperatorConfig {
  const { values } = parseArgs({
    args: argv,
    options: Object.fromEntries(Object.keys(FLAGS).map((f) => [f, { type: 'string' as const }])),
    strict: true,
  });
  const merged: NodeJS.ProcessEnv = { ...env };
  for (const [flag, value] of Object.entries(values)) {
    const name = FLAGS[flag];
    if (name && typeof value === 'string') merged[name] = value;
  }
  return loadConfig(merged);
}
