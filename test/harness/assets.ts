import { spawn, spawnSync } from 'node:child_process';
import { accessSync, constants, readdirSync, statSync } from 'node:fs';
import os from 'node:os';
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

const COMPILED_SOURCES = ['operator/src', 'fileserver/src', 'tsconfig.json', 'tsconfig.build.json'];

function newestMtimeMs(p: string): number {
  const st = statSync(p);
  if (!st.isDirectory()) return st.mtimeMs;
  return Math.max(st.mtimeMs, ...readdirSync(p).map((name) => newestMtimeMs(path.join(p, name))));
}

function mtimeMsOrZero(p: string): number {
  try {
    return statSync(p).mtimeMs;
  } catch {
    return 0;
  }
}

/**
 * Compiles operator/src and fileserver/src into dist/ (what the images run: type stripping would cost
 * every process about 20 MiB more) when a source is newer than the last build, under a file lock so
 * concurrent test processes build once.
 */
let compiledThisProcess = false;

export function ensureCompiled(): void {
  // Checked once per process: a test starts many nodes, and the sources do not change during a run.
  if (compiledThisProcess) return;
  const built = Math.min(mtimeMsOrZero(compiledPath('fileserver')), mtimeMsOrZero(compiledPath('operator')));
  if (built > 0 && built >= Math.max(...COMPILED_SOURCES.map((p) => newestMtimeMs(path.join(REPO_ROOT, p))))) {
    compiledThisProcess = true;
    return;
  }
  const build = spawnSync('flock', [path.join(os.tmpdir(), 'filecluster-build.lock'), 'npm', 'run', '--silent', 'build'], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
    encoding: 'utf8',
  });
  // tsc exits 2 when it found type errors but emitted everything, as Node's type stripping would run the
  // code anyway; `npm test` type-checks on its own first.
  if (build.status === 2) process.stderr.write(`compiled dist/ despite type errors:\n${build.stdout}`);
  else if (build.status !== 0) throw new Error(`npm run build failed (exit ${build.status}):\n${build.stdout}`);
  compiledThisProcess = true;
}

const compiledPath = (component: 'fileserver' | 'operator') => path.join(REPO_ROOT, 'dist', component, 'src', 'main.js');

/** The compiled entry point of a component, built first when stale. */
export function compiledEntrypoint(component: 'fileserver' | 'operator'): string {
  ensureCompiled();
  return compiledPath(component);
}
