#!/usr/bin/env bash
# The local demo: installs what is missing, starts `titan dev` (etcd + master +
# worker), runs a few sample jobs and leaves the cluster running until Ctrl-C.
# DEMO_EXIT=1 (or --exit) stops it after the samples instead.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/env.sh
source scripts/lib/env.sh

exit_after=${DEMO_EXIT:-0}
[ "${1:-}" = "--exit" ] && exit_after=1

ensure_packages
ensure_node_modules
log "Building"
npx --no-install tsc -p tsconfig.json

# Docker jobs need an engine; without one the demo runs shell jobs only.
docker_ok=0
if timeout 5 docker version >/dev/null 2>&1; then
  docker_ok=1
elif [ "$(id -u)" = 0 ] && start_private_dockerd; then
  docker_ok=1
fi
if [ "$docker_ok" = 1 ]; then
  export TITAN_TEST_IMAGE=${TITAN_DEMO_IMAGE:-titan-test/busybox:latest}
  ensure_test_image
fi

titan() { node dist/cmd/titan/main.js "$@"; }
port=$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
export TITAN_ENDPOINTS=127.0.0.1:$port
mkdir -p .titan
log "Starting titan dev on $TITAN_ENDPOINTS (log: .titan/demo.log)"
node dist/cmd/titan/main.js dev --port "$port" >.titan/demo.log 2>&1 &
dev_pid=$!
on_exit "kill -INT $dev_pid 2>/dev/null; wait $dev_pid 2>/dev/null"
for _ in $(seq 1 100); do
  titan nodes --output json 2>/dev/null | grep -q '"id"' && break
  kill -0 "$dev_pid" 2>/dev/null || { cat .titan/demo.log; die "titan dev exited"; }
  sleep 0.2
done
titan nodes

log "A shell job"
titan submit --name hello-shell --shell 'echo "hello from $(hostname) as a shell job"' --wait
if [ "$docker_ok" = 1 ]; then
  log "A container job"
  titan submit --name hello-docker --image "$TITAN_TEST_IMAGE" --cmd 'echo hello from a container; uname -s' --cpu 250m --mem 64Mi --wait
fi
log "A failing job: --wait exits with its exit code"
titan submit --name fails --shell 'echo going to fail >&2; exit 3' --wait || echo "exit code $?"
log "Ten jobs of 1 s each in one bulk submit"
titan submit -n 10 -t 1
sleep 3
titan list
id=$(titan list --output json | node -e "let s='';process.stdin.on('data',d=>s+=d).on('end',()=>{const j=JSON.parse(s).find(j=>j.name==='hello-shell');console.log(j.id)})")
log "titan logs $id"
titan logs "$id"

# The same cluster through the master's HTTP API, with the admin token titan dev made for this run.
api_line=$(grep -o 'export TITAN_ADDR=[^ ]* TITAN_TOKEN=[^ ]*' .titan/demo.log | head -1)
addr=$(sed 's/.*TITAN_ADDR=\([^ ]*\).*/\1/' <<<"$api_line")
token=$(sed 's/.*TITAN_TOKEN=\([^ ]*\).*/\1/' <<<"$api_line")
log "Through the HTTP API at $addr: titan status $id, and the same job with curl"
TITAN_ADDR=$addr TITAN_TOKEN=$token titan status "$id"
if command -v curl >/dev/null; then curl -fsS -H "Authorization: Bearer $token" "$addr/v1/jobs/$id"; echo; fi

if [ "$exit_after" = 1 ]; then
  log "Demo done"
  exit 0
fi
cat <<TXT

The cluster keeps running. In another terminal:
  export TITAN_ENDPOINTS=$TITAN_ENDPOINTS
  node dist/cmd/titan/main.js submit --shell 'echo hi' --wait
  node dist/cmd/titan/main.js list
Or through the HTTP API, and the dashboard at $addr/ui/ (log in with the token):
  export TITAN_ADDR=$addr TITAN_TOKEN=$token
Ctrl-C stops it.
TXT
wait "$dev_pid"
