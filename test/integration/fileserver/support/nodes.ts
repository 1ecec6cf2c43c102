import assert from 'node:assert/strict';
// Starts real file-server processes (`node dist/fileserver/src/main.js`, compiled when stale) on distinct loopback addresses with
// ephemeral ports and real temporary data directories, and cleans all of it up.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { compiledEntrypoint } from '../../../harness/assets.ts';
import { waitFor } from '../../../harness/wait.ts';

export const REPO_ROOT = resolve(import.meta.dirname, '../../../..');
export const TOKEN = 'test-cluster-token';
const NODE_BIN_DIR = join(REPO_ROOT, 'node_modules/.bin');

let nextAddress = 1 + (process.pid % 200);
/**
 * A loopback address no other node of this test run uses. 127.251.x.y lies outside the blocks other
 * tests allocate (the packaging tests use 127.2-9, the Kubernetes harness gives pods 127.10-250).
 */
export function freshAddress(): string {
  const n = nextAddress++;
  return `127.251.${(n >> 8) & 255}.${n & 255 || 1}`;
}

export interface NodeOptions {
  id: string;
  env?: Record<string, string>;
  dataDir?: string;
  host?: string;
  port?: number;
  /** The compiled entry point to run (a benchmark's baseline build); this tree's by default. */
  entry?: string;
}

/** A line of output as its JSON log record, or undefined for a line that is not one. */
function logRecord(line: string): Record<string, unknown> | undefined {
  try {
    const rec: unknown = JSON.parse(line);
    return rec !== null && typeof rec === 'object' ? (rec as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

export class FileServerNode {
  readonly id: string;
  readonly host: string;
  readonly dataDir: string;
  port = 0;
  metricsPort = 0;
  proc: ChildProcess | undefined;
  logs: string[] = [];
  private readonly env: Record<string, string>;
  private readonly entry: string | undefined;
  private exited: Promise<number | null> | undefined;

  constructor(o: Required<Pick<NodeOptions, 'id' | 'dataDir' | 'host'>> & { env: Record<string, string>; port: number; entry?: string }) {
    this.id = o.id;
    this.dataDir = o.dataDir;
    this.host = o.host;
    this.port = o.port;
    this.env = o.env;
    this.entry = o.entry;
  }

  get url(): string {
    return `http://${this.host}:${this.port}`;
  }

  get metricsUrl(): string {
    return `http://${this.host}:${this.metricsPort}/metrics`;
  }

  /** Starts the process (again, on the same port if it ran before) and waits for its "listening" log line. */
  async start(extraEnv: Record<string, string> = {}): Promise<void> {
    const proc = spawn(process.execPath, [this.entry ?? compiledEntrypoint('fileserver')], {
      cwd: REPO_ROOT,
      env: {
        PATH: `${NODE_BIN_DIR}:${process.env.PATH ?? ''}`,
        FC_NODE_ID: this.id,
        FC_HOST: this.host,
        FC_PORT: String(this.port),
        FC_METRICS_PORT: '0',
        FC_DATA_DIR: this.dataDir,
        FC_TOKEN: TOKEN,
        FC_LOG_LEVEL: 'info',
        ...this.env,
        ...extraEnv,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.proc = proc;
    this.exited = new Promise((r) => proc.once('exit', (code) => r(code)));
    const lines = createInterface({ input: proc.stdout! });
    const errLines = createInterface({ input: proc.stderr! });
    errLines.on('line', (l) => this.logs.push(l));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.id} did not start: ${this.logs.slice(-5).join('\n')}`)), 30_000);
      proc.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`${this.id} exited with ${code} while starting: ${this.logs.slice(-5).join('\n')}`));
      });
      lines.on('line', (l) => {
        this.logs.push(l);
        if (this.logs.length > 2000) this.logs.splice(0, 1000);
        const rec = logRecord(l);
        if (rec?.['msg'] === 'listening') {
          this.port = rec['port'] as number;
          this.metricsPort = rec['metricsPort'] as number;
          clearTimeout(timer);
          resolve();
        }
      });
    });
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<number | null> {
    if (!this.proc || this.proc.exitCode !== null || this.proc.signalCode !== null) return this.proc?.exitCode ?? null;
    this.proc.kill(signal);
    return (await this.exited) ?? null;
  }

  /** The JSON log records the node has written, in order (other output, such as a stack trace, left out). */
  logRecords(): Array<Record<string, unknown>> {
    return this.logs.map(logRecord).filter((r) => r !== undefined);
  }

  /** Pauses or resumes the process (SIGSTOP / SIGCONT), like a frozen pod. */
  pause(on: boolean): void {
    this.proc?.kill(on ? 'SIGSTOP' : 'SIGCONT');
  }
}

export class TestCluster {
  readonly nodes: FileServerNode[] = [];
  private readonly dirs: string[] = [];
  private generation = 0;

  async add(o: NodeOptions): Promise<FileServerNode> {
    const dataDir = o.dataDir ?? (await mkdtemp(join(tmpdir(), `fc-${o.id}-`)));
    if (!o.dataDir) this.dirs.push(dataDir);
    const node = new FileServerNode({ id: o.id, dataDir, host: o.host ?? freshAddress(), env: o.env ?? {}, port: o.port ?? 0, entry: o.entry });
    this.nodes.push(node);
    await node.start();
    return node;
  }

  /** Pushes the full peer list (every node, the operator's way) to each given node. */
  async pushPeers(targets: FileServerNode[] = this.nodes, members: FileServerNode[] = this.nodes): Promise<number> {
    this.generation++;
    const body = { generation: this.generation, peers: members.map((n) => ({ id: n.id, url: n.url })) };
    for (const n of targets) {
      const res = await api(n, 'PUT', '/internal/peers', { json: body, auth: true });
      if (res.status !== 200) throw new Error(`peer list push to ${n.id} failed: ${res.status} ${res.text}`);
    }
    return this.generation;
  }

  async close(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.kill('SIGKILL')));
    await Promise.all(this.dirs.map((d) => rm(d, { recursive: true, force: true })));
  }
}

export interface ApiAnswer {
  status: number;
  headers: Headers;
  body: Buffer;
  text: string;
  json<T = Record<string, unknown>>(): T;
}

export async function api(
  node: FileServerNode | string,
  method: string,
  path: string,
  o: { body?: Buffer | string; json?: unknown; headers?: Record<string, string>; auth?: boolean } = {},
): Promise<ApiAnswer> {
  const base = typeof node === 'string' ? node : node.url;
  const headers: Record<string, string> = { ...o.headers };
  if (o.auth) headers.authorization = `Bearer ${TOKEN}`;
  let body: Buffer | string | undefined = o.body;
  if (o.json !== undefined) {
    body = JSON.stringify(o.json);
    headers['content-type'] ??= 'application/json';
  }
  const res = await fetch(`${base}${path}`, { method, headers, ...(body !== undefined ? { body } : {}) });
  const buf = Buffer.from(await res.arrayBuffer());
  return {
    status: res.status,
    headers: res.headers,
    body: buf,
    text: buf.toString(),
    json<T>() {
      return JSON.parse(buf.toString()) as T;
    },
  };
}

/** The harness's poller, with this module's argument order and defaults (30 s, every 100 ms). */
export function eventually<T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs = 30_000, everyMs = 100): Promise<T> {
  return waitFor(check, timeoutMs, what, everyMs);
}

/** The value of a metric sample line in Prometheus text format, e.g. `filecluster_peers` or `...{peer="b"}`. */
export async function metric(node: FileServerNode, sample: string): Promise<number | undefined> {
  const text = await (await fetch(node.metricsUrl)).text();
  for (const line of text.split('\n')) {
    if (line.startsWith(`${sample} `)) return Number(line.slice(sample.length + 1));
  }
  return undefined;
}

/** Whether `node` owes no change to any peer (every push acknowledged). */
export async function owesNothing(node: FileServerNode): Promise<boolean> {
  const s = (await api(node, 'GET', '/internal/status', { auth: true })).json<{ peers: Array<{ pendingChanges: number }> }>();
  return s.peers.every((p) => p.pendingChanges === 0);
}

/** True once every node holds the identical manifest (files, versions and tombstones). */
export async function converged(nodes: FileServerNode[]): Promise<boolean> {
  const digests = await Promise.all(nodes.map(async (n) => (await api(n, 'GET', '/internal/digest', { auth: true })).text));
  return digests.every((d) => d === digests[0]);
}

/** Writes `count` files with `concurrency` parallel clients; returns the bodies of those acknowledged. */
export async function writeMany(
  node: FileServerNode,
  count: number,
  o: { prefix: string; concurrency?: number; size?: number; stopOnError?: boolean; acked?: Map<string, Buffer> },
): Promise<Map<string, Buffer>> {
  const acked = o.acked ?? new Map<string, Buffer>();
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (next < count && !(failed && o.stopOnError)) {
      const i = next++;
      const path = `${o.prefix}/${i}`;
      const body = Buffer.from(`${path} ${'.'.repeat(o.size ?? 64)}`);
      try {
        const r = await api(node, 'PUT', `/files/${path}`, { body });
        if (r.status === 201 || r.status === 200) acked.set(path, body);
        else failed = true;
      } catch {
        failed = true;
      }
    }
  };
  await Promise.all(Array.from({ length: o.concurrency ?? 16 }, worker));
  return acked;
}

/** The environment that starts a node with its wall clock `offsetMs` off (FAULT INJECTION: support/fake-clock.ts). */
export function skewedClockEnv(offsetMs: number): Record<string, string> {
  return { NODE_OPTIONS: `--import=${join(import.meta.dirname, 'fake-clock.ts')}`, FAKE_CLOCK_OFFSET_MS: String(offsetMs) };
}

/** Asserts that `node` serves each of `files` (path -> bytes) with exactly those bytes. */
export async function assertHolds(node: FileServerNode, files: Map<string, Buffer>): Promise<void> {
  for (const [path, body] of files) {
    const r = await api(node, 'GET', `/files/${path}`);
    assert.equal(r.status, 200, `${path} on ${node.id}: ${r.text.slice(0, 200)}`);
    assert.ok(r.body.equals(body), `${path} bytes on ${node.id}`);
  }
}
