// Shared by the packaging tests: paths, the helm/kubectl binaries, rendering the chart, finding system
// tools with a clear message when they are missing.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { delimiter, join, resolve } from 'node:path';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { packagingTools } from '../../../scripts/tools.ts';

export const REPO = resolve(import.meta.dirname, '../../..');
export const CHART = join(REPO, 'charts/filecluster');
export const ALL_FEATURES_VALUES = join(CHART, 'ci/all-features-values.yaml');
export const ALERTS_FILE = join(CHART, 'files/alerts.yaml');
export const DASHBOARD_FILE = join(CHART, 'files/dashboard.json');
export const CRD_FILE = join(CHART, 'crds/fileclusters.filecluster.dev.yaml');
/** Release name and namespace the plain manifests are rendered with. */
export const MANIFEST_RELEASE = { name: 'filecluster', namespace: 'filecluster-system' } as const;

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function run(command: string, args: string[], opts: { input?: string; cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): RunResult {
  const result = spawnSync(command, args, {
    cwd: opts.cwd ?? REPO,
    input: opts.input,
    env: opts.env ?? process.env,
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
    timeout: opts.timeoutMs ?? 120_000,
  });
  if (result.error) throw result.error;
  return { code: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}

/**
 * Like run(), without blocking the event loop: needed while the test process itself hosts the local
 * cluster's process node (a blocked loop would freeze the pods it runs).
 */
export function runAsync(command: string, args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: REPO, env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
    child.stdin.end(opts.input ?? '');
  });
}

/** Runs a command and throws with its output unless it exits 0. */
export function runOk(command: string, args: string[], opts: Parameters<typeof run>[2] = {}): string {
  const result = run(command, args, opts);
  if (result.code !== 0) throw new Error(`${command} ${args.join(' ')} exited ${result.code}\n${result.stdout}\n${result.stderr}`);
  return result.stdout;
}

/** The absolute path of a system command, or an error saying how to install it. */
export function requireCommand(name: string, install: string): string {
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    const path = join(dir, name);
    if (dir && existsSync(path)) return path;
  }
  for (const dir of ['/usr/sbin', '/usr/bin', '/sbin']) {
    if (existsSync(join(dir, name))) return join(dir, name);
  }
  throw new Error(`${name} not found on PATH; install it with: ${install}`);
}

export const helmBinary = (): string => packagingTools().helm;
export const kubectlBinary = (): string => packagingTools().kubectl;

export function parseObjects(text: string): K8sObject[] {
  return parseAllDocuments(text)
    .map((doc) => {
      if (doc.errors.length > 0) throw new Error(`invalid YAML: ${doc.errors.map((e) => e.message).join('; ')}`);
      return doc.toJS() as K8sObject | null;
    })
    .filter((o): o is K8sObject => o !== null && typeof o === 'object');
}

export interface RenderOptions {
  values?: string[];
  set?: string[];
  release?: string;
  namespace?: string;
  includeCrds?: boolean;
}

export function helmTemplateText(opts: RenderOptions = {}): string {
  const args = ['template', opts.release ?? 'filecluster', CHART, '--namespace', opts.namespace ?? 'filecluster-system'];
  for (const file of opts.values ?? []) args.push('--values', file);
  for (const value of opts.set ?? []) args.push('--set', value);
  if (opts.includeCrds) args.push('--include-crds');
  return runOk(helmBinary(), args);
}

export const helmTemplate = (opts: RenderOptions = {}): K8sObject[] => parseObjects(helmTemplateText(opts));

export function find(objects: K8sObject[], kind: string, name?: string): K8sObject[] {
  return objects.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
}

export function findOne(objects: K8sObject[], kind: string, name?: string): K8sObject {
  const found = find(objects, kind, name);
  if (found.length !== 1) throw new Error(`expected one ${kind}${name ? ` ${name}` : ''}, found ${found.length}`);
  return found[0]!;
}

export const readYaml = (path: string): unknown => parseYaml(readFileSync(path, 'utf8'));

/** A random loopback /24 in 127.2-9.x, the blocks the test cluster's pod network leaves to tests. */
export const loopbackNet = (): string => `127.${2 + Math.floor(Math.random() * 8)}.${Math.floor(Math.random() * 256)}`;
