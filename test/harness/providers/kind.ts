import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT, kubectlBinary } from '../assets.ts';
import { assembleCluster } from '../cluster-base.ts';
import type { Cluster, StartClusterOptions } from '../types.ts';

const run = promisify(execFile);
const CLUSTER_SCRIPT = path.join(REPO_ROOT, 'scripts/kind/cluster.sh');
const OUTPUT_LIMIT = 256 * 1024 * 1024;

/**
 * A kind cluster of one control-plane and two worker nodes from scripts/kind/cluster.sh: real kubelets,
 * kube-proxy, CoreDNS and a CNI, from a node image built offline and cached (the first run on a machine
 * builds it). Images of the kind Docker daemon named in env FC_KIND_IMAGES (comma-separated) are loaded
 * into every node. close() deletes the cluster.
 */
export async function startKindCluster(opts: StartClusterOptions): Promise<Cluster> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'fc-kind-'));
  const name = `fc-${process.pid}-${path.basename(dir).slice(-6).toLowerCase()}`;
  const kubeconfigPath = path.join(dir, 'kubeconfig');
  const remove = async () => {
    try {
      await run('bash', [CLUSTER_SCRIPT, 'delete', '--name', name], { maxBuffer: OUTPUT_LIMIT });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  };
  try {
    opts.log?.(`creating kind cluster ${name} (scripts/kind/cluster.sh)`);
    await run('bash', [CLUSTER_SCRIPT, 'create', '--name', name, '--kubeconfig', kubeconfigPath], { maxBuffer: OUTPUT_LIMIT });
    const images = (process.env['FC_KIND_IMAGES'] ?? '').split(',').filter(Boolean);
    if (images.length > 0) await run('bash', [CLUSTER_SCRIPT, 'load', '--name', name, ...images], { maxBuffer: OUTPUT_LIMIT });
    return assembleCluster({ provider: 'kind', kubeconfigPath, kubectlPath: await kubectlBinary(opts.log), close: remove, podNetworkUnrouted: true });
  } catch (err) {
    await remove().catch((cleanup: Error) => opts.log?.(`deleting kind cluster ${name} after a failed start: ${cleanup.message}`));
    const stderr = (err as { stderr?: string }).stderr ?? '';
    throw new Error(`the kind provider could not start a cluster: ${(err as Error).message}\n${stderr.slice(-4000)}`, { cause: err });
  }
}

/** The DOCKER_HOST of the Docker daemon that runs the kind nodes (scripts/kind/cluster.sh starts it). */
export async function kindDockerHost(): Promise<string> {
  const dockerHost = (await run('bash', [CLUSTER_SCRIPT, 'env'], { maxBuffer: OUTPUT_LIMIT })).stdout.match(/^DOCKER_HOST=(.*)$/m)?.[1];
  if (!dockerHost) throw new Error(`${CLUSTER_SCRIPT} env named no DOCKER_HOST`);
  return dockerHost;
}

/**
 * Builds this tree's file-server and operator images into the kind Docker daemon (scripts/build-images.sh,
 * no registry) and returns their names, tagged with package.json's version as the chart and manifests
 * expect; pass them in env FC_KIND_IMAGES to load them into a cluster's nodes.
 */
export async function buildImagesForKind(log?: (line: string) => void): Promise<string[]> {
  const dockerHost = await kindDockerHost();
  log?.('building the file-server and operator images into the kind Docker daemon (scripts/build-images.sh)');
  await run('bash', [path.join(REPO_ROOT, 'scripts/build-images.sh'), 'fileserver', 'operator'], {
    env: { ...process.env, DOCKER_HOST: dockerHost },
    maxBuffer: OUTPUT_LIMIT,
  });
  const { version } = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
  return [`filecluster/fileserver:${version}`, `filecluster/operator:${version}`];
}
