#!/usr/bin/env bash
# The reference peer by hand: the fake upstream, nginx + nchan and
# publisher.py on loopback, serving at /stream what btcstream serves there.
# Runs until Ctrl-C or SIGTERM, then stops everything it started. See
# ../README.md ("nginx + nchan, the reference peer").
#
#   test/bench/nchan/run.sh [PORT]      (nginx's port; default a free one)
#
# Environment: WORKERS (nginx worker processes, 2), INTERVAL (publisher
# seconds, 1.0), UPSTREAM_PORT (free port).
#
# The steps, for a driver that does the same itself:
#  1. WORKDIR = a new temp dir, mode 0755 (run as root, nginx's workers are
#     `nobody`), with WORKDIR/tmp in it.
#  2. python3 test/integration/fake_upstream.py --port UP; wait until
#     http://127.0.0.1:UP/index/cc/v1/latest/tick?market=ccix&instruments=BTC-USD
#     answers 200.
#  3. nginx.conf.in with @PORT@, @WORKERS@, @WORKDIR@ replaced as text ->
#     WORKDIR/nginx.conf.
#  4. nginx -p WORKDIR -c WORKDIR/nginx.conf -e WORKDIR/error.log
#     -g 'daemon off;'   -- the process started is the master (its pid is
#     also in WORKDIR/nginx.pid); the workers are its children
#     (`ps -o pid= --ppid MASTER`, or /proc/*/stat field 4), WORKERS of them.
#     Check first that PORT is free with a plain bind: with `reuseport` a
#     second nginx binds a port already in use without an error. Ready when
#     http://127.0.0.1:PORT/nchan_status answers 200.
#  5. python3 test/bench/nchan/publisher.py --upstream TICK_URL
#     --publish http://127.0.0.1:PORT/pub --interval 1.0
#  6. Ready when GET http://127.0.0.1:PORT/stream with
#     `Accept: text/event-stream` delivers an `id:` line (nchan answers 403
#     to a request without that header).
#  7. Stop: SIGTERM to the publisher, the upstream and the nginx master
#     (nchan ends each stream with `:410: 410 Gone`; all gone within ~0.1 s),
#     SIGKILL after a few seconds to whatever is left, workers included.
set -euo pipefail
cd "$(dirname "$0")/../../.."

here=test/bench/nchan
workers=${WORKERS:-2}
interval=${INTERVAL:-1.0}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
port=${1:-$(free_port)}
upstream_port=${UPSTREAM_PORT:-$(free_port)}

# `reuseport` lets a second nginx (same user) bind a port already listened on
# with reuseport, silently sharing its connections: check first. A plain bind
# fails on any listener.
python3 -c 'import socket, sys; socket.socket().bind(("127.0.0.1", int(sys.argv[1])))' \
  "$port" 2>/dev/null || { echo "run.sh: port $port is in use" >&2; exit 2; }

command -v nginx >/dev/null \
  || { echo "run.sh: no nginx (apt-get install nginx libnginx-mod-nchan)" >&2; exit 2; }
[[ -f /usr/lib/nginx/modules/ngx_nchan_module.so ]] \
  || { echo "run.sh: no nchan module (apt-get install libnginx-mod-nchan)" >&2; exit 2; }

work=$(mktemp -d /tmp/btcstream-nchan.XXXXXX)
chmod 755 "$work"
mkdir "$work/tmp"
pids=()
master=
# shellcheck disable=SC2317 # the EXIT trap runs it; the script ends in `exit`
cleanup() {
  local rc=$? pid kids
  trap - INT TERM
  # The workers too: should the master need SIGKILL, they would stay.
  if [[ -n $master ]]; then
    read -ra kids <<<"$(ps -o pid= --ppid "$master" | xargs)" || true
    pids+=("${kids[@]}")
  fi
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
    echo "run.sh: failed ($rc); logs kept in $work" >&2
    tail -n 20 "$work"/*.log >&2 || true
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT
trap 'exit 0' INT TERM # a stop on request is a success

# Waits up to $2 s for $1 to answer 200 (curl never uses a proxy here) while
# process $3 lives.
wait_ok() {
  local deadline=$((SECONDS + $2))
  until [[ $(curl -s --noproxy '*' --max-time 1 -o /dev/null -w '%{http_code}' "$1") == 200 ]]; do
    kill -0 "$3" 2>/dev/null || { echo "run.sh: process $3 ended" >&2; return 1; }
    ((SECONDS < deadline)) || { echo "run.sh: $1 not ready" >&2; return 1; }
    sleep 0.2
  done
}

tick="http://127.0.0.1:$upstream_port/index/cc/v1/latest/tick?market=ccix&instruments=BTC-USD"
python3 test/integration/fake_upstream.py --port "$upstream_port" \
  >"$work/upstream.log" 2>&1 &
pids+=($!)
wait_ok "$tick" 10 $!

sed -e "s|@PORT@|$port|g" -e "s|@WORKERS@|$workers|g" -e "s|@WORKDIR@|$work|g" \
  "$here/nginx.conf.in" >"$work/nginx.conf"
nginx -p "$work" -c "$work/nginx.conf" -e "$work/error.log" -g 'daemon off;' \
  >"$work/nginx.log" 2>&1 &
master=$!
pids+=("$master")
wait_ok "http://127.0.0.1:$port/nchan_status" 10 "$master"

python3 "$here/publisher.py" --upstream "$tick" \
  --publish "http://127.0.0.1:$port/pub" --interval "$interval" \
  >"$work/publisher.log" 2>&1 &
pids+=($!)

stream="http://127.0.0.1:$port/stream"
deadline=$((SECONDS + 20))
until { curl -sN --noproxy '*' --max-time 3 -H 'Accept: text/event-stream' \
  "$stream" || true; } | grep -qm1 '^id: '; do
  ((SECONDS < deadline)) || { echo "run.sh: no event from $stream" >&2; exit 1; }
  sleep 0.2
done

worker_pids=$(ps -o pid= --ppid "$master" | xargs)
echo "nginx + nchan: stream $stream (send Accept: text/event-stream)"
echo "  nginx master $master, workers $worker_pids; upstream :$upstream_port;" \
  "publisher every ${interval}s; work dir $work"
echo "  e.g. curl -sN -H 'Accept: text/event-stream' $stream"
echo "  Ctrl-C stops everything."

# Until a signal (the trap exits 0) or until one of them dies (a failure).
wait -n "${pids[@]}" || true
echo "run.sh: a process ended early" >&2
exit 1
