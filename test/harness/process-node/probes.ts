/**
 * Readiness, liveness and startup probes with Kubernetes' timing (initialDelaySeconds, periodSeconds,
 * timeoutSeconds, successThreshold, failureThreshold) against a local process.
 */
import { spawn } from 'node:child_process';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';

export interface ProbeSpec {
  httpGet?: { path?: string; port: number | string; host?: string; scheme?: string; httpHeaders?: { name: string; value: string }[] };
  tcpSocket?: { port: number | string; host?: string };
  exec?: { command: string[] };
  grpc?: unknown;
  initialDelaySeconds?: number;
  periodSeconds?: number;
  timeoutSeconds?: number;
  successThreshold?: number;
  failureThreshold?: number;
}

export interface ProbeTarget {
  podIP: string;
  /** Container ports by name, for named probe ports. */
  namedPorts: Record<string, number>;
  /** Runs an exec probe's argv (already mapped to local commands) with the container's env. */
  execArgv: (command: string[]) => string[];
  env: Record<string, string>;
  cwd: string;
}

export interface ProbeOutcome {
  ok: boolean;
  message: string;
}

function resolvePort(port: number | string, target: ProbeTarget): number {
  if (typeof port === 'number') return port;
  if (/^\d+$/.test(port)) return Number(port);
  const named = target.namedPorts[port];
  if (named === undefined) throw new Error(`no container port named ${port}`);
  return named;
}

function httpCheck(spec: NonNullable<ProbeSpec['httpGet']>, target: ProbeTarget, timeoutMs: number): Promise<ProbeOutcome> {
  return new Promise((resolve) => {
    const secure = (spec.scheme ?? 'HTTP').toUpperCase() === 'HTTPS';
    const headers: Record<string, string> = { 'User-Agent': 'process-node-probe/1.0' };
    for (const header of spec.httpHeaders ?? []) headers[header.name] = header.value;
    const req = (secure ? https : http).request(
      {
        host: spec.host || target.podIP,
        port: resolvePort(spec.port, target),
        path: spec.path ?? '/',
        method: 'GET',
        headers,
        timeout: timeoutMs,
        rejectUnauthorized: false,
        agent: false,
      },
      (res) => {
        res.resume();
        const status = res.statusCode ?? 0;
        resolve({ ok: status >= 200 && status < 400, message: `HTTP probe failed with statuscode: ${status}` });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`timeout after ${timeoutMs}ms`)));
    req.on('error', (err) => resolve({ ok: false, message: `Get ${spec.path ?? '/'}: ${err.message}` }));
    req.end();
  });
}

function tcpCheck(spec: NonNullable<ProbeSpec['tcpSocket']>, target: ProbeTarget, timeoutMs: number): Promise<ProbeOutcome> {
  return new Promise((resolve) => {
    const port = resolvePort(spec.port, target);
    const socket = net.connect({ host: spec.host || target.podIP, port });
    socket.setTimeout(timeoutMs);
    socket.once('connect', () => {
      socket.destroy();
      resolve({ ok: true, message: '' });
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve({ ok: false, message: `dial tcp ${target.podIP}:${port}: i/o timeout` });
    });
    socket.once('error', (err) => resolve({ ok: false, message: `dial tcp ${target.podIP}:${port}: ${err.message}` }));
  });
}

function execCheck(spec: NonNullable<ProbeSpec['exec']>, target: ProbeTarget, timeoutMs: number): Promise<ProbeOutcome> {
  return new Promise((resolve) => {
    const [command, ...args] = target.execArgv(spec.command);
    if (!command) return resolve({ ok: false, message: 'exec probe has no command' });
    const child = spawn(command, args, { env: target.env, cwd: target.cwd, stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs, killSignal: 'SIGKILL' });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('error', (err) => resolve({ ok: false, message: err.message }));
    child.on('close', (code, signal) =>
      resolve({ ok: code === 0, message: signal ? `command timed out after ${timeoutMs}ms` : `command exited ${code}: ${output.slice(-500)}` }),
    );
  });
}

export async function runProbeOnce(spec: ProbeSpec, target: ProbeTarget): Promise<ProbeOutcome> {
  const timeoutMs = (spec.timeoutSeconds ?? 1) * 1000;
  try {
    if (spec.httpGet) return await httpCheck(spec.httpGet, target, timeoutMs);
    if (spec.tcpSocket) return await tcpCheck(spec.tcpSocket, target, timeoutMs);
    if (spec.exec) return await execCheck(spec.exec, target, timeoutMs);
  } catch (err) {
    return { ok: false, message: (err as Error).message };
  }
  return { ok: false, message: 'only httpGet, tcpSocket and exec probes are supported by the process node' };
}

/**
 * Runs a probe periodically and reports each change of its result (after the thresholds are met).
 * The result starts as `initial` (readiness: false; liveness: true).
 */
export class Prober {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private successes = 0;
  private failures = 0;
  result: boolean;
  lastMessage = '';
  private readonly spec: ProbeSpec;
  private readonly target: ProbeTarget;
  private readonly onResult: (ok: boolean, message: string) => void;

  constructor(spec: ProbeSpec, target: ProbeTarget, initial: boolean, onResult: (ok: boolean, message: string) => void) {
    this.spec = spec;
    this.target = target;
    this.result = initial;
    this.onResult = onResult;
  }

  start(): void {
    this.schedule((this.spec.initialDelaySeconds ?? 0) * 1000);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.tick(), delayMs);
  }

  private async tick(): Promise<void> {
    const outcome = await runProbeOnce(this.spec, this.target);
    if (this.stopped) return;
    this.lastMessage = outcome.message;
    if (outcome.ok) {
      this.successes++;
      this.failures = 0;
      if (!this.result && this.successes >= (this.spec.successThreshold ?? 1)) {
        this.result = true;
        this.onResult(true, '');
      }
    } else {
      this.failures++;
      this.successes = 0;
      // Reported once per run of failures: readiness turns false, liveness/startup kill the container.
      if (this.failures === (this.spec.failureThreshold ?? 3)) {
        this.result = false;
        this.onResult(false, outcome.message);
      }
    }
    this.schedule((this.spec.periodSeconds ?? 10) * 1000);
  }
}
