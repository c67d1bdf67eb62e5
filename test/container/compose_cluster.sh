#!/bin/sh
# The cluster deployment files, run for real (called by test/container/run.sh
# once it has built the btcstream image):
#
#   compose_cluster.sh IMAGE
#
# 1. docs/deploy/compose-cluster.yaml with Debian's podman-compose: Redis
#    (AOF on a named volume), three nodes of IMAGE, HAProxy with
#    docs/deploy/haproxy.cfg; the nodes poll the integration suite's fake
#    upstream on the compose network's gateway. A stream is read through
#    HAProxy, the node serving it is stopped (SIGTERM: it drains), the stream
#    is resumed through HAProxy with Last-Event-ID, and the ids read are
#    exactly the log's (Redis XRANGE) over that span, no gap event.
# 2. `podman kube play` of docs/deploy/k8s (what podman 4.3 runs: the
#    Deployment as one pod, Redis's StatefulSet pod template as a Pod with
#    its PVC; test/deploy/check_k8s.py --play writes them): the btcstream pod
#    becomes ready and streams; then `podman kube down`.
#
# No registry is reachable: HAProxy and Redis run from one local image
# (localhost/btcstream-test-lbredis:bookworm) built FROM the local
# debian:bookworm-slim with Debian's haproxy and redis-server (cached by tag).
#
# Environment: CONTAINERS_CONF (run.sh's private one: runc, ulimits),
# BTCSTREAM_SOURCE_ROOT, BTCSTREAM_CONTAINER_KEEP=1 (keep everything).
# Cleans up its containers, pods, networks and volumes even on failure.
set -eu

IMAGE=${1:?usage: compose_cluster.sh IMAGE}
SRC=${BTCSTREAM_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
PATH="$PATH:/usr/sbin:/sbin"

now_ms() { date +%s%3N; }
T0=$(now_ms)
STEP=start
log() { STEP="$*"; printf '[compose %5ss] %s\n' "$(( ($(now_ms) - T0) / 1000 ))" "$*"; }
fail() { printf '[compose] FAIL: %s\n' "$*" >&2; exit 1; }

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo -n"
pm() { $SUDO env ${CONTAINERS_CONF:+CONTAINERS_CONF="$CONTAINERS_CONF"} podman "$@"; }
PY=python3

command -v podman-compose >/dev/null 2>&1 || {
  $SUDO apt-get install -y -qq --no-install-recommends podman-compose >/dev/null 2>&1 \
    || fail "podman-compose is missing (scripts/deps --test)"
}
# Service names resolve on a CNI network only with the dnsname plugin.
if [ "$(pm info --format '{{.Host.NetworkBackend}}' 2>/dev/null)" = cni ] \
    && [ ! -x /usr/lib/cni/dnsname ]; then
  $SUDO apt-get install -y -qq --no-install-recommends \
    golang-github-containernetworking-plugin-dnsname >/dev/null 2>&1 \
    || fail "the CNI dnsname plugin is missing (package golang-github-containernetworking-plugin-dnsname)"
fi

# Pods (kube play) need podman's infra image, built from catatonit.
if ! command -v catatonit >/dev/null 2>&1 && [ ! -x /usr/libexec/podman/catatonit ]; then
  $SUDO apt-get install -y -qq --no-install-recommends catatonit >/dev/null 2>&1 \
    || fail "catatonit is missing (podman's pause image for pods)"
fi

UNIQ="$$-$(date +%s)"
PROJ="btcstream-ct-$UNIQ"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/btcstream-compose.XXXXXX")
HELPER=localhost/btcstream-test-lbredis:bookworm
COMPOSE="$SRC/docs/deploy/compose-cluster.yaml"
KUBE_NET="btcstream-kube-$UNIQ"
UP_PID=""
KUBE_UP=""
pc() {
  $SUDO env ${CONTAINERS_CONF:+CONTAINERS_CONF="$CONTAINERS_CONF"} \
    BTCSTREAM_IMAGE="$IMAGE" HAPROXY_IMAGE="$HELPER" REDIS_IMAGE="$HELPER" \
    BTCSTREAM_PORT="$LB_PORT" HAPROXY_STATS_PORT="$STATS_PORT" \
    BTCSTREAM_UPSTREAM_URL="${NODE_URL:-}" BTCSTREAM_INTERVAL=300ms \
    BTCSTREAM_LEASE_TTL=1s COINDESK_API_KEY="test-key-$UNIQ" \
    podman-compose -p "$PROJ" -f "$COMPOSE" "$@"
}

cleanup() {
  rc=$?
  set +e
  if [ "$rc" -ne 0 ]; then
    for c in $(pm ps -a --filter "label=io.podman.compose.project=$PROJ" --format '{{.Names}}' 2>/dev/null); do
      echo "--- podman logs $c (tail)" >&2
      pm logs "$c" 2>&1 | tail -n 15 >&2
    done
  fi
  [ -n "$UP_PID" ] && kill "$UP_PID" 2>/dev/null && wait "$UP_PID" 2>/dev/null
  if [ "${BTCSTREAM_CONTAINER_KEEP:-0}" != 1 ]; then
    pc down -v -t 2 >/dev/null 2>&1
    for c in $(pm ps -a -q --filter "label=io.podman.compose.project=$PROJ" 2>/dev/null); do
      pm rm -f -t 0 "$c" >/dev/null 2>&1
    done
    pm volume rm -f "${PROJ}_redis-data" >/dev/null 2>&1
    pm network rm -f "${PROJ}_default" >/dev/null 2>&1
    if [ -n "$KUBE_UP" ]; then
      pm kube down "$TMP/kube.yaml" >/dev/null 2>&1
      pm kube down "$TMP/kube.redis.yaml" >/dev/null 2>&1
      pm volume rm -f data-redis-0 >/dev/null 2>&1
    fi
    pm network rm -f "$KUBE_NET" >/dev/null 2>&1
  else
    echo "[compose] kept: project $PROJ, network $KUBE_NET" >&2
  fi
  rm -rf "$TMP"
  [ "$rc" -eq 0 ] || printf '[compose] failed (exit %s) after: %s; cleaned up\n' "$rc" "$STEP" >&2
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
LB_PORT=$(free_port)
STATS_PORT=$(free_port)
UP_PORT=$(free_port)
TICK=$("$PY" -c "import sys; sys.path.insert(0, '$SRC/test/integration'); import fake_upstream as f; print(f.TICK_PATH + '?' + f.TICK_QUERY)")
NODE_URL="http://host.containers.internal:$UP_PORT$TICK"

# --- the HAProxy + Redis image (Debian packages; cached) ----------------------
if ! pm image exists "$HELPER"; then
  log "building $HELPER (Debian haproxy + redis-server)"
  cat >"$TMP/Containerfile.lbredis" <<'EOF'
FROM docker.io/library/debian:bookworm-slim
RUN apt-get update \
 && groupadd -r -g 999 redis && useradd -r -u 999 -g redis -d /var/lib/redis -s /usr/sbin/nologin redis \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends haproxy redis-server \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /data /usr/local/etc/haproxy && chown redis:redis /data
EOF
  pm build --pull=never --network=host -t "$HELPER" -f "$TMP/Containerfile.lbredis" "$TMP" \
    >"$TMP/helper-build.log" 2>&1 || { tail -n 30 "$TMP/helper-build.log" >&2; fail "helper image build"; }
fi

# --- compose up -----------------------------------------------------------------
log "podman-compose up: redis, node1-3, haproxy (project $PROJ, port $LB_PORT)"
# The redis service runs as the image's redis user (Debian's uid).
pc up -d >"$TMP/up.log" 2>&1 || { tail -n 40 "$TMP/up.log" >&2; fail "podman-compose up"; }
for svc in redis node1 node2 node3 haproxy; do
  st=$(pm ps -a --filter "label=io.podman.compose.project=$PROJ" \
    --filter "label=com.docker.compose.service=$svc" --format '{{.Status}}' | head -n 1)
  case "$st" in Up*) ;; *) false ;; esac || { tail -n 30 "$TMP/up.log" >&2; fail "service $svc is '$st', not running, after up"; }
done
GW=$(pm network inspect "${PROJ}_default" --format '{{range .Subnets}}{{.Gateway}}{{end}}')
[ -n "$GW" ] || fail "no gateway for ${PROJ}_default"
"$PY" -u "$SRC/test/integration/fake_upstream.py" --host "$GW" --port "$UP_PORT" \
  >"$TMP/upstream.log" 2>&1 &
UP_PID=$!
log "fake upstream on $GW:$UP_PORT (host.containers.internal for the nodes)"

# All three nodes UP in HAProxy (its status page, CSV).
stats() { curl -s --max-time 2 "http://127.0.0.1:$STATS_PORT/stats;csv" 2>/dev/null || true; }
srv_col() { stats | awk -F, -v s="$1" -v c="$2" '$1=="nodes" && $2==s {print $c}'; }
i=0
until [ "$(stats | awk -F, '$1=="nodes" && $2 ~ /^node/ && $18=="UP"' | wc -l)" -eq 3 ]; do
  [ $i -lt 120 ] || { stats >&2; fail "the nodes did not all turn UP in HAProxy within 60 s"; }
  sleep 0.5
  i=$((i + 1))
done
log "HAProxy: node1 node2 node3 UP"

# --- a stream through HAProxy; stop its node; resume --------------------------
BASE="http://127.0.0.1:$LB_PORT"
curl -sN --max-time 20 "$BASE/stream" >"$TMP/a.txt" 2>/dev/null &
A_PID=$!
sleep 2
victim=""
for n in node1 node2 node3; do
  [ "$(srv_col "$n" 5)" = 1 ] && victim=$n
done
[ -n "$victim" ] || { stats >&2; fail "cannot tell which node serves the stream"; }
cname=$(pm ps --filter "label=io.podman.compose.project=$PROJ" \
  --filter "label=com.docker.compose.service=$victim" --format '{{.Names}}' | head -n 1)
log "the stream is on $victim ($cname): podman stop"
s0=$(now_ms)
pm stop -t 10 "$cname" >/dev/null
s1=$(now_ms)
wait "$A_PID" 2>/dev/null || true
grep -q '^id: ' "$TMP/a.txt" || fail "no event read through HAProxy"
last=$(sed -n 's/^id: //p' "$TMP/a.txt" | tail -n 1)
log "$victim stopped in $((s1 - s0)) ms; its stream ended after $(grep -c '^id: ' "$TMP/a.txt") events, last id $last"
curl -sN --max-time 3 -H "Last-Event-ID: $last" "$BASE/stream" >"$TMP/b.txt" 2>/dev/null || true
grep -q '^event: gap' "$TMP/a.txt" "$TMP/b.txt" && fail "a gap event across the stop"
sed -n 's/^id: //p' "$TMP/a.txt" "$TMP/b.txt" >"$TMP/got.txt"
first=$(head -n 1 "$TMP/got.txt")
end=$(tail -n 1 "$TMP/got.txt")
rcname=$(pm ps --filter "label=io.podman.compose.project=$PROJ" \
  --filter "label=com.docker.compose.service=redis" --format '{{.Names}}' | head -n 1)
pm exec "$rcname" redis-cli XRANGE btcstream:log "$first" "$end" \
  | sed -n 's/^\([0-9]\{1,\}\)-0$/\1/p' >"$TMP/log.txt"
if ! cmp -s "$TMP/got.txt" "$TMP/log.txt"; then
  diff "$TMP/log.txt" "$TMP/got.txt" | head -n 20 >&2
  fail "the ids read through HAProxy are not the log's from $first to $end"
fi
[ "$(wc -l <"$TMP/got.txt")" -gt "$(grep -c '^id: ' "$TMP/a.txt")" ] \
  || fail "the resumed stream gave nothing new"
log "resumed through HAProxy on a survivor: $(wc -l <"$TMP/got.txt") ids, exactly the log's $first..$end, no gap"
i=0
until [ "$(srv_col "$victim" 18)" = DOWN ] || [ "$(srv_col "$victim" 18)" = MAINT ]; do
  [ $i -lt 20 ] || fail "HAProxy still has $victim as $(srv_col "$victim" 18)"
  sleep 0.2
  i=$((i + 1))
done
pc down -v -t 5 >"$TMP/down.log" 2>&1 || { tail -n 20 "$TMP/down.log" >&2; fail "podman-compose down"; }
log "podman-compose down -v: done"
kill "$UP_PID" 2>/dev/null; wait "$UP_PID" 2>/dev/null || true
UP_PID=""

# --- podman kube play of docs/deploy/k8s ------------------------------------------
pm network create "$KUBE_NET" >/dev/null
play_files() {
  "$PY" "$SRC/test/deploy/check_k8s.py" "$SRC/docs/deploy/k8s" \
    --play "$TMP/kube.yaml" --image "$IMAGE" --redis-image "$HELPER" \
    --upstream "http://host.containers.internal:$UP_PORT$TICK" \
    --redis-url "redis://:test-redis-$UNIQ@$1:6379" --redis-password "test-redis-$UNIQ" >/dev/null
}
play_files redis
KUBE_UP=1
log "podman kube play: redis (StatefulSet pod template + PVC)"
pm kube play --network "$KUBE_NET" "$TMP/kube.redis.yaml" >"$TMP/play.log" 2>&1 \
  || { cat "$TMP/play.log" >&2; fail "podman kube play (redis)"; }
RIP=$(pm inspect redis-redis --format '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}')
[ -n "$RIP" ] || fail "no IP for the redis pod"
play_files "$RIP"
GW=$(pm network inspect "$KUBE_NET" --format '{{range .Subnets}}{{.Gateway}}{{end}}')
"$PY" -u "$SRC/test/integration/fake_upstream.py" --host "$GW" --port "$UP_PORT" \
  >"$TMP/upstream2.log" 2>&1 &
UP_PID=$!
log "podman kube play: the btcstream Deployment (Redis at $RIP)"
pm kube play --network "$KUBE_NET" "$TMP/kube.yaml" >>"$TMP/play.log" 2>&1 \
  || { cat "$TMP/play.log" >&2; fail "podman kube play (btcstream)"; }
bctr=$(pm ps --filter "label=io.kubernetes.pod.name" --format '{{.Names}}' | grep -- '-btcstream$' | head -n 1 || true)
[ -n "$bctr" ] || bctr=$(pm ps --format '{{.Names}}' | grep 'btcstream-pod' | grep -v infra | head -n 1)
[ -n "$bctr" ] || { pm ps -a >&2; fail "no btcstream container from kube play"; }
IP=$(pm inspect "$bctr" --format '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}')
[ -n "$IP" ] || fail "no IP for $bctr"
i=0
until [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://$IP:8080/readyz")" = 200 ]; do
  [ $i -lt 60 ] || { pm logs "$bctr" 2>&1 | tail -n 20 >&2; fail "the kube-played pod did not turn ready"; }
  sleep 0.5
  i=$((i + 1))
done
[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://$IP:8080/healthz")" = 200 ] \
  || fail "/healthz of the kube-played pod"
curl -sN --max-time 3 "http://$IP:8080/stream" >"$TMP/k.txt" 2>/dev/null || true
n=$(grep -c '^id: ' "$TMP/k.txt" || true)
[ "$n" -ge 3 ] || fail "the kube-played pod streamed $n events in 3 s"
user=$(pm exec "$bctr" sed -n 's/^Uid:[[:space:]]*//p' /proc/1/status | cut -f1)
[ "$user" != 0 ] || fail "the kube-played btcstream runs as root"
log "kube play: pod ready (/healthz, /readyz 200), $n events in 3 s from Redis, uid $user"
pm kube down "$TMP/kube.yaml" >/dev/null 2>&1 || fail "podman kube down (btcstream)"
pm kube down "$TMP/kube.redis.yaml" >/dev/null 2>&1 || fail "podman kube down (redis)"
pm volume rm -f data-redis-0 >/dev/null 2>&1 || true
KUBE_UP=""
log "podman kube down: done; PASS"
