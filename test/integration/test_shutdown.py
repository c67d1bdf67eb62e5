"""Shutdown (DESIGN.md, "/readyz" and the contract): on SIGTERM or SIGINT the
process exits 0 within 5 s, grace included, and every open /stream ends
cleanly: the final `0\\r\\n\\r\\n` chunk for HTTP/1.1, EOF for HTTP/1.0; also
for a client in the middle of a long replay and with a client that never
reads. (case.py's cleanup also checks exit 0 and no sanitizer report.)"""

import signal
import time
import unittest

from case import ServiceCase
from client import RawConnection, SseStream, StreamClosed, build_request


class ShutdownCase(ServiceCase):
    def read_to_end(self, stream, timeout):
        """Reads a stream until it ends; returns the events read. Fails
        unless it ended within `timeout`."""
        deadline = time.monotonic() + timeout
        events = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self.fail("the stream did not end within %.1f s" % timeout)
            try:
                events.append(stream.next_event(left))
            except StreamClosed:
                return events
            except OSError as e:  # timeout or reset
                self.fail("the stream did not end cleanly: %r" % e)

    def assert_clean_chunked_end(self, stream):
        self.assertIsNotNone(stream._chunked, "not chunked")
        self.assertTrue(stream._chunked.done,
                        "no final 0\\r\\n\\r\\n chunk; the connection just "
                        "closed")
        self.assertEqual(stream._pending, b"", "a partial event at the end")

    def send_signal(self, svc, sig):
        """Signals the service; returns when (monotonic)."""
        started = time.monotonic()
        svc.signal(sig)
        return started

    def assert_exits_0(self, svc, started, budget=5.0):
        code = svc.wait(max(0.1, started + budget - time.monotonic()))
        self.assertIsNotNone(code, "still running %.0f s after the signal"
                             % budget)
        self.assertEqual(code, 0)
        self.assertLessEqual(time.monotonic() - started, budget)


class SignalTest(ShutdownCase):
    def check_signal(self, sig, grace):
        up = self.start_upstream()
        svc = self.start_service(up, grace=grace)
        streams = [self.open_ok_stream(svc) for _ in range(3)]
        old = self.open_stream(svc, version="HTTP/1.0")
        self.assertEqual(old.response.status, 200)
        for s in streams:
            self.read_frames(s, 2)
        self.assertTrue(old.updates(1, 3))
        started = self.send_signal(svc, sig)
        for s in streams:
            events = self.read_to_end(s, 5.0)
            self.assertTrue(all(e.is_update or e.is_heartbeat for e in events),
                            repr(events))
            self.assert_clean_chunked_end(s)
        self.read_to_end(old, 5.0)  # close-delimited: EOF
        self.assertEqual(old._pending, b"", "HTTP/1.0: a partial event")
        self.assert_exits_0(svc, started)

    def test_sigterm_with_the_default_grace(self):
        self.check_signal(signal.SIGTERM, None)

    def test_sigint(self):
        self.check_signal(signal.SIGINT, "0s")

    def test_sigterm_with_a_1s_grace_ends_streams_cleanly(self):
        up = self.start_upstream()
        svc = self.start_service(up, grace="1s")
        stream = self.open_ok_stream(svc)
        self.read_frames(stream, 1)
        started = self.send_signal(svc, signal.SIGTERM)
        self.read_to_end(stream, 5.0)
        self.assert_clean_chunked_end(stream)
        self.assert_exits_0(svc, started)


class ShutdownUnderLoadTest(ShutdownCase):
    def test_sigterm_during_a_long_replay(self):
        up = self.start_upstream()
        svc = self.start_service(up, "--history-max", "5000", interval="5ms")
        time.sleep(3.0)  # some 300-600 buffered updates, 25 KB or more
        # A small window and small segments: the server's socket takes only
        # some 15 KB, so the replay is still being written at the signal.
        conn = RawConnection(svc.port, rcvbuf=1024, mss=88)
        self.addCleanup(conn.close)
        conn.send(build_request("GET", "/stream", [("Last-Event-ID", "1")]))
        stream = SseStream(conn, conn.read_head(5))
        self.assertEqual(stream.response.status, 200)
        first = [stream.next_event(2) for _ in range(5)]  # slowly
        self.assertTrue(any(e.is_update for e in first), repr(first))
        time.sleep(0.5)  # the replay backs up behind the small window
        started = self.send_signal(svc, signal.SIGTERM)
        time.sleep(0.5)
        rest = self.read_to_end(stream, 5.0)
        self.assert_clean_chunked_end(stream)
        ids = [e.int_id for e in first + rest if e.is_update]
        self.assertEqual(ids, sorted(set(ids)), "ids out of order")
        self.assert_exits_0(svc, started)

    def check_a_client_that_never_reads(self, grace):
        up = self.start_upstream()
        svc = self.start_service(up, "--stall-timeout", "10min",
                                 interval="10ms", grace=grace)
        stalled = RawConnection(svc.port, rcvbuf=1024, mss=88)
        self.addCleanup(stalled.close)
        stalled.send(build_request("GET", "/stream"))
        reader = self.open_ok_stream(svc)
        self.read_frames(reader, 3)
        time.sleep(2.0)  # the stalled client's socket fills
        started = self.send_signal(svc, signal.SIGTERM)
        self.read_to_end(reader, 5.0)
        self.assert_clean_chunked_end(reader)
        self.assert_exits_0(svc, started)

    def test_sigterm_with_a_client_that_never_reads(self):
        self.check_a_client_that_never_reads("0s")

    def test_the_longest_grace_with_a_client_that_never_reads(self):
        # The grace counts from the signal, and the stalled stream's final
        # chunk is waited for only up to the deadline: still within 5 s.
        self.check_a_client_that_never_reads("4s")

if __name__ == "__main__":
    unittest.main()
