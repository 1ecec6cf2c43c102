import type { KubeConfig } from '@kubernetes/client-node';

/** Where the cluster under test comes from. */
export type ProviderName = 'local' | 'existing' | 'k3s' | 'kind';

/** How the process node runs a container image: argv prefix; the container's args follow. */
export interface ImageCommand {
  /** argv[0] may be 'node' (replaced by this repo's Node 24 binary) or an absolute path. */
  command: string[];
  /** When true, the container's own `command` (if any) is appended after `command`, before `args`. */
  appendContainerCommand?: boolean;
  /** The image's own environment (its Dockerfile's ENV); the container's env overrides it, as in a runtime. */
  env?: Record<string, string>;
  /**
   * Variables that set the address its program listens on. Pods on a process node share the host's
   * network, so a listener on every address would take its port for all of them: these are set to the
   * pod's own IP (under the container's env, which still wins).
   */
  listenAddressEnv?: string[];
}

export interface StartClusterOptions {
  /** Defaults to env FC_TEST_PROVIDER, then 'local'. */
  provider?: ProviderName;
  /** existing: the kubeconfig file to use (default: env KUBECONFIG). */
  kubeconfig?: string;
  /** local: how many process nodes to register (default 1). */
  nodes?: number;
  /** local: extra image-repository -> command mappings, checked before the built-in table. */
  images?: Record<string, ImageCommand>;
  /** local: first crash-restart delay after the immediate first restart (default 10 s, doubling, max 300 s). */
  restartBackoffSeconds?: number;
  /** Progress lines (default: stderr when FC_TEST_VERBOSE is set, else silent). */
  log?: (line: string) => void;
}

export interface KubectlOptions {
  /** Written to kubectl's stdin (e.g. for `apply -f -`). */
  input?: string;
  /** Kill kubectl after this long (default 120 s). */
  timeoutMs?: number;
}

export interface KubectlResult {
  stdout: string;
  stderr: string;
  code: number;
}

/** A container process the process node runs (local provider only). */
export interface PodProcess {
  node: string;
  namespace: string;
  pod: string;
  uid: string;
  container: string;
  pid: number;
  podIP: string;
}

/** Extras only the local provider has. */
export interface LocalCluster {
  /** Directory holding every component's log, the kubeconfig and the pods' files. */
  dir: string;
  /** Names of the registered process nodes. */
  nodes(): string[];
  /** Registers one more process node and waits until it is Ready; returns its name. */
  addNode(name?: string): Promise<string>;
  /** Container processes currently alive on every process node. */
  processes(): PodProcess[];
  /** Process ids of the control plane (etcd, apiserver, controller manager, scheduler). */
  controlPlanePids(): number[];
  /** Loopback ports the control plane listens on. */
  controlPlanePorts(): number[];
  /** Stops kube-apiserver and starts it again on the same port and data; resolves once it is ready. */
  restartApiServer(): Promise<void>;
}

export interface PodConnection {
  url: string;
  close(): Promise<void>;
}

export interface Cluster {
  provider: ProviderName;
  /** Kubeconfig with cluster-admin rights. */
  kubeconfigPath: string;
  /** Runs kubectl against the cluster; never throws for a non-zero exit (see `code`). */
  kubectl(args: string[], opts?: KubectlOptions): Promise<KubectlResult>;
  /** A fresh KubeConfig loaded from kubeconfigPath. */
  kubeClient(): KubeConfig;
  /** `kubectl apply --server-side` of YAML text or objects; throws with kubectl's stderr on failure. */
  apply(manifest: string | object | object[], namespace?: string): Promise<void>;
  /** Creates a namespace named `<prefix>-<random>` and waits for its default ServiceAccount. */
  createNamespace(prefix: string): Promise<string>;
  /** Deletes a namespace and waits until it is gone (bounded). */
  deleteNamespace(name: string): Promise<void>;
  /**
   * A base URL (`http://host:port`) that reaches `port` of a pod from this process: the pod IP when it
   * answers from here (local provider, or a cluster on this host), else a `kubectl port-forward`
   * that `close()` stops.
   */
  reachPod(namespace: string, pod: string, port: number): Promise<PodConnection>;
  /** A container's log: the process's output (local) or `kubectl logs` (other providers). */
  logs(namespace: string, pod: string, container?: string): Promise<string>;
  /** The tail of every component's log, for test failure messages. */
  diagnostics(): Promise<string>;
  /** Present only for the local provider. */
  local?: LocalCluster;
  /** Stops everything this harness started. Idempotent. Never tears down an existing cluster. */
  close(): Promise<void>;
}
