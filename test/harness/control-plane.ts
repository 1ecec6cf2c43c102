/**
 * The Kubernetes control plane as local processes: etcd, kube-apiserver, kube-controller-manager and
 * kube-scheduler on free loopback ports, each health-waited, with an admin kubeconfig.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync, renameSync } from 'node:fs';
import https from 'node:https';
import http from 'node:http';
import path from 'node:path';
import { stringify } from 'yaml';
import { freePort, isProcessAlive, tail, type ProcessSupervisor } from './processes.ts';
import { sleep } from './wait.ts';

export interface ControlPlane {
  serverUrl: string;
  caPem: string;
  adminToken: string;
  adminKubeconfigPath: string;
  pids: number[];
  ports: number[];
  logFiles: string[];
  /** Stops kube-apiserver (SIGTERM) and starts it again on the same port with the same certificates; resolves once it is ready. */
  restartApiServer(): Promise<void>;
  stop(): Promise<void>;
}

interface Component {
  name: string;
  pid: number;
  logFile: string;
  argv: string[];
  healthy: () => Promise<boolean>;
}

const SERVICE_ACCOUNT_ISSUER = 'https://kubernetes.default.svc.cluster.local';

export function kubeconfigYaml(serverUrl: string, caPem: string, token: string, user: string): string {
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'filecluster-local', cluster: { server: serverUrl, 'certificate-authority-data': Buffer.from(caPem).toString('base64') } }],
    users: [{ name: user, user: { token } }],
    contexts: [{ name: 'filecluster-local', context: { cluster: 'filecluster-local', user } }],
    'current-context': 'filecluster-local',
  });
}

/** Writes via a temporary file and rename, so readers never see half a file. */
export function writeFileAtomic(file: string, content: string, mode = 0o600): void {
  const temporary = `${file}.${process.pid}.tmp`;
  writeFileSync(temporary, content, { mode });
  renameSync(temporary, file);
}

function getStatus(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const client = url.startsWith('https:') ? https : http;
    const req = client.get(url, { headers, rejectUnauthorized: false, timeout: 2000 }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

export async function startControlPlane(assets: string, dir: string, supervisor: ProcessSupervisor, log: (line: string) => void): Promise<ControlPlane> {
  const components: Component[] = [];
  const ports: number[] = [];
  const pkiDir = path.join(dir, 'pki');
  mkdirSync(pkiDir, { recursive: true });

  const env = { PATH: process.env['PATH'] ?? '/usr/bin:/bin' };
  const stop = async () => {
    // Reverse start order: clients of the API server first, etcd last.
    for (const component of [...components].reverse()) await supervisor.stop(component.pid, 5000);
  };

  /** Starts a component and waits for `healthy`; retries with new ports if it dies (e.g. a port race). */
  const startComponent = async (
    name: string,
    makeArgs: () => Promise<{ argv: string[]; healthy: () => Promise<boolean>; ports: number[] }>,
    timeoutMs: number,
  ): Promise<void> => {
    for (let attempt = 1; ; attempt++) {
      const logFile = path.join(dir, `${name}.log`);
      const { argv, healthy, ports: componentPorts } = await makeArgs();
      const child = supervisor.spawn(name, argv, { logFile, cwd: dir, env });
      let exited: number | null | undefined;
      child.once('exit', (code) => (exited = code));
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        if (exited !== undefined) break;
        if (await healthy().catch(() => false)) {
          components.push({ name, pid: child.pid!, logFile, argv, healthy });
          ports.push(...componentPorts);
          log(`${name} healthy (pid ${child.pid})`);
          return;
        }
        if (Date.now() > deadline) {
          await supervisor.stop(child.pid!, 1000);
          await stop();
          throw new Error(`${name} did not become healthy within ${timeoutMs} ms; log tail:\n${await tail(logFile)}`);
        }
        await sleep(100);
      }
      if (attempt >= 3) {
        await stop();
        throw new Error(`${name} exited with code ${exited}; log tail:\n${await tail(logFile)}`);
      }
      log(`${name} exited with code ${exited} (attempt ${attempt}); retrying with new ports`);
    }
  };

  // --- etcd
  const etcdDataDir = path.join(dir, 'etcd-data');
  let etcdUrl = '';
  await startComponent(
    'etcd',
    async () => {
      const [client, peer] = [await freePort(), await freePort()];
      etcdUrl = `http://127.0.0.1:${client}`;
      const peerUrl = `http://127.0.0.1:${peer}`;
      return {
        argv: [
          path.join(assets, 'etcd'),
          '--name=default',
          `--data-dir=${etcdDataDir}`,
          `--listen-client-urls=${etcdUrl}`,
          `--advertise-client-urls=${etcdUrl}`,
          `--listen-peer-urls=${peerUrl}`,
          `--initial-advertise-peer-urls=${peerUrl}`,
          `--initial-cluster=default=${peerUrl}`,
          '--initial-cluster-state=new',
          // A throwaway test database: durability across power loss buys nothing here.
          '--unsafe-no-fsync',
          '--log-level=warn',
        ],
        healthy: async () => (await getStatus(`${etcdUrl}/health`)).body.includes('"health":"true"'),
        ports: [client, peer],
      };
    },
    60_000,
  );

  // --- credentials: service-account signing keys and static tokens for the clients we start.
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const saKey = path.join(pkiDir, 'sa.key');
  const saPub = path.join(pkiDir, 'sa.pub');
  writeFileSync(saKey, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  writeFileSync(saPub, publicKey.export({ type: 'spki', format: 'pem' }));
  const token = () => randomBytes(24).toString('hex');
  const adminToken = token();
  const controllerManagerToken = token();
  const schedulerToken = token();
  const tokenFile = path.join(pkiDir, 'tokens.csv');
  writeFileSync(
    tokenFile,
    [
      `${adminToken},filecluster-admin,uid-admin,"system:masters"`,
      `${controllerManagerToken},system:kube-controller-manager,uid-kcm`,
      `${schedulerToken},system:kube-scheduler,uid-scheduler`,
      '',
    ].join('\n'),
    { mode: 0o600 },
  );

  // --- kube-apiserver (serving certificate self-generated into certDir, CA included in the file)
  const certDir = path.join(pkiDir, 'apiserver');
  let serverUrl = '';
  await startComponent(
    'kube-apiserver',
    async () => {
      const port = await freePort();
      serverUrl = `https://127.0.0.1:${port}`;
      return {
        argv: [
          path.join(assets, 'kube-apiserver'),
          `--etcd-servers=${etcdUrl}`,
          '--bind-address=127.0.0.1',
          '--advertise-address=127.0.0.1',
          `--secure-port=${port}`,
          `--cert-dir=${certDir}`,
          '--service-cluster-ip-range=10.0.0.0/24',
          '--authorization-mode=Node,RBAC',
          `--token-auth-file=${tokenFile}`,
          `--service-account-issuer=${SERVICE_ACCOUNT_ISSUER}`,
          `--service-account-key-file=${saPub}`,
          `--service-account-signing-key-file=${saKey}`,
          '--allow-privileged=true',
          // On by default since 1.30; named so the chart's policy on the operator's pod patches is always
          // enforced here, whatever the defaults of the binary.
          '--enable-admission-plugins=ValidatingAdmissionPolicy',
          // The kubernetes Service cannot point at a loopback address; nothing here needs it.
          '--endpoint-reconciler-type=none',
          '--profiling=false',
          '--v=1',
        ],
        healthy: async () => (await getStatus(`${serverUrl}/readyz`, { Authorization: `Bearer ${adminToken}` })).status === 200,
        ports: [port],
      };
    },
    120_000,
  );
  const caFile = path.join(certDir, 'apiserver.crt');
  const caPem = readFileSync(caFile, 'utf8');

  const adminKubeconfigPath = path.join(dir, 'kubeconfig');
  writeFileAtomic(adminKubeconfigPath, kubeconfigYaml(serverUrl, caPem, adminToken, 'filecluster-admin'));
  const controllerManagerKubeconfig = path.join(pkiDir, 'kube-controller-manager.kubeconfig');
  writeFileAtomic(controllerManagerKubeconfig, kubeconfigYaml(serverUrl, caPem, controllerManagerToken, 'system:kube-controller-manager'));
  const schedulerKubeconfig = path.join(pkiDir, 'kube-scheduler.kubeconfig');
  writeFileAtomic(schedulerKubeconfig, kubeconfigYaml(serverUrl, caPem, schedulerToken, 'system:kube-scheduler'));

  // --- kube-controller-manager and kube-scheduler
  await startComponent(
    'kube-controller-manager',
    async () => {
      const port = await freePort();
      return {
        argv: [
          path.join(assets, 'kube-controller-manager'),
          `--kubeconfig=${controllerManagerKubeconfig}`,
          `--authentication-kubeconfig=${controllerManagerKubeconfig}`,
          `--authorization-kubeconfig=${controllerManagerKubeconfig}`,
          '--bind-address=127.0.0.1',
          `--secure-port=${port}`,
          `--cert-dir=${path.join(pkiDir, 'kube-controller-manager')}`,
          '--controllers=*',
          '--leader-elect=false',
          '--use-service-account-credentials=true',
          // New nodes carry a not-ready taint until the node lifecycle controller sees them Ready.
          '--node-monitor-period=1s',
          // Each controller gets its own credentials at start; the default client rate limit spreads that over seconds.
          '--kube-api-qps=200',
          '--kube-api-burst=400',
          '--authentication-skip-lookup=true',
          `--root-ca-file=${caFile}`,
          `--service-account-private-key-file=${saKey}`,
          '--v=1',
        ],
        healthy: async () => (await getStatus(`https://127.0.0.1:${port}/healthz`)).status === 200,
        ports: [port],
      };
    },
    60_000,
  );
  await startComponent(
    'kube-scheduler',
    async () => {
      const port = await freePort();
      return {
        argv: [
          path.join(assets, 'kube-scheduler'),
          `--kubeconfig=${schedulerKubeconfig}`,
          `--authentication-kubeconfig=${schedulerKubeconfig}`,
          `--authorization-kubeconfig=${schedulerKubeconfig}`,
          '--bind-address=127.0.0.1',
          `--secure-port=${port}`,
          `--cert-dir=${path.join(pkiDir, 'kube-scheduler')}`,
          '--authentication-skip-lookup=true',
          '--leader-elect=false',
          '--v=1',
        ],
        healthy: async () => (await getStatus(`https://127.0.0.1:${port}/healthz`)).status === 200,
        ports: [port],
      };
    },
    60_000,
  );

  // A component that lost a port race exits soon after start, possibly after a health check reached
  // another cluster's process on that port; by now it has.
  for (const component of components) {
    if (!isProcessAlive(component.pid)) {
      await stop();
      throw new Error(`${component.name} exited after starting; log tail:\n${await tail(component.logFile)}`);
    }
  }

  const restartApiServer = async () => {
    const apiserver = components.find((c) => c.name === 'kube-apiserver')!;
    await supervisor.stop(apiserver.pid, 5000);
    apiserver.pid = supervisor.spawn(apiserver.name, apiserver.argv, { logFile: apiserver.logFile, cwd: dir, env }).pid!;
    const deadline = Date.now() + 120_000;
    while (!(await apiserver.healthy().catch(() => false))) {
      if (Date.now() > deadline || !isProcessAlive(apiserver.pid))
        throw new Error(`kube-apiserver did not come back after a restart; log tail:\n${await tail(apiserver.logFile)}`);
      await sleep(100);
    }
    log(`kube-apiserver restarted (pid ${apiserver.pid})`);
  };

  return {
    serverUrl,
    caPem,
    adminToken,
    adminKubeconfigPath,
    get pids() {
      return components.map((c) => c.pid);
    },
    ports,
    logFiles: components.map((c) => c.logFile),
    restartApiServer,
    stop,
  };
}
