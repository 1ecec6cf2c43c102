import { randomBytes } from 'node:crypto';
import type { PeerList } from '../../../../contract/peer-api.ts';
import { isDeepStrictEqual } from 'node:util';
import type { KubernetesObject, V1PersistentVolumeClaim, V1Pod, V1Secret, V1StatefulSet } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { type ResolvedSpec, withDefaults } from '../../api/v1alpha1/defaults.ts';
import { API_VERSION, KIND, type FileCluster, type FileClusterStatus } from '../../api/v1alpha1/types.ts';
import { isTerminalStatus, TerminalError } from '../../errors.ts';
import type { OperatorMetrics } from '../../metrics.ts';
import type { EventRecorder } from '../../runtime/events.ts';
import { isConflict, isNotFound, KubeError, RESOURCES, resourcePath, type Kube } from '../../runtime/kube.ts';
import type { HandlerResult } from '../../runtime/workqueue.ts';
import { digest } from '../../runtime/digest.ts';
import { desiredPeers, memberPods, nextPeerState, pushTargets, type MemberPod } from './membership.ts';
import {
  DRAINED_ANNOTATION,
  FIELD_MANAGER,
  FORCE_SCALE_DOWN_ANNOTATION,
  JOINED_ANNOTATION,
  SERVING_LABEL,
  TOKEN_KEY,
  claimOrdinal,
  peerTokensSecretName,
  podUrl,
} from './names.ts';
import { fenceNode, pushPeers, readNodeStatus } from './nodes.ts';
import {
  generatedSecret,
  peerTokensSecret,
  planCluster,
  podTemplate,
  podsToFence,
  podsToInspect,
  templateHash,
  tokenSecretName,
  type Claim,
  type NodeReport,
  type Plan,
} from './plan.ts';
import { requeueAfter, WATCHED_REQUEUE_MS } from './requeue.ts';
import { computeStatus, type PushSummary } from './status.ts';
import { clientToken, nextPeerTokens, readPeerTokens, templateRolledOut, type PeerTokens } from './token.ts';

const TOKEN_STEP_MESSAGES = {
  TokenRotationStarted: 'the peer token changed: pods restart one at a time with the new token, still accepting the previous one',
  TokenRotationFinished: 'every pod runs the new token: pods restart one at a time without the previous one',
} as const;

export interface ReconcilerDeps {
  kube: Kube;
  log: Logger;
  metrics: OperatorMetrics;
  events: EventRecorder;
  /** Cached reads (informers); the FileCluster and its StatefulSet are read live. */
  pods: (namespace: string, cluster: string) => V1Pod[];
  claims: (namespace: string, cluster: string) => V1PersistentVolumeClaim[];
  secret: (namespace: string, name: string) => V1Secret | undefined;
  service: (namespace: string, name: string) => KubernetesObject | undefined;
  /** When a membership change of this key was first seen (epoch ms), if one waits; reading clears it. */
  membershipSeenAt: (key: string) => number | undefined;
  fileserverImage: string;
  push: { timeoutMs: number; attempts: number };
}

/** How often a pod that acknowledged the current list is asked again (it may have lost it). */
const REVERIFY_MS = 60_000;
/** Even an unchanged object is applied again this often, so drift the caches cannot show is repaired. */
const REAPPLY_MS = 10 * 60_000;

interface ClusterMemory {
  /** pod uid/restarts/ip -> acknowledged generation and when */
  acks: Map<string, { generation: number; at: number }>;
  /** A pod answered 409 with this generation: publish above it. */
  minGeneration: number;
  lastProgress?: string;
  /** What was last applied per object, to skip applies that cannot change anything. */
  applied: Map<string, { digest: string; marker: string; at: number }>;
  /** Claim -> the size a resize was refused at: asked again only for another size. */
  failedResizes: Map<string, string>;
  /** The forced scale-down last announced with a Warning (replicas/generation). */
  forcedAnnounced?: string;
  /** The version of the operator's token Secret last written (the cache may lag behind it). */
  tokenVersion: number;
}

/** Progress worth an Event (creation and scale-up already have theirs). */
const NOTABLE_PROGRESS = new Set(['ScalingDown', 'ScaleDownWaitingForReplication', 'RollingUpdate', 'RollingUpdateWaitingForReplication']);

/** Wall-clock marks (epoch ms) of one reconcile, logged with a peer-list change to show where its time went. */
interface Timing {
  /** The membership change that queued it, if one did. */
  seenAt: number | undefined;
  start: number;
  /** Live reads done. */
  read?: number;
  /** Status write (new generation) started and done. */
  status?: number;
  pushed?: number;
}

/** A peer-list change's time by phase: queued, reading, persisting the generation, pushing. */
export function phases(t: Timing, end: number): Record<string, number> {
  const out: Record<string, number> = {};
  if (t.seenAt !== undefined) {
    out['seenAt'] = t.seenAt;
    out['queuedMs'] = t.start - t.seenAt;
  }
  const read = t.read ?? t.start;
  const status = t.status ?? read;
  const pushed = t.pushed ?? status;
  out['readMs'] = read - t.start;
  out['planMs'] = status - read;
  out['statusMs'] = pushed - status;
  out['pushMs'] = end - pushed;
  return out;
}

type EventTarget = { apiVersion: string; kind: string; metadata: FileCluster['metadata'] };

/** What one reconcile of one FileCluster has read and found so far, handed from step to step. */
interface Pass {
  key: string;
  fc: FileCluster;
  sts: V1StatefulSet | undefined;
  timing: Timing;
  ns: string;
  name: string;
  spec: ResolvedSpec;
  members: MemberPod[];
  mem: ClusterMemory;
  target: EventTarget;
  /** Why the cluster is Degraded, once a step found out. */
  degraded?: { reason: string; message: string };
  /** An apply the API server refused for good: not retried until something changes. */
  terminal?: TerminalError;
}

const ackKey = (p: MemberPod): string => `${p.uid}/${p.restarts}/${p.ip ?? ''}`;

/** The cluster's data claims as the planner reads them. */
export function clusterClaims(cluster: string, claims: readonly V1PersistentVolumeClaim[]): Claim[] {
  const out: Claim[] = [];
  for (const c of claims) {
    const name = c.metadata?.name ?? '';
    const ordinal = claimOrdinal(cluster, name);
    if (ordinal === undefined || c.metadata?.deletionTimestamp) continue;
    const a = c.metadata?.annotations ?? {};
    const claim: Claim = { name, ordinal, joined: a[JOINED_ANNOTATION] !== 'false', drained: a[DRAINED_ANNOTATION] === 'true' };
    const requested = c.spec?.resources?.requests?.['storage'];
    if (requested !== undefined) claim.requested = String(requested);
    const capacity = c.status?.capacity?.['storage'];
    if (capacity !== undefined) claim.capacity = String(capacity);
    out.push(claim);
  }
  return out.sort((a, b) => a.ordinal - b.ordinal);
}

export class FileClusterReconciler {
  private readonly deps: ReconcilerDeps;
  private readonly memory = new Map<string, ClusterMemory>();

  constructor(deps: ReconcilerDeps) {
    this.deps = deps;
  }

  async reconcile(key: string): Promise<HandlerResult> {
    const { kube, metrics } = this.deps;
    const [namespace, name] = key.split('/') as [string, string];
    const started = process.hrtime.bigint();
    const timing: Timing = { start: Date.now(), seenAt: this.deps.membershipSeenAt(key) };
    // Both live reads at once: the StatefulSet's is wasted only when the FileCluster is gone.
    const stsRead = this.readStatefulSet(namespace, name);
    stsRead.catch(() => {});
    try {
      let fc: FileCluster;
      try {
        fc = await kube.request<FileCluster>('GET', resourcePath(RESOURCES.fileclusters, namespace, name));
      } catch (err) {
        if (isNotFound(err)) {
          // Deleted: the garbage collector removes what it owned through the owner references.
          this.memory.delete(key);
          metrics.scaleDownBlockedSeconds.remove({ namespace, name });
          metrics.reconcileTotal.inc({ result: 'success' });
          return {};
        }
        throw err;
      }
      if (fc.metadata.deletionTimestamp) return {};
      const result = await this.reconcileCluster(key, fc, await stsRead, timing);
      metrics.reconcileTotal.inc({ result: result.requeueAfterMs !== undefined && result.requeueAfterMs <= WATCHED_REQUEUE_MS ? 'requeue' : 'success' });
      return result;
    } catch (err) {
      metrics.reconcileTotal.inc({ result: 'error' });
      throw err;
    } finally {
      metrics.reconcileDuration.observe(Number(process.hrtime.bigint() - started) / 1e9);
    }
  }

  private mem(key: string): ClusterMemory {
    let m = this.memory.get(key);
    if (!m) {
      m = { acks: new Map(), minGeneration: 0, applied: new Map(), failedResizes: new Map(), tokenVersion: 0 };
      this.memory.set(key, m);
    }
    return m;
  }

  private readStatefulSet(ns: string, name: string): Promise<V1StatefulSet | undefined> {
    return this.deps.kube.getIfExists<V1StatefulSet>(resourcePath(RESOURCES.statefulsets, ns, name));
  }

  /**
   * One pass over a FileCluster, as named steps: the peer token, the membership and its generation, the
   * leaving and changing pods' own word, the plan, the objects applied, the generation published, the
   * peer list pushed, the status written.
   */
  private async reconcileCluster(key: string, fc: FileCluster, sts: V1StatefulSet | undefined, timing: Timing): Promise<HandlerResult> {
    const ns = fc.metadata.namespace;
    const name = fc.metadata.name;
    const spec = withDefaults(fc.spec ?? {}, this.deps.fileserverImage);
    const members = memberPods(name, this.deps.pods(ns, name));
    timing.read = Date.now();
    const pass: Pass = { key, fc, sts, timing, ns, name, spec, members, mem: this.mem(key), target: { apiVersion: API_VERSION, kind: KIND, metadata: fc.metadata } };

    const { secretName, token, tokenVersion } = await this.token(pass);
    const { peerState, changed } = this.membership(pass);
    const reports = await this.askPods(pass, token, tokenVersion);
    const targets = pushTargets(members);
    const acknowledgedPods = (): Set<string> => new Set(targets.filter((t) => pass.mem.acks.get(ackKey(t))?.generation === peerState.generation).map((t) => t.name));
    const claims = clusterClaims(name, this.deps.claims(ns, name));
    const plan = planCluster(fc, spec, {
      ...(sts ? { statefulSet: sts } : {}),
      members,
      reports,
      peers: peerState.peers,
      peerGeneration: peerState.generation,
      claims,
      acknowledged: acknowledgedPods(),
      failedResizes: pass.mem.failedResizes,
      now: new Date(),
      tokenVersion,
    });

    await this.markDrainedClaims(pass, plan);
    this.announceForcedScaleDown(pass, plan);
    if (!(await this.apply(pass, plan))) return { requeueAfterMs: 0 };
    if (!pass.degraded) {
      this.recordScaling(pass, plan);
      await this.applySideEffects(fc, plan, pass.target, token);
    }
    this.recordProgress(pass, plan);

    const statusWith = (push: PushSummary, publishing = false): FileClusterStatus =>
      computeStatus({
        fc,
        spec,
        members,
        peers: peerState.peers,
        peerGeneration: peerState.generation,
        secretName,
        push,
        acknowledged: acknowledgedPods(),
        progress: plan.progress,
        ...(plan.scaleDownBlockedSince ? { scaleDownBlockedSince: plan.scaleDownBlockedSince } : {}),
        ...(plan.forcedScaleDown ? { forcedScaleDown: plan.forcedScaleDown } : {}),
        ...(pass.degraded ? { degraded: pass.degraded } : {}),
        publishing,
        now: new Date(),
      });
    const acknowledged = (): number => acknowledgedPods().size;
    const blockedSeconds = plan.scaleDownBlockedSince ? (Date.now() - Date.parse(plan.scaleDownBlockedSince)) / 1000 : 0;
    this.deps.metrics.scaleDownBlockedSeconds.set({ namespace: ns, name }, Math.max(0, blockedSeconds));

    // The new generation is persisted before any pod sees it.
    if (changed) {
      timing.status = Date.now();
      fc.status = await this.writeStatus(fc, statusWith({ targets: targets.length, acknowledged: acknowledged(), failures: [] }, true));
      timing.pushed = Date.now();
    }
    const failures = token ? await this.push(pass, { token, peerState, targets, claims, plan }) : [];
    if (changed)
      this.deps.log.info({ cluster: key, generation: peerState.generation, peers: peerState.peers.map((p) => p.id), ...phases(timing, Date.now()) }, 'peer list changed');

    const status = statusWith({ targets: targets.length, acknowledged: acknowledged(), failures });
    if (!isDeepStrictEqual(status, fc.status)) await this.writeStatus(fc, status);

    const after = requeueAfter({
      conflict: pass.mem.minGeneration > peerState.generation,
      terminal: pass.terminal !== undefined,
      ...(pass.degraded ? { degradedReason: pass.degraded.reason } : {}),
      progress: plan.progress.reason,
      pushFailures: failures.length,
      acknowledged: status.peersAcknowledged ?? 0,
      targets: targets.length,
      blockedMs: blockedSeconds * 1000,
      joining: members.some((m) => m.ordinal < spec.replicas && !m.serving && !m.terminating),
      userTokenSecret: spec.tokenSecretName !== undefined,
    });
    return after === undefined ? {} : { requeueAfterMs: after };
  }

  /**
   * The peer token. The user's Secret (or the one generated once, before the cluster had pods) says
   * which token the cluster should use; the operator's own Secret holds what the pods were given and
   * moves them from one to the other through rolling updates (token.ts). Marks the pass Degraded when
   * the token cannot be had.
   */
  private async token(pass: Pass): Promise<{ secretName: string; token: string | undefined; tokenVersion: number }> {
    const { events } = this.deps;
    const { fc, spec, sts, ns, name, mem, target } = pass;
    const secretRef = tokenSecretName(fc, spec);
    const tokensName = peerTokensSecretName(name);
    let inUseSecret = this.deps.secret(ns, tokensName);
    // The cache may not show our last write yet: a stale version would roll the pods back, a missing
    // Secret would be created again.
    if (!inUseSecret || (readPeerTokens(inUseSecret)?.version ?? 0) < mem.tokenVersion) inUseSecret = await this.readSecret(ns, tokensName);
    let inUse = readPeerTokens(inUseSecret);
    let source: string | undefined;
    let secret = this.deps.secret(ns, secretRef.name) ?? (await this.readSecret(ns, secretRef.name));
    if (!secret && secretRef.generate) {
      if (!sts && pass.members.length === 0 && !inUse) {
        secret = await this.createTokenSecret(fc);
        events.record(target, 'Normal', 'TokenSecretCreated', `created Secret ${secretRef.name} with a generated peer token`);
      } else {
        pass.degraded = {
          reason: 'TokenSecretDeleted',
          message:
            `Secret "${secretRef.name}" with the generated peer token was deleted while the cluster has pods; a new token would ` +
            `lock them out of each other, so none is generated. Recreate it with the key "${TOKEN_KEY}" (the pods' token is in ` +
            `Secret "${tokensName}"), or put a new token there to rotate it`,
        };
      }
    }
    if (secretRef.name === tokensName) {
      pass.degraded = { reason: 'TokenSecretNameReserved', message: `Secret "${tokensName}" is the operator's own; name another one in spec.tokenSecretName` };
    } else if (!secret) {
      pass.degraded ??= { reason: 'TokenSecretMissing', message: `Secret "${secretRef.name}" not found in namespace ${ns}; create it with the key "${TOKEN_KEY}"` };
    } else {
      const raw = secret.data?.[TOKEN_KEY];
      source = raw ? Buffer.from(raw, 'base64').toString('utf8') : undefined;
      if (!source) pass.degraded = { reason: 'TokenSecretKeyMissing', message: `Secret "${secretRef.name}" has no non-empty key "${TOKEN_KEY}"` };
    }
    if (source !== undefined && !pass.degraded) {
      const rolledOut = !sts || (inUse !== undefined && templateRolledOut(sts, templateHash(podTemplate(fc, spec, inUse.version))));
      const step = nextPeerTokens(source, inUse, rolledOut);
      if (step.change) {
        await this.writePeerTokens(fc, inUseSecret, step.tokens);
        inUse = step.tokens;
        mem.tokenVersion = step.tokens.version;
        if (step.reason !== 'TokenInitialized') events.record(target, 'Normal', step.reason, TOKEN_STEP_MESSAGES[step.reason]);
      } else if (step.waiting) {
        events.record(target, 'Normal', 'TokenRotationWaiting', 'the peer token changed; its rotation starts once the rolling update under way has finished');
      }
    }
    // What every pod accepts; while the operator's Secret is missing (a Degraded cluster), nothing.
    return { secretName: secretRef.name, token: inUse ? clientToken(inUse) : undefined, tokenVersion: inUse?.version ?? 0 };
  }

  /** The peer list the members call for, under a new generation when it changed (or a pod knows a newer one). */
  private membership(pass: Pass): { peerState: PeerList; changed: boolean } {
    const { fc, members, spec, mem } = pass;
    const desired = desiredPeers(members, spec.replicas);
    let next = nextPeerState({ peers: fc.status?.peers ?? [], generation: fc.status?.peerGeneration ?? 0 }, desired);
    if (mem.minGeneration > next.generation) next = { peers: desired, generation: mem.minGeneration, changed: true };
    return { peerState: { peers: next.peers, generation: next.generation }, changed: next.changed };
  }

  /** The pods' own word: leaving pods are fenced first, and the fence's answer is their status, read after it took hold. */
  private async askPods(pass: Pass, token: string | undefined, tokenVersion: number): Promise<Map<string, NodeReport>> {
    const { fc, spec, sts, members } = pass;
    const reports = new Map<string, NodeReport>();
    if (!token) return reports;
    const timeoutMs = this.deps.push.timeoutMs;
    const ask = (names: string[], how: (url: string) => Promise<NodeReport>) =>
      Promise.all(
        names.map(async (podName) => {
          const pod = members.find((m) => m.name === podName);
          if (pod?.ip) reports.set(podName, await how(podUrl(pod.ip)));
        }),
      );
    await Promise.all([
      ask(podsToFence(spec, sts, members), (url) => fenceNode(url, token, true, timeoutMs)),
      ask(podsToInspect(fc, spec, sts, members, tokenVersion), (url) => readNodeStatus(url, token, timeoutMs)),
    ]);
    return reports;
  }

  /**
   * Claims of leaving pods that passed the barrier are marked before the StatefulSet shrinks: the mark is
   * what lets their deletion follow once the pods are gone.
   */
  private async markDrainedClaims(pass: Pass, plan: Plan): Promise<void> {
    if (pass.degraded) return;
    for (const claim of plan.drainMarks) await this.annotateClaim(pass.ns, claim, { [DRAINED_ANNOTATION]: 'true' });
  }

  /** A scale-down forced past the write barrier gets one Warning per replica count and generation. */
  private announceForcedScaleDown(pass: Pass, plan: Plan): void {
    if (!plan.forced) return;
    const announced = `${plan.forced.replicas}/${pass.fc.metadata.generation}`;
    if (pass.mem.forcedAnnounced === announced) return;
    pass.mem.forcedAnnounced = announced;
    const kept = plan.forced.keptClaims.length > 0 ? `; kept claims ${plan.forced.keptClaims.join(', ')} (delete them by hand once their data is not needed)` : '';
    this.deps.events.record(
      pass.target,
      'Warning',
      'ForcedScaleDown',
      `scale-down to ${plan.forced.replicas} forced by the ${FORCE_SCALE_DOWN_ANNOTATION} annotation without the write barrier: ${plan.forced.blockers.join('; ')}${kept}`,
    );
  }

  /**
   * Applies the Services, the PodDisruptionBudget and the StatefulSet, skipping those that cannot have
   * changed. A Degraded pass applies nothing and says why; an apply the API server refuses for good
   * makes the pass Degraded and terminal. False when a shrink found the spec changed since it was read.
   */
  private async apply(pass: Pass, plan: Plan): Promise<boolean> {
    const { kube, events, log } = this.deps;
    const { fc, sts, ns, mem, target } = pass;
    if (pass.degraded) {
      events.record(target, 'Warning', pass.degraded.reason, pass.degraded.message);
      return true;
    }
    const shrinking = sts !== undefined && (plan.statefulSet.spec?.replicas ?? 0) < (sts.spec?.replicas ?? 0);
    try {
      for (const obj of [plan.headlessService, plan.clientService, plan.podDisruptionBudget, plan.statefulSet]) {
        if (obj === plan.statefulSet && shrinking) {
          // A shrink deletes pods and their volumes, so it goes out only if what it was decided on still
          // holds: the spec (read again now) and the StatefulSet (the write's resourceVersion
          // precondition fails with a conflict if anyone wrote it since). A reconcile that read before a
          // scale-up, or a leader deposed meanwhile, then cannot undo it.
          if (!(await this.sameGeneration(fc))) return false;
          obj.metadata!.resourceVersion = sts!.metadata!.resourceVersion!;
        }
        const objName = obj.metadata!.name!;
        const res = obj.kind === 'Service' ? RESOURCES.services : obj.kind === 'StatefulSet' ? RESOURCES.statefulsets : RESOURCES.poddisruptionbudgets;
        // What shows that nobody changed the object since: the StatefulSet's generation (its status
        // churns), a Service's resourceVersion; PodDisruptionBudgets are not watched (age only).
        const marker = (o: KubernetesObject | undefined): string =>
          obj.kind === 'PodDisruptionBudget' ? '' : !o ? 'absent' : obj.kind === 'StatefulSet' ? `gen:${o.metadata?.generation}` : `rv:${o.metadata?.resourceVersion}`;
        const observed = obj.kind === 'StatefulSet' ? sts : obj.kind === 'Service' ? this.deps.service(ns, objName) : undefined;
        const want = digest(obj);
        const last = mem.applied.get(`${obj.kind}/${objName}`);
        if (last && last.digest === want && last.marker === marker(observed) && Date.now() - last.at < REAPPLY_MS) continue;
        const result = await kube.apply<KubernetesObject>(resourcePath(res, ns, objName), obj, FIELD_MANAGER);
        mem.applied.set(`${obj.kind}/${objName}`, { digest: want, marker: marker(result), at: Date.now() });
        log.debug({ cluster: pass.key, object: `${obj.kind}/${objName}` }, 'applied');
      }
    } catch (err) {
      if (!(err instanceof KubeError) || !isTerminalStatus(err.status)) throw err;
      pass.terminal = new TerminalError('ApplyRejected', err.message, { cause: err });
      pass.degraded = { reason: pass.terminal.reason, message: pass.terminal.message };
      events.record(target, 'Warning', pass.terminal.reason, pass.terminal.message);
    }
    return true;
  }

  /** The StatefulSet's creation or new size, as an Event. */
  private recordScaling(pass: Pass, plan: Plan): void {
    const before = pass.sts?.spec?.replicas;
    const after = plan.statefulSet.spec?.replicas;
    if (!pass.sts) this.deps.events.record(pass.target, 'Normal', 'Created', `created StatefulSet ${pass.name} with ${after} pods`);
    else if (before !== after) this.deps.events.record(pass.target, 'Normal', 'Scaled', `scaled StatefulSet ${pass.name} from ${before} to ${after} pods`);
  }

  /** Progress worth an Event, once each time it starts. */
  private recordProgress(pass: Pass, plan: Plan): void {
    if (pass.mem.lastProgress !== plan.progress.reason && NOTABLE_PROGRESS.has(plan.progress.reason)) {
      this.deps.events.record(pass.target, 'Normal', plan.progress.reason, plan.progress.message);
    }
    pass.mem.lastProgress = plan.progress.reason;
  }

  /**
   * Pushes the peer list to the joined pods that have not acknowledged it (or not lately), after marking
   * the claims that join now; returns the failures.
   */
  private async push(
    pass: Pass,
    { token, peerState, targets, claims, plan }: { token: string; peerState: PeerList; targets: Array<MemberPod & { ip: string }>; claims: Claim[]; plan: Plan },
  ): Promise<PushSummary['failures']> {
    const { mem, ns, target } = pass;
    const failures: PushSummary['failures'] = [];
    // A pod gets its first peer list only once its claim says so (a claim never marked holds no
    // acknowledged write, and a scale-down does not wait for it).
    const joined = new Set<string>();
    for (const c of claims) if (c.joined && !c.drained) joined.add(c.ordinal.toString());
    for (const claim of plan.joinMarks) {
      if (await this.annotateClaim(ns, claim, { [JOINED_ANNOTATION]: 'true', [DRAINED_ANNOTATION]: null })) {
        joined.add(String(claims.find((c) => c.name === claim)?.ordinal));
      }
    }
    const now = Date.now();
    const due = targets.filter((t) => {
      if (!joined.has(String(t.ordinal))) return false;
      const ack = mem.acks.get(ackKey(t));
      return !ack || ack.generation !== peerState.generation || now - ack.at > REVERIFY_MS;
    });
    await Promise.all(
      due.map(async (pod) => {
        const t0 = process.hrtime.bigint();
        const r = await pushPeers(podUrl(pod.ip), token, peerState, this.deps.push);
        this.deps.metrics.peerPushDuration.observe(Number(process.hrtime.bigint() - t0) / 1e9);
        this.deps.metrics.peerPushTotal.inc({ result: r.ok ? 'success' : r.conflict ? 'conflict' : 'error' });
        if (r.ok) {
          mem.acks.set(ackKey(pod), { generation: r.generation, at: Date.now() });
        } else {
          mem.acks.delete(ackKey(pod));
          failures.push({ pod: pod.name, ready: pod.ready, error: r.error });
          if (r.conflict) mem.minGeneration = Math.max(mem.minGeneration, (r.generation ?? peerState.generation) + 1);
        }
      }),
    );
    // Forget pods that are gone.
    const live = new Set(targets.map(ackKey));
    for (const k of mem.acks.keys()) if (!live.has(k)) mem.acks.delete(k);
    // A pod that is not Ready yet may not listen yet: its failures show in PeersSynced, not as Warnings.
    for (const f of failures.filter((x) => x.ready))
      this.deps.events.record(target, 'Warning', 'PeerPushFailed', `pushing peer list generation ${peerState.generation} to ${f.pod} failed: ${f.error}`);
    return failures;
  }

  /** Whether the FileCluster's spec is still the one this reconcile read. */
  private async sameGeneration(fc: FileCluster): Promise<boolean> {
    const now = await this.deps.kube.getIfExists<FileCluster>(resourcePath(RESOURCES.fileclusters, fc.metadata.namespace, fc.metadata.name));
    return now?.metadata.uid === fc.metadata.uid && now?.metadata.generation === fc.metadata.generation;
  }

  private readSecret(ns: string, name: string): Promise<V1Secret | undefined> {
    return this.deps.kube.getIfExists<V1Secret>(resourcePath(RESOURCES.secrets, ns, name));
  }

  /** Writes the operator's token Secret; an update is conditional on the version it was decided from. */
  private async writePeerTokens(fc: FileCluster, existing: V1Secret | undefined, tokens: PeerTokens): Promise<void> {
    const body = peerTokensSecret(fc, tokens);
    const query = { fieldManager: FIELD_MANAGER };
    if (!existing) {
      await this.deps.kube.request('POST', resourcePath(RESOURCES.secrets, fc.metadata.namespace), { body, query });
      return;
    }
    body.metadata!.resourceVersion = existing.metadata?.resourceVersion ?? '';
    await this.deps.kube.request('PUT', resourcePath(RESOURCES.secrets, fc.metadata.namespace, body.metadata!.name!), { body, query });
  }

  private async createTokenSecret(fc: FileCluster): Promise<V1Secret> {
    const body = generatedSecret(fc, randomBytes(32).toString('hex'));
    try {
      return await this.deps.kube.request<V1Secret>('POST', resourcePath(RESOURCES.secrets, fc.metadata.namespace), { body, query: { fieldManager: FIELD_MANAGER } });
    } catch (err) {
      if (!isConflict(err)) throw err;
      return (await this.readSecret(fc.metadata.namespace, body.metadata!.name!)) as V1Secret;
    }
  }

  /** Merge-patches annotations of a data claim; false when the claim is gone. */
  private async annotateClaim(ns: string, claim: string, annotations: Record<string, string | null>): Promise<boolean> {
    try {
      await this.deps.kube.mergePatch(resourcePath(RESOURCES.persistentvolumeclaims, ns, claim), { metadata: { annotations } }, FIELD_MANAGER);
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  private async applySideEffects(fc: FileCluster, plan: Plan, target: EventTarget, token: string | undefined): Promise<void> {
    const { kube, events } = this.deps;
    const ns = fc.metadata.namespace;
    const mem = this.mem(`${ns}/${fc.metadata.name}`);
    for (const l of plan.servingLabels) {
      try {
        await kube.mergePatch(resourcePath(RESOURCES.pods, ns, l.name), { metadata: { labels: { [SERVING_LABEL]: String(l.serving) } } }, FIELD_MANAGER);
      } catch (err) {
        if (isNotFound(err)) continue;
        // Without the right to patch pods, a leaving pod keeps its client traffic; scale-down gating
        // still holds, so say so and go on.
        if (err instanceof KubeError && err.status === 403) {
          events.record(target, 'Warning', 'PodLabelForbidden', `cannot change whether ${l.name} is in the client Service: ${err.message}`);
          continue;
        }
        throw err;
      }
    }
    if (token) {
      const members = memberPods(fc.metadata.name, this.deps.pods(ns, fc.metadata.name));
      for (const name of plan.unfence) {
        const ip = members.find((m) => m.name === name)?.ip;
        if (!ip) continue;
        const r = await fenceNode(podUrl(ip), token, false, this.deps.push.timeoutMs);
        if (!r.ok) events.record(target, 'Warning', 'UnfenceFailed', `${name} stays fenced after a cancelled scale-down: ${r.error}`);
      }
    }
    for (const r of plan.pvcResizes) {
      try {
        await kube.mergePatch(resourcePath(RESOURCES.persistentvolumeclaims, ns, r.name), { spec: { resources: { requests: { storage: r.size } } } }, FIELD_MANAGER);
        mem.failedResizes.delete(r.name);
      } catch (err) {
        if (isNotFound(err)) continue;
        mem.failedResizes.set(r.name, r.size);
        events.record(target, 'Warning', 'VolumeResizeFailed', `resizing ${r.name} to ${r.size} failed: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    for (const claim of plan.claimDeletes) {
      const uid = this.deps.claims(ns, fc.metadata.name).find((c) => c.metadata?.name === claim)?.metadata?.uid;
      try {
        // The uid precondition keeps a claim the StatefulSet made anew meanwhile.
        await kube.request('DELETE', resourcePath(RESOURCES.persistentvolumeclaims, ns, claim), { body: { preconditions: uid ? { uid } : {} } });
        events.record(target, 'Normal', 'ClaimDeleted', `deleted ${claim}: its pod left the cluster after handing every write over`);
      } catch (err) {
        if (isNotFound(err) || isConflict(err)) continue;
        throw err;
      }
    }
  }

  private async writeStatus(fc: FileCluster, status: FileClusterStatus): Promise<FileClusterStatus> {
    const body = { apiVersion: API_VERSION, kind: KIND, metadata: { name: fc.metadata.name, namespace: fc.metadata.namespace }, status };
    const updated = await this.deps.kube.apply<FileCluster>(resourcePath(RESOURCES.fileclusters, fc.metadata.namespace, fc.metadata.name, 'status'), body, FIELD_MANAGER);
    return updated.status ?? status;
  }
}
