#!/usr/bin/env bash
# The project's test command: the system tools the suites use (scripts/test-tools.sh), type-check,
# compile what the images run (dist/), then every suite with Node's test runner.
# Suites that need Kubernetes get the control-plane binaries from scripts/build-k8s.sh (cached).
set -euo pipefail
cd "$(dirname "$0")/.."
# Debian installs dockerd into /usr/sbin, which a non-root or minimal PATH lacks.
export PATH="$PWD/node_modules/.bin:$PATH:/usr/sbin:/sbin"
bash scripts/test-tools.sh
node --version
npx tsc -p tsconfig.json --noEmit
npm run --silent build
if [[ -z "${KUBEBUILDER_ASSETS:-}" ]]; then
  KUBEBUILDER_ASSETS="$(bash scripts/build-k8s.sh | tail -1)"
  export KUBEBUILDER_ASSETS
fi
node --test --test-concurrency=1 --test-timeout=600000 \
  'test/unit/**/*.test.ts' 'test/integration/**/*.test.ts' 'test/harness/**/*.test.ts' 'test/e2e/**/*.test.ts' 'test/resilience/**/*.test.ts' 'test/chaos/**/*.test.ts'
