"""Hostile clients for test_hostile.py: Debian's `slowhttptest`, a /healthz
prober on a thread, and raw-socket tricklers. Loopback only; every attack is
bounded in time and connection count and stops itself.

- `slowhttptest()`: the path of the tool, or None (tests skip with MISSING).
- `SlowHttpTest(mode, url, ...)`: runs `slowhttptest -H|-B|-X` for a bounded
  time (`-l`) with its per-second CSV (`-g -o`); `wait()` returns the rows
  (seconds, closed, pending, connected) and the tool's exit line.
- `HealthProbe(port)`: GET /healthz every 100 ms on its own connection (2 s
  timeout each) until stop(); keeps (status, seconds) of every probe.
- `Trickler(port, head)`: sends a request head one line per `every` seconds
  on a thread and records when the server closed the connection.
"""

import csv
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time

import tools
from client import RawConnection, http_request

MISSING = "slowhttptest not installed (scripts/deps --test installs it)"


def slowhttptest():
    return tools.find("slowhttptest")


class SlowHttpTest:
    """One bounded slowhttptest run in the background."""

    MODES = {"slowloris": "-H", "slow_body": "-B", "slow_read": "-X"}

    def __init__(self, mode, url, connections, seconds, extra=()):
        self.dir = tempfile.mkdtemp(prefix="btcstream-slowhttptest-")
        self.prefix = os.path.join(self.dir, mode)
        self.args = [slowhttptest(), self.MODES[mode], "-c", str(connections),
                     "-r", str(connections), "-l", str(seconds), "-p", "2",
                     "-u", url, "-g", "-o", self.prefix, *extra]
        self.seconds = seconds
        self.out_path = self.prefix + ".out"
        with open(self.out_path, "wb") as out:
            self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=subprocess.STDOUT)
        self.started = time.monotonic()

    def output(self):
        with open(self.out_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def wait(self):
        """Waits (at most the test length + 10 s, then kills); returns the
        CSV rows as (second, closed, pending, connected) tuples."""
        try:
            self.proc.wait(self.seconds + 10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise AssertionError("slowhttptest overran its -l %d:\n%s"
                                 % (self.seconds, self.output()))
        self.elapsed = time.monotonic() - self.started
        rows = []
        with open(self.prefix + ".csv", newline="") as f:
            for row in list(csv.reader(f))[1:]:
                if len(row) >= 4:
                    rows.append(tuple(int(x) for x in row[:4]))
        return rows

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        shutil.rmtree(self.dir, ignore_errors=True)


class HealthProbe:
    """GET /healthz every `every` seconds, each on a fresh connection."""

    def __init__(self, port, every=0.1, timeout=2.0):
        self.port = port
        self.every = every
        self.timeout = timeout
        self.results = []  # (status or exception text, seconds)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name="healthz-probe")
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                status = http_request(self.port, "GET", "/healthz",
                                      timeout=self.timeout).status
            except Exception as e:  # a failed probe is a result too
                status = "%s: %s" % (type(e).__name__, e)
            self.results.append((status, time.monotonic() - started))
            self._stop.wait(self.every)

    def stop(self):
        self._stop.set()
        self._thread.join(self.timeout + 1)
        return self.results

    def summary(self):
        times = sorted(t for _, t in self.results)
        if not times:
            return "no probe"
        return "%d probes, median %.1f ms, max %.1f ms" % (
            len(times), 1000 * times[len(times) // 2], 1000 * times[-1])


class Trickler:
    """Sends `lines` (the request head, line by line) one per `every`
    seconds, then keeps sending a header line per `every` seconds, never
    finishing the head; notes when the server closed (EOF, reset or a failed
    send). Bounded by `limit` seconds."""

    def __init__(self, port, lines, every=0.5, limit=20.0):
        self.conn = RawConnection(port, timeout=5)
        self.lines = list(lines)
        self.every = every
        self.limit = limit
        self.started = None
        self.closed_after = None  # seconds from the first trickled byte
        self.received = b""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name="trickler")

    def start(self):
        self._thread.start()
        return self

    def _server_closed(self):
        self.conn.sock.settimeout(0)
        try:
            data = self.conn.sock.recv(65536)
        except BlockingIOError:
            return False
        except OSError:
            return True
        if data:
            self.received += data
            return False
        return True

    def _run(self):
        self.started = time.monotonic()
        n = 0
        while not self._stop.is_set():
            elapsed = time.monotonic() - self.started
            if elapsed > self.limit:
                return
            line = self.lines[n] if n < len(self.lines) \
                else b"X-Trickle-%d: a\r\n" % n
            n += 1
            try:
                self.conn.sock.settimeout(2)
                self.conn.sock.sendall(line)
            except OSError:
                self.closed_after = time.monotonic() - self.started
                return
            # Poll for the close until the next line is due.
            due = time.monotonic() + self.every
            while time.monotonic() < due and not self._stop.is_set():
                if self._server_closed():
                    self.closed_after = time.monotonic() - self.started
                    return
                time.sleep(0.02)

    def join(self, timeout):
        self._thread.join(timeout)

    def stop(self):
        self._stop.set()
        self._thread.join(self.limit + 5)
        self.conn.close()


def wait_closed(conn, timeout):
    """Reads (keeping the bytes) until the server closes `conn`. Returns the
    seconds it took, or None if it was still open at `timeout`."""
    started = time.monotonic()
    deadline = started + timeout
    try:
        while not conn.eof:
            conn.recv_some(deadline)
    except socket.timeout:
        return None
    return time.monotonic() - started
