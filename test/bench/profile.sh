#!/usr/bin/env bash
# Per-step profile of the fan-out path: btcstream runs under callgrind, N
# sse_load clients connect, the counters are zeroed once all are connected
# and dumped when the clients have seen E events. Instruction counts are
# repeatable whatever else the machine does; they cover user space only (the
# kernel's socket writes are not in them: perf shows those, see
# docs/performance.md). Loopback only; stops everything it starts.
#
#   test/bench/profile.sh [BTCSTREAM_BINARY [N]]   (build/btcstream, 500)
#
# COUNTER=perf counts the kernel side instead, at full speed (no valgrind):
# context switches and the futex, epoll_wait and write system calls of the
# server per delivered event (perf stat on syscall tracepoints), i.e. the
# wake-ups and hand-offs per event.
#
# COUNTER=record samples where the server's CPU time goes, at full speed:
# perf record (cpu-clock, 4 kHz, with call graphs) while the events are
# delivered, then the CPU per delivered event by thread, by owner (kernel,
# CAF, btcstream, libc) and of the top symbols. The samples say where time
# passes, not why (these VMs have no cycle or cache counters); OUT=1 keeps
# perf.data for `perf report -g`.
#
# COUNTER=cachesim is callgrind with its cache simulation, sized like one
# core of these machines (48 KiB L1d, 2 MiB L2 as the last level): data
# cache lines missed per delivered event, per step. Use it with as many
# clients as the benchmark (10000): their state then does not fit, and
# the misses count the cold lines one delivery touches; a second table
# splits them by owner (CAF, btcstream, Asio, libc). User space only, so a
# lower bound (the kernel's writes evict more).
#
# Environment: EVENTS (10), SSE_LOAD (build/test/bench/sse_load),
# BTCSTREAM_ARGS (extra server flags), OUT=1 (keeps the work directory, with
# the callgrind dumps and the logs, and prints its path).
set -euo pipefail
cd "$(dirname "$0")/../.."

bin=${1:-build/btcstream}
n=${2:-500}
events=${EVENTS:-10}
sse_load=${SSE_LOAD:-build/test/bench/sse_load}
[[ -x $bin && -x $sse_load ]] || {
  echo "profile.sh: need $bin and $sse_load (meson compile -C build)" >&2
  exit 2
}
counter=${COUNTER:-callgrind}
case $counter in
  callgrind|cachesim) command -v valgrind >/dev/null || { echo "profile.sh: needs valgrind" >&2; exit 2; } ;;
  perf|record) command -v perf >/dev/null || { echo "profile.sh: needs perf (linux-perf)" >&2; exit 2; } ;;
  *) echo "profile.sh: COUNTER is callgrind, cachesim, perf or record" >&2; exit 2 ;;
esac

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
port=$(free_port)
upstream_port=$(free_port)
work=$(mktemp -d /tmp/btcstream-profile.XXXXXX)
pids=()
cleanup() {
  local rc=$? pid
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  sleep 2
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if ((rc != 0)); then
    echo "profile.sh: failed ($rc); logs kept in $work" >&2
    tail -n 20 "$work"/*.log >&2 || true
  elif [[ -z ${OUT:-} ]]; then
    rm -rf "$work"
  else
    echo "profile.sh: dumps and logs kept in $work"
  fi
}
trap cleanup EXIT

metric() { # value of an unlabelled metric, 0 while unreachable
  curl -s --noproxy '*' --max-time 5 "http://127.0.0.1:$port/metrics" \
    | awk -v m="$1" '$1 == m { print $2; found = 1 } END { if (!found) print 0 }'
}

tick="http://127.0.0.1:$upstream_port/index/cc/v1/latest/tick?market=ccix&instruments=BTC-USD"
python3 test/integration/fake_upstream.py --port "$upstream_port" \
  >"$work/upstream.log" 2>&1 &
pids+=($!)

under=()
[[ $counter != perf && $counter != record ]] && under=(valgrind --tool=callgrind
  --callgrind-out-file="$work/callgrind.out" --dump-instr=no --collect-systime=no)
[[ $counter == cachesim ]] && under+=(--cache-sim=yes
  --D1=49152,12,64 --LL=2097152,16,64)
# shellcheck disable=SC2086 # BTCSTREAM_ARGS is a list of flags
"${under[@]}" "$bin" --listen "127.0.0.1:$port" --upstream-url "$tick" --interval 1s \
  --max-clients 19000 ${BTCSTREAM_ARGS:-} >"$work/btcstream.log" 2>&1 &
server_pid=$!
pids+=("$server_pid")
for _ in $(seq 120); do
  (($(metric btcstream_events_published_total | cut -d. -f1) > 0)) && break
  sleep 0.5
done

# COUNTER=record samples `events` fan-outs and stops before the next one:
# a client leaves as soon as it has its events, and those disconnects are
# not a delivery's cost.
load_events=$events
[[ $counter == record ]] && load_events=$((events + 1))
timeout -s INT -k 10 300 "$sse_load" --host 127.0.0.1 --port "$port" \
  --clients "$n" --rate 200 --sources 4 --events "$load_events" --duration 240 \
  >"$work/sse_load.out" &
load_pid=$!
for _ in $(seq 240); do
  (($(metric btcstream_sse_clients | cut -d. -f1) >= n)) && break
  sleep 0.5
done
if [[ $counter == perf ]]; then
  events_list=context-switches,syscalls:sys_enter_futex,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_write,syscalls:sys_enter_writev,syscalls:sys_enter_sendmsg
  perf stat -x, -e "$events_list" -p "$server_pid" -o "$work/perf.csv" &
  perf_pid=$!
  wait "$load_pid"
  kill -INT "$perf_pid"
  wait "$perf_pid" || true
  delivered=$(grep -o '"events_in_phase":[0-9]*' "$work/sse_load.out" | cut -d: -f2)
  echo "profile.sh: $n clients, $delivered events delivered while counting"
  python3 - "$work/perf.csv" "$delivered" <<'EOF'
import sys
delivered = int(sys.argv[2] or 0)
print(f"{'kernel event (server process)':40s} {'per delivered event':>20s}")
for line in open(sys.argv[1]):
    f = line.strip().split(",")
    if len(f) < 3 or not f[0].replace(".", "").isdigit():
        continue
    name = f[2].replace("syscalls:sys_enter_", "")
    print(f"{name:40s} {float(f[0]) / delivered if delivered else float('nan'):20.3f}")
EOF
  exit 0
fi
if [[ $counter == record ]]; then
  perf record -q -e cpu-clock -F 4000 -g -p "$server_pid" -o "$work/perf.data" \
    2>"$work/perf.log" &
  perf_pid=$!
  # Stop after `events` fan-outs, watched on /api/v1/price (a /metrics
  # scrape lists /proc/self/fd, costly with 10,000 sockets).
  latest_id() {
    curl -s --noproxy '*' --max-time 5 "http://127.0.0.1:$port/api/v1/price" \
      | grep -o '"id":[0-9]*' | cut -d: -f2
  }
  last=$(latest_id)
  seen=0
  while ((seen < events)) && kill -0 "$load_pid" 2>/dev/null; do
    sleep 0.2
    id=$(latest_id)
    [[ -n $id && $id != "$last" ]] && { seen=$((seen + 1)); last=$id; }
  done
  sleep 0.5
  kill -INT "$perf_pid"
  wait "$perf_pid" || true
  wait "$load_pid"
  missing=$(grep -o '"events_missing":[0-9]*' "$work/sse_load.out" | cut -d: -f2)
  ((seen == events)) && [[ $missing == 0 ]] || {
    echo "profile.sh: $seen of $events events seen, $missing missing" >&2
    exit 1
  }
  delivered=$((n * events))
  echo "profile.sh: $n clients, $events fan-outs ($delivered events delivered) while sampling"
  for key in comm dso sym; do
    perf report -i "$work/perf.data" --stdio --no-children -g none -n \
      --sort "$key" >"$work/report-$key.txt" 2>/dev/null
  done
  python3 - "$work" "$delivered" <<'EOF'
import re, sys
work, delivered = sys.argv[1], int(sys.argv[2] or 0)
cpu_ns = 0  # the server's CPU time while sampling: cpu-clock counts ns
def rows(key):
    """(percent, name) of perf report's lines, largest first."""
    global cpu_ns
    out = []
    for line in open(f"{work}/report-{key}.txt"):
        total = re.match(r"# Event count \(approx.\): (\d+)", line)
        if total:
            cpu_ns = int(total.group(1))
        m = re.match(r"\s*([\d.]+)%\s+(\d+)\s+(.*\S)", line)
        if m:
            out.append((float(m.group(1)), m.group(3)))
    return out
def us(pct):  # CPU time per delivered event
    return pct / 100 * cpu_ns / 1e3 / delivered if delivered else float("nan")
def owner(dso):
    if "kernel" in dso:
        return "kernel"
    if "libcaf" in dso:
        return "the CAF library"
    if dso.startswith(("lib", "ld-", "[")):
        return "libc, libstdc++, vdso, other"
    return "btcstream's code"
print(f"{'server CPU, by thread':44s} {'share':>7s} {'µs/event':>9s}")
for pct, name in rows("comm"):
    print(f"{name:44s} {pct:6.2f}% {us(pct):9.3f}")
owners = {}
for pct, name in rows("dso"):
    owners[owner(name)] = owners.get(owner(name), 0.0) + pct
print(f"\n{'by owner':44s} {'share':>7s} {'µs/event':>9s}")
for name, pct in sorted(owners.items(), key=lambda x: -x[1]):
    print(f"{name:44s} {pct:6.2f}% {us(pct):9.3f}")
print(f"\n{'top symbols ([k] kernel, [.] user space)':44s} {'share':>7s} {'µs/event':>9s}")
for pct, name in rows("sym")[:25]:
    print(f"{name[:44]:44s} {pct:6.2f}% {us(pct):9.3f}")
EOF
  exit 0
fi
callgrind_control -z "$server_pid" >/dev/null
wait "$load_pid"
callgrind_control -d "$server_pid" >/dev/null
sleep 1

delivered=$(grep -o '"events_in_phase":[0-9]*' "$work/sse_load.out" | cut -d: -f2)
dump=$(ls -t "$work"/callgrind.out.* | head -1)
# A call still in progress at the dump (each thread's stack) is written with
# a count of 0, which callgrind_annotate 3.19 books as the caller's own cost:
# every thread's entry point would hold the whole thread. Count it as a call.
sed -i 's/^calls=0 /calls=1 /' "$dump"
echo "profile.sh: $n clients, $delivered events delivered while counting"
show=Ir
[[ $counter == cachesim ]] && show=Ir,D1mr,D1mw,DLmr,DLmw
callgrind_annotate --inclusive=yes --threshold=100 --show="$show" "$dump" \
  >"$work/inclusive.txt" 2>/dev/null
python3 - "$work/inclusive.txt" "$delivered" "$show" <<'EOF'
import re, sys
# Steps of one delivered event, by the function whose inclusive count is the
# step's cost; callgrind sums over every thread.
steps = [
    ("total, all threads", r"PROGRAM TOTALS"),
    ("CAF workers (all actor work)", r"caf::scheduler::worker<[^>]*>::run\(\)|btcstream::\(anonymous namespace\)::worker::start\(\)::\{lambda\(\)#1\}> > >::_M_run\(\)"),
    ("  broadcaster: fan-out loop", r"caf::trivial_match_case<btcstream::broadcaster\("),
    ("  CAF: mailbox enqueue + schedule", r"caf::scheduled_actor::enqueue\(std::unique_ptr"),
    ("  CAF: resume (activation + handlers)", r"caf::scheduled_actor::resume\(caf::execution_unit\*, unsigned long\) \["),
    ("  connection actor: live handler", r"_ZN3caf18trivial_match_caseIZN9btcstream10connection"),
    ("    sse_session::deliver (the direct write)", r"btcstream::sse_session::deliver\("),
    ("io thread: Asio handlers", r"boost::asio::detail::scheduler::do_run_one\("),
    ("  session: enqueue + write", r"btcstream::sse_session::enqueue\("),
    ("    libc sendmsg (user side)", r":sendmsg \["),
    ("malloc", r":malloc \["),
    ("free", r":free \["),
]
delivered = int(sys.argv[2] or 0)
events = sys.argv[3].split(",")
text = open(sys.argv[1]).read().splitlines()
def counts(line):
    """The leading event counts of an annotate line (percentages skipped)."""
    out = []
    for tok in re.sub(r"\(\s*[\d.]+%\)", " ", line).split():
        if re.fullmatch(r"\d[\d,]*|\.", tok):  # "." is a zero count
            out.append(int(tok.replace(",", "").replace(".", "0")))
        else:
            break
    return out if len(out) == len(events) else None
def count(pattern):
    best = None
    for line in text:
        c = counts(line)
        if c and re.search(pattern, line) and (best is None or c[0] > best[0]):
            best = c
    return dict(zip(events, best or [0] * len(events)))
def per_event(x):
    return x / delivered if delivered else float("nan")
if len(events) == 1:
    print(f"{'step':40s} {'instructions/event':>20s}")
else:  # cachesim: data lines missed in L1d and in the simulated L2
    print(f"{'step':40s} {'instructions':>12s} {'L1d misses':>11s} {'L2 misses':>10s}   (per event)")
for name, pat in steps:
    c = count(pat)
    if len(events) == 1:
        print(f"{name:40s} {per_event(c['Ir']):20.0f}")
    else:
        print(f"{name:40s} {per_event(c['Ir']):12.0f} "
              f"{per_event(c['D1mr'] + c['D1mw']):11.2f} "
              f"{per_event(c['DLmr'] + c['DLmw']):10.2f}")
EOF
[[ $counter == cachesim ]] || exit 0
# Whose lines: each function's own L2 misses, by where its code comes from.
callgrind_annotate --inclusive=no --threshold=100 --show=DLmr,DLmw "$dump" \
  >"$work/exclusive.txt" 2>/dev/null
python3 - "$work/exclusive.txt" "$delivered" <<'EOF'
import re, sys
delivered = int(sys.argv[2] or 0)
owners = {}
listing = False
for line in open(sys.argv[1]):
    if "file:function" in line:
        listing = True
        continue
    if not listing:
        continue
    if line.startswith("-- "):  # the annotated sources follow
        break
    line = re.sub(r"\(\s*[\d.]+%\)", " ", line)
    m = re.match(r"\s*(\d[\d,]*|\.)\s+(\d[\d,]*|\.)\s+(\S.*)", line)
    if not m:
        continue
    where = m.group(3)
    fn = where.split(":", 1)[-1]
    if "libcaf" in where:
        owner = "the CAF library"
    elif "btcstream" in fn or "/src/" in where:
        owner = "btcstream's code (its handlers included)"
    elif "boost" in where:
        owner = "Asio / Beast"
    else:
        owner = "libc, libstdc++, other"
    n = sum(int(x.replace(",", "")) for x in m.group(1, 2) if x != ".")
    owners[owner] = owners.get(owner, 0) + n
print(f"\n{'L2 misses per event, by owner':40s}")
for owner, n in sorted(owners.items(), key=lambda x: -x[1]):
    print(f"{owner:40s} {n / delivered if delivered else float('nan'):10.2f}")
EOF
