// Three (or more) file servers as containers of the locally built image. Each container sits on two
// networks: a "clients" network (testcontainers Network) that carries its published ports, bound on
// 127.0.0.1 only, and an internal "peers" network over which the nodes replicate, reaching each other
// by alias. A partition disconnects a container from the peers network only, so the test can still
// write to both sides through the published ports. Host ports are fixed per container (picked free at
// start), so they survive kills and restarts. Each node's /data is a directory of this machine owned by
// the image's non-root user (what a volume is to a pod), kept across restarts, removed by close().
import { chmodSync, chownSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Dockerode from 'dockerode';
import { GenericContainer, Network, Wait, getContainerRuntimeClient, type StartedNetwork, type StartedTestContainer } from 'testcontainers';
import { waitFor } from '../../harness/index.ts';
import { TOKEN, api } from '../../integration/fileserver/support/nodes.ts';
import { freePort, removeDir } from '../../harness/processes.ts';

const API_PORT = 8080;
const METRICS_PORT = 9090;
const UID = 65532;

/** Publishes container ports on fixed loopback host ports (testcontainers alone binds every interface). */
class LoopbackContainer extends GenericContainer {
  withLoopbackPorts(bindings: Array<{ container: number; host: number }>): this {
    this.withExposedPorts(...bindings);
    for (const b of bindings) this.hostConfig.PortBindings![`${b.container}/tcp`] = [{ HostIp: '127.0.0.1', HostPort: String(b.host) }];
    return this;
  }
}

export interface NodeSpec {
  id: string;
  env?: Record<string, string>;
  /** Mounts /data as a tmpfs of this size (e.g. "16m") for disk-full tests (its content does not survive a restart). */
  tmpfsDataSize?: string;
}

export class ContainerNode {
  readonly id: string;
  readonly container: StartedTestContainer;
  readonly apiPort: number;
  readonly metricsPort: number;
  private readonly peers: Dockerode.Network;

  constructor(id: string, container: StartedTestContainer, apiPort: number, metricsPort: number, peers: Dockerode.Network) {
    this.id = id;
    this.container = container;
    this.apiPort = apiPort;
    this.metricsPort = metricsPort;
    this.peers = peers;
  }

  get url(): string {
    return `http://127.0.0.1:${this.apiPort}`;
  }

  get metricsUrl(): string {
    return `http://127.0.0.1:${this.metricsPort}/metrics`;
  }

  private async handle(): Promise<Dockerode.Container> {
    return (await getContainerRuntimeClient()).container.getById(this.container.getId());
  }

  async state(): Promise<{ Running: boolean; Paused: boolean }> {
    return (await (await this.handle()).inspect()).State;
  }

  /** SIGKILL to the server process (docker kill); returns once the container has stopped. */
  async kill(): Promise<void> {
    await (await this.handle()).kill({ signal: 'SIGKILL' });
    await waitFor(async () => !(await this.state()).Running, 30_000, `${this.id} to stop`, 100);
  }

  /** Starts the stopped container again (same data, networks and ports) and waits for /healthz. */
  async start(): Promise<void> {
    await (await this.handle()).start();
    await this.waitHealthy();
  }

  async waitHealthy(timeoutMs = 60_000): Promise<void> {
    await waitFor(async () => (await api(this.url, 'GET', '/healthz')).status === 200, timeoutMs, `${this.id} /healthz`, 100);
  }

  /** SIGSTOP of every process in the container (cgroup freezer), and back. */
  async pause(): Promise<void> {
    await (await this.handle()).pause();
  }

  async unpause(): Promise<void> {
    await (await this.handle()).unpause();
  }

  /** Cuts the container off the peers network (clients still reach it), and back. */
  async disconnect(): Promise<void> {
    await this.peers.disconnect({ Container: this.container.getId(), Force: true });
  }

  async connect(): Promise<void> {
    await this.peers.connect({ Container: this.container.getId(), EndpointConfig: { Aliases: [this.id] } });
  }

  /** Runs Node inside the container (the image has no shell). */
  async node(script: string): Promise<{ exitCode: number; output: string }> {
    const r = await this.container.exec(['/usr/local/bin/node', '-e', script]);
    return { exitCode: r.exitCode, output: r.output };
  }

  async logs(tail = 40): Promise<string> {
    const stream = await this.container.logs({ tail });
    const chunks: string[] = [];
    await new Promise<void>((resolve) => {
      stream.on('data', (d: Buffer | string) => chunks.push(d.toString()));
      stream.on('end', () => resolve());
      setTimeout(resolve, 2000);
    });
    return chunks.join('');
  }
}

export class ContainerCluster {
  readonly nodes: ContainerNode[] = [];
  private clients: StartedNetwork | undefined;
  private peers: Dockerode.Network | undefined;
  private readonly volumes = mkdtempSync(join(tmpdir(), 'fc-resilience-volumes-'));

  /** A host directory the container's user can write, like a pod's volume. */
  private volume(id: string): string {
    const dir = join(this.volumes, id);
    mkdirSync(dir);
    try {
      chownSync(dir, UID, UID);
    } catch {
      chmodSync(dir, 0o777); // not root: no chown, so open it to every user instead
    }
    return dir;
  }

  /** Starts one container per spec; every node gets the others as static peers (generation 0). */
  static async start(image: string, specs: NodeSpec[]): Promise<ContainerCluster> {
    const c = new ContainerCluster();
    try {
      await c.startAll(image, specs);
    } catch (err) {
      await c.close();
      throw err;
    }
    return c;
  }

  private async startAll(image: string, specs: NodeSpec[]): Promise<void> {
    const client = await getContainerRuntimeClient();
    this.clients = await new Network().start();
    // Internal: the peers network has no way out, and never carries the published ports.
    this.peers = await client.network.create({ Name: `${this.clients.getName()}-peers`, Driver: 'bridge', Internal: true, CheckDuplicate: true });
    const peers = this.peers;
    const peerSpec = specs.map((s) => `${s.id}=http://${s.id}:${API_PORT}`).join(',');
    const started = await Promise.all(
      specs.map(async (s) => {
        const apiPort = await freePort('127.0.0.1');
        const metricsPort = await freePort('127.0.0.1');
        let def = new LoopbackContainer(image)
          .withNetwork(this.clients!)
          .withLoopbackPorts([
            { container: API_PORT, host: apiPort },
            { container: METRICS_PORT, host: metricsPort },
          ])
          .withEnvironment({ FC_NODE_ID: s.id, FC_TOKEN: TOKEN, FC_PEERS: peerSpec, FC_LOG_LEVEL: 'info', ...s.env })
          .withWaitStrategy(Wait.forHttp('/healthz', API_PORT))
          .withStartupTimeout(60_000);
        def = s.tmpfsDataSize
          ? def.withTmpFs({ '/data': `rw,size=${s.tmpfsDataSize},uid=${UID},gid=${UID}` })
          : def.withBindMounts([{ source: this.volume(s.id), target: '/data' }]);
        const container = await def.start();
        const node = new ContainerNode(s.id, container, apiPort, metricsPort, peers);
        this.nodes.push(node);
        await node.connect();
        return node;
      }),
    );
    this.nodes.splice(0, this.nodes.length, ...started);
  }

  node(id: string): ContainerNode {
    const n = this.nodes.find((x) => x.id === id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  /** The last log lines of every node, for failure messages. */
  async diagnostics(): Promise<string> {
    const parts = await Promise.all(this.nodes.map(async (n) => `--- ${n.id}\n${await n.logs().catch((e: Error) => e.message)}`));
    return parts.join('\n');
  }

  async close(): Promise<void> {
    const client = await getContainerRuntimeClient();
    for (const n of this.nodes) {
      const h = client.container.getById(n.container.getId());
      const st = await h.inspect().then(
        (i) => i.State,
        () => undefined,
      );
      if (st?.Paused) await h.unpause().catch(() => undefined);
      await h.remove({ force: true, v: true }).catch(() => undefined);
    }
    this.nodes.length = 0;
    if (this.peers) await this.peers.remove().catch(() => undefined);
    if (this.clients) await this.clients.stop().catch(() => undefined);
    removeDir(this.volumes);
  }
}
