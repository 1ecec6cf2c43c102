#!/usr/bin/env bash
# Makes sure a Docker daemon for kind clusters answers and prints its DOCKER_HOST on the last line of stdout.
# It is a private dockerd with its own socket, data root and exec root under the cache directory, left
# running between uses: the node image it imported stays there, which is what makes a warm cluster start
# fast. Other daemons on the machine (tests start their own) are never touched.
#
#   scripts/kind/dockerd.sh          start it if it does not answer
#   scripts/kind/dockerd.sh stop     stop it (the data root stays)
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"
CACHE_ROOT="${FILECLUSTER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/filecluster}"
DIR="${CACHE_ROOT}/kind/docker"
SOCKET="${DIR}/docker.sock"
export DOCKER_HOST="unix://${SOCKET}"

log() { echo "[kind/dockerd] $*" >&2; }
answers() { docker info >/dev/null 2>&1; }

if [[ "${1:-}" == stop ]]; then
  if [[ -f "${DIR}/docker.pid" ]]; then
    pid="$(cat "${DIR}/docker.pid")"
    kill "${pid}" 2>/dev/null || true
    for _ in $(seq 60); do kill -0 "${pid}" 2>/dev/null || break; sleep 0.5; done
  fi
  exit 0
fi

# Its OCI runtime: runc behind scripts/kind/runc-bounded-caps.sh, copied beside the data root so that the
# daemon does not depend on this clone staying where it is. Replaced on every call (a running daemon
# picks up the new copy with its next container).
mkdir -p "${DIR}"
install -m 0755 "$(dirname "$0")/runc-bounded-caps.sh" "${DIR}/.runc-bounded-caps.new"
mv "${DIR}/.runc-bounded-caps.new" "${DIR}/runc-bounded-caps"

if ! answers; then
  command -v dockerd >/dev/null || { log "dockerd is required: apt-get install -y docker.io"; exit 1; }
  log "starting dockerd (log: ${DIR}/dockerd.log)"
  # setsid: the daemon outlives this script and the shell that ran it.
  setsid dockerd --host="${DOCKER_HOST}" --data-root="${DIR}/data" --exec-root="${DIR}/exec" \
    --pidfile="${DIR}/docker.pid" --bridge=none --ip=127.0.0.1 \
    --add-runtime=runc-bounded-caps="${DIR}/runc-bounded-caps" --default-runtime=runc-bounded-caps >>"${DIR}/dockerd.log" 2>&1 </dev/null &
  for _ in $(seq 120); do answers && break; sleep 0.5; done
  answers || { log "dockerd did not answer within 60s:"; tail -20 "${DIR}/dockerd.log" >&2; exit 1; }
fi
echo "${DOCKER_HOST}"
