#!/usr/bin/env bash
# Runs the end-to-end suite against a kind cluster, for machines with Docker, kind and registry access.
# Creates the cluster (or reuses it), builds and loads the images, runs the suite through the `existing`
# provider, and deletes the cluster afterwards unless KEEP_CLUSTER=1.
#
#   scripts/kind-e2e.sh [test files...]        (default: test/e2e/**/*.test.ts)
#
# Env: KIND_CLUSTER_NAME (filecluster-e2e), KIND_NODE_IMAGE (kind's default), NODE_IMAGE (node:24-alpine:
# tagged filecluster/node:24 for the suites' small Node programs), KEEP_CLUSTER.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$PATH"

cluster="${KIND_CLUSTER_NAME:-filecluster-e2e}"
node_image="${NODE_IMAGE:-node:24-alpine}"
tag="$(node -p 'require("./package.json").version')"
for tool in kind docker; do
  command -v "$tool" >/dev/null || { echo "kind-e2e: $tool is required" >&2; exit 1; }
done

work="$(mktemp -d)"
kubeconfig="${work}/kubeconfig"
cleanup() {
  if [[ "${KEEP_CLUSTER:-}" != 1 ]]; then kind delete cluster --name "$cluster" >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

if kind get clusters 2>/dev/null | grep -qx "$cluster"; then
  kind export kubeconfig --name "$cluster" --kubeconfig "$kubeconfig"
else
  kind create cluster --name "$cluster" --kubeconfig "$kubeconfig" --wait 180s ${KIND_NODE_IMAGE:+--image "$KIND_NODE_IMAGE"}
fi

bash scripts/build-images.sh --tag "$tag" fileserver operator
docker image inspect "$node_image" >/dev/null 2>&1 || docker pull "$node_image"
docker tag "$node_image" filecluster/node:24
kind load docker-image --name "$cluster" "filecluster/fileserver:${tag}" "filecluster/operator:${tag}" filecluster/node:24

files=("$@")
(( ${#files[@]} )) || files=('test/e2e/**/*.test.ts')
FC_TEST_PROVIDER=existing KUBECONFIG="$kubeconfig" \
  node --test --test-concurrency=1 --test-timeout=600000 "${files[@]}"
