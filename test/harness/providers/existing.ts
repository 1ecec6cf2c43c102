import { existsSync } from 'node:fs';
import path from 'node:path';
import { kubectlBinary } from '../assets.ts';
import { assembleCluster } from '../cluster-base.ts';
import type { Cluster, StartClusterOptions } from '../types.ts';

/**
 * A cluster someone else runs, reached through env KUBECONFIG (first file of the list).
 * close() leaves it running: the harness never tears down what it did not start.
 */
export async function connectExistingCluster(opts: StartClusterOptions): Promise<Cluster> {
  const kubeconfigPath = opts.kubeconfig ?? (process.env['KUBECONFIG'] ?? '').split(path.delimiter).find(Boolean);
  if (!kubeconfigPath) {
    throw new Error('FC_TEST_PROVIDER=existing needs env KUBECONFIG pointing at the cluster to test against');
  }
  if (!existsSync(kubeconfigPath)) throw new Error(`KUBECONFIG file ${kubeconfigPath} does not exist`);
  const cluster = assembleCluster({
    provider: 'existing',
    kubeconfigPath,
    kubectlPath: await kubectlBinary(opts.log),
    close: async () => {},
  });
  const version = await cluster.kubectl(['version', '-o', 'json'], { timeoutMs: 30_000 });
  if (version.code !== 0) {
    throw new Error(`cannot reach the cluster of ${kubeconfigPath}: ${version.stderr.trim()}`);
  }
  return cluster;
}
