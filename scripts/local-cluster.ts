/**
 * Runs the local test cluster (control plane + process nodes, test/harness) until SIGINT/SIGTERM.
 *
 *   node scripts/local-cluster.ts --kubeconfig PATH [--nodes N] [-- COMMAND ARGS...]
 *
 * The kubeconfig is written (atomically) only once the cluster is ready, so its appearance is the
 * readiness signal; a "ready" line is printed to stdout too. With a COMMAND, it runs the command with
 * KUBECONFIG=PATH and FC_TEST_PROVIDER=existing once ready, tears the cluster down afterwards and
 * exits with the command's exit code (how CI runs a suite through the `existing` provider).
 */
import { spawn } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { writeFileAtomic } from '../test/harness/control-plane.ts';
import { startCluster, type Cluster } from '../test/harness/index.ts';

const { values, positionals } = parseArgs({
  options: {
    kubeconfig: { type: 'string' },
    nodes: { type: 'string', default: '1' },
    quiet: { type: 'boolean', default: false },
  },
  allowPositionals: true,
});
if (!values.kubeconfig) {
  process.stderr.write('usage: node scripts/local-cluster.ts --kubeconfig PATH [--nodes N] [-- COMMAND ARGS...]\n');
  process.exit(2);
}
const kubeconfigPath = path.resolve(values.kubeconfig);
const nodes = Number(values.nodes);
if (!Number.isInteger(nodes) || nodes < 1) {
  process.stderr.write(`--nodes must be a positive integer, got ${values.nodes}\n`);
  process.exit(2);
}

let cluster: Cluster | undefined;
let stopping: Promise<void> | undefined;
const keepAlive = setInterval(() => {}, 1 << 30);

function shutdown(code: number): Promise<void> {
  stopping ??= (async () => {
    clearInterval(keepAlive);
    rmSync(kubeconfigPath, { force: true });
    if (cluster) await cluster.close();
    process.stderr.write('local cluster stopped\n');
    process.exit(code);
  })();
  return stopping;
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    // Before the cluster is up, exiting runs the harness's exit hook, which kills what was started.
    if (!cluster) process.exit(130);
    void shutdown(0);
  });
}

const started = Date.now();
try {
  cluster = await startCluster({
    provider: 'local',
    nodes,
    log: values.quiet ? () => {} : (line) => process.stderr.write(`[local-cluster] ${line}\n`),
  });
} catch (err) {
  process.stderr.write(`${(err as Error).message}\n`);
  process.exit(1);
}
writeFileAtomic(kubeconfigPath, readFileSync(cluster.kubeconfigPath, 'utf8'));
process.stdout.write(
  `local cluster ready in ${((Date.now() - started) / 1000).toFixed(1)}s: KUBECONFIG=${kubeconfigPath} ` +
    `(nodes: ${cluster.local?.nodes().join(', ')}; files: ${cluster.local?.dir})\n`,
);

const [command, ...args] = positionals;
if (command) {
  const child = spawn(command, args, {
    stdio: 'inherit',
    env: { ...process.env, KUBECONFIG: kubeconfigPath, FC_TEST_PROVIDER: 'existing' },
  });
  child.on('error', (err) => {
    process.stderr.write(`cannot run ${command}: ${err.message}\n`);
    void shutdown(127);
  });
  child.on('exit', (code, signal) => void shutdown(code ?? (signal ? 128 : 1)));
}
