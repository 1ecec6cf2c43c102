import type { V1Pod } from '@kubernetes/client-node';
import type { FileCluster, FileClusterSpec } from '../../../../../operator/src/api/v1alpha1/types.ts';

export function fileCluster(spec: FileClusterSpec = {}, name = 'fc'): FileCluster {
  return {
    apiVersion: 'filecluster.dev/v1alpha1',
    kind: 'FileCluster',
    metadata: { name, namespace: 'ns', uid: 'uid-1', generation: 1 },
    spec,
  };
}

/** A pod as the API holds it: Running, Ready and serving unless told otherwise (serving 'unset': a new pod, no label). */
export function pod(
  name: string,
  opts: { ip?: string; ready?: boolean; running?: boolean; terminating?: boolean; revision?: string; serving?: boolean | 'unset' } = {},
): V1Pod {
  const labels: Record<string, string> = {};
  if (opts.revision) labels['controller-revision-hash'] = opts.revision;
  if (opts.serving !== 'unset') labels['filecluster.dev/serving'] = String(opts.serving ?? true);
  const p: V1Pod = {
    metadata: { name, namespace: 'ns', uid: `uid-${name}`, labels },
    status: { phase: opts.running === false ? 'Pending' : 'Running', conditions: [{ type: 'Ready', status: opts.ready === false ? 'False' : 'True' }] },
  };
  if (opts.ip !== undefined) p.status!.podIP = opts.ip;
  if (opts.terminating) p.metadata!.deletionTimestamp = new Date();
  return p;
}
