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
results=$(mktemp /tmp/titan-vitest-XXXXXX.json)
on_exit "rm -f '$results'"
step test npx --no-install vitest run --reporter=default --reporter=json --outputFile="$results" "$@"
# One plain closing line CI can read: "N passed, N failed". A file whose
# beforeAll or import failed has its tests counted skipped, not failed: it is
# named in that line too, so the line never reads as a pass.
node -e 'const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")); const outside = r.testResults.filter((f) => f.status === "failed" && !f.assertionResults.some((a) => a.status === "failed")).map((f) => require("path").relative(process.cwd(), f.name)); console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed` + (r.numPendingTests ? `, ${r.numPendingTests} skipped` : "") + (outside.length ? `; ${outside.length} file(s) failed outside their tests (setup or import): ${outside.join(" ")}` : ""))' "$results" 2>/dev/null || true

if [ "${#failed[@]}" -gt 0 ]; then
  log "FAILED: ${failed[*]}"
  exit 1
fi
log "All steps passed"
