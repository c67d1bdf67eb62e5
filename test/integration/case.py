"""The base TestCase: a fake upstream and a btcstream process per test.

Everything started through these helpers is stopped by cleanups, and when a
test fails the tail of each service log is written to stderr.
"""

import calendar
import datetime
import socket
import sys
import time
import unittest

from client import (FRAME_RE, RawConnection, SseStream, StreamCollector,
                    build_request, http_request)
from fake_upstream import FakeUpstream
from service import Service


def timestamp_ms(text):
    """`2026-11-26T18:45:17.123Z` -> unix milliseconds."""
    dt = datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ")
    return calendar.timegm(dt.timetuple()) * 1000 + dt.microsecond // 1000


class Frame:
    """An update frame checked byte for byte against the contract."""

    def __init__(self, raw, id, ts_text, price_text):
        self.raw = raw
        self.id = id
        self.ts_text = ts_text
        self.ts_ms = timestamp_ms(ts_text)
        self.price = float(price_text)

    def __repr__(self):
        return "Frame(%d, %s, %r)" % (self.id, self.ts_text, self.price)


class WaitingCase(unittest.TestCase):
    """Waits for conditions, not for fixed times."""

    def wait_until(self, predicate, timeout, what):
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                self.fail("timed out after %.1fs waiting for %s"
                          % (timeout, what))
            time.sleep(0.01)


class ServiceCase(WaitingCase):
    interval = "100ms"

    def run(self, result=None):
        before = len(result.failures) + len(result.errors) if result else 0
        self._services = []
        outcome = super().run(result)
        if result and len(result.failures) + len(result.errors) > before:
            for svc in self._services:
                sys.stderr.write("\n--- %s (tail of %s)\n%s\n" % (
                    self.id(), svc.log_path, svc.log_tail()))
        return outcome

    # -- processes ---------------------------------------------------------

    def start_upstream(self, **kwargs):
        upstream = FakeUpstream(**kwargs).start()
        self.addCleanup(upstream.stop)
        return upstream

    def start_service(self, upstream, *flags, interval=None, start=True,
                      **kwargs):
        """Starts btcstream against `upstream` (None: no --upstream-url).
        `interval` "" leaves --interval out; `kwargs` go to Service (env,
        grace, log_level)."""
        svc = Service(upstream.url if upstream else None, *flags,
                      interval=self.interval if interval is None else interval,
                      name=self.id().rsplit(".", 2)[-1], **kwargs)
        self._services.append(svc)
        self.addCleanup(self._stop_and_check, svc)
        if not start:
            return svc
        try:
            return svc.start()
        except Exception:
            svc.expect_unclean_exit = True  # reported once, by the raise
            raise

    SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                       "runtime error:", "WARNING: ThreadSanitizer",
                       "ERROR: ThreadSanitizer")

    def _stop_and_check(self, svc):
        """Every service ends cleanly on SIGTERM: exit 0 (also under ASan,
        where a leak or memory error makes the exit status non-zero) and no
        sanitizer report in its log."""
        if svc.proc is None:
            return
        code = svc.stop()
        log = svc.log_tail(200000)
        for mark in self.SANITIZER_MARKS:
            self.assertNotIn(mark, log, "sanitizer report in %s" % svc.log_path)
        if not getattr(svc, "expect_unclean_exit", False):
            self.assertEqual(code, 0, "btcstream exit status (log: %s)"
                             % svc.log_path)

    # -- clients -----------------------------------------------------------

    def open_non_reader(self, svc):
        """A /stream client that never reads, with a tiny window (SO_RCVBUF)
        and tiny segments (TCP_MAXSEG) so that the server's socket fills after
        some 15 KB."""
        conn = RawConnection(svc.port, rcvbuf=1024, mss=88)
        self.addCleanup(conn.close)
        conn.send(build_request("GET", "/stream"))
        return conn

    def open_stream(self, svc, target="/stream", headers=(), **kwargs):
        stream = SseStream.open(svc.port, target, headers, **kwargs)
        self.addCleanup(stream.close)
        return stream

    def open_ok_stream(self, svc, target="/stream", headers=(), **kwargs):
        """Opens a stream, asserts 200 and reads the `retry:` block."""
        stream = self.open_stream(svc, target, headers, **kwargs)
        self.assertEqual(stream.response.status, 200,
                         "GET %s %r -> %r" % (target, headers, stream.response))
        first = stream.next_event(2.0)
        self.assertRegex(first.raw, rb"\Aretry: \d+\n\n\Z",
                         "the body must start with retry: <ms>")
        return stream

    def collect(self, svc, target="/stream", headers=()):
        """A reference client reading on a thread (retry block included)."""
        stream = self.open_stream(svc, target, headers)
        self.assertEqual(stream.response.status, 200, repr(stream.response))
        collector = StreamCollector(stream)
        self.addCleanup(collector.stop)
        return collector

    def request(self, svc, method, target, headers=(), **kwargs):
        return http_request(svc.port, method, target, headers, **kwargs)

    # -- waiting and checking ----------------------------------------------

    def frame(self, event):
        """Asserts `event` is exactly an update frame; returns a Frame."""
        match = FRAME_RE.fullmatch(event.raw)
        self.assertIsNotNone(match, "not an exact update frame: %r"
                             % event.raw)
        return Frame(event.raw, int(match.group(1)),
                     match.group(2).decode(), match.group(3).decode())

    def frames(self, events):
        return [self.frame(e) for e in events if e.is_update]

    def read_frames(self, stream, n, timeout=5.0):
        """Reads until `n` more update frames; asserts nothing else came."""
        events = stream.updates(n, timeout)
        others = [e for e in events if not e.is_update]
        self.assertEqual(others, [], "unexpected events between frames")
        return self.frames(events)

    def assert_no_event(self, stream, seconds, what="no event"):
        try:
            event = stream.next_event(seconds)
        except socket.timeout:
            return
        self.fail("%s, but got %r" % (what, event.raw))

    def pause_upstream(self, upstream, collector=None):
        """Pauses the upstream and waits until no poll can still succeed:
        two paused answers after the pause. Returns the reference ids."""
        upstream.pause()
        n = upstream.request_count
        self.assertTrue(upstream.wait_requests(n + 2, 5),
                        "the service stopped polling")
        time.sleep(0.1)  # let the last stored frame reach the collector
        served = [p for _, p, delayed in upstream.served() if not delayed]
        if collector and served:
            # A slowed service (ASan under load) may need longer. Not an
            # assertion: a poll the service timed out stored no frame.
            collector.wait_for(lambda evs: any(
                e.is_update and e.json()["price"] == served[-1]
                for e in evs), 2)
        return collector.ids() if collector else None

    def assert_json_error(self, response, status):
        self.assertEqual(response.status, status, repr(response))
        ctype = (response.header("Content-Type") or "").split(";")[0]
        self.assertEqual(ctype.strip(), "application/json", repr(response))
        body = response.json()
        self.assertIsInstance(body, dict, repr(response))
        self.assertEqual(list(body), ["error"], repr(response))
        self.assertIsInstance(body["error"], str)
        self.assertTrue(body["error"], "empty error message")
        return body
