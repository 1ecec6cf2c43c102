/**
 * The local provider: a real control plane (etcd, kube-apiserver, kube-controller-manager,
 * kube-scheduler) as local processes, a hostPath volume provisioner, and process nodes that run pods
 * as local processes. Everything lives in one temp directory and process groups that close() (or, if
 * this process dies, the watchdog) removes.
 */
import { mkdtempSync, readdirSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { ensureCompiled, kubernetesAssets, REPO_ROOT } from '../assets.ts';
import { assembleCluster, runKubectl } from '../cluster-base.ts';
import { startControlPlane, type ControlPlane } from '../control-plane.ts';
import { KubeRest } from '../kube-rest.ts';
import { ProcessSupervisor, removeDir, tail } from '../processes.ts';
import { builtinImages, nodeBinary } from '../process-node/images.ts';
import { PodNetwork } from '../process-node/pod-network.ts';
import { ProcessNode } from '../process-node/process-node.ts';
import { StorageProvisioner } from '../storage-provisioner.ts';
import type { Cluster, PodProcess, StartClusterOptions } from '../types.ts';
import { waitFor } from '../wait.ts';

const HOST_IP = '127.0.0.1';

function defaultLog(): (line: string) => void {
  if (!process.env['FC_TEST_VERBOSE']) return () => {};
  return (line) => process.stderr.write(`[local-cluster ${new Date().toISOString().slice(11, 23)}] ${line}\n`);
}

export async function startLocalCluster(opts: StartClusterOptions): Promise<Cluster> {
  const log = opts.log ?? defaultLog();
  const assets = await kubernetesAssets(log);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fc-cluster-'));
  const supervisor = new ProcessSupervisor(path.join(dir, 'process-groups'));
  supervisor.startWatchdog(dir);
  const podsDir = path.join(dir, 'pods');
  const nodes: ProcessNode[] = [];
  let controlPlane: ControlPlane | undefined;
  let rest: KubeRest | undefined;
  let network: PodNetwork | undefined;
  let provisioner: StorageProvisioner | undefined;

  const teardown = async () => {
    await Promise.all(nodes.map((node) => node.stop()));
    await provisioner?.stop();
    await controlPlane?.stop();
    await supervisor.stopAll(2000);
    rest?.close();
    network?.dispose();
    supervisor.dispose();
    if (process.env['FC_TEST_KEEP_DIR']) process.stderr.write(`local cluster files kept in ${dir}\n`);
    else removeDir(dir);
  };

  const diagnostics = async () => {
    const parts: string[] = [];
    if (controlPlane) {
      const listing = await runKubectl(path.join(assets, 'kubectl'), controlPlane.adminKubeconfigPath, ['get', 'nodes,pods,pvc,events', '-A', '-o', 'wide'], {
        timeoutMs: 15_000,
      }).catch((err: Error) => ({ stdout: '', stderr: err.message }));
      parts.push(`--- kubectl get nodes,pods,pvc,events -A\n${listing.stdout}${listing.stderr}`);
    }
    for (const file of readdirSync(dir).filter((f) => f.endsWith('.log'))) parts.push(`--- ${file} (tail)\n${await tail(path.join(dir, file), 30)}`);
    for (const node of nodes) {
      for (const worker of node.pods()) {
        for (const file of readdirSync(worker.podDir).filter((f) => f.endsWith('.log'))) {
          parts.push(`--- pod ${worker.namespace}/${worker.name} ${file} (tail)\n${await tail(path.join(worker.podDir, file), 20)}`);
        }
      }
    }
    return parts.join('\n');
  };

  try {
    const started = Date.now();
    controlPlane = await startControlPlane(assets, dir, supervisor, log);
    const kc = new KubeConfig();
    kc.loadFromFile(controlPlane.adminKubeconfigPath);
    rest = await KubeRest.fromKubeConfig(kc);
    const version = (await rest.get<{ gitVersion: string }>('/version')).gitVersion;
    network = PodNetwork.claim();
    provisioner = new StorageProvisioner(rest, path.join(dir, 'volumes'), log);
    await provisioner.start();
    ensureCompiled();
    const images = { ...builtinImages(REPO_ROOT), ...(opts.images ?? {}) };
    const node = nodeBinary(REPO_ROOT);
    const plane = controlPlane;
    const api = rest;
    const podNetwork = network;

    const addNode = async (name = `process-node-${nodes.length + 1}`): Promise<string> => {
      const processNode = new ProcessNode(
        {
          nodeName: name,
          hostIP: HOST_IP,
          rest: api,
          supervisor,
          network: podNetwork,
          podsDir,
          repoRoot: REPO_ROOT,
          images,
          nodeBinary: node,
          restartBackoffMs: (opts.restartBackoffSeconds ?? 10) * 1000,
          serverUrl: plane.serverUrl,
          caPem: plane.caPem,
          log,
        },
        version,
      );
      nodes.push(processNode);
      await processNode.start();
      // The node lifecycle controller lifts the not-ready taint once it has seen the Ready condition.
      await waitFor(
        async () => {
          const got = await api.get(`/api/v1/nodes/${name}`);
          return !(got['spec']?.taints ?? []).some((t: { key: string }) => t.key.startsWith('node.kubernetes.io/'));
        },
        60_000,
        `node ${name} to be schedulable`,
      );
      log(`process node ${name} ready`);
      return name;
    };

    for (let i = 0; i < (opts.nodes ?? 1); i++) await addNode();
    await waitFor(async () => (await api.find('/api/v1/namespaces/default/serviceaccounts/default')) !== undefined, 60_000, 'the default ServiceAccount');
    log(`local cluster ready in ${Date.now() - started} ms (${dir})`);

    const findPodDir = (namespace: string, pod: string): string | undefined => {
      const prefix = `${namespace}_${pod}_`;
      const candidates = readdirSync(podsDir, { withFileTypes: true }).filter((d) => d.isDirectory() && d.name.startsWith(prefix));
      candidates.sort((a, b) => statSync(path.join(podsDir, b.name)).ctimeMs - statSync(path.join(podsDir, a.name)).ctimeMs);
      return candidates[0] ? path.join(podsDir, candidates[0].name) : undefined;
    };

    return assembleCluster({
      provider: 'local',
      kubeconfigPath: plane.adminKubeconfigPath,
      kubectlPath: path.join(assets, 'kubectl'),
      close: teardown,
      diagnostics,
      logs: async (namespace, pod, container) => {
        const podDir = findPodDir(namespace, pod);
        if (!podDir) return '';
        const file = container ? `${container}.log` : readdirSync(podDir).find((f) => f.endsWith('.log'));
        return file ? readFile(path.join(podDir, file), 'utf8').catch(() => '') : '';
      },
      local: {
        dir,
        nodes: () => nodes.map((n) => n.name),
        addNode,
        processes: () =>
          nodes.flatMap((n) =>
            n.pods().flatMap((worker) =>
              worker.processes().map(
                (p): PodProcess => ({
                  node: n.name,
                  namespace: worker.namespace,
                  pod: worker.name,
                  uid: worker.uid,
                  container: p.container,
                  pid: p.pid,
                  podIP: worker.ip ?? '',
                }),
              ),
            ),
          ),
        controlPlanePids: () => [...plane.pids],
        controlPlanePorts: () => [...plane.ports],
        restartApiServer: () => plane.restartApiServer(),
      },
    });
  } catch (err) {
    const details = await diagnostics().catch(() => '');
    await teardown();
    throw new Error(`local cluster failed to start: ${(err as Error).message}\n${details}`, { cause: err });
  }
}
