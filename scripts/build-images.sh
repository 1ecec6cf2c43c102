#!/usr/bin/env bash
# Builds the filecluster/fileserver and filecluster/operator images without any base image, for machines
# that reach no container registry: each image is a root filesystem assembled from this machine's Node
# runtime (node_modules/node), the shared libraries it links (found with ldd), a minimal /etc with a
# non-root user, the component's compiled sources and only the production packages they import; then
# `docker import`ed with user, working directory and entrypoint set. The Dockerfiles next to each
# component build the equivalent images from registry base images.
#
#   scripts/build-images.sh [--tag TAG] [--rootfs-only DIR] [--save DIR] [fileserver] [operator]
#
# TAG defaults to package.json's version. --rootfs-only writes the root filesystems under DIR instead
# of importing them (no Docker needed). --save also writes each image as a `docker save` archive
# DIR/<component>.tar (what the k3s test provider imports: FC_K3S_IMAGE_ARCHIVES). Uses the `docker` CLI
# as configured (DOCKER_HOST is honoured). Prints one line per image: "<image> <size in bytes>".
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$PATH"

USER_ID=65532
tag=""
rootfs_only=""
save_dir=""
components=()
while (( $# )); do
  case "$1" in
    --tag) tag="$2"; shift 2 ;;
    --rootfs-only) rootfs_only="$2"; shift 2 ;;
    --save) save_dir="$2"; shift 2 ;;
    fileserver|operator) components+=("$1"); shift ;;
    *) echo "usage: $0 [--tag TAG] [--rootfs-only DIR] [--save DIR] [fileserver] [operator]" >&2; exit 2 ;;
  esac
done
(( ${#components[@]} )) || components=(fileserver operator)
[[ -n "$tag" ]] || tag="$(node -p 'require("./package.json").version')"

fileserver_node_options="$(node scripts/image-env.ts fileserver NODE_OPTIONS)"

node_bin="$(readlink -f node_modules/node/bin/node)"
[[ -x "$node_bin" ]] || { echo "node_modules/node/bin/node is missing: run npm ci" >&2; exit 1; }
node_version="$("$node_bin" --version)"
if [[ -z "$rootfs_only" ]]; then
  command -v docker >/dev/null || { echo "docker CLI not found: apt-get install -y docker.io" >&2; exit 1; }
  docker info >/dev/null 2>&1 || { echo "no Docker daemon reachable (start dockerd, or set DOCKER_HOST)" >&2; exit 1; }
fi

npm run --silent build

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# The runtime layer shared by both images: node, the loader and libraries it needs, and /etc.
runtime="$work/runtime"
# /data is the mount point of the file server's volume; pods mount a writable volume there.
mkdir -p "$runtime/usr/local/bin" "$runtime/etc" "$runtime/tmp" "$runtime/home/nonroot" "$runtime/data"
cp "$node_bin" "$runtime/usr/local/bin/node"
while read -r lib; do
  [[ -n "$lib" ]] && cp --parents -L "$lib" "$runtime/"
done < <(ldd "$node_bin" | awk '/=> \//{print $3} /^[[:space:]]*\/[^ ]+/{print $1}')
cat > "$runtime/etc/passwd" <<EOF
root:x:0:0:root:/root:/sbin/nologin
nonroot:x:${USER_ID}:${USER_ID}:nonroot:/home/nonroot:/sbin/nologin
EOF
cat > "$runtime/etc/group" <<EOF
root:x:0:
nonroot:x:${USER_ID}:
EOF
echo 'hosts: files dns' > "$runtime/etc/nsswitch.conf"
chmod 1777 "$runtime/tmp"

for component in "${components[@]}"; do
  rootfs="$work/$component"
  cp -a "$runtime" "$rootfs"
  node scripts/image-rootfs.ts "$component" "$rootfs/app" >&2
  image="filecluster/$component:$tag"
  if [[ -n "$rootfs_only" ]]; then
    mkdir -p "$rootfs_only"
    rm -rf "${rootfs_only:?}/$component"
    cp -a "$rootfs" "$rootfs_only/$component"
    echo "$rootfs_only/$component $(du -sb "$rootfs" | cut -f1)"
    continue
  fi
  case "$component" in
    # NODE_OPTIONS from fileserver/Dockerfile (why: there).
    fileserver) ports=(--change 'EXPOSE 8080 9090' --change 'ENV FC_DATA_DIR=/data' --change "ENV NODE_OPTIONS=$fileserver_node_options") ;;
    operator) ports=(--change 'EXPOSE 8080') ;;
  esac
  # Everything root-owned, so the non-root user can write nowhere in the image (needs no root here).
  tar -C "$rootfs" --owner=0 --group=0 --numeric-owner -cf - . | docker import \
    --change "USER ${USER_ID}:${USER_ID}" \
    --change 'WORKDIR /app' \
    --change 'ENV NODE_ENV=production' \
    --change "LABEL org.opencontainers.image.title=filecluster-$component org.opencontainers.image.version=$tag dev.filecluster.node-version=$node_version" \
    "${ports[@]}" \
    --change "ENTRYPOINT [\"/usr/local/bin/node\", \"dist/$component/src/main.js\"]" \
    - "$image" >/dev/null
  if [[ -n "$save_dir" ]]; then
    mkdir -p "$save_dir"
    docker save --output "$save_dir/$component.tar" "$image"
  fi
  echo "$image $(docker image inspect --format '{{.Size}}' "$image")"
done
