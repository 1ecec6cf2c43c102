#!/usr/bin/env bash
# The project's test command: the system tools the suites use (scripts/test-tools.sh), type-check,
# compile what the images run (dist/), then the suites with Node's test runner.
# With no argument it runs every suite but kind (`npm test`); with suite names (unit, integration, e2e,
# resilience, chaos, kind) only those, after the same preparation (`npm run test:integration` and friends).
# Suites that need Kubernetes get the control-plane binaries from scripts/build-k8s.sh (cached).
set -euo pipefail
cd "$(dirname "$0")/.."
declare -A suite_globs=(
  [unit]='test/unit/**/*.test.ts'
  # The harness's own tests start processes and a control plane, like the integration tests.
  [integration]='test/integration/**/*.test.ts test/harness/**/*.test.ts'
  [e2e]='test/e2e/**/*.test.ts'
  [resilience]='test/resilience/**/*.test.ts'
  # A bounded run of the chaos checker with fresh seeds; `npm run chaos` runs it long.
  [chaos]='test/chaos/**/*.test.ts'
  # A real 3-node kind cluster built offline (scripts/kind/cluster.sh); not in the default run: a cold
  # machine first builds the node image.
  [kind]='test/kind/**/*.test.ts'
)
suites=("$@")
((${#suites[@]})) || suites=(unit integration e2e resilience chaos)
globs=()
for suite in "${suites[@]}"; do
  [[ -n "${suite_globs[$suite]:-}" ]] || { echo "unknown suite: $suite (one of: unit integration e2e resilience chaos kind)" >&2; exit 2; }
  read -ra suite_glob <<<"${suite_globs[$suite]}"
  globs+=("${suite_glob[@]}")
done
# Debian installs dockerd into /usr/sbin, which a non-root or minimal PATH lacks.
export PATH="$PWD/node_modules/.bin:$PATH:/usr/sbin:/sbin"
bash scripts/test-tools.sh
node --version
npx tsc -p tsconfig.json --noEmit
# Lint and the import rules run with the full suite only; `npm run lint` runs them alone.
(($#)) || npm run --silent lint
npm run --silent build
if [[ -z "${KUBEBUILDER_ASSETS:-}" ]]; then
  KUBEBUILDER_ASSETS="$(bash scripts/build-k8s.sh | tail -1)"
  export KUBEBUILDER_ASSETS
fi
node --test --test-concurrency=1 --test-timeout=600000 "${globs[@]}"
