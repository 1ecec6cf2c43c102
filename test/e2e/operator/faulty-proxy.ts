// A TCP proxy in front of the API server that misbehaves the way networks do: streams cut, connections
// refused, connections that silently stop carrying data. TLS passes through untouched.
import net from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';

export class FaultyProxy {
  /** pass: forward; refuse: close new connections at once; stall: accept new connections, carry nothing. */
  mode: 'pass' | 'refuse' | 'stall' = 'pass';
  private readonly pairs = new Set<{ client: net.Socket; upstream: net.Socket }>();
  private readonly stalled = new Set<net.Socket>();
  private readonly server: net.Server;
  port = 0;

  constructor(target: { host: string; port: number }) {
    this.server = net.createServer((client) => {
      if (this.mode === 'refuse') return void client.destroy();
      if (this.mode === 'stall') {
        this.stalled.add(client);
        client.on('error', () => {}).on('close', () => this.stalled.delete(client));
        return;
      }
      const upstream = net.connect(target.port, target.host);
      const pair = { client, upstream };
      this.pairs.add(pair);
      client.pipe(upstream);
      upstream.pipe(client);
      const end = () => {
        client.destroy();
        upstream.destroy();
        this.pairs.delete(pair);
      };
      client.on('error', end).on('close', end);
      upstream.on('error', end).on('close', end);
    });
  }

  /** A proxy in front of the server of `direct` (a kubeconfig), listening on a free loopback port. */
  static async inFrontOf(direct: KubeConfig): Promise<{ proxy: FaultyProxy; kubeConfig: KubeConfig }> {
    const server = new URL(direct.getCurrentCluster()!.server);
    const proxy = new FaultyProxy({ host: server.hostname, port: Number(server.port || 443) });
    await proxy.listen();
    const viaProxy = new KubeConfig();
    const current = direct.getCurrentCluster()!;
    const isIp = net.isIP(server.hostname) !== 0;
    viaProxy.loadFromOptions({
      clusters: [{ ...current, server: `https://127.0.0.1:${proxy.port}`, ...(isIp ? {} : { tlsServerName: server.hostname }) }],
      users: direct.users,
      contexts: direct.contexts,
      currentContext: direct.currentContext,
    });
    return { proxy, kubeConfig: viaProxy };
  }

  async listen(): Promise<void> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  get connections(): number {
    return this.pairs.size;
  }

  /** Cuts every open connection (a closed stream, as a load balancer or restart does). */
  cutAll(): void {
    for (const { client, upstream } of this.pairs) {
      client.destroy();
      upstream.destroy();
    }
    for (const client of this.stalled) client.destroy();
  }

  /** Open connections stay open but carry nothing more in either direction. */
  stallAll(): void {
    for (const { client, upstream } of this.pairs) {
      client.unpipe(upstream);
      upstream.unpipe(client);
      client.pause();
      upstream.pause();
    }
  }

  async close(): Promise<void> {
    this.cutAll();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}
