# shellcheck shell=bash
# Shared environment helpers for scripts/test.sh and scripts/demo.sh.
# Source this file (from the repo root); it defines functions only.

TITAN_DEFAULT_TEST_IMAGE=titan-test/busybox:latest

log() { printf '\n==> %s\n' "$*" >&2; }
die() { printf '\nERROR: %s\n' "$*" >&2; exit 1; }

# bash has a single EXIT trap; helpers register cleanups here instead (run LIFO).
_TITAN_EXIT_HOOKS=()
on_exit() {
  _TITAN_EXIT_HOOKS+=("$*")
  trap _titan_run_exit_hooks EXIT
  # Make Ctrl-C / kill go through the EXIT trap too.
  trap 'exit 130' INT
  trap 'exit 143' TERM
}
_titan_run_exit_hooks() {
  local rc=$? i
  for ((i = ${#_TITAN_EXIT_HOOKS[@]} - 1; i >= 0; i--)); do
    eval "${_TITAN_EXIT_HOOKS[i]}" || true
  done
  exit "$rc"
}

# The test image needs a static busybox: it is copied into an otherwise empty rootfs.
_titan_static_busybox() {
  local b
  b=$(command -v busybox 2>/dev/null) || return 1
  ! ldd "$b" >/dev/null 2>&1
}

# Install etcd / docker / docker-compose / busybox-static via apt, only if something is missing.
ensure_packages() {
  local missing=()
  command -v "${ETCD_BIN:-etcd}" >/dev/null 2>&1 || missing+=(etcd-server)
  { command -v dockerd && command -v docker; } >/dev/null 2>&1 || missing+=(docker.io)
  _titan_static_busybox || missing+=(busybox-static)
  # test/compose brings docker-compose.yml up with Debian's docker-compose (1.29).
  command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
  # scripts/pki.sh (titan dev --secure, test/security) makes certificates with it.
  command -v openssl >/dev/null 2>&1 || missing+=(openssl)
  # test/api/dashboard.test.ts drives the dashboard in it (playwright-core downloads no browser).
  [ -x "${TITAN_CHROMIUM:-/usr/bin/chromium}" ] || missing+=(chromium)
  [ "${#missing[@]}" -gt 0 ] || return 0
  [ "$(id -u)" = 0 ] || die "missing ${missing[*]}; run as root or: sudo apt-get install -y ${missing[*]}"
  log "Installing missing packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y --no-install-recommends "${missing[@]}"
}

# Install Debian's Slurm (22.05) and munge, only for `npm run bench:e2e -- --peer slurm`
# (kept apart from ensure_packages: nothing else needs them). The bench writes its own
# slurm.conf and munge key into its temp dir; Debian's services are not used.
ensure_slurm() {
  local missing=()
  command -v slurmctld >/dev/null 2>&1 || missing+=(slurmctld)
  command -v slurmd >/dev/null 2>&1 || missing+=(slurmd)
  { command -v sbatch && command -v squeue; } >/dev/null 2>&1 || missing+=(slurm-client)
  command -v munged >/dev/null 2>&1 || missing+=(munge)
  [ "${#missing[@]}" -gt 0 ] || return 0
  [ "$(id -u)" = 0 ] || die "missing ${missing[*]}; run as root or: sudo apt-get install -y ${missing[*]}"
  log "Installing missing packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y --no-install-recommends "${missing[@]}"
}

# npm ci only when node_modules is absent or older than the lockfile. npm 11
# writes lock files without the other platforms' optional packages (msgpackr's
# prebuilt extractors) and then refuses them in `npm ci`; `npm install` honours
# the same pinned versions and fills the gap.
ensure_node_modules() {
  if [ -f package-lock.json ]; then
    if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
      log "npm ci"
      npm ci || { log "npm ci refused the lock file; npm install instead"; npm install; }
    fi
  elif [ ! -d node_modules ]; then
    log "npm install (no lockfile)"
    npm install
  fi
}

_titan_docker_ok() { timeout 15 docker version >/dev/null 2>&1; }

# Start a throw-away dockerd under /tmp, export DOCKER_HOST, stop it on exit.
# Socket lives directly in a short mktemp dir: unix socket paths max 108 chars.
start_private_dockerd() {
  local dir deadline
  dir=$(mktemp -d /tmp/tdk.XXXXXX)
  TITAN_DOCKERD_DIR=$dir
  on_exit stop_private_dockerd
  log "Starting private dockerd in $dir"
  dockerd --bridge=none --iptables=false --ip-masq=false \
    -H "unix://$dir/d.sock" --data-root "$dir/data" --exec-root "$dir/x" \
    --pidfile "$dir/d.pid" >"$dir/dockerd.log" 2>&1 &
  TITAN_DOCKERD_PID=$!
  export DOCKER_HOST="unix://$dir/d.sock"
  deadline=$((SECONDS + 60))
  until _titan_docker_ok; do
    if ! kill -0 "$TITAN_DOCKERD_PID" 2>/dev/null || [ "$SECONDS" -ge "$deadline" ]; then
      echo "--- dockerd log tail ($dir/dockerd.log) ---" >&2
      tail -n 40 "$dir/dockerd.log" >&2 || true
      return 1
    fi
    sleep 0.5
  done
  echo "dockerd ready: DOCKER_HOST=$DOCKER_HOST" >&2
}

stop_private_dockerd() {
  local dir=${TITAN_DOCKERD_DIR:-} pid=${TITAN_DOCKERD_PID:-} i p m
  [ -n "$dir" ] && [ -d "$dir" ] || return 0
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  # containerd / shims outlive a hard-killed dockerd; find them by our unique dir.
  for p in /proc/[0-9]*; do
    grep -qaF "$dir/" "$p/cmdline" 2>/dev/null && kill -KILL "${p#/proc/}" 2>/dev/null || true
  done
  # Leftover overlay/shm/netns mounts would make rm -rf fail.
  awk -v d="$dir/" 'index($2, d) == 1 { print $2 }' /proc/self/mounts | sort -r |
    while read -r m; do umount -l "$m" 2>/dev/null || true; done
  rm -rf "$dir" 2>/dev/null || echo "warning: could not fully remove $dir" >&2
  TITAN_DOCKERD_DIR=
}

# Use $DOCKER_HOST if it answers, otherwise start a private daemon. Never skip.
ensure_docker() {
  if [ -n "${DOCKER_HOST:-}" ] && _titan_docker_ok; then
    log "Using existing docker at DOCKER_HOST=$DOCKER_HOST"
    return 0
  fi
  [ -z "${DOCKER_HOST:-}" ] || echo "DOCKER_HOST=$DOCKER_HOST does not answer; starting a private dockerd" >&2
  start_private_dockerd || die "could not start a private dockerd (need root and a kernel with overlayfs/cgroups); tests need docker"
}

# Build the tiny offline test image (static busybox + applet symlinks) if absent.
ensure_test_image() {
  local image=${TITAN_TEST_IMAGE:-$TITAN_DEFAULT_TEST_IMAGE} tmp a
  if ! docker image inspect "$image" >/dev/null 2>&1; then
    log "Building test image $image"
    tmp=$(mktemp -d)
    mkdir -p "$tmp/root/bin" "$tmp/root/etc" "$tmp/root/tmp" "$tmp/root/usr"
    chmod 1777 "$tmp/root/tmp"
    cp "$(command -v busybox)" "$tmp/root/bin/busybox"
    for a in $(busybox --list); do
      [ "$a" = busybox ] || ln -sf busybox "$tmp/root/bin/$a"
    done
    ln -s bin "$tmp/root/sbin"
    ln -s ../bin "$tmp/root/usr/bin"
    echo 'root:x:0:0:root:/:/bin/sh' >"$tmp/root/etc/passwd"
    echo 'root:x:0:' >"$tmp/root/etc/group"
    tar -C "$tmp/root" -cf "$tmp/img.tar" .
    docker import --change 'ENV PATH=/bin' --change 'CMD ["sh"]' "$tmp/img.tar" "$image" >/dev/null
    rm -rf "$tmp"
  fi
  export TITAN_TEST_IMAGE=$image
}
