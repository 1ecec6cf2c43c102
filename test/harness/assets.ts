import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

const CONTROL_PLANE = ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kubectl'];

function hasAll(dir: string, names: string[]): boolean {
  return names.every((name) => {
    try {
      accessSync(path.join(dir, name), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

let building: Promise<string> | undefined;

/**
 * The directory holding the Kubernetes binaries (KUBEBUILDER_ASSETS layout). Uses env
 * KUBEBUILDER_ASSETS when it is complete, else runs scripts/build-k8s.sh (instant when cached).
 */
export function kubernetesAssets(log: (line: string) => void = () => {}): Promise<string> {
  const fromEnv = process.env['KUBEBUILDER_ASSETS'];
  if (fromEnv && hasAll(fromEnv, CONTROL_PLANE)) return Promise.resolve(fromEnv);
  building ??= new Promise<string>((resolve, reject) => {
    log('building Kubernetes binaries with scripts/build-k8s.sh (cached after the first run)');
    const child = spawn('bash', [path.join(REPO_ROOT, 'scripts/build-k8s.sh')], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      for (const line of chunk.toString().split('\n')) if (line) log(line);
    });
    child.on('error', reject);
    child.on('close', (code) => {
      const dir = stdout.trim().split('\n').pop() ?? '';
      if (code === 0 && dir && hasAll(dir, CONTROL_PLANE)) resolve(dir);
      else reject(new Error(`scripts/build-k8s.sh failed (exit ${code}):\n${stderr.slice(-4000)}`));
    });
  });
  return building;
}

/** kubectl from the assets when they are there, else the one on PATH. */
export async function kubectlBinary(log?: (line: string) => void): Promise<string> {
  try {
    return path.join(await kubernetesAssets(log), 'kubectl');
  } catch {
    return 'kubectl';
  }
}
