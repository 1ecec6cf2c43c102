import type { KubernetesObject, V1ContainerStatus, V1ObjectMeta, V1PersistentVolumeClaim, V1Pod, V1Secret } from '@kubernetes/client-node';
import type { FileCluster } from '../../api/v1alpha1/types.ts';
import { TOKEN_KEY } from './names.ts';
import { PREVIOUS_TOKEN_KEY } from './token.ts';

// What the informer caches keep of each object: only the fields the controller reads from a cache.
// The FileCluster and its StatefulSet are read live by the reconcile, so their caches only route
// events; a pod's spec and most of its status (several KB each, times every pod) are never read.
// Each function returns a new object with the kept fields; the informer puts it in place of the
// cached one.

/** Identity, ownership and the labels; annotations (kubectl's last-applied copy among them) are dropped. */
function slimMeta(m: V1ObjectMeta | undefined): V1ObjectMeta {
  const out: V1ObjectMeta = {};
  if (!m) return out;
  if (m.name !== undefined) out.name = m.name;
  if (m.namespace !== undefined) out.namespace = m.namespace;
  if (m.uid !== undefined) out.uid = m.uid;
  // The cache compares resourceVersions to tell updates from replays.
  if (m.resourceVersion !== undefined) out.resourceVersion = m.resourceVersion;
  if (m.labels !== undefined) out.labels = m.labels;
  if (m.ownerReferences !== undefined) out.ownerReferences = m.ownerReferences;
  if (m.deletionTimestamp !== undefined) out.deletionTimestamp = m.deletionTimestamp;
  return out;
}

/** Membership reads: name, uid, labels, deletion, phase, IP, the Ready condition and restart counts. */
export function slimPod(pod: V1Pod): V1Pod {
  const out: V1Pod = { metadata: slimMeta(pod.metadata) };
  const s = pod.status;
  if (!s) return out;
  out.status = {};
  if (s.phase !== undefined) out.status.phase = s.phase;
  if (s.podIP !== undefined) out.status.podIP = s.podIP;
  const ready = s.conditions?.find((c) => c.type === 'Ready');
  if (ready) out.status.conditions = [{ type: ready.type, status: ready.status }];
  // Only the restart count is read; the other required fields of a container status are not kept.
  if (s.containerStatuses) out.status.containerStatuses = s.containerStatuses.map((c) => ({ restartCount: c.restartCount }) as V1ContainerStatus);
  return out;
}

/** StatefulSets and Services: routing to the owner, and a Service's resourceVersion (apply skipping). */
export function slimOwned(obj: KubernetesObject): KubernetesObject {
  return { metadata: slimMeta(obj.metadata) };
}

/** The operator's Secrets (generated tokens, the pods' tokens): the token keys only; the version is a label. */
export function slimSecret(secret: V1Secret): V1Secret {
  const out: V1Secret = { metadata: slimMeta(secret.metadata) };
  const kept = Object.entries(secret.data ?? {}).filter(([k]) => k === TOKEN_KEY || k === PREVIOUS_TOKEN_KEY);
  if (kept.length > 0) out.data = Object.fromEntries(kept);
  return out;
}

/** The operator's own annotations (filecluster.dev/force-scale-down...): the only ones it acts on. */
const OWN_ANNOTATION = /^filecluster\.dev\//;

const ownAnnotations = (m: V1ObjectMeta | undefined): Record<string, string> | undefined => {
  const own = Object.entries(m?.annotations ?? {}).filter(([k]) => OWN_ANNOTATION.test(k));
  return own.length > 0 ? Object.fromEntries(own) : undefined;
};

/** Data claims: the operator's marks, the requested and the provisioned size (resizing compares them). */
export function slimClaim(claim: V1PersistentVolumeClaim): V1PersistentVolumeClaim {
  const out: V1PersistentVolumeClaim = { metadata: slimMeta(claim.metadata) };
  const own = ownAnnotations(claim.metadata);
  if (own) out.metadata!.annotations = own;
  const requested = claim.spec?.resources?.requests?.['storage'];
  if (requested !== undefined) out.spec = { resources: { requests: { storage: requested } } };
  const capacity = claim.status?.capacity?.['storage'];
  if (capacity !== undefined) out.status = { capacity: { storage: capacity } };
  return out;
}

/**
 * FileClusters route events; the reconcile reads them live. The
 * generation and the operator's annotations tell a change someone made from a status write.
 */
export function slimFileCluster(fc: FileCluster & KubernetesObject): FileCluster & KubernetesObject {
  const out = { metadata: slimMeta(fc.metadata), spec: {} } as FileCluster & KubernetesObject;
  if (fc.metadata?.generation !== undefined) out.metadata.generation = fc.metadata.generation;
  const own = ownAnnotations(fc.metadata as V1ObjectMeta);
  if (own) out.metadata.annotations = own;
  return out;
}

/**
 * What a FileCluster update must change to queue a reconcile: the spec (its generation), deletion, or
 * the operator's annotations. Status-only updates, above all the operator's own status writes (one or
 * two per reconcile that changes anything), would otherwise each queue one more reconcile of two GETs.
 */
export function fileClusterChangeKey(fc: KubernetesObject): string {
  const m = fc.metadata ?? {};
  const own = Object.entries(m.annotations ?? {})
    .filter(([k]) => OWN_ANNOTATION.test(k))
    .sort(([a], [b]) => (a < b ? -1 : 1));
  return JSON.stringify([m.uid, m.generation, m.deletionTimestamp ?? null, own]);
}
