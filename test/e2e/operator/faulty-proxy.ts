// A TCP proxy in front of the API server that misbehaves the way networks do: streams cut,
// connections refused, stalled or slow to open, connections that silently stop carrying data.
import net from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';

/** TLS passes through untouched; only the transport misbehaves. */
export class FaultyProxy {
  /** pass: forward; refuse: close new connections at once; hang: accept new connections, carry nothing (see hang()). */
  mode: 'pass' | 'refuse' | 'hang' = 'pass';
  /** New connections wait this long before they are connected through (a slow network path). */
  connectDelayMs = 0;
  /** Connections accepted so far. */
  accepted = 0;
  private readonly pairs = new Set<{ client: net.Socket; upstream: net.Socket }>();
  private readonly stalled = new Set<net.Socket>();
  private readonly server: net.Server;
  port = 0;

  constructor(target: { host: string; port: number }) {
    this.server = net.createServer((client) => {
      this.accepted++;
      if (this.mode === 'refuse') return void client.destroy();
      if (this.mode === 'hang') {
        this.stalled.add(client);
        client.on('error', () => undefined).on('close', () => this.stalled.delete(client));
        return;
      }
      client.pause();
      const connect = () => {
        if (client.destroyed) return;
        const upstream = net.connect(target.port, target.host);
        const pair = { client, upstream };
        this.pairs.add(pair);
        client.pipe(upstream);
        upstream.pipe(client);
        client.resume();
        const end = () => {
          client.destroy();
          upstream.destroy();
          this.pairs.delete(pair);
        };
        client.on('error', end).on('close', end);
        upstream.on('error', end).on('close', end);
      };
      if (this.connectDelayMs > 0) setTimeout(connect, this.connectDelayMs);
      else connect();
    });
  }

  /** A proxy in front of the server of `direct` (a kubeconfig), listening on a free loopback port. */
  static async inFrontOf(direct: KubeConfig): Promise<{ proxy: FaultyProxy; kubeConfig: KubeConfig }> {
    const server = new URL(direct.getCurrentCluster()!.server);
    const proxy = new FaultyProxy({ host: server.hostname, port: Number(server.port || 443) });
    await proxy.listen();
    return { proxy, kubeConfig: throughProxy(direct, proxy) };
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

  /** Every request from now on hangs: the open connections and any new one carry nothing (until mode is 'pass' again). */
  hang(): void {
    this.mode = 'hang';
    this.stallAll({ resetOnSend: false });
  }

  /**
   * Open connections stay open but carry nothing more in either direction, as behind a middlebox that
   * lost their state. With `resetOnSend`, the next request sent on one (an idle keep-alive connection)
   * gets it reset, as such a middlebox answers a packet it no longer knows; without, it hangs.
   */
  stallAll({ resetOnSend }: { resetOnSend: boolean }): void {
    for (const { client, upstream } of this.pairs) {
      client.unpipe(upstream);
      upstream.unpipe(client);
      upstream.pause();
      if (!resetOnSend) {
        client.pause();
        continue;
      }
      client.on('data', () => {
        client.destroy();
        upstream.destroy();
      });
      client.resume();
    }
  }

  async close(): Promise<void> {
    this.cutAll();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

/** A KubeConfig that reaches the cluster's API server through a proxy on this machine. */
export function throughProxy(direct: KubeConfig, proxy: FaultyProxy): KubeConfig {
  const current = direct.getCurrentCluster()!;
  const server = new URL(current.server);
  const viaProxy = new KubeConfig();
  viaProxy.loadFromOptions({
    clusters: [{ ...current, server: `https://127.0.0.1:${proxy.port}`, ...(net.isIP(server.hostname) !== 0 ? {} : { tlsServerName: server.hostname }) }],
    users: direct.users,
    contexts: direct.contexts,
    currentContext: direct.currentContext,
  });
  return viaProxy;
}
