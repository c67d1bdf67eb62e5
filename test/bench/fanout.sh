#!/usr/bin/env bash
# Fan-out benchmark: the fake upstream feeds a local btcstream, sse_load opens
# N SSE clients and measures what they receive. Loopback only; everything it
# starts is stopped on exit. See README.md in this directory.
#
#   test/bench/fanout.sh [BTCSTREAM_BINARY [N]]   (build/btcstream, 10000)
#
# Environment: RATE connects/s (2000), SOURCES source addresses (4), EVENTS
# per client (10), DURATION s (90), INTERVAL (1s), SSE_LOAD (the sse_load
# binary; default build/test/bench/sse_load, else compiled into a temp dir),
# PORT and UPSTREAM_PORT (free ports), BTCSTREAM_ARGS (extra server flags).
set -euo pipefail
cd "$(dirname "$0")/../.."

bin=${1:-build/btcstream}
n=${2:-10000}
rate=${RATE:-2000}
sources=${SOURCES:-4}
events=${EVENTS:-10}
duration=${DURATION:-90}
interval=${INTERVAL:-1s}
sse_load=${SSE_LOAD:-build/test/bench/sse_load}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
port=${PORT:-$(free_port)}
upstream_port=${UPSTREAM_PORT:-$(free_port)}

[[ -x $bin ]] || { echo "fanout.sh: no btcstream binary at $bin" >&2; exit 2; }
work=$(mktemp -d /tmp/btcstream-fanout.XXXXXX)
pids=()
cleanup() {
  local rc=$? pid
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for _ in $(seq 50); do # up to 5 s for a graceful end, then SIGKILL
    local alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    ((alive)) || break
    sleep 0.1
  done
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if ((rc != 0)); then
    echo "fanout.sh: failed ($rc); logs kept in $work" >&2
    tail -n 20 "$work"/*.log >&2 || true
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT

if [[ ! -x $sse_load ]]; then
  echo "fanout.sh: building sse_load into $work"
  g++ -std=c++17 -O2 -Wall -Wextra -Werror test/bench/sse_load.cpp \
    -o "$work/sse_load" -lpthread
  sse_load=$work/sse_load
fi

# Waits up to $2 s for $1 to answer 200 (curl never uses a proxy here).
wait_ok() {
  local deadline=$((SECONDS + $2))
  until [[ $(curl -s --noproxy '*' --max-time 1 -o /dev/null -w '%{http_code}' "$1") == 200 ]]; do
    ((SECONDS < deadline)) || { echo "fanout.sh: $1 not ready" >&2; return 1; }
    sleep 0.2
  done
}

# Waits up to $2 s until the SSE stream $1 delivers a first update.
wait_first_event() {
  local deadline=$((SECONDS + $2))
  until { curl -sN --noproxy '*' --max-time 2 "$1" || true; } | grep -qm1 '^id: '; do
    ((SECONDS < deadline)) || { echo "fanout.sh: no event from $1" >&2; return 1; }
    sleep 0.2
  done
}

tick="http://127.0.0.1:$upstream_port/index/cc/v1/latest/tick?market=ccix&instruments=BTC-USD"
python3 test/integration/fake_upstream.py --port "$upstream_port" \
  >"$work/upstream.log" 2>&1 &
pids+=($!)
wait_ok "$tick" 10

# shellcheck disable=SC2086 # BTCSTREAM_ARGS is a list of flags
"$bin" --listen "127.0.0.1:$port" --upstream-url "$tick" \
  --interval "$interval" --max-clients 19000 ${BTCSTREAM_ARGS:-} \
  >"$work/btcstream.log" 2>&1 &
server_pid=$!
pids+=("$server_pid")
wait_first_event "http://127.0.0.1:$port/stream" 20

echo "btcstream pid $server_pid on 127.0.0.1:$port, upstream :$upstream_port," \
  "interval $interval; $n clients"
# sse_load ends itself at --duration; SIGINT still makes it report.
timeout -s INT -k 10 $((duration + 30)) "$sse_load" --host 127.0.0.1 \
  --port "$port" --clients "$n" --rate "$rate" --sources "$sources" \
  --events "$events" --duration "$duration" --server-pid "$server_pid" \
  | tee "$work/sse_load.out"

kill -0 "$server_pid" 2>/dev/null \
  || { echo "fanout.sh: btcstream died during the run" >&2; exit 1; }
curl -s --noproxy '*' --max-time 2 "http://127.0.0.1:$port/metrics" \
  | grep -v '^#' | grep -Ei 'client|connection|slow|stall|drop' || true
