#!/usr/bin/env bash
# THE test command: provisions etcd/docker/test image, then build, typecheck,
# lint and vitest. Extra args go to vitest (e.g. ./scripts/test.sh test/harness).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/env.sh
source scripts/lib/env.sh

ensure_packages
ensure_node_modules
ensure_docker
ensure_test_image

# Run every step even if an earlier one fails, so one run shows all problems.
failed=()
step() {
  local name=$1
  shift
  log "$name: $*"
  if ! "$@"; then failed+=("$name"); fi
}

step build npx --no-install tsc -p tsconfig.json
step typecheck npx --no-install tsc -p tsconfig.check.json
step lint npx --no-install eslint .
step test npx --no-install vitest run "$@"

if [ "${#failed[@]}" -gt 0 ]; then
  log "FAILED: ${failed[*]}"
  exit 1
fi
log "All steps passed"
