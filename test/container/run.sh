#!/bin/sh
# The container test: builds the Containerfile with podman and runs the image
# against the integration suite's fake CoinDesk upstream on the host.
#
#   sh test/container/run.sh          (meson test --suite container)
#
# Checks: docs/deploy/compose.yaml parses and has the expected shape; the
# image is non-root, exposes 8080, stops on SIGTERM, has the HEALTHCHECK and
# no API key in any layer, and its size is printed; the running container
# passes `podman healthcheck run`, delivers /stream events and the web page,
# runs as a non-root user and, on `podman stop`, exits 0 in under 5 s.
#
# Needs root (or passwordless sudo): installs what is missing with apt-get
# (podman runc debootstrap curl python3-yaml), makes the local base images
# once (test/container/base-images.sh; cached), builds, runs.
# Exit 77 (skip) only when podman cannot be installed or cannot run here; with
# BTCSTREAM_CI=1 that is a failure instead. Cleans up its containers and its
# image whatever happens; keeps the base images and one build-stage cache
# image (localhost/btcstream-test-buildcache) so that the next run does not
# compile again when the sources did not change.
#
# Environment: BTCSTREAM_SOURCE_ROOT (default: two levels up from here),
# BTCSTREAM_CI=1 (never skip), BTCSTREAM_CONTAINER_KEEP=1 (keep the test
# image and container for inspection).
set -eu

SRC=${BTCSTREAM_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
HERE="$SRC/test/container"
CI=${BTCSTREAM_CI:-0}

now_ms() { date +%s%3N; }
T0=$(now_ms)
elapsed() { echo "$(( ($(now_ms) - T0) / 1000 ))s"; }
STEP="start"
log() { STEP="$*"; printf '[container %5s] %s\n' "$(elapsed)" "$*"; }
fail() { printf '[container %5s] FAIL: %s\n' "$(elapsed)" "$*" >&2; exit 1; }
skip() {
  if [ "$CI" = 1 ]; then
    fail "$* (BTCSTREAM_CI=1: the container test must run, not skip)"
  fi
  printf '[container] SKIP: %s\n' "$*"
  exit 77
}

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
  else
    skip "needs root or passwordless sudo (rootful podman, apt-get, debootstrap)"
  fi
fi

# --- tools -------------------------------------------------------------------
# The packages scripts/deps --test installs; installed here too so that the
# test also runs on its own.
pick_python() {
  for p in python3 /usr/bin/python3; do
    if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import yaml' 2>/dev/null; then
      echo "$p"; return 0
    fi
  done
  return 1
}
missing=""
command -v podman >/dev/null 2>&1 || missing="$missing podman"
command -v runc >/dev/null 2>&1 || [ -x /usr/sbin/runc ] || missing="$missing runc"
command -v debootstrap >/dev/null 2>&1 || [ -x /usr/sbin/debootstrap ] \
  || missing="$missing debootstrap"
command -v curl >/dev/null 2>&1 || missing="$missing curl"
pick_python >/dev/null || missing="$missing python3 python3-yaml"
if [ -n "$missing" ]; then
  log "installing:$missing"
  if ! command -v apt-get >/dev/null 2>&1; then
    skip "cannot install$missing: no apt-get here"
  fi
  # shellcheck disable=SC2086
  if ! { $SUDO apt-get update -qq \
      && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
           --no-install-recommends $missing; } >/dev/null 2>&1; then
    skip "cannot install$missing with apt-get"
  fi
fi
PY=$(pick_python) || fail "python3 with the yaml module (python3-yaml) is missing"
PATH="$PATH:/usr/sbin:/sbin"

# --- scratch, podman configuration, cleanup -----------------------------------
UNIQ="$$-$(date +%s)"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/btcstream-container.XXXXXX")
IMAGE="localhost/btcstream-test:$UNIQ"
CTR="btcstream-test-$UNIQ"
CACHE="localhost/btcstream-test-buildcache:latest"
UP_PID=""

# A private containers.conf (the machine's stays untouched): runc (crun fails
# on some cgroup setups) and open-files/process limits that the host allows
# (podman's default nofile of 1048576 may exceed the hard limit).
cat >"$TMP/containers.conf" <<'EOF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
runtime = "runc"
EOF
pm() { $SUDO env CONTAINERS_CONF="$TMP/containers.conf" podman "$@"; }

cleanup() {
  rc=$?
  set +e
  if [ -n "$UP_PID" ]; then
    # Bounded: a TERM that lands between fork and exec can be lost.
    kill "$UP_PID" 2>/dev/null
    i=0
    while [ $i -lt 20 ] && [ "$(cut -d' ' -f3 "/proc/$UP_PID/stat" 2>/dev/null || echo gone)" != gone ] \
        && [ "$(cut -d' ' -f3 "/proc/$UP_PID/stat" 2>/dev/null)" != Z ]; do
      sleep 0.1
      i=$((i + 1))
    done
    kill -9 "$UP_PID" 2>/dev/null
    wait "$UP_PID" 2>/dev/null
  fi
  if [ "${BTCSTREAM_CONTAINER_KEEP:-0}" = 1 ]; then
    log "kept: container $CTR, image $IMAGE"
  else
    pm rm -f -t 0 "$CTR" >/dev/null 2>&1
    pm rmi -f "$IMAGE" >/dev/null 2>&1
  fi
  rm -rf "$TMP"
  if [ "$rc" -eq 0 ]; then
    log "PASS"
  elif [ "$rc" -ne 77 ]; then
    printf '[container %5s] failed (exit %s) after: %s; cleaned up\n' \
      "$(elapsed)" "$rc" "$STEP" >&2
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

# --- the compose file (no podman needed) -------------------------------------
log "docs/deploy/compose.yaml: syntax and shape"
"$PY" "$HERE/check_compose.py" "$SRC/docs/deploy/compose.yaml"

# --- podman works? ------------------------------------------------------------
if ! pm info >"$TMP/info.log" 2>&1; then
  tail -n 20 "$TMP/info.log" >&2
  skip "podman is installed but cannot run here (podman info failed)"
fi
log "podman $(pm version --format '{{.Client.Version}}' 2>/dev/null)," \
  "runtime $(pm info --format '{{.Host.OCIRuntime.Name}}' 2>/dev/null)"

# --- base images (cached) ------------------------------------------------------
$SUDO env CONTAINERS_CONF="$TMP/containers.conf" PATH="$PATH" \
  timeout 900 sh "$HERE/base-images.sh" \
  || fail "could not make the local debian:bookworm base images"

# --- build ---------------------------------------------------------------------
BUILD_FLAGS="--pull=never --format docker --network=host --layers"
# The build stage first, under a fixed tag: the cache the next run reuses.
# When the sources changed, the previous cache image (and the layers only it
# used) goes.
old_cache=$(pm image inspect --format '{{.Id}}' "$CACHE" 2>/dev/null || true)
log "build stage (cached when the sources did not change)"
b0=$(now_ms)
# shellcheck disable=SC2086
if ! timeout 1500 $SUDO env CONTAINERS_CONF="$TMP/containers.conf" podman build \
    $BUILD_FLAGS --target build -t "$CACHE" -f "$SRC/Containerfile" "$SRC" \
    >"$TMP/build-stage.log" 2>&1; then
  tail -n 60 "$TMP/build-stage.log" >&2
  fail "podman build --target build failed"
fi
new_cache=$(pm image inspect --format '{{.Id}}' "$CACHE")
if [ -n "$old_cache" ] && [ "$old_cache" != "$new_cache" ]; then
  pm rmi "$old_cache" >/dev/null 2>&1 || true
fi
b1=$(now_ms)
log "build stage: $(( (b1 - b0) / 1000 ))s" \
  "($(grep -c 'Using cache' "$TMP/build-stage.log" || true) steps from cache)"
# shellcheck disable=SC2086
if ! timeout 900 $SUDO env CONTAINERS_CONF="$TMP/containers.conf" podman build \
    $BUILD_FLAGS -t "$IMAGE" -f "$SRC/Containerfile" "$SRC" \
    >"$TMP/build.log" 2>&1; then
  tail -n 60 "$TMP/build.log" >&2
  fail "podman build failed"
fi
# Sources edited between the two builds: the second compiled again. Its
# build stage becomes the cache, and the stale one goes.
stage1=$(grep -B1 '^\[2/2\] STEP 1/' "$TMP/build.log" \
  | sed -n 's/^--> \([0-9a-f]\{6,\}\)$/\1/p' | head -n 1 || true)
if [ -n "$stage1" ]; then
  stage1=$(pm image inspect --format '{{.Id}}' "$stage1" 2>/dev/null || true)
  if [ -n "$stage1" ] && [ "$stage1" != "$new_cache" ]; then
    if pm tag "$stage1" "$CACHE"; then
      pm rmi "$new_cache" >/dev/null 2>&1 || true
    fi
  fi
fi
b2=$(now_ms)
BUILD_S=$(( (b2 - b0) / 1000 ))
log "image $IMAGE built in ${BUILD_S}s (runtime stage $(( (b2 - b1) / 1000 ))s)"

# --- the image -----------------------------------------------------------------
inspect() { pm image inspect --format "$1" "$IMAGE"; }
size=$(inspect '{{.Size}}')
size_mb=$(( size / 1000000 ))
log "image size: ${size_mb} MB ($size bytes; base debian:bookworm-slim" \
  "$(( $(pm image inspect --format '{{.Size}}' docker.io/library/debian:bookworm-slim) / 1000000 )) MB)"
if [ "$size_mb" -gt 200 ]; then
  fail "image is ${size_mb} MB: far over the 100 MB aim"
elif [ "$size_mb" -gt 100 ]; then
  log "WARNING: image is ${size_mb} MB, over the 100 MB aim"
fi
user=$(inspect '{{.Config.User}}')
case "$user" in
  ""|root|0|0:*|root:*) fail "image runs as root (User '$user')" ;;
esac
[ "$(inspect '{{.Config.StopSignal}}')" = SIGTERM ] \
  || fail "StopSignal is '$(inspect '{{.Config.StopSignal}}')', not SIGTERM"
inspect '{{json .Config.ExposedPorts}}' | grep -q '"8080/tcp"' \
  || fail "port 8080 is not exposed"
inspect '{{json .Config.Healthcheck}}' | grep -q -- '--healthcheck' \
  || fail "no HEALTHCHECK running btcstream --healthcheck (built without --format docker?)"
if inspect '{{json .Config.Env}}' | grep -qi 'api_key'; then
  fail "the image sets an API key variable: $(inspect '{{json .Config.Env}}')"
fi
if pm history --no-trunc --format '{{.CreatedBy}}' "$IMAGE" | grep -qi 'api_key\|apikey'; then
  fail "an image layer mentions an API key"
fi
log "image: user $user, EXPOSE 8080, STOPSIGNAL SIGTERM, HEALTHCHECK, no key"

# Every BTCSTREAM_<FLAG> in the compose file names a flag of this binary.
pm run --rm --network=none "$IMAGE" --help >"$TMP/help.txt" 2>&1 \
  || { cat "$TMP/help.txt" >&2; fail "btcstream --help failed in the image"; }
"$PY" "$HERE/check_compose.py" "$SRC/docs/deploy/compose.yaml" "$TMP/help.txt"

# --- fake upstream on the host ---------------------------------------------------
: >"$TMP/upstream.log"
"$PY" -u "$SRC/test/integration/fake_upstream.py" --port 0 >"$TMP/upstream.log" 2>&1 &
UP_PID=$!
URL=""
i=0
while [ $i -lt 100 ]; do
  URL=$(sed -n 's/.*--upstream-url //p' "$TMP/upstream.log" || true)
  [ -n "$URL" ] && break
  kill -0 "$UP_PID" 2>/dev/null || { cat "$TMP/upstream.log" >&2; fail "fake upstream died"; }
  sleep 0.1
  i=$((i + 1))
done
[ -n "$URL" ] || fail "fake upstream did not start"
PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BASE="http://127.0.0.1:$PORT"
log "fake upstream: $URL; service on $BASE"

# --- run -----------------------------------------------------------------------
# --network=host reaches the upstream on the host's loopback. The hardening
# and limits of docs/deploy/compose.yaml apply. Without systemd, podman runs
# no health-check timer: `podman healthcheck run` below runs the probe.
KEY="test-key-$UNIQ-not-for-logs"
pm run -d --name "$CTR" --network=host --health-interval=disable \
  --read-only --cap-drop=ALL --security-opt=no-new-privileges \
  --memory=256m --cpus=1 --pids-limit=256 \
  -e BTCSTREAM_LISTEN="127.0.0.1:$PORT" \
  -e BTCSTREAM_UPSTREAM_URL="$URL" \
  -e BTCSTREAM_INTERVAL=300ms \
  -e COINDESK_API_KEY="$KEY" \
  "$IMAGE" >"$TMP/run.log" 2>&1 \
  || { cat "$TMP/run.log" >&2; fail "podman run failed"; }

state() { pm inspect --format "$1" "$CTR" 2>/dev/null; }
dump() {
  echo "--- podman logs $CTR" >&2
  pm logs "$CTR" >&2 2>&1 || true
  echo "--- state: $(state '{{json .State}}')" >&2
}

i=0
until pm logs "$CTR" 2>&1 | grep -q 'listening on'; do
  [ "$(state '{{.State.Running}}')" = true ] \
    || { dump; fail "the container exited before listening"; }
  [ $i -lt 150 ] || { dump; fail "no 'listening on' within 30 s"; }
  sleep 0.2
  i=$((i + 1))
done
log "container $CTR is listening"

# Health check: the image's HEALTHCHECK (the binary's probe), via podman.
i=0
until pm healthcheck run "$CTR" >"$TMP/hc.log" 2>&1; do
  [ $i -lt 30 ] || { cat "$TMP/hc.log" >&2; dump; fail "health check did not pass within 30 s"; }
  sleep 1
  i=$((i + 1))
done
health=$(state '{{.State.Health.Status}}')
[ "$health" = healthy ] || { dump; fail "health status '$health', expected healthy"; }
log "health check: $health ($(state '{{range .State.Health.Log}}{{.Output}}{{end}}' | tail -n 1))"

# /stream: at least 3 events (one every 300 ms).
curl -sN --max-time 4 "$BASE/stream" >"$TMP/stream.txt" 2>/dev/null || true
events=$(grep -c '^id: [0-9]' "$TMP/stream.txt" || true)
[ "$events" -ge 3 ] || { head -n 20 "$TMP/stream.txt" >&2; dump; fail "/stream gave $events events in 4 s, expected >= 3"; }
log "/stream: $events events in 4 s"

# The web page, from the installed web root the binary finds by itself.
code=$(curl -s -o "$TMP/index.html" -w '%{http_code}' --max-time 5 "$BASE/" || true)
if [ "$code" != 200 ] || ! grep -qi '<html' "$TMP/index.html"; then
  dump; fail "GET / answered $code, not the web page"
fi
log "GET /: 200, the web page"

# Not root, inside (PID 1's real, effective, saved and fs uid) and as the host sees it.
uids=$(pm exec "$CTR" cat /proc/1/status | sed -n 's/^Uid:[[:space:]]*//p')
[ -n "$uids" ] || { dump; fail "could not read PID 1's uid in the container"; }
for u in $uids; do
  [ "$u" -ne 0 ] || fail "the service runs as root in the container (Uid: $uids)"
done
huser=$(pm top "$CTR" huser | sed -n 2p | tr -d ' ')
case "$huser" in
  ""|0|root) fail "the service runs as host user '$huser'" ;;
esac
log "user: uid $(echo "$uids" | cut -f1) in the container, host user $huser"

# The key reached the process (redacted in the log) and is never logged.
if pm logs "$CTR" 2>&1 | grep -q "$KEY"; then
  fail "the API key appears in the container's log"
fi
pm logs "$CTR" 2>&1 | grep -q 'api_key=<redacted>' \
  || { dump; fail "COINDESK_API_KEY did not reach the service (no api_key=<redacted>)"; }

# SIGTERM: exits 0 in under 5 s.
s0=$(now_ms)
pm stop -t 10 "$CTR" >/dev/null 2>&1 || { dump; fail "podman stop failed"; }
s1=$(now_ms)
stop_ms=$((s1 - s0))
exit_code=$(state '{{.State.ExitCode}}')
[ "$exit_code" = 0 ] || { dump; fail "exit code $exit_code after SIGTERM, expected 0"; }
[ "$stop_ms" -lt 5000 ] || { dump; fail "podman stop took ${stop_ms} ms (>= 5000)"; }
log "SIGTERM: stopped in ${stop_ms} ms, exit code $exit_code"

log "compose cluster + kube play"; $SUDO env CONTAINERS_CONF="$TMP/containers.conf" BTCSTREAM_SOURCE_ROOT="$SRC" sh "$HERE/compose_cluster.sh" "$IMAGE" || fail "compose_cluster.sh failed"

log "summary: image ${size_mb} MB, build ${BUILD_S}s, test $(elapsed)"
