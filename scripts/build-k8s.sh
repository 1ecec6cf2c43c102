#!/usr/bin/env bash
# Builds the pinned Kubernetes control-plane binaries and etcd from Go modules into a cache directory
# laid out like KUBEBUILDER_ASSETS (etcd, kube-apiserver, kubectl, ...). Idempotent: binaries already in
# the cache directory are reused as they are. Prints the directory on the last line of stdout.
#
#   scripts/build-k8s.sh [more k8s.io/kubernetes/cmd binaries...]   (the kind node image adds kubelet kubeadm kube-proxy)
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.36.3}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
CACHE_ROOT="${FILECLUSTER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/filecluster}"
ASSETS="${CACHE_ROOT}/k8s/${K8S_VERSION}-etcd-${ETCD_VERSION}-linux-amd64"
BINARIES=(kube-apiserver kube-controller-manager kube-scheduler kubectl "$@")

log() { echo "[build-k8s] $*" >&2; }

missing() {
  local b
  for b in "${BINARIES[@]}"; do [[ -x "${ASSETS}/${b}" ]] || echo "${b}"; done
}
complete() { [[ -x "${ASSETS}/etcd" && -z "$(missing)" ]]; }

if complete; then
  log "cached: ${ASSETS}"
  echo "${ASSETS}"
  exit 0
fi

# One build at a time per version (test files may ask concurrently); the loser reuses the result.
mkdir -p "${CACHE_ROOT}/k8s"
exec 9>"${ASSETS}.lock"
if ! flock -n 9; then
  log "another build of ${K8S_VERSION} is running; waiting for it"
  flock 9
fi
if complete; then
  log "cached: ${ASSETS}"
  echo "${ASSETS}"
  exit 0
fi

command -v go >/dev/null || { log "go is required (Go >= 1.26)"; exit 1; }
export CGO_ENABLED=0 GOFLAGS="${GOFLAGS:-} -mod=mod" GOTOOLCHAIN=local
WORK="$(mktemp -d)"
trap 'rm -rf "${WORK}"' EXIT
# Each binary is built next to its final name and renamed into place, so an interrupted build leaves no
# half-written binary that a later run would take as cached.
mkdir -p "${ASSETS}"
start=$(date +%s)
mapfile -t k8s_missing < <(missing)

build_kubernetes() {
  # --- Kubernetes: a throwaway module requiring k8s.io/kubernetes, with every staging module that the
  # kubernetes go.mod replaces locally pointed at the matching published v0.x instead.
  staging_version="v0.${K8S_VERSION#v1.}"
  mkdir -p "${WORK}/k8s"
  cd "${WORK}/k8s"
  go mod init filecluster.local/k8s-build >/dev/null 2>&1
  mod_file="$(go mod download -json "k8s.io/kubernetes@${K8S_VERSION}" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
  {
    echo "require k8s.io/kubernetes ${K8S_VERSION}"
    echo "replace ("
    sed -n 's#^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#\t\1 => \1 '"${staging_version}"'#p' "${mod_file}"
    echo ")"
  } >> go.mod
  log "resolving Kubernetes ${K8S_VERSION} modules (staging ${staging_version})"
  for b in "${k8s_missing[@]}"; do go get -tool "k8s.io/kubernetes/cmd/${b}@${K8S_VERSION}" >/dev/null 2>&1 || go get -tool "k8s.io/kubernetes/cmd/${b}@${K8S_VERSION}"; done

  build_date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
  ldflags="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X ${pkg}.gitVersion=${K8S_VERSION} -X ${pkg}.gitMajor=1 -X ${pkg}.gitMinor=${minor}"
    ldflags+=" -X ${pkg}.gitTreeState=clean -X ${pkg}.buildDate=${build_date}"
  done
  for b in "${k8s_missing[@]}"; do
    log "building ${b} ${K8S_VERSION} ($(( $(date +%s) - start ))s elapsed)"
    go build -trimpath -ldflags "${ldflags}" -o "${ASSETS}/.${b}.partial" "k8s.io/kubernetes/cmd/${b}"
    mv "${ASSETS}/.${b}.partial" "${ASSETS}/${b}"
  done
}

build_etcd() {
  # --- etcd: its own module, so its dependency versions never mix with the Kubernetes ones.
  mkdir -p "${WORK}/etcd"
  cd "${WORK}/etcd"
  go mod init filecluster.local/etcd-build >/dev/null 2>&1
  log "resolving etcd ${ETCD_VERSION}"
  go get -tool "go.etcd.io/etcd/server/v3@${ETCD_VERSION}" >/dev/null 2>&1 || go get -tool "go.etcd.io/etcd/server/v3@${ETCD_VERSION}"
  log "building etcd ${ETCD_VERSION} ($(( $(date +%s) - start ))s elapsed)"
  go build -trimpath -ldflags "-s -w" -o "${ASSETS}/.etcd.partial" go.etcd.io/etcd/server/v3
  mv "${ASSETS}/.etcd.partial" "${ASSETS}/etcd"
}

(( ${#k8s_missing[@]} == 0 )) || build_kubernetes
[[ -x "${ASSETS}/etcd" ]] || build_etcd
log "done in $(( $(date +%s) - start ))s: ${ASSETS}"
"${ASSETS}/kube-apiserver" --version >&2
"${ASSETS}/etcd" --version | sed -n 1p >&2
echo "${ASSETS}"
