/**
 * The test harness: a Kubernetes cluster for tests, chosen by env FC_TEST_PROVIDER.
 *  - local (default): etcd, kube-apiserver, kube-controller-manager and kube-scheduler as local processes,
 *    plus process nodes that run pods as local processes.
 *  - existing: any cluster reachable through KUBECONFIG (kind, k3d, a real one). Images must be loaded.
 *  - k3s: a k3s container through @testcontainers/k3s (needs Docker and the k3s image).
 *  - kind: a 3-node kind cluster built offline by scripts/kind/cluster.sh (needs dockerd; cached).
 */
import type { Cluster, ProviderName, StartClusterOptions } from './types.ts';

export type {
  Cluster,
  ImageCommand,
  KubectlOptions,
  KubectlResult,
  LocalCluster,
  PodConnection,
  PodProcess,
  ProviderName,
  StartClusterOptions,
} from './types.ts';
export { waitFor, sleep } from './wait.ts';

const PROVIDERS: readonly ProviderName[] = ['local', 'existing', 'k3s', 'kind'];

export function providerFromEnv(env: NodeJS.ProcessEnv = process.env): ProviderName {
  const value = env['FC_TEST_PROVIDER'] || 'local';
  if (!(PROVIDERS as readonly string[]).includes(value)) {
    throw new Error(`FC_TEST_PROVIDER must be one of ${PROVIDERS.join(', ')}; got "${value}"`);
  }
  return value as ProviderName;
}

export async function startCluster(opts: StartClusterOptions = {}): Promise<Cluster> {
  const provider = opts.provider ?? providerFromEnv();
  switch (provider) {
    case 'local':
      return (await import('./providers/local.ts')).startLocalCluster(opts);
    case 'existing':
      return (await import('./providers/existing.ts')).connectExistingCluster(opts);
    case 'k3s':
      return (await import('./providers/k3s.ts')).startK3sCluster(opts);
    case 'kind':
      return (await import('./providers/kind.ts')).startKindCluster(opts);
  }
}
