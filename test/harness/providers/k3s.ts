import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { kubectlBinary } from '../assets.ts';
import { assembleCluster } from '../cluster-base.ts';
import type { Cluster, StartClusterOptions } from '../types.ts';

const DEFAULT_IMAGE = 'rancher/k3s:v1.36.3-k3s1';

/**
 * k3s in a container through @testcontainers/k3s. Needs a Docker-compatible runtime and the k3s image
 * (env FC_K3S_IMAGE, default rancher/k3s:v1.36.3-k3s1). Application images are imported from the
 * `docker save` archives listed in env FC_K3S_IMAGE_ARCHIVES (comma-separated paths).
 */
export async function startK3sCluster(opts: StartClusterOptions): Promise<Cluster> {
  const image = process.env['FC_K3S_IMAGE'] || DEFAULT_IMAGE;
  let started;
  try {
    const { getContainerRuntimeClient } = await import('testcontainers');
    await getContainerRuntimeClient();
    const { K3sContainer } = await import('@testcontainers/k3s');
    started = await new K3sContainer(image).start();
  } catch (err) {
    throw new Error(
      `the k3s provider needs a running Docker-compatible container runtime and the image ${image} ` +
        `(set FC_K3S_IMAGE to use another); it is unavailable here: ${(err as Error).message}`,
      { cause: err },
    );
  }
  const container = started;
  const dir = await mkdtemp(path.join(os.tmpdir(), 'fc-k3s-'));
  try {
    const archives = (process.env['FC_K3S_IMAGE_ARCHIVES'] ?? '').split(',').filter(Boolean);
    for (const [i, archive] of archives.entries()) {
      const target = `/tmp/image-${i}.tar`;
      await container.copyFilesToContainer([{ source: archive, target }]);
      const imported = await container.exec(['ctr', '-n', 'k8s.io', 'images', 'import', target]);
      if (imported.exitCode !== 0) throw new Error(`importing ${archive} into k3s failed: ${imported.output}`);
    }
    const kubeconfigPath = path.join(dir, 'kubeconfig');
    await writeFile(kubeconfigPath, container.getKubeConfig(), { mode: 0o600 });
    return assembleCluster({
      provider: 'k3s',
      kubeconfigPath,
      kubectlPath: await kubectlBinary(opts.log),
      close: async () => {
        await container.stop();
        await rm(dir, { recursive: true, force: true });
      },
    });
  } catch (err) {
    await container.stop();
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}
