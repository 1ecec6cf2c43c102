import type { Cluster, StartClusterOptions } from '../types.ts';

export async function startLocalCluster(_opts: StartClusterOptions): Promise<Cluster> {
  throw new Error('the local provider is being built');
}
