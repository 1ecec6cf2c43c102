#!/usr/bin/env bash
# Builds the binaries of a kind node image that neither Debian nor scripts/build-k8s.sh provides, from
# Go modules (and pause from the C source in the k8s.io/kubernetes module), into a cache directory:
# containerd, containerd-shim-runc-v2, ctr, crictl, coredns, local-path-provisioner, pause.
# Idempotent: binaries already in the cache directory are reused. Prints the directory on the last line.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.36.3}"
CONTAINERD_VERSION="${CONTAINERD_VERSION:-v2.4.2}"
CRI_TOOLS_VERSION="${CRI_TOOLS_VERSION:-v1.37.0}"
COREDNS_VERSION="${COREDNS_VERSION:-v1.14.2}"
LOCAL_PATH_VERSION="${LOCAL_PATH_VERSION:-v0.0.30}"
PAUSE_VERSION="${PAUSE_VERSION:-3.10.2}"
CACHE_ROOT="${FILECLUSTER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/filecluster}"
OUT="${CACHE_ROOT}/kind/bin/containerd-${CONTAINERD_VERSION}-crictl-${CRI_TOOLS_VERSION}-coredns-${COREDNS_VERSION}-lpp-${LOCAL_PATH_VERSION}-pause-${PAUSE_VERSION}"
BINARIES=(containerd containerd-shim-runc-v2 ctr crictl coredns local-path-provisioner pause)

log() { echo "[kind/build-binaries] $*" >&2; }
has() { [[ -x "${OUT}/$1" ]]; }
complete() {
  local b
  for b in "${BINARIES[@]}"; do has "$b" || return 1; done
}

if complete; then
  log "cached: ${OUT}"
  echo "${OUT}"
  exit 0
fi
mkdir -p "${OUT}"
exec 9>"${OUT}.lock"
flock 9
command -v go >/dev/null || { log "go is required (Go >= 1.26)"; exit 1; }
export CGO_ENABLED=0 GOFLAGS="${GOFLAGS:-} -mod=mod" GOTOOLCHAIN=local
WORK="$(mktemp -d)"
trap 'rm -rf "${WORK}"' EXIT
start=$(date +%s)

# go_build MODULE@VERSION PACKAGE OUTPUT [go build flags...]: builds one package of one module in a
# throwaway module of its own, so no two projects' dependency versions mix. The binary is renamed into
# place only when complete.
go_build() {
  local module="$1" package="$2" output="$3"
  shift 3
  has "${output}" && return 0
  local dir="${WORK}/${output}"
  mkdir -p "${dir}"
  (
    cd "${dir}"
    go mod init "filecluster.local/${output}-build" >/dev/null 2>&1
    go get "${module}" >/dev/null 2>&1 || go get "${module}"
    log "building ${output} from ${module} ($(( $(date +%s) - start ))s elapsed)"
    go build -trimpath "$@" -o "${OUT}/.${output}.partial" "${package}"
  )
  mv "${OUT}/.${output}.partial" "${OUT}/${output}"
}

containerd_ldflags="-s -w -X github.com/containerd/containerd/v2/version.Version=${CONTAINERD_VERSION}"
for b in containerd containerd-shim-runc-v2 ctr; do
  go_build "github.com/containerd/containerd/v2@${CONTAINERD_VERSION}" "github.com/containerd/containerd/v2/cmd/${b}" "${b}" \
    -tags "no_aufs no_zfs no_btrfs no_devmapper" -ldflags "${containerd_ldflags}"
done
go_build "sigs.k8s.io/cri-tools@${CRI_TOOLS_VERSION}" sigs.k8s.io/cri-tools/cmd/crictl crictl \
  -ldflags "-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=${CRI_TOOLS_VERSION}"
go_build "github.com/coredns/coredns@${COREDNS_VERSION}" github.com/coredns/coredns coredns -ldflags "-s -w"
go_build "github.com/rancher/local-path-provisioner@${LOCAL_PATH_VERSION}" github.com/rancher/local-path-provisioner \
  local-path-provisioner -ldflags "-s -w"

# pause: the sandbox container's process, a static C program shipped in the k8s.io/kubernetes module.
if ! has pause; then
  command -v gcc >/dev/null || { log "gcc (with static glibc, libc6-dev) is required for pause"; exit 1; }
  src="$(cd "${WORK}" && go mod download -json "k8s.io/kubernetes@${K8S_VERSION}" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')/build/pause/linux/pause.c"
  log "building pause ${PAUSE_VERSION} from ${src}"
  gcc -Os -Wall -Werror -static -DVERSION="v${PAUSE_VERSION}" -o "${OUT}/.pause.partial" "${src}"
  strip "${OUT}/.pause.partial"
  mv "${OUT}/.pause.partial" "${OUT}/pause"
fi

complete || { log "incomplete: ${OUT}"; exit 1; }
log "done in $(( $(date +%s) - start ))s: ${OUT}"
echo "${OUT}"
