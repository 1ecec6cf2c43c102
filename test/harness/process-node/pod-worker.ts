/**
 * Runs one pod on a process node: prepares its volumes and credentials, starts each container as a
 * local process group, probes it, restarts it per restartPolicy, reports status, and on deletion stops
 * it (SIGTERM, grace period, SIGKILL) and removes the pod object.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { kubeconfigYaml } from '../control-plane.ts';
import { KubeError, type KubeObject, type KubeRest } from '../kube-rest.ts';
import type { ProcessSupervisor } from '../processes.ts';
import type { ImageCommand } from '../types.ts';
import { ContainerConfigError, containerEnv, expandArgv, referencedObjects, rewriteMountPath, type Mount } from './env.ts';
import { recordPodEvent, type EventType } from './events.ts';
import { containerArgv, imageRepository, ImageNotMappedError } from './images.ts';
import { buildPodStatus, restartDelayMs, restartsAfterExit, type Condition, type ContainerState, type ContainerView } from './pod-status.ts';
import type { PodNetwork } from './pod-network.ts';
import { Prober, type ProbeSpec, type ProbeTarget } from './probes.ts';
import { containerMounts, fetchReferencedData, prepareVolumes, serviceAccountToken, VolumeNotReadyError } from './volumes.ts';

export interface NodeContext {
  nodeName: string;
  hostIP: string;
  rest: KubeRest;
  supervisor: ProcessSupervisor;
  network: PodNetwork;
  podsDir: string;
  repoRoot: string;
  images: Record<string, ImageCommand>;
  nodeBinary: string;
  restartBackoffMs: number;
  serverUrl: string;
  caPem: string;
  log: (line: string) => void;
}

// Kubernetes container specs are open-ended JSON.
type ContainerSpec = { name: string; image: string; [field: string]: any };

/** A container that ran this long has its crash-loop back-off reset (as the kubelet does). */
const BACKOFF_RESET_MS = 10 * 60 * 1000;

class ContainerRun {
  readonly spec: ContainerSpec;
  readonly init: boolean;
  view: ContainerView;
  pid: number | undefined;
  probers: Prober[] = [];
  restartTimer: NodeJS.Timeout | undefined;
  crashes = 0;
  launchedAt = 0;
  stopping = false;
  logFile: string;

  constructor(spec: ContainerSpec, init: boolean, logFile: string) {
    this.spec = spec;
    this.init = init;
    this.logFile = logFile;
    this.view = {
      name: spec.name,
      image: spec.image,
      state: { waiting: { reason: 'ContainerCreating' } },
      ready: false,
      started: false,
      restartCount: 0,
      everStarted: false,
      finished: false,
    };
  }

  /** Sidecars are init containers with restartPolicy Always: they keep running beside the app. */
  get sidecar(): boolean {
    return this.init && this.spec['restartPolicy'] === 'Always';
  }

  get completed(): boolean {
    return 'terminated' in this.view.state && this.view.state.terminated.exitCode === 0 && this.view.finished;
  }

  stopProbers(): void {
    for (const prober of this.probers) prober.stop();
    this.probers = [];
  }
}

export class PodWorker {
  pod: KubeObject;
  readonly uid: string;
  private readonly ctx: NodeContext;
  readonly podDir: string;
  private readonly runs: ContainerRun[];
  private podIP: string | undefined;
  private volumeDirs: Map<string, string> | undefined;
  private kubeconfigPath: string | undefined;
  private readonly startTime = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  private lastConditions: Condition[] = [];
  private lastSent = '';
  private statusBusy: Promise<void> | undefined;
  private statusAgain = false;
  private stopping: Promise<void> | undefined;
  private serial: Promise<void> = Promise.resolve();
  /** The pod object is gone from the API; nothing more is reported. */
  gone = false;
  initFailed = false;

  constructor(ctx: NodeContext, pod: KubeObject) {
    this.ctx = ctx;
    this.pod = pod;
    this.uid = pod.metadata.uid!;
    this.podDir = path.join(ctx.podsDir, `${pod.metadata.namespace}_${pod.metadata.name}_${this.uid}`);
    mkdirSync(this.podDir, { recursive: true });
    const spec = pod['spec'] ?? {};
    this.runs = [
      ...(spec.initContainers ?? []).map((c: ContainerSpec) => new ContainerRun(c, true, path.join(this.podDir, `${c.name}.log`))),
      ...(spec.containers ?? []).map((c: ContainerSpec) => new ContainerRun(c, false, path.join(this.podDir, `${c.name}.log`))),
    ];
  }

  private event(type: EventType, reason: string, message: string): void {
    recordPodEvent(this.ctx.rest, this.pod, this.ctx.nodeName, type, reason, message, this.ctx.log);
  }

  get namespace(): string {
    return this.pod.metadata.namespace ?? 'default';
  }

  get name(): string {
    return this.pod.metadata.name;
  }

  get ip(): string | undefined {
    return this.podIP;
  }

  processes(): { container: string; pid: number }[] {
    return this.runs.filter((r) => r.pid !== undefined).map((r) => ({ container: r.spec.name, pid: r.pid! }));
  }

  /** Brings the pod towards its spec; calls are serialized. */
  reconcile(pod: KubeObject): Promise<void> {
    this.pod = pod;
    this.serial = this.serial.then(() => this.reconcileNow()).catch((err) => this.ctx.log(`pod ${this.namespace}/${this.name}: ${(err as Error).stack}`));
    return this.serial;
  }

  private async reconcileNow(): Promise<void> {
    if (this.pod.metadata.deletionTimestamp) {
      await this.terminate(true);
      return;
    }
    if (this.stopping) return;
    if (!this.volumeDirs) {
      try {
        await this.prepare();
      } catch (err) {
        this.failStart(err, 'ContainerCreating');
        return;
      }
    }
    await this.startDueContainers();
  }

  private async prepare(): Promise<void> {
    this.podIP = this.ctx.network.assign(this.uid);
    const data = await fetchReferencedData(this.ctx.rest, this.namespace, referencedObjects(this.pod));
    const volumeDirs = await prepareVolumes(this.ctx.rest, this.downwardPod(), this.podDir, data);
    if (await this.mountsServiceAccount()) {
      const token = await serviceAccountToken(this.ctx.rest, this.pod);
      this.kubeconfigPath = path.join(this.podDir, 'kubeconfig');
      writeFileSync(
        this.kubeconfigPath,
        kubeconfigYaml(this.ctx.serverUrl, this.ctx.caPem, token, `system:serviceaccount:${this.namespace}:${this.pod['spec']?.serviceAccountName ?? 'default'}`),
        { mode: 0o600 },
      );
    }
    this.volumeDirs = volumeDirs;
  }

  /**
   * The pod as the downward API sees it: the addresses this node assigned may not have reached the
   * API object (and so the watched copy) yet.
   */
  private downwardPod(): KubeObject {
    const status = { ...(this.pod['status'] ?? {}), hostIP: this.ctx.hostIP, hostIPs: [{ ip: this.ctx.hostIP }] };
    if (this.podIP) Object.assign(status, { podIP: this.podIP, podIPs: [{ ip: this.podIP }] });
    return { ...this.pod, status };
  }

  private async mountsServiceAccount(): Promise<boolean> {
    const podSetting = this.pod['spec']?.automountServiceAccountToken;
    if (podSetting !== undefined) return podSetting;
    const account = this.pod['spec']?.serviceAccountName || 'default';
    const serviceAccount = await this.ctx.rest.find(`/api/v1/namespaces/${this.namespace}/serviceaccounts/${account}`);
    return serviceAccount?.['automountServiceAccountToken'] !== false;
  }

  private failStart(err: unknown, fallbackReason: string, only?: ContainerRun): void {
    const reason =
      err instanceof ImageNotMappedError
        ? 'ErrImagePull'
        : err instanceof ContainerConfigError
          ? 'CreateContainerConfigError'
          : err instanceof VolumeNotReadyError
            ? 'ContainerCreating'
            : fallbackReason;
    const message = (err as Error).message;
    if (!(err instanceof ImageNotMappedError || err instanceof ContainerConfigError || err instanceof VolumeNotReadyError)) {
      this.ctx.log(`pod ${this.namespace}/${this.name}: ${(err as Error).stack}`);
    }
    for (const run of only ? [only] : this.runs) {
      if (run.pid !== undefined || run.view.finished) continue;
      const before = 'waiting' in run.view.state ? run.view.state.waiting.message : undefined;
      run.view.state = { waiting: { reason, message } };
      if (before !== message) this.event('Warning', reason === 'ContainerCreating' ? 'FailedMount' : 'Failed', message);
    }
    this.pushStatus();
  }

  /** Starts init containers in order, then the app containers, skipping those already handled. */
  private async startDueContainers(): Promise<void> {
    for (const run of this.runs.filter((r) => r.init)) {
      if (run.view.everStarted || run.restartTimer) {
        if (run.sidecar ? run.view.started : run.completed) continue;
        return; // still running or waiting to be restarted
      }
      await this.launch(run);
      return;
    }
    for (const run of this.runs.filter((r) => !r.init)) {
      if (!run.view.everStarted && !run.restartTimer && run.pid === undefined) await this.launch(run);
    }
    this.pushStatus();
  }

  private mountsOf(run: ContainerRun): Mount[] {
    return containerMounts({ volumeMounts: run.spec['volumeMounts'] }, this.volumeDirs!);
  }

  private async launch(run: ContainerRun): Promise<void> {
    if (this.stopping || run.pid !== undefined) return;
    let argv: string[];
    let env: Record<string, string>;
    let mounts: Mount[];
    try {
      const data = await fetchReferencedData(this.ctx.rest, this.namespace, referencedObjects(this.pod));
      mounts = this.mountsOf(run);
      env = containerEnv(this.downwardPod(), run.spec, data, mounts);
      const command = expandArgv(run.spec['command'] ?? [], env, mounts);
      const args = expandArgv(run.spec['args'] ?? [], env, mounts);
      argv = containerArgv(run.spec.image, { command, args }, this.ctx.images, this.ctx.nodeBinary);
      // Under the container's own variables, as a runtime does; $(VAR) above sees only the container's.
      const image = this.ctx.images[imageRepository(run.spec.image)]!;
      const listen = Object.fromEntries((image.listenAddressEnv ?? []).map((name) => [name, this.podIP ?? '']));
      env = { ...image.env, ...listen, ...env };
    } catch (err) {
      this.failStart(err, 'CreateContainerConfigError', run);
      return;
    }
    if (this.stopping) return;
    const processEnv: NodeJS.ProcessEnv = {
      PATH: `${path.dirname(this.ctx.nodeBinary)}:/usr/local/bin:/usr/bin:/bin`,
      HOME: this.podDir,
      HOSTNAME: this.name,
      ...(this.kubeconfigPath ? { KUBECONFIG: this.kubeconfigPath } : {}),
      ...env,
    };
    const cwd = run.spec['workingDir'] ? rewriteMountPath(run.spec['workingDir'], mounts) : this.ctx.repoRoot;
    writeFileSync(run.logFile, `--- ${new Date().toISOString()} process node starts: ${argv.join(' ')}\n`, { flag: 'a' });
    const child = this.ctx.supervisor.spawn(`${this.namespace}/${this.name}/${run.spec.name}`, argv, { env: processEnv, cwd, logFile: run.logFile });
    if (child.pid === undefined) {
      await new Promise((resolve) => child.once('error', resolve));
      this.failStart(new ContainerConfigError(`cannot start ${argv[0]}`), 'CreateContainerConfigError', run);
      return;
    }
    const pid = child.pid;
    if (run.view.everStarted) run.view.restartCount++;
    run.pid = pid;
    run.stopping = false;
    run.launchedAt = Date.now();
    const startedAt = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    run.view.containerID = `process://${this.ctx.nodeName}/${pid}`;
    run.view.state = { running: { startedAt } };
    run.view.everStarted = true;
    child.once('exit', (code, signal) => this.onExit(run, pid, startedAt, code, signal));
    this.event('Normal', 'Started', `Started container ${run.spec.name} (pid ${pid})`);
    this.startProbes(run, env, mounts);
    this.pushStatus();
  }

  private probeTarget(run: ContainerRun, env: Record<string, string>, mounts: Mount[]): ProbeTarget {
    const namedPorts: Record<string, number> = {};
    for (const port of run.spec['ports'] ?? []) if (port.name) namedPorts[port.name] = port.containerPort;
    return {
      podIP: this.podIP!,
      namedPorts,
      env: { PATH: `${path.dirname(this.ctx.nodeBinary)}:/usr/local/bin:/usr/bin:/bin`, ...env },
      cwd: this.ctx.repoRoot,
      execArgv: (command) => {
        const expanded = expandArgv(command, env, mounts);
        return expanded[0] === 'node' ? [this.ctx.nodeBinary, ...expanded.slice(1)] : expanded;
      },
    };
  }

  private startProbes(run: ContainerRun, env: Record<string, string>, mounts: Mount[]): void {
    const target = this.probeTarget(run, env, mounts);
    const startup: ProbeSpec | undefined = run.spec['startupProbe'];
    const readiness: ProbeSpec | undefined = run.spec['readinessProbe'];
    const liveness: ProbeSpec | undefined = run.spec['livenessProbe'];
    const afterStartup = () => {
      run.view.started = true;
      if (readiness) {
        const prober = new Prober(readiness, target, false, (ok, message) => {
          if (!ok) this.event('Warning', 'Unhealthy', `Readiness probe failed: ${message}`);
          run.view.ready = ok;
          this.pushStatus();
        });
        run.probers.push(prober);
        prober.start();
      } else {
        run.view.ready = !run.init || run.sidecar;
      }
      if (liveness) {
        const prober = new Prober(liveness, target, true, (ok, message) => {
          if (!ok) void this.killUnhealthy(run, 'Liveness', message, liveness);
        });
        run.probers.push(prober);
        prober.start();
      }
      this.pushStatus();
      // A sidecar that started lets the next init container run.
      if (run.sidecar) void this.reconcile(this.pod);
    };
    if (startup) {
      const prober = new Prober(startup, target, false, (ok, message) => {
        if (ok) {
          prober.stop();
          run.probers = run.probers.filter((p) => p !== prober);
          afterStartup();
        } else {
          void this.killUnhealthy(run, 'Startup', message, startup);
        }
      });
      run.probers.push(prober);
      prober.start();
    } else {
      afterStartup();
    }
  }

  private async killUnhealthy(run: ContainerRun, kind: string, message: string, probe: ProbeSpec & { terminationGracePeriodSeconds?: number }): Promise<void> {
    if (run.pid === undefined || run.stopping) return;
    this.event('Warning', 'Unhealthy', `${kind} probe failed: ${message}`);
    this.event('Normal', 'Killing', `Container ${run.spec.name} failed ${kind.toLowerCase()} probe, will be restarted`);
    run.stopping = true;
    run.stopProbers();
    const grace = probe.terminationGracePeriodSeconds ?? this.pod['spec']?.terminationGracePeriodSeconds ?? 30;
    await this.ctx.supervisor.stop(run.pid, grace * 1000);
  }

  private onExit(run: ContainerRun, pid: number, startedAt: string, code: number | null, signal: NodeJS.Signals | null): void {
    if (run.pid !== pid) return;
    run.pid = undefined;
    run.stopProbers();
    run.view.ready = false;
    run.view.started = false;
    const signalNumbers: Record<string, number> = { SIGTERM: 15, SIGKILL: 9, SIGINT: 2, SIGHUP: 1, SIGABRT: 6, SIGSEGV: 11 };
    const exitCode = code ?? 128 + (signal ? (signalNumbers[signal] ?? 0) : 0);
    const terminated: ContainerState = {
      terminated: {
        exitCode,
        ...(signal ? { signal: signalNumbers[signal] ?? 0 } : {}),
        reason: exitCode === 0 ? 'Completed' : 'Error',
        startedAt,
        finishedAt: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
        ...(run.view.containerID ? { containerID: run.view.containerID } : {}),
      },
    };
    if (this.stopping) {
      run.view.state = terminated;
      run.view.finished = true;
      return;
    }
    const policy = run.init ? (run.sidecar ? 'Always' : this.pod['spec']?.restartPolicy === 'Never' ? 'Never' : 'OnFailure') : this.pod['spec']?.restartPolicy;
    if (!restartsAfterExit(policy, exitCode)) {
      run.view.state = terminated;
      run.view.finished = true;
      if (run.init && exitCode !== 0) this.initFailed = true;
      this.pushStatus();
      void this.reconcile(this.pod);
      return;
    }
    if (Date.now() - run.launchedAt > BACKOFF_RESET_MS) run.crashes = 0;
    run.crashes++;
    const delay = restartDelayMs(run.crashes, this.ctx.restartBackoffMs);
    run.view.lastState = terminated;
    run.view.state =
      delay > 0
        ? {
            waiting: {
              reason: 'CrashLoopBackOff',
              message: `back-off ${Math.round(delay / 1000)}s restarting failed container=${run.spec.name} pod=${this.name}_${this.namespace}(${this.uid})`,
            },
          }
        : terminated;
    if (delay > 0) this.event('Warning', 'BackOff', `Back-off restarting failed container ${run.spec.name}`);
    this.pushStatus();
    run.restartTimer = setTimeout(() => {
      run.restartTimer = undefined;
      this.serial = this.serial.then(() => this.launch(run)).catch((err) => this.ctx.log(String(err)));
    }, delay);
  }

  /**
   * Stops every container (SIGTERM to its process group, SIGKILL after the grace period). With
   * `finalize`, then deletes the pod object for good, as the kubelet does once containers are gone.
   */
  terminate(finalize: boolean): Promise<void> {
    this.stopping ??= (async () => {
      const grace = this.pod.metadata.deletionGracePeriodSeconds ?? this.pod['spec']?.terminationGracePeriodSeconds ?? 30;
      if (!this.gone) {
        for (const run of this.runs.filter((r) => r.pid !== undefined)) this.event('Normal', 'Killing', `Stopping container ${run.spec.name}`);
      }
      for (const run of this.runs) {
        clearTimeout(run.restartTimer);
        run.restartTimer = undefined;
        run.stopProbers();
        run.view.ready = false;
      }
      await Promise.all(this.runs.filter((r) => r.pid !== undefined).map((r) => this.ctx.supervisor.stop(r.pid!, grace * 1000)));
      for (const run of this.runs) run.pid = undefined;
      this.ctx.network.release(this.uid);
    })();
    return this.stopping.then(async () => {
      if (!finalize || this.gone) return;
      this.gone = true;
      try {
        await this.ctx.rest.delete(`/api/v1/namespaces/${this.namespace}/pods/${this.name}`, {
          apiVersion: 'v1',
          kind: 'DeleteOptions',
          gracePeriodSeconds: 0,
          preconditions: { uid: this.uid },
        });
      } catch (err) {
        if (!(err instanceof KubeError && (err.status === 404 || err.status === 409))) {
          this.gone = false;
          throw err;
        }
      }
    });
  }

  /** Reports status when it changed; one PATCH at a time, the latest state wins. */
  pushStatus(): void {
    if (this.gone || this.pod.metadata.deletionTimestamp) return;
    if (this.statusBusy) {
      this.statusAgain = true;
      return;
    }
    this.statusBusy = (async () => {
      do {
        this.statusAgain = false;
        const status = this.currentStatus();
        const body = JSON.stringify(status);
        if (body === this.lastSent) continue;
        try {
          await this.ctx.rest.patch(`/api/v1/namespaces/${this.namespace}/pods/${this.name}/status`, { metadata: { uid: this.uid }, status });
          this.lastSent = body;
          this.lastConditions = status['conditions'] as Condition[];
        } catch (err) {
          if (err instanceof KubeError && err.status === 404) return;
          this.ctx.log(`pod ${this.namespace}/${this.name}: status update failed: ${(err as Error).message}`);
          this.statusAgain = true;
          await new Promise((resolve) => setTimeout(resolve, 500));
        }
      } while (this.statusAgain && !this.gone);
    })().finally(() => (this.statusBusy = undefined));
  }

  private currentStatus(): Record<string, unknown> {
    const init = this.runs.filter((r) => r.init);
    const apiConditions: Condition[] = this.pod['status']?.conditions ?? [];
    return buildPodStatus(
      {
        ...(this.podIP ? { podIP: this.podIP } : {}),
        hostIP: this.ctx.hostIP,
        startTime: this.startTime,
        sandboxReady: this.volumeDirs !== undefined,
        initialized: init.every((r) => (r.sidecar ? r.view.started : r.completed)),
        initFailed: this.initFailed,
        initContainers: init.map((r) => r.view),
        containers: this.runs.filter((r) => !r.init).map((r) => r.view),
        otherConditions: apiConditions,
        readinessGates: (this.pod['spec']?.readinessGates ?? []).map((g: { conditionType: string }) => g.conditionType),
      },
      this.lastConditions,
      new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    );
  }
}
