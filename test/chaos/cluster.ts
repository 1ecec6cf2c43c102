// The cluster a chaos schedule runs against: real file-server processes on loopback with real data
// directories, and the nemesis that acts on them: kill -9 and restart, SIGSTOP and SIGCONT, peer-list
// generations without a node (as the operator makes them), a skewed clock, network partitions (every
// peer connection runs through a TCP proxy of its own, so one can be cut), bit rot in a stored body, a full
// data volume (each node's data directory on a tmpfs of its own) and a rolling restart. Also heals
// everything and waits for quiescence.
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, open, readdir, readFile, rm, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { FaultyProxy } from '../e2e/operator/faulty-proxy.ts';
import { fillVolume } from '../harness/fill-volume.ts';
import { MIN_RETENTION_INTERVALS } from '../../contract/fileserver-settings.ts';
import { api, type FileServerNode, TestCluster, TOKEN } from '../integration/fileserver/support/nodes.ts';
import type { Violation } from './checker.ts';
import { valueBody } from './client.ts';
import type { FaultEvent, FaultLog, FaultWindow } from './history.ts';
import type { ChaosTarget } from './run-schedule.ts';
import type { Step } from './schedule.ts';

export interface ChaosClusterOptions {
  nodes: number;
  /** FC_TOMBSTONE_RETENTION_SECONDS of every node. */
  retentionSeconds: number;
  /** Puts each node's data directory on a tmpfs of this size (needs root to mount), so a fill fault can fill it. */
  volumeBytes?: number;
}

/** The tmpfs each node's data directory gets when the fill fault is on: room for the workload, the reserve and the WAL. */
export const FULL_VOLUME_BYTES = 32 * 1024 * 1024;
const PUSH_TIMEOUT_MS = 2_000;
const READY_TIMEOUT_MS = 10_000;
const CLOCK_SKEW_PRELOAD = join(import.meta.dirname, 'clock-skew-preload.ts');
const FILLER = 'chaos-filler';
const DB_FILE = 'store.db';
const run = promisify(execFile);

function clockSkewEnv(ms: number): Record<string, string> {
  return { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import ${CLOCK_SKEW_PRELOAD}`.trim(), FC_FAULT_CLOCK_OFFSET_MS: String(ms) };
}

/** A stored body of one value, and where to damage a byte of it (past its id prefix, so a damaged read still names it). */
interface StoredBody {
  file: string;
  offset: number;
  value: string;
}

/** The bodies whose bytes lie whole in `file` at a known offset: object files, and small bodies in the database file. */
async function storedBodies(dataDir: string): Promise<StoredBody[]> {
  const found: StoredBody[] = [];
  const objects = join(dataDir, 'objects');
  const names = await readdir(objects, { recursive: true }).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [] as string[];
    throw err;
  });
  for (const name of names.sort()) {
    if (name.endsWith('.tmp')) continue;
    const file = join(objects, name);
    let head: Buffer;
    try {
      head = await readFile(file);
    } catch (err) {
      // A directory, or collected since the listing.
      if (['EISDIR', 'ENOENT'].includes((err as NodeJS.ErrnoException).code ?? '')) continue;
      throw err;
    }
    const m = /^(w\d+s(\d+))\|/.exec(head.subarray(0, 40).toString('latin1'));
    if (m && Number(m[2]) === head.length) found.push({ file, value: m[1]!, offset: Math.max(m[0].length, Math.floor(head.length / 2)) });
  }
  // Small bodies fit in one database page, so their bytes are contiguous in the file.
  const dbFile = join(dataDir, DB_FILE);
  const db = await readFile(dbFile).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return Buffer.alloc(0);
    throw err;
  });
  for (const m of db.toString('latin1').matchAll(/(w\d+s(\d+))\|/g)) {
    const size = Number(m[2]);
    if (size > 3000 || !db.subarray(m.index, m.index + size).equals(valueBody(m[1]!, size))) continue;
    const offset = Math.max(m[0].length, Math.floor(size / 2));
    if (offset < size) found.push({ file: dbFile, value: m[1]!, offset: m.index + offset });
  }
  return found;
}

/**
 * Zeroes a byte in the middle of the stored body `pick` chooses; the body, or undefined when there is
 * none. A running node may collect an object file between the listing and the write: the listing is
 * then taken again.
 */
async function damageOne(dataDir: string, pick: number): Promise<StoredBody | undefined> {
  for (let attempt = 0; ; attempt++) {
    const bodies = await storedBodies(dataDir);
    if (bodies.length === 0) return undefined;
    const b = bodies[pick % bodies.length]!;
    let fh;
    try {
      fh = await open(b.file, 'r+');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' && attempt < 5) continue;
      throw err;
    }
    try {
      // A body byte is never 0, so a second hit on the same body cannot undo the first.
      await fh.write(Buffer.alloc(1), 0, 1, b.offset);
    } finally {
      await fh.close();
    }
    return b;
  }
}

export class ChaosCluster implements ChaosTarget {
  readonly cluster = new TestCluster();
  readonly down = new Set<FileServerNode>();
  readonly paused = new Set<FileServerNode>();
  readonly removed = new Set<FileServerNode>();
  readonly isolated = new Set<FileServerNode>();
  readonly filled = new Set<FileServerNode>();
  /** Extra environment a node runs with (a skewed clock), kept across the nemesis's restarts. */
  private readonly faultEnv = new Map<FileServerNode, Record<string, string>>();
  /** The nemesis's actions as they happened, for the failure report. */
  readonly events: FaultEvent[] = [];
  readonly faults: FaultLog = { isolated: [], alone: [], full: [], damaged: [] };
  /** The proxy carrying `from`'s connections to `to`, keyed `from>to`. */
  private readonly links = new Map<string, FaultyProxy>();
  private readonly volumes: string[] = [];
  private generation = 0;

  /** The nodes in id order (n1, n2, ...), which schedules index; the test cluster lists them in the order they became ready. */
  nodes: FileServerNode[] = [];

  get members(): FileServerNode[] {
    return this.nodes.filter((n) => !this.removed.has(n));
  }

  endpoints(): FileServerNode[] {
    return this.members;
  }

  readable(): FileServerNode[] {
    return this.nodes;
  }

  async logs(): Promise<Record<string, string[]>> {
    return Object.fromEntries(this.nodes.map((n) => [n.id, n.logs]));
  }

  static async start(o: ChaosClusterOptions): Promise<ChaosCluster> {
    const c = new ChaosCluster();
    const env = {
      FC_ACK_TIMEOUT_MS: '1500',
      // A catch-up each second, or as often as a short retention needs (the file server requires ten per retention).
      FC_CATCHUP_INTERVAL_SECONDS: String(Math.min(1, o.retentionSeconds / MIN_RETENTION_INTERVALS)),
      FC_TOMBSTONE_RETENTION_SECONDS: String(o.retentionSeconds),
    };
    try {
      const ids = Array.from({ length: o.nodes }, (_, i) => `n${i + 1}`);
      const dataDirs = o.volumeBytes === undefined ? ids.map(() => undefined) : await Promise.all(ids.map((id) => c.mountVolume(id, o.volumeBytes!)));
      c.nodes = await Promise.all(ids.map((id, i) => c.cluster.add({ id, env, ...(dataDirs[i] ? { dataDir: dataDirs[i] } : {}) })));
      for (const from of c.nodes) {
        for (const to of c.nodes) {
          if (from === to) continue;
          const proxy = new FaultyProxy({ host: to.host, port: to.port });
          await proxy.listen();
          c.links.set(`${from.id}>${to.id}`, proxy);
        }
      }
      await c.pushList(0);
    } catch (err) {
      await c.close();
      throw err;
    }
    return c;
  }

  /** A tmpfs of `bytes` with the node's data directory in it, and room beside it for the filler. */
  private async mountVolume(id: string, bytes: number): Promise<string> {
    if (process.getuid?.() !== 0) throw new Error('the full fault puts each data directory on a tmpfs, which needs root to mount; run without full in --faults');
    const mountPoint = await mkdtemp(join(tmpdir(), `fc-chaos-${id}-`));
    await run('mount', ['-t', 'tmpfs', '-o', `size=${bytes}`, 'tmpfs', mountPoint]);
    this.volumes.push(mountPoint);
    const dataDir = join(mountPoint, 'data');
    await mkdir(dataDir);
    return dataDir;
  }

  /** The peer list as `n` gets it: every other member at the address of the proxy carrying n's connections to it. */
  private listFor(n: FileServerNode): unknown {
    return {
      generation: this.generation,
      peers: this.members.map((m) => ({ id: m.id, url: m === n ? m.url : `http://127.0.0.1:${this.links.get(`${n.id}>${m.id}`)!.port}` })),
    };
  }

  /**
   * A new generation naming the current members, pushed to every member that can take it now (`at`: when
   * the step began). A list of one member makes that node alone by its list from then until a longer list
   * has reached it.
   */
  private async pushList(at: number): Promise<void> {
    this.generation++;
    const started = performance.now();
    const members = this.members;
    if (members.length === 1 && !this.faults.alone.some((w) => w.node === members[0]!.id && w.to === Number.POSITIVE_INFINITY)) {
      this.faults.alone.push({ node: members[0]!.id, from: at, to: Number.POSITIVE_INFINITY });
    }
    const reachable = members.filter((n) => !this.down.has(n) && !this.paused.has(n));
    await Promise.all(reachable.map((n) => this.push(n, this.listFor(n))));
    if (members.length > 1) for (const n of members) this.closeWindow(this.faults.alone, n, at + (performance.now() - started));
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
    await this.push(n, this.listFor(n));
  }

  /** Cuts or restores the links to and from `n`; a link stays cut while either end is isolated. */
  private isolate(n: FileServerNode, on: boolean, at: number): void {
    if (on) {
      this.isolated.add(n);
      this.faults.isolated.push({ node: n.id, from: at, to: Number.POSITIVE_INFINITY });
    } else {
      this.isolated.delete(n);
      for (const w of this.faults.isolated) if (w.node === n.id && w.to === Number.POSITIVE_INFINITY) w.to = at;
    }
    for (const [key, proxy] of this.links) {
      const [from, to] = key.split('>');
      const cut = [...this.isolated].some((m) => m.id === from || m.id === to);
      if (cut && proxy.mode === 'pass') {
        // Packets dropped, not refused: open connections hang and new ones never answer.
        proxy.hang();
      } else if (!cut && proxy.mode !== 'pass') {
        proxy.mode = 'pass';
        // The hung connections time out on both ends in a real network; here they end at once.
        proxy.cutAll();
      }
    }
  }

  private closeWindow(windows: FaultWindow[], n: FileServerNode, at: number): void {
    for (const w of windows) if (w.node === n.id && w.to === Number.POSITIVE_INFINITY) w.to = at;
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
          await n.start(this.faultEnv.get(n));
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
        this.faultEnv.set(n, clockSkewEnv(step.ms));
        await this.restartWith(n);
        effect = `restarted ${n.id} with its clock off by ${step.ms} ms`;
        break;
      case 'unskew':
        if (this.faultEnv.delete(n)) {
          await this.restartWith(n);
          effect = `restarted ${n.id} with the true clock`;
        }
        break;
      case 'remove':
        // The operator never removes the last member.
        if (!this.removed.has(n) && this.members.length > 1) {
          this.removed.add(n);
          await this.pushList(at);
          effect = `removed ${n.id} (generation ${this.generation})`;
        }
        break;
      case 'readd':
        if (this.removed.has(n)) {
          this.removed.delete(n);
          await this.pushList(at);
          effect = `re-added ${n.id} (generation ${this.generation})`;
        }
        break;
      case 'partition':
        if (!this.isolated.has(n)) {
          this.isolate(n, true, at);
          effect = `isolated ${n.id} from every other node`;
        }
        break;
      case 'connect':
        if (this.isolated.has(n)) {
          this.isolate(n, false, at);
          effect = `reconnected ${n.id}`;
        }
        break;
      case 'corrupt': {
        const b = await damageOne(n.dataDir, step.pick);
        if (b) {
          this.faults.damaged.push({ node: n.id, value: b.value, at });
          effect = `zeroed a byte of ${b.value} in ${b.file.slice(n.dataDir.length + 1)} on ${n.id}`;
        }
        break;
      }
      case 'fill':
        if (this.volumes.length > 0 && !this.filled.has(n)) {
          const bytes = await fillVolume(join(n.dataDir, '..', FILLER));
          this.filled.add(n);
          this.faults.full.push({ node: n.id, from: at, to: Number.POSITIVE_INFINITY });
          effect = `filled the volume of ${n.id} (${bytes} bytes)`;
        }
        break;
      case 'drain':
        if (this.filled.has(n)) {
          await this.drain(n, at);
          effect = `emptied the filler off the volume of ${n.id}`;
        }
        break;
      case 'roll':
        effect = await this.roll(step.node);
        break;
    }
    this.events.push({ at, step, effect });
  }

  private async drain(n: FileServerNode, at: number): Promise<void> {
    await unlink(join(n.dataDir, '..', FILLER));
    this.filled.delete(n);
    this.closeWindow(this.faults.full, n, at);
  }

  /** kill -9, then start again with the node's fault environment (a running, paused or stopped node alike). */
  private async restartWith(n: FileServerNode): Promise<void> {
    await n.kill('SIGKILL');
    this.paused.delete(n);
    await n.start(this.faultEnv.get(n));
    this.down.delete(n);
    await this.catchUpList(n);
  }

  /**
   * A rolling upgrade: SIGTERM and start each node in turn from `first`, the next only once the last is
   * ready (or after the readiness timeout, as a rollout with a progress deadline goes on). A stopped node
   * is started, a frozen one thawed first.
   */
  private async roll(first: number): Promise<string> {
    const done: string[] = [];
    for (let i = 0; i < this.nodes.length; i++) {
      const n = this.nodes[(first + i) % this.nodes.length]!;
      if (this.paused.has(n)) n.pause(false);
      this.paused.delete(n);
      await n.kill('SIGTERM');
      await n.start(this.faultEnv.get(n));
      this.down.delete(n);
      await this.catchUpList(n);
      done.push(`${n.id}${(await this.ready(n)) ? '' : ' (not ready in time)'}`);
    }
    return `rolled ${done.join(', ')}`;
  }

  private async ready(n: FileServerNode): Promise<boolean> {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if ((await api(n, 'GET', '/readyz')).status === 200) return true;
      await new Promise((r) => setTimeout(r, 100));
    }
    return false;
  }

  async heal(at: number, timeoutMs: number): Promise<Violation[]> {
    await this.endFaults(at);
    if (await this.quiesce(timeoutMs)) return [];
    return [{ property: 'converged', message: `the healed cluster did not converge with an empty backlog within ${timeoutMs} ms` }];
  }

  /**
   * Ends every fault: resumes, reconnects, drains, restarts (with true clocks) and re-adds every node, then
   * pushes one list naming all. A node whose /healthz fails is restarted, as its liveness probe would.
   */
  private async endFaults(at: number): Promise<void> {
    for (const n of this.paused) n.pause(false);
    this.paused.clear();
    for (const n of [...this.isolated]) this.isolate(n, false, at);
    for (const n of [...this.filled]) await this.drain(n, at);
    const skewed = [...this.faultEnv.keys()];
    this.faultEnv.clear();
    for (const n of skewed) await n.kill('SIGKILL');
    for (const n of new Set([...this.down, ...skewed])) await n.start();
    this.down.clear();
    for (const n of this.nodes) {
      if ((await api(n, 'GET', '/healthz')).status === 200) continue;
      await n.kill('SIGKILL');
      await n.start();
      this.events.push({ at, step: { t: 'heal' }, effect: `restarted ${n.id}: its /healthz failed` });
    }
    this.removed.clear();
    await this.pushList(at);
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
    await Promise.all([...this.links.values()].map((p) => p.close()));
    await this.cluster.close();
    for (const dir of this.volumes) {
      await run('umount', [dir]);
      await rm(dir, { recursive: true, force: true });
    }
  }
}
