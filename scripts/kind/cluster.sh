#!/usr/bin/env bash
# A kind cluster on this machine with no container registry: 1 control-plane and 2 worker nodes from the
# node image scripts/kind/build-node-image.sh builds, on the private Docker daemon of scripts/kind/dockerd.sh,
# with kind itself built from sigs.k8s.io/kind. Everything is cached outside the clone, so only the
# first run builds (see the printed times).
#
#   scripts/kind/cluster.sh create [--name NAME] [--kubeconfig PATH]   (re)creates it; waits until every node
#                                                                       is Ready and CoreDNS answers
#   scripts/kind/cluster.sh delete [--name NAME]
#   scripts/kind/cluster.sh load [--name NAME] IMAGE...                loads images of the kind daemon into every node
#   scripts/kind/cluster.sh env                                         prints DOCKER_HOST=... and KIND=... lines
#
# create prints the kubeconfig path on the last line of stdout (default: the cache directory's
# kind/<name>.kubeconfig). NAME defaults to filecluster.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PATH:/usr/sbin:/sbin"

KIND_VERSION="${KIND_VERSION:-v0.33.0}"
CACHE_ROOT="${FILECLUSTER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/filecluster}"
log() { echo "[kind/cluster] $*" >&2; }
elapsed() { echo "$(( $(date +%s) - $1 ))s"; }

action="${1:-}"
shift || true
name=filecluster
kubeconfig=""
images=()
usage="usage: $0 create|delete|load|env [--name NAME] [--kubeconfig PATH] [IMAGE...]"
while (( $# )); do
  case "$1" in
    --name) name="$2"; shift 2 ;;
    --kubeconfig) kubeconfig="$2"; shift 2 ;;
    -*) echo "${usage}" >&2; exit 2 ;;
    *) images+=("$1"); shift ;;
  esac
done
[[ "${action}" == load || ${#images[@]} -eq 0 ]] || { echo "${usage}" >&2; exit 2; }
kubeconfig="${kubeconfig:-${CACHE_ROOT}/kind/${name}.kubeconfig}"

started=$(date +%s)
# Always the kind daemon, whatever DOCKER_HOST says: its runtime is the one kind's nodes can start with.
export DOCKER_HOST="$(bash scripts/kind/dockerd.sh | tail -1)"

# kind, built once per version into the cache directory
kind="${CACHE_ROOT}/kind/bin/kind-${KIND_VERSION}"
if [[ ! -x "${kind}" ]]; then
  log "building kind ${KIND_VERSION} from sigs.k8s.io/kind"
  work="$(mktemp -d)"
  (
    cd "${work}"
    go mod init filecluster.local/kind-build >/dev/null 2>&1
    go get "sigs.k8s.io/kind@${KIND_VERSION}" >/dev/null 2>&1 || go get "sigs.k8s.io/kind@${KIND_VERSION}"
    mkdir -p "$(dirname "${kind}")"
    CGO_ENABLED=0 GOTOOLCHAIN=local go build -trimpath -ldflags "-s -w" -o "${kind}.partial" sigs.k8s.io/kind
  )
  rm -rf "${work}"
  mv "${kind}.partial" "${kind}"
fi

case "${action}" in
  env)
    echo "DOCKER_HOST=${DOCKER_HOST}"
    echo "KIND=${kind}"
    exit 0
    ;;
  delete)
    "${kind}" delete cluster --name "${name}"
    exit 0
    ;;
  load)
    "${kind}" load docker-image --name "${name}" "${images[@]}" >&2
    exit 0
    ;;
  create) ;;
  *) echo "${usage}" >&2; exit 2 ;;
esac

image="$(bash scripts/kind/build-node-image.sh | tail -1)"
built=$(date +%s)
log "node image ${image} ready after $(elapsed "${started}")"

# The machines run cgroup v1, which kubelet >= 1.35 refuses unless told otherwise. kube-proxy uses
# nftables: its image carries nft, and no iptables mode has to match the node's.
config="$(mktemp)"
trap 'rm -f "${config}"' EXIT
cat > "${config}" <<EOF
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
networking:
  kubeProxyMode: nftables
kubeadmConfigPatches:
  - |
    kind: KubeletConfiguration
    failCgroupV1: false
nodes:
  - role: control-plane
  - role: worker
  - role: worker
EOF
"${kind}" delete cluster --name "${name}" >/dev/null 2>&1 || true
mkdir -p "$(dirname "${kubeconfig}")"
"${kind}" create cluster --name "${name}" --image "${image}" --config "${config}" --kubeconfig "${kubeconfig}" --retain >&2 || {
  log "kind create cluster failed; node logs follow (the node containers are kept: --retain)"
  for node in $("${kind}" get nodes --name "${name}"); do
    echo "--- ${node}: journalctl -u kubelet -u containerd (last 40 lines)" >&2
    docker exec "${node}" journalctl -u kubelet -u containerd --no-pager -n 40 >&2 || true
  done
  exit 1
}
created=$(date +%s)

kubectl="$(bash scripts/build-k8s.sh | tail -1)/kubectl"
k() { "${kubectl}" --kubeconfig "${kubeconfig}" "$@"; }
k wait --for=condition=Ready nodes --all --timeout=180s >&2
k -n kube-system rollout status deployment/coredns --timeout=180s >&2
# CoreDNS answering, asked from a node through the kube-dns Service (kube-proxy and the CNI's routes too)
dns_ip="$(k -n kube-system get service kube-dns -o jsonpath='{.spec.clusterIP}')"
for _ in $(seq 60); do
  docker exec "${name}-control-plane" busybox nslookup kubernetes.default.svc.cluster.local "${dns_ip}" >/dev/null 2>&1 && break
  sleep 1
done
docker exec "${name}-control-plane" busybox nslookup kubernetes.default.svc.cluster.local "${dns_ip}" >&2
log "cluster ${name} ready: node image $(( built - started ))s, kind create $(( created - built ))s, nodes Ready and DNS $(( $(date +%s) - created ))s, total $(elapsed "${started}")"
echo "${kubeconfig}"
