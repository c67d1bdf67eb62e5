#!/usr/bin/env python3
"""The fan-out benchmark driver: the same load against btcstream and against
nginx + nchan in one run, and the ratios. Run by hand, never as a test; it
starts everything it needs on loopback and stops it again.

    test/bench/compare.py fanout              # 10,000 clients, each server
    test/bench/compare.py stalled             # + 10 % stalled clients
    test/bench/compare.py burst               # 1,000 clients, 200 updates/s
    test/bench/compare.py churn               # 5,000 steady + 1,000/s churn
    test/bench/compare.py limit               # one process at --max-clients
    test/bench/compare.py sweep               # thread settings of btcstream
    test/bench/compare.py cores               # issue 14's ratios, medians of 3
    test/bench/compare.py scale               # issue 14's table: thread
                                              # settings, floor, nchan; with
                                              # --server-cpus / --load-cpus
    test/bench/compare.py soak                # 10 min at the limit, 1 %/min
                                              # churn: RSS and fd slopes
    test/bench/compare.py cluster             # 3 nodes (cluster mode,
                                              # --reuse-port) + Redis, then
                                              # nchan x 3 workers: 50,000
    test/bench/compare.py rolling             # 10,000 via HAProxy, the 3
                                              # nodes restarted in turn
    test/bench/compare.py all

(test/bench/chaos.py: the chaos soak of a cluster, built on the classes
here.)

Each prints a table per run, the ratios btcstream / nchan where both ran, and
at the end one JSON line with every number (also written to --out). See
test/bench/README.md and docs/performance.md.
"""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TICK = "/index/cc/v1/latest/tick?market=ccix&instruments=BTC-USD"
NCHAN_MODULE = "/usr/lib/nginx/modules/ngx_nchan_module.so"
FD_LIMIT = 20000  # the per-process open-files hard cap here

# --server-cpus / --load-cpus: the CPUs each side's processes may run on
# (None: wherever the kernel puts them). The servers (btcstream, the floor,
# nginx and its workers, cluster nodes) are "server"; sse_load, the fake
# upstream and nchan's publisher are "load". Redis and HAProxy (cluster,
# rolling) are started by test/integration's helpers and not pinned. Set
# once by main().
PINNING = {"server": None, "load": None}


def parse_cpus(text):
    """'0-7' or '0,2,4-5' -> a sorted list of CPU numbers; ValueError with
    the reason for anything else, or for a CPU this process cannot use."""
    cpus = set()
    for part in text.split(","):
        m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if not m:
            raise ValueError("%r: want CPU numbers and ranges, as 0-7 or "
                             "0,2,4-5" % text)
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        if hi < lo:
            raise ValueError("%r: range %d-%d runs backwards" % (text, lo, hi))
        cpus.update(range(lo, hi + 1))
    missing = sorted(cpus - os.sched_getaffinity(0))
    if missing:
        raise ValueError("%r: CPU %s not available here (this process may "
                         "use %s)" % (text, ",".join(map(str, missing)),
                                      cpu_list(os.sched_getaffinity(0))))
    return sorted(cpus)


def cpu_list(cpus):
    return ",".join(str(c) for c in sorted(cpus))


def pinned(role):
    """Popen keyword arguments that start a process of `role` ("server" or
    "load") on its CPUs: its children (nginx's workers) inherit them."""
    cpus = PINNING[role]
    if not cpus:
        return {}
    return {"preexec_fn": lambda: os.sched_setaffinity(0, cpus)}


def check_pinned(pids, role):
    """Raises unless every pid runs where `role` is pinned: a benchmark that
    says it pinned must have."""
    want = PINNING[role]
    if not want:
        return
    for pid in pids:
        got = os.sched_getaffinity(pid)
        if got != set(want):
            raise RuntimeError("pid %d (%s) may run on CPUs %s, not %s"
                               % (pid, role, cpu_list(got), cpu_list(want)))

# (JSON key of sse_load, column title, format)
COLUMNS = [
    ("connect_ok", "clients", "{:.0f}"),
    ("connect_errors", "conn err", "{:.0f}"),
    ("errors_dropped", "dropped", "{:.0f}"),
    ("events_new_ids", "updates", "{:.0f}"),
    ("events_missing", "missing", "{:.0f}"),
    ("order_bad", "dup/ooo", "{:.0f}"),
    ("latency_ms_p50", "lat p50 ms", "{:.1f}"),
    ("latency_ms_p99", "lat p99 ms", "{:.1f}"),
    ("fanout_ms_p50", "spread ms", "{:.1f}"),
    ("server_bytes_per_client", "B/client", "{:.0f}"),
    ("server_us_per_event", "srv µs/ev", "{:.2f}"),
    ("server_sys_us_per_event", "of it kernel", "{:.2f}"),
    ("server_rss_mb_end", "RSS MB", "{:.1f}"),
    ("client_event_cpu_pct", "load cpu%", "{:.0f}"),
]
RATIOS = ["latency_ms_p50", "latency_ms_p99", "fanout_ms_p50",
          "server_us_per_event", "server_bytes_per_client"]


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url, timeout=2.0, headers=None):
    """(status, body) of a GET; (None, error text) when it fails."""
    req = urllib.request.Request(url, headers=headers or {})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except Exception as e:  # noqa: BLE001 - any failure is "not ready"
        return None, str(e).encode()


def first_event(port, path, timeout):
    """True once GET path streams an `id:` line within timeout seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), 2) as s:
                s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nAccept: "
                           "text/event-stream\r\n\r\n" % path).encode())
                s.settimeout(3)
                got = b""
                while b"\nid: " not in got and len(got) < 65536:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    got += chunk
                if b"\nid: " in got:
                    return True
        except OSError:
            pass
        time.sleep(0.3)
    return False


def children(pid):
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)],
                         capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


class Procs:
    """Processes started for one run; all stopped by stop()."""

    def __init__(self, work):
        self.work = work
        self.procs = []

    def start(self, name, argv, role="server", **kw):
        out = open(os.path.join(self.work, name + ".log"), "wb")
        p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, cwd=ROOT,
                             **pinned(role), **kw)
        self.procs.append((name, p))
        return p

    def stop(self):
        for _, p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 6
        for name, p in self.procs:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log("compare: %s did not stop in time: SIGKILL" % name)
                p.kill()
                p.wait()
        self.procs = []


class Upstream:
    def __init__(self, procs):
        self.port = free_port()
        procs.start("upstream", [sys.executable,
                                 "test/integration/fake_upstream.py",
                                 "--port", str(self.port)], role="load")
        url = self.url
        deadline = time.monotonic() + 10
        while http_get(url)[0] != 200:
            if time.monotonic() > deadline:
                raise RuntimeError("the fake upstream did not start")
            time.sleep(0.1)

    @property
    def url(self):
        return "http://127.0.0.1:%d%s" % (self.port, TICK)


class OneProcess:
    """A server that is one process, streaming at /stream on `port`."""
    path = "/stream"

    def __init__(self, procs, name, argv, port):
        self.port = port
        self.proc = procs.start(name, argv)
        if not first_event(self.port, self.path, 20):
            raise RuntimeError("%s streams nothing (see its log)" % name)

    def pids(self):
        return [self.proc.pid]

    def alive(self):
        return self.proc.poll() is None


class Btcstream(OneProcess):
    def __init__(self, procs, upstream, interval, binary, args):
        port = free_port()
        super().__init__(procs, "btcstream", [
            binary, "--listen", "127.0.0.1:%d" % port,
            "--upstream-url", upstream.url, "--interval", interval] + args,
            port)


class Floor(OneProcess):
    """floor_server: one write per socket per event and nothing else; the
    kernel's share of the work (see floor_server.cpp). One thread unless
    args say `--threads T`."""

    def __init__(self, procs, interval, args=()):
        binary = os.path.join(ROOT, "build/test/bench/floor_server")
        if not os.access(binary, os.X_OK):
            raise RuntimeError("no %s: meson compile -C build" % binary)
        port = free_port()
        super().__init__(procs, "floor", [
            binary, "--port", str(port), "--interval-ms",
            str(int(parse_seconds(interval) * 1000))] + list(args), port)


class Nchan:
    path = "/stream"

    def __init__(self, procs, upstream, interval, workers=2):
        if not (shutil.which("nginx") and os.path.exists(NCHAN_MODULE)):
            raise RuntimeError("nginx + nchan missing: apt-get install nginx "
                               "libnginx-mod-nchan")
        self.port = free_port()
        work = tempfile.mkdtemp(prefix="nchan.", dir=procs.work)
        os.chmod(work, 0o755)  # the workers run as nobody
        os.makedirs(os.path.join(work, "tmp"))
        with open(os.path.join(ROOT, "test/bench/nchan/nginx.conf.in")) as f:
            conf = f.read()
        conf = conf.replace("@PORT@", str(self.port)).replace(
            "@WORKERS@", str(workers)).replace("@WORKDIR@", work)
        with open(os.path.join(work, "nginx.conf"), "w") as f:
            f.write(conf)
        self.master = procs.start("nginx", [
            "nginx", "-p", work, "-c", os.path.join(work, "nginx.conf"),
            "-e", os.path.join(work, "error.log"), "-g", "daemon off;"])
        deadline = time.monotonic() + 10
        status = "http://127.0.0.1:%d/nchan_status" % self.port
        while http_get(status)[0] != 200:
            if time.monotonic() > deadline or self.master.poll() is not None:
                raise RuntimeError("nginx did not start (%s)" % work)
            time.sleep(0.1)
        seconds = parse_seconds(interval)
        procs.start("publisher", [
            sys.executable, "test/bench/nchan/publisher.py",
            "--upstream", upstream.url, "--interval", str(seconds),
            "--publish", "http://127.0.0.1:%d/pub" % self.port],
            role="load")
        if not first_event(self.port, self.path, 20):
            raise RuntimeError("nchan streams nothing (%s)" % work)

    def pids(self):
        return [self.master.pid] + children(self.master.pid)

    def alive(self):
        return self.master.poll() is None and len(self.pids()) > 1


def parse_seconds(text):
    for unit, f in (("ms", 1e-3), ("s", 1.0)):
        if text.endswith(unit):
            return float(text[:-len(unit)]) * f
    return float(text)


def sse_load_binary():
    path = os.path.join(ROOT, "build/test/bench/sse_load")
    if not os.access(path, os.X_OK):
        raise RuntimeError("no %s: meson compile -C build" % path)
    return path


def run_load(work, server, clients, events, processes=1, rate=2000,
             extra=(), duration=None, probe=None, ports=None,
             sample_server=True, interrupt_after_probe=False):
    """Runs sse_load (in `processes` processes, clients split evenly, each
    on its own source addresses) and returns the merged numbers.
    `ports`: one port per process (several balancers) instead of
    server.port; `sample_server`: pass --server-pid (not when the server's
    processes are restarted during the run); `interrupt_after_probe`: the
    probe drives the run (restarts, chaos), and once it returns the load
    processes get SIGINT and report."""
    per = [clients // processes + (i < clients % processes)
           for i in range(processes)]
    sources = 8
    start_at = int(time.time() * 1000) + 1500
    duration = duration or (clients / rate + events * 2 + 30)
    pids = ",".join(str(p) for p in server.pids())
    runs = []
    for i, n in enumerate(per):
        port = ports[i] if ports else server.port
        argv = [sse_load_binary(), "--port", str(port), "--path",
                server.path, "--clients", str(n),
                "--rate", str(rate / processes), "--sources", str(sources),
                "--source-base", str(1 + i * sources),
                "--events", str(events), "--duration", str(duration),
                "--start-at", str(start_at),
                "--ready-file", os.path.join(work, "ready.%d" % i)]
        if i == 0 and sample_server:  # one sampler of the server is enough
            argv += ["--server-pid", pids]
        argv += list(extra)
        out = open(os.path.join(work, "sse_load.%d.out" % i), "w+")
        runs.append((subprocess.Popen(argv, stdout=out,
                                      stderr=subprocess.STDOUT,
                                      **pinned("load")), out))
        check_pinned([runs[-1][0].pid], "load")
    probes = []
    if probe:
        # Once every process is connected: the probe (health, metrics)
        # runs while all clients are held.
        deadline = time.monotonic() + duration
        while not all(os.path.exists(os.path.join(work, "ready.%d" % i))
                      for i in range(processes)):
            if time.monotonic() > deadline or \
                    any(p.poll() is not None for p, _ in runs):
                break
            time.sleep(0.2)
        probes.append(probe())
        if interrupt_after_probe:
            for p, _ in runs:
                if p.poll() is None:
                    p.send_signal(signal.SIGINT)
    results = []
    for p, out in runs:
        p.wait(duration + 60)
        out.seek(0)
        text = out.read()
        lines = [l for l in text.splitlines() if l.startswith("{")]
        if not lines:
            raise RuntimeError("sse_load printed no result:\n" + text[-2000:])
        results.append(json.loads(lines[-1]))
        if "WARNING" in text:
            log("compare: " + [l for l in text.splitlines()
                               if "WARNING" in l][0])
        for l in text.splitlines():  # SSE_LOAD_SPREADS=1
            if l.startswith("sse_load: update "):
                log("compare: " + l)
    merged = merge(results)
    if probes:
        merged["probe"] = probes[0]
    # Read as the clients have just closed: a tracked connection stays in
    # the table for minutes after (TIME_WAIT).
    merged["conntrack_entries"] = conntrack_entries(
        ports or [server.port])
    if merged["conntrack_entries"]:
        log("compare: connection tracking is on (%d of this run's "
            "connections tracked): the kernel's share includes it" %
            merged["conntrack_entries"])
    return merged


def conntrack_entries(ports):
    """How many connections to `ports` netfilter tracks, or None without
    conntrack. It tracks nothing until a rule or a NAT table needs it: here
    the container suite's podman turns it on (NAT rules) until the next
    boot, and then every server's kernel time includes it (~3 %,
    docs/performance.md). Each run has its own ports, so earlier runs'
    entries do not count."""
    wanted = {int(p) for p in ports}
    try:
        n = 0
        with open("/proc/net/nf_conntrack") as f:
            for line in f:
                at = line.find(" dport=")  # the first: the original direction
                if at >= 0 and int(line[at + 7:line.index(" ", at + 7)]) \
                        in wanted:
                    n += 1
        return n
    except (OSError, ValueError):
        return None


def merge(results):
    """One result from several sse_load processes: counts add up; latency
    and spread percentiles are the worst process's (conservative); server
    numbers are from the process that sampled it, per event over all."""
    m = dict(results[0])
    add = [k for k, v in m.items() if isinstance(v, (int, float))
           and k.split("_")[0] in ("connect", "errors", "reconnect", "stall",
                                   "churn") and k != "connect_seconds"]
    for r in results[1:]:
        for k in add:
            m[k] = (m[k] or 0) + (r.get(k) or 0)
        for k in ("events_in_phase", "events_missing", "order_duplicates",
                  "order_out_of_order", "events_replayed"):
            m[k] = (m.get(k) or 0) + (r.get(k) or 0)
        for k in ("latency_ms_p50", "latency_ms_p90", "latency_ms_p99",
                  "latency_ms_max", "fanout_ms_p50", "fanout_ms_max",
                  "client_event_cpu_pct", "connect_seconds"):
            if r.get(k) is not None:
                m[k] = max(m.get(k) or 0, r[k])
    # Each process's fewest receivers of an update, over all processes.
    m["events_receivers_min"] = sum(x.get("events_receivers_min") or 0
                                    for x in results)
    if len(results) > 1 and m.get("server_cpu_s") is not None:
        m["server_us_per_event"] = m["server_cpu_s"] * 1e6 / max(
            1, m["events_in_phase"])
        if m.get("server_sys_s") is not None:
            m["server_sys_us_per_event"] = m["server_sys_s"] * 1e6 / max(
                1, m["events_in_phase"])
        for k in ("sleeps", "preemptions"):
            if m.get("server_" + k) is not None:
                m["server_%s_per_event" % k] = m["server_" + k] / max(
                    1, m["events_in_phase"])
        opened = m["connect_open_at_end"] or 1
        if m.get("server_rss_kb_connected") and m.get("server_rss_kb_start"):
            m["server_bytes_per_client"] = round(
                (m["server_rss_kb_connected"] - m["server_rss_kb_start"])
                * 1024 / opened)
    m["processes"] = len(results)
    m["connect_errors"] = sum(m.get("errors_" + k) or 0 for k in
                              ("refused", "timeout", "reset", "status",
                               "other"))
    m["order_bad"] = (m.get("order_duplicates") or 0) + \
        (m.get("order_out_of_order") or 0)
    if m.get("server_rss_kb_end"):
        m["server_rss_mb_end"] = m["server_rss_kb_end"] / 1024
    return m


def fmt(v, f):
    return "-" if v is None else f.format(v)


def table(title, rows):
    print("\n## " + title)
    head = ["run"] + [c[1] for c in COLUMNS]
    body = [[name] + [fmt(r.get(k), f) for k, _, f in COLUMNS]
            for name, r in rows]
    widths = [max(len(x[i]) for x in [head] + body) for i in range(len(head))]
    for line in [head] + body:
        print("  ".join(x.rjust(w) for x, w in zip(line, widths)))
    sys.stdout.flush()


def ratios(ours, theirs):
    out = {}
    for k in RATIOS:
        a, b = ours.get(k), theirs.get(k)
        out[k] = None if a is None or not b else a / b
    print("ratio btcstream / nchan: " + "  ".join(
        "%s %s" % (k, fmt(v, "{:.2f}")) for k, v in out.items()))
    return out


# -- cluster mode: Redis, several nodes, HAProxy, reference clients ---------

INTEGRATION = os.path.join(ROOT, "test", "integration")
ADMIN_LINE = re.compile(rb"admin port \(metrics, health\) on "
                        rb"127\.0\.0\.1:(\d+)")


def integration_module(name, work):
    """test/integration's RedisServer / HAProxy helpers, logging into
    `work` (they take their log directory from the environment)."""
    os.environ["BTCSTREAM_TEST_LOGDIR"] = work
    if INTEGRATION not in sys.path:
        sys.path.insert(0, INTEGRATION)
    return __import__(name)


def proc_cpu_s(pids):
    """utime + stime of the pids, in seconds (gone pids count 0)."""
    total = 0
    tick = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return total / tick


class Node:
    """One btcstream process in cluster mode, restartable on its port.
    Each start is a new incarnation with its own --node-id (`n1.2`: node
    n1, second start) and log file."""

    def __init__(self, work, name, binary, port, upstream, redis_url,
                 interval="1s", reuse_port=False, extra=()):
        self.work, self.name, self.binary, self.port = work, name, binary, \
            port
        self.upstream, self.redis_url, self.interval = upstream, \
            redis_url, interval
        self.reuse_port, self.extra = reuse_port, list(extra)
        self.gen = 0
        self.proc = None
        self.admin_port = None
        self.log_path = None

    @property
    def node_id(self):
        return "%s.%d" % (self.name, self.gen)

    def start(self, timeout=15):
        self.gen += 1
        self.log_path = os.path.join(self.work, "%s.log" % self.node_id)
        argv = [self.binary, "--listen", "127.0.0.1:%d" % self.port,
                "--admin-listen", "127.0.0.1:0",
                "--upstream-url", self.upstream.url,
                "--interval", self.interval, "--redis", self.redis_url,
                "--node-id", self.node_id] + \
            (["--reuse-port"] if self.reuse_port else []) + self.extra
        with open(self.log_path, "wb") as out:
            self.proc = subprocess.Popen(argv, stdout=out,
                                         stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, cwd=ROOT,
                                         **pinned("server"))
        self.admin_port = None
        deadline = time.monotonic() + timeout
        while self.admin_port is None:
            with open(self.log_path, "rb") as f:
                m = ADMIN_LINE.search(f.read())
            if m:
                self.admin_port = int(m.group(1))
            elif self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("%s did not start (see %s)"
                                   % (self.node_id, self.log_path))
            else:
                time.sleep(0.05)
        return self

    @property
    def pid(self):
        return self.proc.pid

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def admin(self, path, timeout=2.0):
        return http_get("http://127.0.0.1:%d%s" % (self.admin_port, path),
                        timeout=timeout)

    def ready(self):
        return self.running() and self.admin("/readyz")[0] == 200

    def wait_ready(self, timeout=30):
        deadline = time.monotonic() + timeout
        while not self.ready():
            if time.monotonic() > deadline or not self.running():
                raise RuntimeError("%s not ready within %ds (see %s)"
                                   % (self.node_id, timeout, self.log_path))
            time.sleep(0.1)

    def metric(self, name, timeout=2.0):
        return metric(self.admin("/metrics", timeout)[1], name)

    def is_leader(self):
        return self.running() and \
            self.metric("btcstream_cluster_leader") == 1

    def signal(self, sig):
        if self.running():
            self.proc.send_signal(sig)

    def terminate(self, timeout=15):
        """SIGTERM and wait for the exit (SIGCONT first: a paused process
        cannot exit); SIGKILL after `timeout`. Returns the exit status."""
        if self.running():
            self.proc.send_signal(signal.SIGCONT)
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log("compare: %s did not exit in %ds: SIGKILL"
                    % (self.node_id, timeout))
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode if self.proc else None

    def kill9(self):
        if self.running():
            self.proc.kill()
            self.proc.wait()


class Cluster:
    """A local redis-server (appendonly yes, appendfsync always, as
    test/integration/redis_server.py runs it) and `n` btcstream nodes in
    cluster mode: all on one port with --reuse-port (the kernel spreads
    connections), or each on its own port (behind a balancer)."""
    path = "/stream"

    def __init__(self, work, upstream, binary, n=3, interval="1s",
                 reuse_port=True, extra=()):
        rs = integration_module("redis_server", work)
        self.work = work
        self.redis = rs.RedisServer(name="bench").start()
        shared = free_port() if reuse_port else None
        self.nodes = []
        try:
            for i in range(n):
                node = Node(work, "n%d" % (i + 1), binary,
                            shared or free_port(), upstream, self.redis.url,
                            interval, reuse_port, extra)
                self.nodes.append(node)
                node.start()
            for node in self.nodes:
                node.wait_ready(30)
            self.port = shared or self.nodes[0].port
            if not first_event(self.port, self.path, 20):
                raise RuntimeError("the cluster streams nothing (%s)" % work)
        except Exception:
            self.stop()
            raise

    def pids(self):
        return [n.pid for n in self.nodes if n.running()]

    def alive(self):
        return all(n.running() for n in self.nodes)

    def leader(self):
        for n in self.nodes:
            try:
                if n.is_leader():
                    return n
            except Exception:  # noqa: BLE001 - a paused or dying node
                pass
        return None

    def log_entries(self):
        """The cluster's log in Redis: [(event id, ts ms, prev id)]."""
        out = []
        for entry_id, fields in self.redis.command(
                "XRANGE", "btcstream:log", "-", "+", timeout=10):
            f = dict(zip(fields[::2], fields[1::2]))
            out.append((int(entry_id.split(b"-")[0]), int(f[b"ts"]),
                        int(f[b"prev"])))
        return out

    def stop(self):
        for n in self.nodes:
            n.terminate(10)
        self.redis.stop()


class Balancers:
    """`count` HAProxy processes with docs/deploy/haproxy.cfg's settings
    (test/integration/haproxy.py rewrites it for loopback) in front of the
    same nodes, each with global maxconn `maxconn`. One HAProxy process
    holds two descriptors per client and here at most 20,000 in all, so
    10,000 clients need two of them."""

    def __init__(self, work, node_ports, count=1, maxconn=9000):
        hp = integration_module("haproxy", work)
        with open(hp.documented_config_path()) as f:
            text = f.read()
        if "maxconn 9000" not in text:
            raise RuntimeError("docs/deploy/haproxy.cfg: no `maxconn 9000`")
        text = text.replace("maxconn 9000", "maxconn %d" % maxconn, 1)
        self.procs = []
        try:
            for i in range(count):
                self.procs.append(hp.HAProxy(node_ports, name="bench%d" % i,
                                             config_text=text).start())
        except Exception:
            self.stop()
            raise

    @property
    def ports(self):
        return [p.port for p in self.procs]

    def pids(self):
        return [p.proc.pid for p in self.procs]

    def wait_up(self, name, timeout=30):
        for p in self.procs:
            p.wait_states({name: "UP"}, timeout)

    def stop(self):
        for p in self.procs:
            p.stop()


class RefClient(threading.Thread):
    """A reference SSE client in Python that keeps every frame: ids, `gap`
    events (sse_load ignores those) and the times of each stream's end,
    reconnect attempt, 200 head and first event. It reconnects like
    EventSource (after the last `retry:`, 3 s if none) with Last-Event-ID,
    and also after a non-200 answer (counted in `statuses`)."""

    def __init__(self, port, path="/stream"):
        super().__init__(daemon=True)
        self.port, self.path = port, path
        self.events = []  # (wall time, "id", key, raw) | (t, "gap", data)
        self.streams = []  # {attempt, head, first, end, status, resume}
        self.statuses = {}
        self.errors = {}
        self.stopping = threading.Event()
        self.sock = None

    def stop(self):
        self.stopping.set()
        s = self.sock
        if s is not None:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def run(self):
        last_raw, retry = None, 3.0
        while not self.stopping.is_set():
            st = {"attempt": time.time(), "resume": last_raw is not None}
            self.streams.append(st)
            try:
                last_raw, retry = self.stream(st, last_raw, retry)
            except Exception as e:  # noqa: BLE001 - every end is counted
                kind = type(e).__name__
                self.errors[kind] = self.errors.get(kind, 0) + 1
            finally:
                st["end"] = time.time()
                s, self.sock = self.sock, None
                if s is not None:
                    s.close()
            self.stopping.wait(min(retry, 10.0))

    def stream(self, st, last_raw, retry):
        s = socket.create_connection(("127.0.0.1", self.port), 5)
        self.sock = s
        if self.stopping.is_set():
            return last_raw, retry
        s.settimeout(45)  # heartbeats come every 15 s
        req = "GET %s HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n" \
            % self.path
        if last_raw:
            req += "Last-Event-ID: %s\r\n" % last_raw
        s.sendall((req + "\r\n").encode())
        f = s.makefile("rb")
        status = int(f.readline().split()[1])
        chunked = False
        while True:
            line = f.readline()
            if line in (b"\r\n", b""):
                break
            if line.lower().startswith(b"transfer-encoding:") and \
                    b"chunked" in line.lower():
                chunked = True
        st["status"] = status
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if status != 200:
            return last_raw, retry
        st["head"] = time.time()
        buf = b""
        ev = {}
        for data in self.body(f, chunked):
            buf += data
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                line = line.rstrip(b"\r").decode("utf-8", "replace")
                if line == "":
                    if "id" in ev or ev.get("event") == "gap":
                        now = time.time()
                        st.setdefault("first", now)
                        if ev.get("event") == "gap":
                            self.events.append((now, "gap", ev.get("data")))
                        else:
                            self.events.append((now, "id", event_key(
                                ev["id"]), ev["id"]))
                            last_raw = ev["id"]
                    ev = {}
                    continue
                if line.startswith(":"):
                    continue
                field, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if field == "retry" and value.isdigit():
                    retry = int(value) / 1000.0
                elif field == "data":
                    ev["data"] = ev["data"] + "\n" + value \
                        if "data" in ev else value
                elif field in ("id", "event"):
                    ev[field] = value
        st["eof"] = True
        return last_raw, retry

    @staticmethod
    def body(f, chunked):
        if not chunked:
            while True:
                data = f.read1(65536)
                if not data:
                    return
                yield data
        while True:
            line = f.readline()
            if not line:
                return
            size = int(line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                return
            data = f.read(size)
            f.readline()
            yield data


def stop_all(refs, balancers, cluster, procs):
    """Stops a cluster run's pieces, clients first; any may be None."""
    for ref in refs:
        ref.stop()
    for part in (balancers, cluster, procs):
        if part:
            part.stop()


def event_key(raw):
    try:
        return int(raw)
    except ValueError:
        return None


def percentile(values, q):
    if not values:
        return None
    v = sorted(values)
    return v[min(len(v) - 1, int(round(q / 100.0 * (len(v) - 1))))]


def check_refs(refs, log_entries, since=None):
    """Each reference client against the cluster's log in Redis: every id
    of the log between its first and its last id must have arrived exactly
    once, or lie inside a `gap` event's range (requested < id < oldest).
    Also the reconnect times of resumed streams."""
    ids = [e[0] for e in log_entries]
    out = {"clients": len(refs), "events": 0, "duplicates": 0,
           "out_of_order": 0, "missing_flagged": 0, "missing_unflagged": 0,
           "gap_events": 0, "resumes": 0, "statuses": {}, "errors": {},
           "longest_without_update_s": 0.0}
    to_head, attempt_to_head, to_first = [], [], []
    for r in refs:
        got, gaps, last, last_t = set(), [], None, None
        for ev in r.events:
            if ev[1] == "gap":
                out["gap_events"] += 1
                try:
                    g = json.loads(ev[2])
                    gaps.append((int(g["requested"] or 0), int(g["oldest"])))
                except (ValueError, TypeError, KeyError):
                    gaps.append((0, 1 << 62))
                continue
            key = ev[2]
            out["events"] += 1
            if last is not None and key <= last:
                out["duplicates" if key == last or key in got
                    else "out_of_order"] += 1
                continue
            if last_t is not None:
                out["longest_without_update_s"] = max(
                    out["longest_without_update_s"], ev[0] - last_t)
            got.add(key)
            last, last_t = key, ev[0]
        if got:
            lo, hi = min(got), max(got)
            for i in ids:
                if lo < i < hi and i not in got:
                    if any(a < i < b for a, b in gaps):
                        out["missing_flagged"] += 1
                    else:
                        out["missing_unflagged"] += 1
        for k, v in r.statuses.items():
            out["statuses"][str(k)] = out["statuses"].get(str(k), 0) + v
        for k, v in r.errors.items():
            out["errors"][k] = out["errors"].get(k, 0) + v
        prev_end = None  # the end of the last stream that had a 200
        for st in r.streams:
            if "head" not in st:
                continue
            if st["resume"] and prev_end is not None:
                out["resumes"] += 1
                to_head.append(st["head"] - prev_end)
                attempt_to_head.append(st["head"] - st["attempt"])
                if "first" in st:
                    to_first.append(st["first"] - prev_end)
            prev_end = st.get("end")
    for name, vals in (("reconnect_end_to_head_s", to_head),
                       ("reconnect_attempt_to_head_s", attempt_to_head),
                       ("reconnect_end_to_first_event_s", to_first)):
        out[name] = {"n": len(vals), "p50": percentile(vals, 50),
                     "p99": percentile(vals, 99),
                     "max": max(vals) if vals else None}
    return out


def log_pause(entries, t0_ms=None):
    """The longest time between two consecutive updates in the log (by
    their retrieval time `ts`), from t0_ms on; and whether each entry's
    `prev` is the entry before it (the log has no hole)."""
    longest, at, holes, pauses = 0, None, 0, []
    for a, b in zip(entries, entries[1:]):
        if b[2] != a[0]:
            holes += 1
        if t0_ms is not None and a[1] < t0_ms:
            continue
        if b[1] - a[1] > 2000:  # (seconds into the run, length)
            pauses.append((round((a[1] - (t0_ms or 0)) / 1000.0, 1),
                           (b[1] - a[1]) / 1000.0))
        if b[1] - a[1] > longest:
            longest, at = b[1] - a[1], a[1]
    return {"longest_s": longest / 1000.0, "after_ts_ms": at,
            "log_holes": holes, "entries": len(entries),
            "pauses_over_2s": pauses}


class Bench:
    def __init__(self, args):
        self.args = args
        self.results = {}

    def server(self, kind, procs, upstream, interval, args=()):
        if kind == "nchan":
            return Nchan(procs, upstream, interval,
                         workers=self.args.nchan_workers)
        if kind == "floor":
            return Floor(procs, interval, args)
        return Btcstream(procs, upstream, interval, self.args.btcstream,
                         self.args.btcstream_args.split() + list(args))

    def one(self, label, kind, clients, events, interval="1s", args=(),
            **load):
        """One server, one load; returns the merged result."""
        work = tempfile.mkdtemp(prefix="btcstream-compare.")
        procs = Procs(work)
        try:
            up = Upstream(procs)
            srv = self.server(kind, procs, up, interval, args)
            check_pinned(srv.pids(), "server")
            log("compare: %s: %s on :%d, %d clients" % (label, kind,
                                                         srv.port, clients))
            pace = self.args.pace_ms
            if pace:
                load["extra"] = tuple(load.get("extra", ())) + (
                    "--pace-ms", str(pace))
            r = run_load(work, srv, clients, events, **load)
            r["pace_ms"] = pace
            r["server_alive_at_end"] = srv.alive()
            if kind == "btcstream":
                teardown(srv, r)
                r["metrics_end"] = live_objects(srv.port)
            self.results[label] = r
            shutil.rmtree(work, ignore_errors=True)
            return r
        except Exception:
            log("compare: %s failed; logs kept in %s" % (label, work))
            raise
        finally:
            procs.stop()

    def servers(self):
        return [s for s in ("btcstream", "nchan", "floor")
                if s in self.args.servers.split(",")]

    def fanout(self):
        n, ev = self.args.clients, self.args.events
        rows = [(s, self.one("fanout/" + s, s, n, ev))
                for s in self.servers()]
        table("fan-out: %d clients, 1 update/s, %d updates" % (n, ev), rows)
        got = dict(rows)
        if "btcstream" in got and "nchan" in got:
            self.results["fanout/ratio"] = ratios(got["btcstream"],
                                                  got["nchan"])

    def peers(self):
        """The servers that queue and drop (the floor does neither)."""
        return [s for s in self.servers() if s != "floor"]

    def stalled(self):
        n, ev = self.args.clients, self.args.stall_events
        rows = []
        for s in self.peers():
            base = self.results.get("fanout/" + s) or self.one(
                "fanout/" + s, s, n, self.args.events)
            r = self.one("stalled/" + s, s, n, ev,
                         args=("--stall-timeout", "10s"),
                         extra=("--stall", "0.1"))
            r["p99_vs_unstalled"] = r["latency_ms_p99"] / \
                base["latency_ms_p99"]
            rows += [(s, base), (s + " 10% stalled", r)]
        table("stalled: %d clients, 1 update/s, 10 %% never read "
              "(btcstream --stall-timeout 10s)" % n, rows)
        stall_report(rows)

    def burst(self):
        n, ev = 1000, self.args.burst_events
        rows = []
        for s in self.peers():
            a = self.one("burst/" + s, s, n, ev, interval="5ms")
            b = self.one("burst-stalled/" + s, s, n, ev, interval="5ms",
                         extra=("--stall", "0.1"))
            b["p99_vs_unstalled"] = b["latency_ms_p99"] / a["latency_ms_p99"]
            rows += [(s, a), (s + " 10% stalled", b)]
        table("burst: 1,000 clients, 200 updates/s, %d updates" % ev, rows)
        stall_report(rows)

    def churn(self):
        for s in self.peers():
            r = self.churn_run(s)
            print("\n## churn %s: 5,000 steady clients, 2 rounds of 1,000 "
                  "connects/s for %d s\n%s" % (s, self.args.churn_seconds,
                                               json.dumps(r, indent=1)))

    def churn_run(self, kind):
        """5,000 steady clients; two rounds of 1,000 connects/s for 60 s on
        top, with the live objects and RSS read after each round."""
        work = tempfile.mkdtemp(prefix="btcstream-compare.")
        procs = Procs(work)
        out = {}
        try:
            up = Upstream(procs)
            srv = self.server(kind, procs, up, "1s")
            secs = self.args.churn_seconds
            steady = subprocess.Popen([
                sse_load_binary(), "--port", str(srv.port), "--path",
                srv.path, "--clients", "5000", "--rate", "2000",
                "--sources", "8", "--source-base", "1", "--events",
                "100000", "--duration", str(2 * secs + 60),
                "--ready-file", os.path.join(work, "steady.ready")],
                stdout=open(os.path.join(work, "steady.out"), "w"),
                stderr=subprocess.STDOUT, **pinned("load"))
            while not os.path.exists(os.path.join(work, "steady.ready")):
                if steady.poll() is not None:
                    raise RuntimeError("the steady clients ended early")
                time.sleep(0.2)
            # The baseline: the steady clients only.
            base = live_objects(srv.port) if kind == "btcstream" else None
            rss = [rss_kb(srv.pids())]
            rounds = []
            for k in range(2):
                # The churn clients: one process that holds 1 client, plus
                # 1,000 connects/s for `secs` seconds.
                r = run_load(work, srv, 1, 1, rate=1000,
                             extra=("--churn", "1000", "--churn-for",
                                    str(secs)),
                             duration=secs + 30)
                time.sleep(3)  # closes settle
                rss.append(rss_kb(srv.pids()))
                objs = live_objects(srv.port) if kind == "btcstream" else None
                rounds.append({
                    "churn_opened": r["churn_opened"],
                    "churn_ok": r["churn_ok"],
                    "churn_errors": sum(r.get("churn_" + x) or 0 for x in (
                        "refused", "timeout", "reset", "status", "other")),
                    "churn_skipped": r.get("churn_skipped"),
                    "rss_kb_after": rss[-1], "live_objects": objs})
            steady.send_signal(signal.SIGINT)
            steady.wait(60)
            with open(os.path.join(work, "steady.out")) as f:
                st = json.loads([l for l in f if l.startswith("{")][-1])
            procs.stop()  # an ASan build checks for leaks as it exits
            out = {"rounds": rounds, "rss_kb_before": rss[0],
                   "second_round_rss_growth_pct":
                       100.0 * (rss[2] - rss[1]) / rss[1],
                   "live_objects_before": base,
                   "steady_dropped": st["errors_dropped"],
                   "steady_missing": st["events_missing"],
                   "steady_order_bad": st["order_duplicates"]
                   + st["order_out_of_order"],
                   "steady_connect_errors": sum(st["errors_" + x] for x in (
                       "refused", "timeout", "reset", "status", "other")),
                   "sanitizer_reports": sanitizer_reports(
                       os.path.join(work, "btcstream.log"))
                   if kind == "btcstream" else []}
            self.results["churn/" + kind] = out
            shutil.rmtree(work, ignore_errors=True)
            return out
        except Exception:
            log("compare: churn failed; logs kept in %s" % work)
            raise
        finally:
            procs.stop()

    def limit(self):
        """One btcstream at --max-clients = open-files limit - 100, filled
        by two load processes; /healthz, /metrics and the upstream polls
        must keep working while it is full."""
        n = FD_LIMIT - 100
        probe_port = {}

        def probe():
            port = probe_port["port"]
            health = http_get("http://127.0.0.1:%d/healthz" % port)[0]
            status, body = http_get("http://127.0.0.1:%d/metrics" % port)
            clients = metric(body, "btcstream_sse_clients")
            published = metric(body, "btcstream_events_published_total")
            time.sleep(3)
            later = metric(http_get("http://127.0.0.1:%d/metrics" % port)[1],
                           "btcstream_events_published_total")
            beyond, _ = http_get("http://127.0.0.1:%d/stream" % port,
                                 timeout=3)
            return {"healthz": health, "metrics": status,
                    "sse_clients": clients,
                    "published_during_3s": (later or 0) - (published or 0),
                    "stream_beyond_limit": beyond}

        work = tempfile.mkdtemp(prefix="btcstream-compare.")
        procs = Procs(work)
        try:
            up = Upstream(procs)
            srv = self.server("btcstream", procs, up, "1s",
                              ("--max-clients", str(n)))
            probe_port["port"] = srv.port
            r = run_load(work, srv, n, self.args.events, processes=2,
                         probe=probe)
            r["server_alive_at_end"] = srv.alive()
            self.results["limit/btcstream"] = r
            table("at the limit: --max-clients %d, two load processes" % n,
                  [("btcstream", r)])
            print("probe while full: " + json.dumps(r.get("probe")))
            shutil.rmtree(work, ignore_errors=True)
        finally:
            procs.stop()

    def soak(self):
        """One btcstream at --max-clients (open files - 100) for
        --soak-seconds at 1 update/s: two load processes hold all but 50
        clients, and 1 % of the limit a minute connect on top (a tab that
        opens, gets its first event and closes). RSS and open descriptors
        are sampled every 10 s; their slope over the event phase must be
        flat, and every steady client must get every update."""
        n = self.args.soak_clients
        secs = self.args.soak_seconds
        churn = n * 0.01 / 60  # connects per second, over both processes
        work = tempfile.mkdtemp(prefix="btcstream-compare.")
        procs = Procs(work)
        samples = []
        stop = threading.Event()
        try:
            up = Upstream(procs)
            srv = self.server("btcstream", procs, up, "1s",
                              ("--max-clients", str(n)))
            pid = srv.pids()[0]

            ready_at = []

            def sample():
                while not stop.wait(10):
                    if not all(os.path.exists(os.path.join(
                            work, "ready.%d" % i)) for i in range(2)):
                        continue  # connecting: not the steady state yet
                    now = time.monotonic()
                    if not ready_at:
                        ready_at.append(now)
                    if now > ready_at[0] + secs - 20:
                        return  # the load ends and closes its clients
                    try:
                        fds = len(os.listdir("/proc/%d/fd" % pid))
                    except OSError:
                        return
                    samples.append((now, rss_kb([pid]), fds))

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            r = run_load(work, srv, n - 50, secs, processes=2,
                         extra=("--churn", "%.3f" % (churn / 2),
                                "--churn-for", str(secs)),
                         duration=secs + 180)
            stop.set()
            sampler.join(15)
            r["server_alive_at_end"] = srv.alive()
            r["samples"] = len(samples)
            if len(samples) >= 3:
                t0 = samples[0][0]
                xs = [(t - t0) / 60.0 for t, _, _ in samples]
                r["rss_kb_first_last"] = (samples[0][1], samples[-1][1])
                r["rss_kb_per_min"] = slope(xs, [s[1] for s in samples])
                r["fds_first_last"] = (samples[0][2], samples[-1][2])
                r["fds_per_min"] = slope(xs, [s[2] for s in samples])
                r["fds_min_max"] = (min(s[2] for s in samples),
                                    max(s[2] for s in samples))
                r["sample_series"] = [(round(x, 2), s[1], s[2])
                                      for x, s in zip(xs, samples)]
            # How long the server takes to stop once the load has gone.
            t_term = time.monotonic()
            srv.proc.send_signal(signal.SIGTERM)
            try:
                r["server_exit_code"] = srv.proc.wait(60)
            except subprocess.TimeoutExpired:
                r["server_exit_code"] = None
            r["server_stop_s"] = round(time.monotonic() - t_term, 2)
            r["sanitizer_reports"] = sanitizer_reports(
                os.path.join(work, "btcstream.log"))
            self.results["soak/btcstream"] = r
            table("soak: %d s at --max-clients %d, %.2f connects/s on top"
                  % (secs, n, churn), [("btcstream", r)])
            print("soak: RSS %s kB (slope %.1f kB/min), open fds %s (slope "
                  "%.2f/min), %d samples" % (
                      r.get("rss_kb_first_last"), r.get("rss_kb_per_min", 0),
                      r.get("fds_first_last"), r.get("fds_per_min", 0),
                      len(samples)))
            print("soak: fds min/max %s; the server stopped %s s after "
                  "SIGTERM, exit code %s" % (
                      r.get("fds_min_max"), r["server_stop_s"],
                      r["server_exit_code"]))
            if r["server_stop_s"] < 10 and not r["sanitizer_reports"]:
                shutil.rmtree(work, ignore_errors=True)
            else:
                log("compare: soak: logs kept in %s" % work)
        finally:
            stop.set()
            procs.stop()

    def cluster(self):
        """Issue 12: 3 btcstream nodes in cluster mode with --reuse-port on
        one port and a local Redis, then nginx + nchan with 3 workers, each
        at --cluster-clients (50,000) from several load processes (at most
        ~19,000 sockets each here), 1 update/s."""
        n, ev = self.args.cluster_clients, self.args.cluster_events
        procs_n = max(3, -(-n // 17000))
        rows = []
        for kind in self.peers():
            work = tempfile.mkdtemp(prefix="btcstream-compare.")
            procs = Procs(work)
            cl = None
            try:
                up = Upstream(procs)
                if kind == "btcstream":
                    cl = Cluster(work, up, self.args.btcstream, n=3,
                                 extra=self.args.btcstream_args.split())
                    srv = cl
                    label = "btcstream x3 (cluster, reuse-port)"
                else:
                    srv = Nchan(procs, up, "1s", workers=3)
                    label = "nginx + nchan, 3 workers"
                log("compare: cluster: %s on :%d, %d clients in %d load "
                    "processes" % (label, srv.port, n, procs_n))
                pids = srv.pids()
                rss0 = rss_kb(pids)
                redis0 = proc_cpu_s([cl.redis.proc.pid]) if cl else None
                held = {}

                def probe():
                    # every load process connected: memory and the spread
                    # over the processes
                    held["rss_kb"] = rss_kb(pids)
                    if cl:
                        held["per_node"] = {
                            nd.node_id: nd.metric("btcstream_sse_clients")
                            for nd in cl.nodes}
                        held["leader"] = getattr(cl.leader(), "node_id",
                                                 None)
                    else:
                        held["per_worker_fds"] = {}
                        for pid in pids[1:]:
                            try:
                                held["per_worker_fds"][pid] = len(
                                    os.listdir("/proc/%d/fd" % pid))
                            except OSError:
                                pass
                    return held

                r = run_load(work, srv, n, ev, processes=procs_n,
                             probe=probe)
                r["server_alive_at_end"] = srv.alive()
                r["server_rss_kb_before"] = rss0
                r["server_rss_kb_all_connected"] = held.get("rss_kb")
                if held.get("rss_kb"):
                    r["server_bytes_per_client_all"] = round(
                        (held["rss_kb"] - rss0) * 1024 /
                        max(1, r["connect_ok"]))
                    # the table's column: measured once all were connected
                    r["server_bytes_per_client"] = \
                        r["server_bytes_per_client_all"]
                if cl:
                    r["redis_cpu_s"] = proc_cpu_s([cl.redis.proc.pid]) - \
                        redis0
                    r["sanitizer_reports"] = sum(
                        (sanitizer_reports(nd.log_path) for nd in cl.nodes),
                        [])
                self.results["cluster/" + kind] = r
                rows.append((label, r))
                print("cluster %s: held %s" % (kind, json.dumps(
                    r.get("probe"))))
                sys.stdout.flush()
                shutil.rmtree(work, ignore_errors=True)
            except Exception:
                log("compare: cluster %s failed; logs kept in %s"
                    % (kind, work))
                raise
            finally:
                if cl:
                    cl.stop()
                procs.stop()
        table("cluster: %d clients, 1 update/s, %d updates, %d load "
              "processes" % (n, ev, procs_n), rows)
        got = dict((k.split()[0], v) for k, v in rows)
        if "btcstream" in got and "nginx" in got:
            self.results["cluster/ratio"] = ratios(got["btcstream"],
                                                   got["nginx"])

    def rolling(self):
        """Issue 12: --rolling-clients (10,000) through HAProxy (two
        processes: each holds 2 descriptors per client, 20,000 at most
        here) to 3 cluster nodes; the nodes are restarted one at a time
        (SIGTERM, exit, start on the same port, /readyz 200 and UP in
        HAProxy, 5 s, next). sse_load resumes with Last-Event-ID; Python
        reference clients record every frame and each reconnect's time."""
        n = self.args.rolling_clients
        work = tempfile.mkdtemp(prefix="btcstream-compare.")
        procs = Procs(work)
        cl = lb = None
        refs = []
        try:
            up = Upstream(procs)
            cl = Cluster(work, up, self.args.btcstream, n=3,
                         reuse_port=False,
                         extra=["--shutdown-grace", "3s"]
                         + self.args.btcstream_args.split())
            lb = Balancers(work, [nd.port for nd in cl.nodes], count=2,
                           maxconn=n // 2 + 1000)
            for nd in cl.nodes:
                lb.wait_up(nd.name, 20)
            timeline = []
            t0 = time.time()

            def note(what):
                timeline.append((round(time.time() - t0, 2), what))
                log("compare: rolling: %7.2f s %s" % (timeline[-1][0], what))

            def restarts():
                note("all %d clients connected" % n)
                refs.extend(RefClient(lb.ports[i % 2]) for i in
                            range(self.args.ref_clients))
                for r in refs:
                    r.start()
                time.sleep(10)
                left = list(cl.nodes)
                while left:
                    nd = left[0]
                    if self.args.leader_last:
                        # followers first (docs/scaling.md: a leader does
                        # not hand over its lease on SIGTERM)
                        nd = next((x for x in left if not x.is_leader()),
                                  left[0])
                    left.remove(nd)
                    was = nd.is_leader()
                    note("SIGTERM %s%s" % (nd.node_id,
                                            " (the leader)" if was else ""))
                    code = nd.terminate(20)
                    note("%s exited with %s" % (nd.node_id, code))
                    nd.start()
                    nd.wait_ready(60)
                    note("%s ready (/readyz 200)" % nd.node_id)
                    lb.wait_up(nd.name, 30)
                    note("%s UP in both balancers" % nd.node_id)
                    time.sleep(5)
                time.sleep(15)  # the last resumes settle
                note("end")
                for r in refs:
                    r.stop()
                return timeline

            r = run_load(work, cl, n, 1000000, processes=2,
                         ports=lb.ports, sample_server=False,
                         extra=("--reconnect", "1", "--last-event-id", "1"),
                         duration=900, probe=restarts,
                         interrupt_after_probe=True)
            for ref in refs:
                ref.join(5)
            entries = cl.log_entries()
            r["timeline"] = timeline
            r["refs"] = check_refs(refs, entries)
            r["log"] = log_pause(entries, int(t0 * 1000))
            r["sanitizer_reports"] = sum(
                (sanitizer_reports(os.path.join(work, f)) for f in
                 os.listdir(work) if f.startswith("n") and
                 f.endswith(".log")), [])
            self.results["rolling/btcstream"] = r
            table("rolling restart: %d clients through HAProxy (2 processes)"
                  ", 3 nodes restarted one at a time" % n,
                  [("btcstream x3", r)])
            print("rolling: reconnects %s, reconnect errors %s, replayed %s, "
                  "missing %s, duplicates %s, out of order %s" % (
                      r.get("errors_reconnects"), {
                          k: r.get("reconnect_" + k) for k in (
                              "refused", "timeout", "reset", "status",
                              "other")}, r.get("events_replayed"),
                      r.get("events_missing"), r.get("order_duplicates"),
                      r.get("order_out_of_order")))
            print("rolling: reference clients " + json.dumps(r["refs"]))
            print("rolling: log " + json.dumps(r["log"]))
            shutil.rmtree(work, ignore_errors=True)
        except Exception:
            log("compare: rolling failed; logs kept in %s" % work)
            raise
        finally:
            stop_all(refs, lb, cl, procs)

    def sweep(self):
        n, ev = self.args.clients, self.args.sweep_events
        rows = []
        for io in (1, 2):
            for actors in (1, 2):
                for policy in self.args.policies.split(","):
                    label = "io %d actor %d %s" % (io, actors, policy)
                    r = self.one("sweep/" + label, "btcstream", n, ev, args=(
                        "--io-threads", str(io), "--actor-threads",
                        str(actors), "--actor-policy", policy))
                    rows.append((label, r))
        table("thread sweep: %d clients, 1 update/s, %d updates" % (n, ev),
              rows)

    def cores(self):
        """Issue 14's targets in one run: btcstream at io 1 / actor 1 and
        at io 2 / actor 2, the floor and nchan, interleaved, 3 rounds; the
        medians and the three ratios the issue asks for. Also the floor
        with its writes split over 2 threads: the p99 that no 2-thread
        server writing once per client beats under this load here; and the
        floor with write(2) instead of send(2), as it was up to run V
        (docs/performance.md): ~0.35 µs more kernel time per write."""
        n, ev = self.args.clients, self.args.sweep_events
        runs = [("btcstream io 1 actor 1", "btcstream",
                 ("--io-threads", "1", "--actor-threads", "1")),
                ("btcstream io 2 actor 2", "btcstream",
                 ("--io-threads", "2", "--actor-threads", "2")),
                ("floor", "floor", ()),
                ("floor 2 threads", "floor", ("--threads", "2")),
                ("floor, write(2)", "floor", ("--syscall", "write")),
                ("nchan", "nchan", ())]
        got = self.interleaved("cores", runs, n, ev)
        med = medians(got)
        pace = self.args.pace_ms
        table("cores: %d clients, 1 update/s, %d updates, median of %d%s" % (
            n, ev, self.args.rounds,
            ", the load client paced every %g ms" % pace if pace else ""),
            list(med.items()))
        two = med["btcstream io 2 actor 2"]
        cpu = "server_us_per_event"

        def ratio(a, b):
            # A short run can read 0 ticks of CPU: no ratio (null in the
            # JSON), not a crash.
            return a / b if b else None

        def shown(v):
            return "n/a" if v is None else "%.3f" % v

        def targets(at):
            # The three ratios, from one result per label.
            b1, b2 = (at["btcstream io 1 actor 1"],
                      at["btcstream io 2 actor 2"])
            return {
                "cpu_io2_vs_io1": ratio(b2[cpu], b1[cpu]),
                "cpu_io2_vs_floor": ratio(b2[cpu], at["floor"][cpu]),
                "p99_io2_vs_nchan": ratio(b2["latency_ms_p99"],
                                          at["nchan"]["latency_ms_p99"]),
            }

        out = targets(med)
        bound = ratio(med["floor 2 threads"]["latency_ms_p99"],
                      med["nchan"]["latency_ms_p99"])
        limits = {"cpu_io2_vs_io1": 1.05, "cpu_io2_vs_floor": 1.1,
                  "p99_io2_vs_nchan": 0.5}
        for k, v in out.items():
            print("cores: %-18s %s (target <= %.2f: %s)" % (
                k, shown(v), limits[k],
                "met" if v is not None and v <= limits[k] else "NOT met"))
        print("cores: p99 of the 2-thread floor / nchan %s (the bound of "
              "p99_io2_vs_nchan on this machine)" % shown(bound))
        # The same ratios within each round, whose runs are minutes apart:
        # how far this machine's drift moves them (docs/performance.md).
        rounds = [targets({label: rs[rnd] for label, rs in got.items()})
                  for rnd in range(self.args.rounds)]
        per_round = {k: [r[k] for r in rounds] for k in out}
        for k, vs in per_round.items():
            print("cores: %-18s per round %s" % (
                k, " / ".join(shown(v) for v in vs)))
        # Whether a miss was the hour or the CPU (docs/performance.md, "What
        # the p99 target asks of a 2-core machine"): a 2-thread server's p99
        # is r x the time the cores need for one fan-out, its writes and the
        # load client's reads; r moves with the hour, for the floor too.
        cores = len(os.sched_getaffinity(0))
        r = {label: [fanout_r(res, n, cores) for res in got[label]]
             for label in ("btcstream io 2 actor 2", "floor 2 threads")}
        for label, vs in r.items():
            print("cores: r of %-22s per round %s (p99 / (N x (server + "
                  "load client CPU per event) / %d cores))" % (
                      label, " / ".join(shown(v) for v in vs), cores))
        out["r_per_round"] = r
        out["p99_floor2_vs_nchan"] = bound
        out["cpu_io2_vs_floor_write"] = ratio(two[cpu],
                                              med["floor, write(2)"][cpu])
        out["cpu_io2_vs_floor2"] = ratio(two[cpu],
                                         med["floor 2 threads"][cpu])
        for label, m in med.items():
            if "server_sleeps_per_event" in m:
                print("cores: %-22s context switches per delivered event: "
                      "%.3f sleeping, %.3f preempted; the load client "
                      "slept %s" % (
                          label, m["server_sleeps_per_event"],
                          m["server_preemptions_per_event"],
                          shown(m.get("client_sleeps_per_event"))))
        tracked = sum(1 for rs in got.values() for r in rs
                      if r.get("conntrack_entries"))
        print("cores: connection tracking on in %d of %d runs" % (
            tracked, sum(len(rs) for rs in got.values())))
        out["runs_with_conntrack"] = tracked
        print("cores: CPU io 2/2 / the floor with write(2) %s (the floor "
              "up to run V), / the 2-thread floor %s" % (
                  shown(out["cpu_io2_vs_floor_write"]),
                  shown(out["cpu_io2_vs_floor2"])))
        out["per_round"] = per_round
        self.results["cores/medians"] = med
        self.results["cores/ratios"] = out

    def interleaved(self, scenario, runs, clients, events):
        """Each of runs (label, kind, args) once per round, in turn, so that
        the machine's drift meets them all alike: {label: [result, ...]}."""
        got = {label: [] for label, _, _ in runs}
        for rnd in range(self.args.rounds):
            for label, kind, args in runs:
                got[label].append(self.one("%s/%s/%d" % (scenario, label, rnd),
                                           kind, clients, events, args=args))
        return got

    def scale(self):
        """The issue 14 table (docs/performance.md, "Scaling with cores"):
        btcstream at each --thread-settings, the floor with --floor-threads
        and nchan with --nchan-workers, interleaved, medians of --rounds;
        CPU per event also as a multiple of the first setting's. On a big
        machine, with --server-cpus and --load-cpus apart, it reruns the
        16-core measurement that the issue started from."""
        n, ev = self.args.clients, self.args.sweep_events
        runs = []
        for io, actors in self.args.thread_settings:
            runs.append(("btcstream io %d actor %d" % (io, actors),
                         "btcstream", ("--io-threads", str(io),
                                       "--actor-threads", str(actors))))
        floor_threads = self.args.floor_threads
        runs.append(("floor, %d thread%s" % (
            floor_threads, "" if floor_threads == 1 else "s"), "floor",
                     ("--threads", str(floor_threads))))
        runs.append(("nchan %d workers" % self.args.nchan_workers, "nchan",
                     ()))
        got = self.interleaved("scale", runs, n, ev)
        med = medians(got)
        where = "" if not PINNING["server"] else \
            ", server on CPUs %s, load on %s" % (
                cpu_list(PINNING["server"]),
                cpu_list(PINNING["load"] or os.sched_getaffinity(0)))
        table("scale: %d clients, 1 update/s, %d updates, median of %d%s" % (
            n, ev, self.args.rounds, where), list(med.items()))
        cpu = "server_us_per_event"
        first = med[runs[0][0]].get(cpu)
        for label, m in med.items():
            if first and m.get(cpu):
                print("scale: %-26s CPU per event %.2f us, %.3f x %s" % (
                    label, m[cpu], m[cpu] / first, runs[0][0]))
        self.results["scale/medians"] = med


def fanout_r(result, clients, cores):
    """p99 / the time `cores` busy cores need for one fan-out to `clients`:
    the server's writes and the load client's reads (docs/performance.md).
    None when a CPU figure is missing or 0 (a run too short to tick)."""
    s = result.get("server_us_per_event")
    c = result.get("client_us_per_event")
    p99 = result.get("latency_ms_p99")
    if not s or c is None or p99 is None:
        return None
    return p99 / (clients * (s + c) / cores / 1000.0)


def medians(got):
    """{label: [result, ...]} -> {label: the medians of the numbers compared
    across runs, and the sums of what must stay 0}."""
    keys = ("server_us_per_event", "server_sys_us_per_event",
            "latency_ms_p50", "latency_ms_p99", "fanout_ms_p50",
            "server_bytes_per_client", "server_sleeps_per_event",
            "server_preemptions_per_event", "client_sleeps_per_event")
    med = {}
    for label, rs in got.items():
        med[label] = {k: statistics.median(r[k] for r in rs)
                      for k in keys if all(k in r for r in rs)}
        for k in ("events_missing", "order_duplicates",
                  "order_out_of_order", "errors_dropped"):
            med[label][k] = sum(r.get(k, 0) for r in rs)
    return med


def stall_report(rows):
    for name, r in rows:
        if r.get("stall_clients"):
            print("%s: stalled %d, closed by the server %d, still open %d; "
                  "healthy p99 %.2f x the unstalled run; RSS connected %s "
                  "max %s end %s kB" % (
                      name, r["stall_clients"], r["stall_closed"],
                      r["stall_open"], r["p99_vs_unstalled"],
                      r.get("server_rss_kb_connected"),
                      r.get("server_rss_kb_max"), r.get("server_rss_kb_end")))


def sanitizer_reports(path):
    """Lines of ASan/LSan/UBSan reports in a server's log (an ASan build
    prints them at exit); [] for a clean run or a normal build."""
    try:
        with open(path, errors="replace") as f:
            return [l.strip() for l in f if "Sanitizer" in l
                    or "runtime error:" in l][:10]
    except OSError:
        return ["no log at " + path]


def metric(body, name):
    for line in (body or b"").decode("utf-8", "replace").splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == name:
            return float(parts[1])
    return None


def teardown(srv, r):
    """The server's CPU from the end of the load (all clients still open)
    until every connection actor has gone: what a mass disconnect costs."""
    start = r.get("server_cpu_s_total_end")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and srv.alive():
        if live_objects(srv.port).get("connection_actor", 1) == 0:
            break
        time.sleep(0.2)
    else:  # still not gone after 20 s, or the server died: nothing to say
        return
    if start is not None:
        r["server_teardown_cpu_ms"] = round(
            (proc_cpu_s(srv.pids()) - start) * 1000, 1)
        log("compare: %d clients gone, server CPU %.0f ms from the end of "
            "the load" % (r.get("connect_open_at_end", 0),
                          r["server_teardown_cpu_ms"]))


def live_objects(port):
    status, body = http_get("http://127.0.0.1:%d/metrics" % port, timeout=5)
    out = {}
    for line in (body or b"").decode("utf-8", "replace").splitlines():
        if line.startswith("btcstream_live_objects{"):
            kind = line.split('kind="')[1].split('"')[0]
            out[kind] = float(line.split()[-1])
    return out


def slope(xs, ys):
    """The least-squares slope of ys over xs."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    var = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / var if var \
        else 0.0


def rss_kb(pids):
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/status" % pid) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def cpus_arg(text):
    try:
        return parse_cpus(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e))


def thread_settings(text):
    """'1/1,2/2' -> [(1, 1), (2, 2)]: btcstream's --io-threads and
    --actor-threads, each 1 to 64."""
    out = []
    for part in text.split(","):
        m = re.fullmatch(r"\s*(\d+)/(\d+)\s*", part)
        if not m or not all(1 <= int(g) <= 64 for g in m.groups()):
            raise argparse.ArgumentTypeError(
                "%r: want IO/ACTOR thread counts (1 to 64) as 1/1,2/2" % text)
        out.append((int(m.group(1)), int(m.group(2))))
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("scenario", nargs="+", choices=[
        "fanout", "stalled", "burst", "churn", "limit", "sweep", "soak",
        "cluster", "rolling", "cores", "scale", "all"])
    p.add_argument("--servers", default="btcstream,nchan,floor",
                   help="of btcstream, nchan, floor (fanout, stalled, burst, "
                   "churn)")
    p.add_argument("--clients", type=int, default=10000)
    p.add_argument("--events", type=int, default=60,
                   help="updates per fan-out run (1/s)")
    p.add_argument("--stall-events", type=int, default=60)
    p.add_argument("--burst-events", type=int, default=4000)
    p.add_argument("--sweep-events", type=int, default=20)
    p.add_argument("--churn-seconds", type=int, default=60)
    p.add_argument("--soak-seconds", type=int, default=600)
    p.add_argument("--soak-clients", type=int, default=FD_LIMIT - 100,
                   help="the soak's --max-clients (all but 50 held)")
    p.add_argument("--cluster-clients", type=int, default=50000)
    p.add_argument("--cluster-events", type=int, default=30)
    p.add_argument("--rolling-clients", type=int, default=10000)
    p.add_argument("--leader-last", action="store_true",
                   help="rolling: restart the followers first, the leader "
                   "last (else n1, n2, n3)")
    p.add_argument("--ref-clients", type=int, default=100,
                   help="Python reference clients on top (rolling)")
    p.add_argument("--policies", default="sharing,stealing")
    p.add_argument("--rounds", type=int, default=3,
                   help="cores: rounds of the four runs (medians)")
    p.add_argument("--pace-ms", type=float, default=0,
                   help="sse_load --pace-ms for the one-server scenarios "
                   "(fanout, stalled, burst, sweep, cores): the load "
                   "client polls every MS instead of waiting for the "
                   "server's writes, which then never pay for waking it")
    p.add_argument("--thread-settings", type=thread_settings,
                   default=thread_settings("1/1,2/1,2/2"),
                   help="scale: btcstream's IO/ACTOR thread settings, as "
                   "1/1,2/2,4/4")
    p.add_argument("--floor-threads", type=int, default=None,
                   help="scale: the floor's threads (default: one per "
                   "--server-cpus, or per CPU when not pinned)")
    p.add_argument("--nchan-workers", type=int, default=2,
                   help="nginx worker processes for nchan (cores, scale, "
                   "fanout...; cluster runs 3)")
    p.add_argument("--server-cpus", type=cpus_arg, default=None,
                   help="pin the servers to these CPUs, as 0-7 (not "
                   "Redis or HAProxy)")
    p.add_argument("--load-cpus", type=cpus_arg, default=None,
                   help="pin sse_load, the fake upstream and nchan's "
                   "publisher to these CPUs, as 8-15")
    p.add_argument("--btcstream", default=os.path.join(ROOT,
                                                       "build/btcstream"))
    p.add_argument("--btcstream-args", default="",
                   help="extra flags for every btcstream run")
    p.add_argument("--out", help="also write the JSON result here")
    args = p.parse_args()
    if args.floor_threads is None:
        args.floor_threads = len(args.server_cpus or
                                 os.sched_getaffinity(0))
    if not 1 <= args.floor_threads <= 64 or not 1 <= args.nchan_workers <= 64:
        p.error("--floor-threads and --nchan-workers: 1 to 64")
    PINNING["server"], PINNING["load"] = args.server_cpus, args.load_cpus
    if args.server_cpus and args.load_cpus and \
            set(args.server_cpus) & set(args.load_cpus):
        log("compare: --server-cpus and --load-cpus share CPUs %s" %
            cpu_list(set(args.server_cpus) & set(args.load_cpus)))
    todo = args.scenario
    if "all" in todo:
        todo = ["fanout", "stalled", "burst", "churn", "limit", "sweep"]
    bench = Bench(args)
    for s in todo:
        getattr(bench, s)()
    line = json.dumps(bench.results, sort_keys=True)
    print(line)
    if args.out:
        with open(args.out, "w") as f:
            f.write(line + "\n")


if __name__ == "__main__":
    main()
