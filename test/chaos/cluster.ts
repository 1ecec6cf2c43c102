// The cluster a chaos schedule runs against: real file-server processes on loopback with real data
// directories, and the nemesis that acts on them (kill -9 and restart, SIGSTOP and SIGCONT, peer-list
// generations without a node, as the operator makes them). Also heals everything and waits for quiescence.
import { join } from 'node:path';
import { MIN_RETENTION_INTERVALS } from '../../contract/fileserver-settings.ts';
import { api, type FileServerNode, TestCluster, TOKEN } from '../integration/fileserver/support/nodes.ts';
import type { Step } from './schedule.ts';

export interface ChaosClusterOptions {
  nodes: number;
  /** FC_TOMBSTONE_RETENTION_SECONDS of every node. */
  retentionSeconds: number;
}

const PUSH_TIMEOUT_MS = 2_000;
const CLOCK_SKEW_PRELOAD = join(import.meta.dirname, 'clock-skew-preload.ts');

function clockSkewEnv(ms: number): Record<string, string> {
  return { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import ${CLOCK_SKEW_PRELOAD}`.trim(), FC_FAULT_CLOCK_OFFSET_MS: String(ms) };
}

export class ChaosCluster {
  readonly cluster = new TestCluster();
  readonly down = new Set<FileServerNode>();
  readonly paused = new Set<FileServerNode>();
  readonly removed = new Set<FileServerNode>();
  readonly skewed = new Set<FileServerNode>();
  /** The nemesis's actions as they happened, for the failure report. */
  readonly events: Array<{ at: number; step: Step; effect: string }> = [];
  private generation = 0;

  get nodes(): FileServerNode[] {
    return this.cluster.nodes;
  }

  get members(): FileServerNode[] {
    return this.nodes.filter((n) => !this.removed.has(n));
  }

  static async start(o: ChaosClusterOptions): Promise<ChaosCluster> {
    const c = new ChaosCluster();
    const env = {
      FC_ACK_TIMEOUT_MS: '1500',
      // A catch-up each second, or as often as a short retention needs (the file server requires ten per retention).
      FC_CATCHUP_INTERVAL_SECONDS: String(Math.min(1, o.retentionSeconds / MIN_RETENTION_INTERVALS)),
      FC_TOMBSTONE_RETENTION_SECONDS: String(o.retentionSeconds),
    };
    await Promise.all(Array.from({ length: o.nodes }, (_, i) => c.cluster.add({ id: `n${i + 1}`, env })));
    await c.pushList();
    return c;
  }

  /** A new generation naming the current members, pushed to every member that can take it now. */
  private async pushList(): Promise<void> {
    this.generation++;
    const body = { generation: this.generation, peers: this.members.map((n) => ({ id: n.id, url: n.url })) };
    const reachable = this.members.filter((n) => !this.down.has(n) && !this.paused.has(n));
    await Promise.all(reachable.map((n) => this.push(n, body)));
  }

  private async push(n: FileServerNode, body: unknown): Promise<void> {
    const res = await fetch(`${n.url}/internal/peers`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(PUSH_TIMEOUT_MS),
    });
    await res.arrayBuffer();
    if (res.status !== 200) throw new Error(`peer list push to ${n.id} answered ${res.status}`);
  }

  /** Re-sends the current list to one node that missed it (restarted or resumed). */
  private async catchUpList(n: FileServerNode): Promise<void> {
    if (this.removed.has(n)) return;
    await this.push(n, { generation: this.generation, peers: this.members.map((m) => ({ id: m.id, url: m.url })) });
  }

  /** Applies one fault step; steps that do not apply in the current state (restarting a running node) do nothing. */
  async apply(step: Step, at: number): Promise<void> {
    if (!('node' in step)) return;
    const n = this.nodes[step.node % this.nodes.length]!;
    let effect = 'no-op';
    switch (step.t) {
      case 'kill':
        if (!this.down.has(n)) {
          this.paused.delete(n);
          await n.kill('SIGKILL');
          this.down.add(n);
          effect = `killed ${n.id}`;
        }
        break;
      case 'restart':
        if (this.down.has(n)) {
          await n.start();
          this.down.delete(n);
          await this.catchUpList(n);
          effect = `restarted ${n.id}`;
        }
        break;
      case 'pause':
        if (!this.down.has(n) && !this.paused.has(n)) {
          n.pause(true);
          this.paused.add(n);
          effect = `paused ${n.id}`;
        }
        break;
      case 'resume':
        if (this.paused.has(n)) {
          n.pause(false);
          this.paused.delete(n);
          await this.catchUpList(n);
          effect = `resumed ${n.id}`;
        }
        break;
      case 'skew':
        await this.restartWith(n, clockSkewEnv(step.ms));
        this.skewed.add(n);
        effect = `restarted ${n.id} with its clock off by ${step.ms} ms`;
        break;
      case 'unskew':
        if (this.skewed.has(n)) {
          await this.restartWith(n, {});
          this.skewed.delete(n);
          effect = `restarted ${n.id} with the true clock`;
        }
        break;
      case 'remove':
        // The operator never removes the last member.
        if (!this.removed.has(n) && this.members.length > 1) {
          this.removed.add(n);
          await this.pushList();
          effect = `removed ${n.id} (generation ${this.generation})`;
        }
        break;
      case 'readd':
        if (this.removed.has(n)) {
          this.removed.delete(n);
          await this.pushList();
          effect = `re-added ${n.id} (generation ${this.generation})`;
        }
        break;
    }
    this.events.push({ at, step, effect });
  }

  /** kill -9, then start again with `env` (a running, paused or stopped node alike). */
  private async restartWith(n: FileServerNode, env: Record<string, string>): Promise<void> {
    await n.kill('SIGKILL');
    this.paused.delete(n);
    await n.start(env);
    this.down.delete(n);
    await this.catchUpList(n);
  }

  /** Ends every fault: resumes, restarts (with true clocks) and re-adds every node, then pushes one list naming all. */
  async heal(): Promise<void> {
    for (const n of this.paused) n.pause(false);
    this.paused.clear();
    for (const n of this.skewed) await n.kill('SIGKILL');
    for (const n of new Set([...this.down, ...this.skewed])) await n.start();
    this.down.clear();
    this.skewed.clear();
    this.removed.clear();
    await this.pushList();
  }

  /**
   * Waits until every node holds the same manifest and owes its peers nothing. Returns false if that does
   * not happen within the time given.
   */
  async quiesce(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const [digests, backlogs] = await Promise.all([
        Promise.all(this.nodes.map(async (n) => (await api(n, 'GET', '/internal/digest', { auth: true })).text)),
        Promise.all(
          this.nodes.map(async (n) => {
            const s = (await api(n, 'GET', '/internal/status', { auth: true })).json<{ peers: Array<{ pendingChanges: number }> }>();
            return s.peers.reduce((sum, p) => sum + p.pendingChanges, 0);
          }),
        ),
      ]);
      if (digests.every((d) => d === digests[0]) && backlogs.every((b) => b === 0)) return true;
      await new Promise((r) => setTimeout(r, 250));
    }
    return false;
  }

  async close(): Promise<void> {
    for (const n of this.paused) n.pause(false);
    await this.cluster.close();
  }
}
