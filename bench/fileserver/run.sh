#!/usr/bin/env bash
# File-server benchmark: three local nodes vs nginx on the same machine. Prints a Markdown table.
# Usage: bash bench/fileserver/run.sh   (installs nginx and wrk with apt-get if missing and running as root)
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/node_modules/.bin:$PATH"
missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || missing+=(nginx)
if ((${#missing[@]})); then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "missing: ${missing[*]}; install them (Debian: sudo apt-get install -y nginx wrk) and run again" >&2
    exit 1
  fi
fi
exec node bench/fileserver/bench.ts "$@"
