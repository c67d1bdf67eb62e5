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
    test/bench/compare.py soak                # 10 min at the limit, 1 %/min
                                              # churn: RSS and fd slopes
    test/bench/compare.py all

Each prints a table per run, the ratios btcstream / nchan where both ran, and
at the end one JSON line with every number (also written to --out). See
test/bench/README.md and docs/performance.md.
"""

import argparse
import json
import os
import shutil
import signal
import socket
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

    def start(self, name, argv, **kw):
        out = open(os.path.join(self.work, name + ".log"), "wb")
        p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, cwd=ROOT, **kw)
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
                                 "--port", str(self.port)])
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
    """floor_server: one thread writing each event to every socket and
    nothing else; the kernel's share of the work (see floor_server.cpp)."""

    def __init__(self, procs, interval):
        binary = os.path.join(ROOT, "build/test/bench/floor_server")
        if not os.access(binary, os.X_OK):
            raise RuntimeError("no %s: meson compile -C build" % binary)
        port = free_port()
        super().__init__(procs, "floor", [
            binary, "--port", str(port), "--interval-ms",
            str(int(parse_seconds(interval) * 1000))], port)


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
            "--publish", "http://127.0.0.1:%d/pub" % self.port])
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
             extra=(), duration=None, probe=None):
    """Runs sse_load (in `processes` processes, clients split evenly, each
    on its own source addresses) and returns the merged numbers."""
    per = [clients // processes + (i < clients % processes)
           for i in range(processes)]
    sources = 8
    start_at = int(time.time() * 1000) + 1500
    duration = duration or (clients / rate + events * 2 + 30)
    pids = ",".join(str(p) for p in server.pids())
    runs = []
    for i, n in enumerate(per):
        argv = [sse_load_binary(), "--port", str(server.port), "--path",
                server.path, "--clients", str(n),
                "--rate", str(rate / processes), "--sources", str(sources),
                "--source-base", str(1 + i * sources),
                "--events", str(events), "--duration", str(duration),
                "--start-at", str(start_at),
                "--ready-file", os.path.join(work, "ready.%d" % i)]
        if i == 0:  # one sampler of the server is enough
            argv += ["--server-pid", pids]
        argv += list(extra)
        out = open(os.path.join(work, "sse_load.%d.out" % i), "w+")
        runs.append((subprocess.Popen(argv, stdout=out,
                                      stderr=subprocess.STDOUT), out))
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
    merged = merge(results)
    if probes:
        merged["probe"] = probes[0]
    return merged


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


class Bench:
    def __init__(self, args):
        self.args = args
        self.results = {}

    def server(self, kind, procs, upstream, interval, args=()):
        if kind == "nchan":
            return Nchan(procs, upstream, interval)
        if kind == "floor":
            return Floor(procs, interval)
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
            log("compare: %s: %s on :%d, %d clients" % (label, kind,
                                                         srv.port, clients))
            r = run_load(work, srv, clients, events, **load)
            r["server_alive_at_end"] = srv.alive()
            if kind == "btcstream":
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
                stderr=subprocess.STDOUT)
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

            def sample():
                while not stop.wait(10):
                    if not all(os.path.exists(os.path.join(
                            work, "ready.%d" % i)) for i in range(2)):
                        continue  # connecting: not the steady state yet
                    try:
                        fds = len(os.listdir("/proc/%d/fd" % pid))
                    except OSError:
                        return
                    samples.append((time.monotonic(), rss_kb([pid]), fds))

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
            shutil.rmtree(work, ignore_errors=True)
        finally:
            stop.set()
            procs.stop()

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


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("scenario", nargs="+", choices=[
        "fanout", "stalled", "burst", "churn", "limit", "sweep", "soak",
        "all"])
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
    p.add_argument("--policies", default="sharing,stealing")
    p.add_argument("--btcstream", default=os.path.join(ROOT,
                                                       "build/btcstream"))
    p.add_argument("--btcstream-args", default="",
                   help="extra flags for every btcstream run")
    p.add_argument("--out", help="also write the JSON result here")
    args = p.parse_args()
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
