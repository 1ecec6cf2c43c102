/**
 * Pure computation of a pod's status (phase, conditions, container statuses) from what the process node
 * knows about its containers.
 */

export type ContainerState =
  | { waiting: { reason: string; message?: string } }
  | { running: { startedAt: string } }
  | { terminated: { exitCode: number; signal?: number; reason: string; message?: string; startedAt: string; finishedAt: string; containerID?: string } };

export interface ContainerView {
  name: string;
  image: string;
  containerID?: string;
  state: ContainerState;
  lastState?: ContainerState;
  ready: boolean;
  started: boolean;
  restartCount: number;
  /** It has run at least once. */
  everStarted: boolean;
  /** Terminated for good (its restart policy does not bring it back). */
  finished: boolean;
}

export interface PodView {
  podIP?: string;
  hostIP: string;
  startTime: string;
  sandboxReady: boolean;
  initialized: boolean;
  /** An init container failed and will not be retried. */
  initFailed: boolean;
  initContainers: ContainerView[];
  containers: ContainerView[];
  /** Conditions set by others (PodScheduled, readiness gates) as they are on the API object. */
  otherConditions: Condition[];
  readinessGates: string[];
}

export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  lastTransitionTime?: string | null;
  lastProbeTime?: string | null;
  reason?: string;
  message?: string;
}

const OWN_CONDITIONS = ['PodReadyToStartContainers', 'Initialized', 'ContainersReady', 'Ready'];

export function podPhase(view: PodView): 'Pending' | 'Running' | 'Succeeded' | 'Failed' {
  if (view.initFailed) return 'Failed';
  if (!view.initialized || view.containers.some((c) => !c.everStarted)) return 'Pending';
  if (view.containers.some((c) => !c.finished)) return 'Running';
  const allSucceeded = view.containers.every((c) => 'terminated' in c.state && c.state.terminated.exitCode === 0);
  return allSucceeded ? 'Succeeded' : 'Failed';
}

function containerStatus(c: ContainerView): Record<string, unknown> {
  return {
    name: c.name,
    image: c.image,
    imageID: `process-node://${c.image}`,
    ...(c.containerID ? { containerID: c.containerID } : {}),
    state: c.state,
    lastState: c.lastState ?? {},
    ready: c.ready,
    started: c.started,
    restartCount: c.restartCount,
  };
}

function notReadyMessage(containers: ContainerView[]): string {
  const names = containers.filter((c) => !c.ready).map((c) => c.name);
  return `containers with unready status: [${names.join(' ')}]`;
}

/** The pod's status; a condition keeps its lastTransitionTime from `previous` while its status holds. */
export function buildPodStatus(view: PodView, previous: Condition[], now: string): Record<string, unknown> {
  const phase = podPhase(view);
  const containersReady = view.containers.length > 0 && view.containers.every((c) => c.ready);
  const gatesReady = view.readinessGates.every((gate) => view.otherConditions.some((c) => c.type === gate && c.status === 'True'));
  const own: Condition[] = [
    { type: 'PodReadyToStartContainers', status: view.sandboxReady ? 'True' : 'False' },
    { type: 'Initialized', status: view.initialized ? 'True' : 'False', ...(view.initialized ? {} : { reason: 'ContainersNotInitialized' }) },
    containersReady
      ? { type: 'ContainersReady', status: 'True' }
      : { type: 'ContainersReady', status: 'False', reason: 'ContainersNotReady', message: notReadyMessage(view.containers) },
    containersReady && gatesReady
      ? { type: 'Ready', status: 'True' }
      : {
          type: 'Ready',
          status: 'False',
          reason: containersReady ? 'ReadinessGatesNotReady' : 'ContainersNotReady',
          message: containersReady ? 'corresponding condition of pod readiness gate is not True' : notReadyMessage(view.containers),
        },
  ];
  // Succeeded/Failed pods are never ready.
  if (phase === 'Succeeded' || phase === 'Failed') {
    for (const condition of own) if (condition.type === 'Ready' || condition.type === 'ContainersReady') condition.status = 'False';
  }
  const conditions = [
    ...view.otherConditions.filter((c) => !OWN_CONDITIONS.includes(c.type)),
    ...own.map((condition) => {
      const before = previous.find((p) => p.type === condition.type);
      const since = before && before.status === condition.status ? before.lastTransitionTime : now;
      return { ...condition, lastProbeTime: null, lastTransitionTime: since ?? now };
    }),
  ];
  return {
    phase,
    conditions,
    hostIP: view.hostIP,
    hostIPs: [{ ip: view.hostIP }],
    ...(view.podIP ? { podIP: view.podIP, podIPs: [{ ip: view.podIP }] } : {}),
    startTime: view.startTime,
    ...(view.initContainers.length ? { initContainerStatuses: view.initContainers.map(containerStatus) } : {}),
    containerStatuses: view.containers.map(containerStatus),
  };
}

/**
 * Delay before restart number `attempt` (1-based) of a crashed container: the first is immediate,
 * then base, 2*base, ... up to 300 s (the kubelet's crash-loop back-off).
 */
export function restartDelayMs(attempt: number, baseMs: number): number {
  if (attempt <= 1) return 0;
  return Math.min(baseMs * 2 ** (attempt - 2), 300_000);
}

/** Whether a container that exited with `exitCode` runs again under the pod's restartPolicy. */
export function restartsAfterExit(restartPolicy: string | undefined, exitCode: number): boolean {
  if (restartPolicy === 'Never') return false;
  if (restartPolicy === 'OnFailure') return exitCode !== 0;
  return true;
}
