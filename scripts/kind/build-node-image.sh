#!/usr/bin/env bash
# Builds a kind node image with no container registry, the equivalent of kind's images/base plus
# `kind build node-image`: a Debian root file system from debootstrap (systemd, iptables, nftables, runc
# and the CNI plugins from Debian), kind's own base files (entrypoint, systemd units, containerd config)
# from the sigs.k8s.io/kind module, containerd/crictl from scripts/kind/build-binaries.sh, kubelet/kubeadm
# from scripts/build-k8s.sh, and every image a cluster starts preloaded into its containerd: the ones
# `kubeadm config images list` names (kube-apiserver, kube-controller-manager, kube-scheduler, kube-proxy,
# etcd, pause, CoreDNS), the CNI (scripts/kind/node-routes.sh) and the local-path provisioner with its
# helper, each built from a minimal root file system holding its binary.
#
#   scripts/kind/build-node-image.sh      prints the image tag on the last line of stdout
#
# Idempotent: the tag names a hash of every input, and an image with that tag is reused. The Debian root
# file system is cached as a tarball under the cache directory. Imports into scripts/kind/dockerd.sh's daemon.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PATH:/usr/sbin:/sbin"

KIND_VERSION="${KIND_VERSION:-v0.33.0}"
DEBIAN_SUITE="${DEBIAN_SUITE:-bookworm}"
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
CACHE_ROOT="${FILECLUSTER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/filecluster}"
# Debian packages of the node: kind's base image list (less the storage-test and rootless extras), plus
# runc and the CNI plugins, which kind builds itself, and busybox for the small images below.
NODE_PACKAGES=(systemd systemd-sysv dbus conntrack iptables nftables iproute2 ethtool util-linux mount kmod libseccomp2
  pigz e2fsprogs bash ca-certificates curl jq procps runc containernetworking-plugins busybox-static)

log() { echo "[kind/build-node-image] $*" >&2; }
[[ $(id -u) -eq 0 ]] || { log "must run as root (debootstrap, chroot)"; exit 1; }
if ! command -v debootstrap >/dev/null; then
  command -v apt-get >/dev/null || { log "debootstrap is required"; exit 1; }
  log "installing debootstrap (apt-get)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null 2>&1 ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null; }
fi
export DOCKER_HOST="$(bash scripts/kind/dockerd.sh | tail -1)"

# --- Debian root file system, cached as a tarball per suite and package list.
pkgs_hash="$(echo "${DEBIAN_SUITE} ${NODE_PACKAGES[*]}" | sha256sum | cut -c1-12)"
base_tar="${CACHE_ROOT}/kind/rootfs/node-${DEBIAN_SUITE}-${pkgs_hash}.tar"
if [[ ! -f "${base_tar}" ]]; then
  mkdir -p "$(dirname "${base_tar}")"
  base_work="$(mktemp -d)"
  log "debootstrap ${DEBIAN_SUITE} with ${#NODE_PACKAGES[@]} packages (cached afterwards: ${base_tar})"
  debootstrap --variant=minbase --include="$(IFS=,; echo "${NODE_PACKAGES[*]}")" "${DEBIAN_SUITE}" "${base_work}" "${DEBIAN_MIRROR}" >&2
  # What kind's base image removes: units that make no sense in a container and would slow boot.
  (
    cd "${base_work}"
    rm -rf var/cache/apt/archives/*.deb var/lib/apt/lists/* var/log/*.log
    find lib/systemd/system/sysinit.target.wants/ -name systemd-tmpfiles-setup.service -delete
    rm -f lib/systemd/system/multi-user.target.wants/* etc/systemd/system/*.wants/* \
      lib/systemd/system/local-fs.target.wants/* lib/systemd/system/sockets.target.wants/*udev* \
      lib/systemd/system/sockets.target.wants/*initctl* lib/systemd/system/basic.target.wants/*
    echo "ReadKMsg=no" >> etc/systemd/journald.conf
  )
  tar -C "${base_work}" -cf "${base_tar}.partial" .
  mv "${base_tar}.partial" "${base_tar}"
  rm -rf "${base_work}"
fi

assets="$(bash scripts/build-k8s.sh kubelet kubeadm kube-proxy | tail -1)"
bin="$(bash scripts/kind/build-binaries.sh | tail -1)"
k8s_version="$("${assets}/kubeadm" version -o short)"
kind_src="$(cd /tmp && go mod download -json "sigs.k8s.io/kind@${KIND_VERSION}" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')"
lpp_version="$(go version -m "${bin}/local-path-provisioner" | awk '$1 == "mod" && $2 == "github.com/rancher/local-path-provisioner" { print $3 }')"
lpp_src="$(cd /tmp && go mod download -json "github.com/rancher/local-path-provisioner@${lpp_version}" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')"
[[ -d "${kind_src}/images/base/files" && -d "${lpp_src}/deploy" ]] || { log "sigs.k8s.io/kind or local-path-provisioner sources not found"; exit 1; }

inputs_hash="$( { echo "${DEBIAN_SUITE} ${NODE_PACKAGES[*]} ${assets} ${bin} ${kind_src} ${lpp_src}";
  cat scripts/kind/build-node-image.sh scripts/kind/node-routes.sh scripts/kind/default-cni.yaml; } | sha256sum | cut -c1-12)"
image="filecluster/kind-node:${k8s_version}-${inputs_hash}"
if docker image inspect "${image}" >/dev/null 2>&1; then
  log "cached: ${image}"
  echo "${image}"
  exit 0
fi
start=$(date +%s)
WORK="$(mktemp -d)"
cleanup() {
  # a chroot's /proc may still be mounted if a step failed half-way
  umount "${WORK}/node/proc" 2>/dev/null || true
  rm -rf "${WORK}"
}
trap cleanup EXIT

# --- Node root file system: the Debian base plus kind's base files and the Kubernetes node binaries.
node="${WORK}/node"
mkdir -p "${node}"
tar -C "${node}" -xf "${base_tar}"
files="${kind_src}/images/base/files"
install -m 0755 "${files}"/usr/local/bin/* "${node}/usr/local/bin/"
mkdir -p "${node}/kind/bin" "${node}/kind/manifests" "${node}/etc/containerd" "${node}/etc/systemd/system/kubelet.service.d" \
  "${node}/etc/kubernetes/manifests" "${node}/opt/cni/bin"
install -m 0755 "${files}"/kind/bin/* "${node}/kind/bin/"
install -m 0644 "${files}"/etc/crictl.yaml "${node}/etc/"
install -m 0644 "${files}"/etc/default/* "${node}/etc/default/"
install -m 0644 "${files}"/etc/sysctl.d/* "${node}/etc/sysctl.d/"
install -m 0644 "${files}"/etc/systemd/system/*.service "${files}"/etc/systemd/system/*.slice "${node}/etc/systemd/system/"
install -m 0644 "${files}"/etc/systemd/system/kubelet.service.d/* "${node}/etc/systemd/system/kubelet.service.d/"
# kind's containerd config, with the sandbox image kubeadm names for this Kubernetes version, and
# restrict_oom_score_adj: without CAP_SYS_RESOURCE (which this machine withholds even from root, see
# runc-bounded-caps.sh) no process may lower its oom_score_adj, so runc fails to start any pod that asks
# for less than containerd's own (every static pod does); restricted, containerd never asks below its own.
pause_image="$("${assets}/kubeadm" config images list --kubernetes-version "${k8s_version}" | grep /pause:)"
sed -e "s#sandbox_image = .*#sandbox_image = \"${pause_image}\"#" -e 's#restrict_oom_score_adj = false#restrict_oom_score_adj = true#' \
  "${files}/etc/containerd/config.toml" > "${node}/etc/containerd/config.toml"
grep -q 'restrict_oom_score_adj = true' "${node}/etc/containerd/config.toml" || { log "kind's containerd config has no restrict_oom_score_adj to set"; exit 1; }
install -m 0755 "${bin}/containerd" "${bin}/containerd-shim-runc-v2" "${bin}/ctr" "${bin}/crictl" "${node}/usr/local/bin/"
install -m 0755 "${assets}/kubelet" "${assets}/kubeadm" "${assets}/kubectl" "${node}/usr/bin/"
# Debian installs runc in /usr/sbin and the CNI plugins in /usr/lib/cni; kind's configuration looks in /opt/cni/bin.
for plugin in "${node}"/usr/lib/cni/*; do ln -s "/usr/lib/cni/$(basename "${plugin}")" "${node}/opt/cni/bin/"; done
for plugin in ptp host-local loopback portmap; do [[ -x "${node}/usr/lib/cni/${plugin}" && -L "${node}/opt/cni/bin/${plugin}" ]] || { log "CNI plugin ${plugin} missing"; exit 1; }; done
echo -n "${k8s_version}" > "${node}/kind/version"
# kind's base image: the OCI runtime spec every container starts from, with kind's product_uuid hook
"${node}/usr/local/bin/ctr" oci spec \
  | jq '.hooks.createContainer[.hooks.createContainer | length] |= . + {"path": "/kind/bin/mount-product-files.sh"}' \
  | jq 'del(.process.rlimits)' > "${node}/etc/containerd/cri-base.json"
for unit in kubelet.service containerd.service undo-mount-hacks.service; do
  mkdir -p "${node}/etc/systemd/system/multi-user.target.wants"
  ln -sf "/etc/systemd/system/${unit}" "${node}/etc/systemd/system/multi-user.target.wants/${unit}"
done
ln -sf /dev/null "${node}/etc/systemd/system/systemd-binfmt.service"
ln -sf /usr/lib/systemd/systemd "${node}/sbin/init"

# --- Component images, each a root file system with its binary (and, for kube-proxy, the netfilter tools
# and the libraries they link, taken from the node's Debian), imported into docker to be saved as one archive.
# minimal_rootfs DIR: /etc with root, nobody and nonroot users, /tmp
minimal_rootfs() {
  mkdir -p "$1/etc" "$1/tmp" "$1/usr/local/bin" "$1/var/run"
  chmod 1777 "$1/tmp"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' > "$1/etc/passwd"
  printf 'root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n' > "$1/etc/group"
  echo 'hosts: files dns' > "$1/etc/nsswitch.conf"
}
# stage_from_node DIR PATH...: copies node files (following symlinks) and the shared libraries they link
stage_from_node() {
  local dest="$1" f lib
  shift
  for f in "$@"; do
    mkdir -p "${dest}$(dirname "${f}")"
    cp -L "${node}${f}" "${dest}${f}"
    for lib in $(chroot "${node}" ldd "${f}" 2>/dev/null | grep -o '/[^ ]*' | sort -u); do
      mkdir -p "${dest}$(dirname "${lib}")"
      cp -L "${node}${lib}" "${dest}${lib}"
    done
  done
}
# import_image DIR NAME [docker import --change...]
import_image() {
  local dir="$1" name="$2"
  shift 2
  tar -C "${dir}" -c . | docker import "$@" - "${name}" >/dev/null
  images+=("${name}")
}
images=()
mount -t proc proc "${node}/proc"
mapfile -t kubeadm_images < <("${assets}/kubeadm" config images list --kubernetes-version "${k8s_version}")
umask 022
for name in "${kubeadm_images[@]}"; do
  component="$(basename "${name%%:*}")"
  dir="${WORK}/images/${component}"
  minimal_rootfs "${dir}"
  case "${component}" in
    kube-apiserver|kube-controller-manager|kube-scheduler)
      install -m 0755 "${assets}/${component}" "${dir}/usr/local/bin/"
      import_image "${dir}" "${name}" --change 'ENV PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' --change "ENTRYPOINT [\"/usr/local/bin/${component}\"]"
      ;;
    kube-proxy)
      install -m 0755 "${assets}/kube-proxy" "${dir}/usr/local/bin/"
      stage_from_node "${dir}" /usr/sbin/nft /usr/sbin/xtables-nft-multi /usr/sbin/conntrack
      mkdir -p "${dir}/usr/lib/x86_64-linux-gnu"
      cp -a "${node}/usr/lib/x86_64-linux-gnu/xtables" "${dir}/usr/lib/x86_64-linux-gnu/xtables"
      for tool in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore; do
        ln -s xtables-nft-multi "${dir}/usr/sbin/${tool}"
      done
      import_image "${dir}" "${name}" --change 'ENV PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' --change 'ENTRYPOINT ["/usr/local/bin/kube-proxy"]'
      ;;
    etcd)
      install -m 0755 "${assets}/etcd" "${dir}/usr/local/bin/"
      import_image "${dir}" "${name}" --change 'ENV PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' --change 'ENTRYPOINT ["/usr/local/bin/etcd"]'
      ;;
    pause)
      install -m 0755 "${bin}/pause" "${dir}/pause"
      import_image "${dir}" "${name}" --change 'ENTRYPOINT ["/pause"]' --change 'USER 65535:65535'
      ;;
    coredns)
      install -m 0755 "${bin}/coredns" "${dir}/coredns"
      import_image "${dir}" "${name}" --change 'ENTRYPOINT ["/coredns"]' --change 'EXPOSE 53 53/udp'
      ;;
    *) log "no recipe for the image kubeadm names: ${name}"; exit 1 ;;
  esac
done

# busybox: the local-path provisioner's helper pods (sh, mkdir, rm) and the CNI daemon's shell tools
busybox_image="docker.io/library/busybox:latest"
dir="${WORK}/images/busybox"
minimal_rootfs "${dir}"
mkdir -p "${dir}/bin"
cp "${node}/bin/busybox" "${dir}/bin/busybox"
chroot "${dir}" /bin/busybox --install -s /bin
import_image "${dir}" "${busybox_image}" --change 'ENV PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' --change 'CMD ["sh"]'

# the CNI: node-routes.sh on busybox with kubectl, deployed by scripts/kind/default-cni.yaml
cni_image="filecluster/kind-node-routes:${inputs_hash}"
install -m 0755 "${assets}/kubectl" "${dir}/usr/local/bin/"
install -m 0755 scripts/kind/node-routes.sh "${dir}/usr/local/bin/node-routes"
import_image "${dir}" "${cni_image}" --change 'ENV PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' --change 'ENTRYPOINT ["/usr/local/bin/node-routes"]'
sed "s#image: filecluster/kind-node-routes.*#image: ${cni_image}#" scripts/kind/default-cni.yaml > "${node}/kind/manifests/default-cni.yaml"

# the local-path provisioner, with its own manifest made the default StorageClass (kind's is called standard)
lpp_manifest="${lpp_src}/deploy/local-path-storage.yaml"
lpp_image="docker.io/$(sed -n 's/^ *image: \(rancher\/local-path-provisioner:.*\)/\1/p' "${lpp_manifest}")"
dir="${WORK}/images/local-path-provisioner"
minimal_rootfs "${dir}"
install -m 0755 "${bin}/local-path-provisioner" "${dir}/usr/local/bin/"
import_image "${dir}" "${lpp_image}" --change 'ENV PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
awk '{ print } /^kind: StorageClass$/ { sc = 1 } sc && /^  name: local-path$/ { print "  annotations:\n    storageclass.kubernetes.io/is-default-class: \"true\""; sc = 0 }' \
  "${lpp_manifest}" > "${node}/kind/manifests/default-storage.yaml"
grep -q is-default-class "${node}/kind/manifests/default-storage.yaml" || { log "could not mark local-path the default StorageClass"; exit 1; }
umount "${node}/proc"

# --- Preload: the images go into the node's containerd content store, the way `kind build node-image`
# does it (imported, not unpacked; the CRI unpacks on first use). A containerd of the node's own build
# runs here against the node's /var/lib/containerd, on a socket of its own.
log "preloading ${#images[@]} images"
docker save "${images[@]}" -o "${WORK}/images.tar"
ctrd_state="${WORK}/containerd-state"
mkdir -p "${ctrd_state}"
cat > "${WORK}/containerd.toml" <<EOF
version = 3
root = "${node}/var/lib/containerd"
state = "${ctrd_state}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.cri.v1.runtime", "io.containerd.cri.v1.images"]
[grpc]
  address = "${ctrd_state}/containerd.sock"
[ttrpc]
  address = "${ctrd_state}/containerd.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
EOF
"${bin}/containerd" --config "${WORK}/containerd.toml" >"${ctrd_state}/log" 2>&1 &
ctrd_pid=$!
for _ in $(seq 50); do "${bin}/ctr" --address "${ctrd_state}/containerd.sock" version >/dev/null 2>&1 && break; sleep 0.2; done
"${bin}/ctr" --address "${ctrd_state}/containerd.sock" --namespace k8s.io images import --label=io.cri-containerd.pinned=pinned \
  --all-platforms --no-unpack --digests "${WORK}/images.tar" >&2 || { kill "${ctrd_pid}"; cat "${ctrd_state}/log" >&2; exit 1; }
"${bin}/ctr" --address "${ctrd_state}/containerd.sock" --namespace k8s.io images list -q >&2
kill "${ctrd_pid}"
wait "${ctrd_pid}" || true

# --- The node image: one layer, with the environment and entrypoint kind's base image declares.
log "importing ${image}"
tar -C "${node}" -c . | docker import \
  --change 'ENV container=docker' \
  --change 'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]' \
  - "${image}" >/dev/null
docker rmi "${images[@]}" >/dev/null
log "done in $(( $(date +%s) - start ))s: ${image}"
echo "${image}"
