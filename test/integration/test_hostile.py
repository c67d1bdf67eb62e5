"""Hostile HTTP (issue 13, item 4): slow attacks and malformed requests.

Loopback only, bounded in time and count, each test stopping what it
started. Slow attacks use Debian's `slowhttptest` (scripts/deps --test) and
raw sockets; throughout, /healthz answers every probe within 1 s, the 10 s
request-head timeout (server_options::head_timeout, not a flag) and
--max-http-connections hold. Malformed requests each get a clear 4xx (a JSON
`{"error": ...}` where the server answers) or a closed connection, never a
2xx, a crash, a hang or a second answer to bytes that were not a request.
Every test ends with no leaked session (btcstream_live_objects) and a clean
exit (ServiceCase).
"""

import socket
import time
import unittest

import prom
from case import ServiceCase
from client import (RawConnection, SseStream, StreamClosed, build_request,
                    http_request)
from slow_client import (MISSING, HealthProbe, SlowHttpTest, Trickler,
                         slowhttptest, wait_closed)

HEAD_TIMEOUT = 10.0  # server_options::head_timeout (src/http/server_context.hpp)
MARGIN = 2.5  # scheduling slack on a loaded 2-core machine (ASan included)
PROMPT = 1.0  # every /healthz probe answers within this


class HostileCase(ServiceCase):

    def live(self, svc):
        """{kind: count} of btcstream_live_objects (the scrape's own session
        counts as one http_session)."""
        return prom.scrape(svc.port).by_label("btcstream_live_objects", "kind")

    def assert_no_leak(self, svc, sse=0, timeout=5.0):
        """Back to this scrape's own http_session and `sse` streams."""
        want = {"http_session": 1, "sse_session": sse}
        deadline = time.monotonic() + timeout
        while True:
            live = self.live(svc)
            last = {k: live.get(k) for k in want}
            if last == want:
                return
            if time.monotonic() > deadline:
                self.fail("leaked sessions: live objects %r after %.0f s, "
                          "want %r" % (last, timeout, want))
            time.sleep(0.05)

    def assert_prompt(self, probe, what):
        results = probe.stop()
        self.assertGreater(len(results), 5, "too few /healthz probes")
        bad = [(s, round(t, 3)) for s, t in results
               if s != 200 or t >= PROMPT]
        self.assertEqual(bad, [], "%s: /healthz probes not 200 within %.0f s "
                         "(%s)" % (what, PROMPT, probe.summary()))
        return probe.summary()

    def exchange(self, svc, raw, quiet=0.3, limit=5.0):
        """Sends `raw`, reads every response until the server closes or is
        quiet for `quiet` s. Returns (responses, closed)."""
        conn = RawConnection(svc.port, timeout=limit)
        try:
            return self._exchange(conn, raw, quiet, limit)
        finally:
            conn.close()

    def _exchange(self, conn, raw, quiet, limit):
        try:
            conn.send(raw)
        except (BrokenPipeError, ConnectionResetError):
            pass
        responses = []
        deadline = time.monotonic() + limit
        while True:
            try:
                response = conn.read_head(min(quiet, deadline
                                              - time.monotonic()))
                conn.read_body(response, "GET", 2.0)
                responses.append(response)
            except StreamClosed:
                return responses, True
            except socket.timeout:
                return responses, conn.eof
            except ValueError:  # garbage after a response
                return responses, conn.eof
            if time.monotonic() > deadline:
                self.fail("still answering after %.0f s: %r"
                          % (limit, responses[-3:]))

    def assert_refused(self, svc, raw, statuses=range(400, 500), what=""):
        """One 4xx with a JSON error (or a plain close), and nothing after it
        on that connection unless the 4xx kept it alive."""
        responses, closed = self.exchange(svc, raw)
        label = what or raw[:80]
        if not responses:
            self.assertTrue(closed, "%r: no answer and no close" % label)
            return None
        first = responses[0]
        self.assertIn(first.status, statuses, "%r -> %r" % (label, responses))
        self.assert_json_error(first, first.status)
        self.assertEqual(len(responses), 1,
                         "%r: bytes after a refused request were answered as "
                         "a request: %r" % (label, responses))
        return first, closed

    def assert_healthy(self, svc):
        self.assertEqual(http_request(svc.port, "GET", "/healthz").status, 200)


@unittest.skipIf(slowhttptest() is None, MISSING)
class SlowAttackTest(HostileCase):
    """Slowloris, slow body, slow read: /healthz stays prompt throughout."""

    def start(self, *flags):
        svc = self.start_service(self.start_upstream(), *flags)
        self.url = "http://127.0.0.1:%d" % svc.port
        return svc

    def attack(self, mode, connections, seconds, path, *extra):
        tool = SlowHttpTest(mode, self.url + path, connections, seconds,
                            extra)
        self.addCleanup(tool.stop)
        return tool

    def check_cut_at_head_timeout(self, tool, rows, connections):
        """The tool's connections were all up, then closed by the server
        at the head timeout (the tool ends early: no connection left)."""
        up = [r for r in rows if r[0] <= 8]
        self.assertTrue(any(r[3] >= connections * 0.9 for r in up),
                        "the attack never took hold: %r" % rows)
        self.assertIn("No open connections left", tool.output(),
                      "connections outlived the head timeout: %r" % rows)
        self.assertLess(tool.elapsed, HEAD_TIMEOUT + MARGIN + 1,
                        "rows %r" % rows)
        early = [r for r in rows if r[0] <= HEAD_TIMEOUT - 2 and r[1] > 0]
        self.assertEqual(early, [], "closed before the head timeout")

    def test_slowloris_is_cut_at_the_head_timeout_healthz_prompt(self):
        svc = self.start("--max-http-connections", "100")
        probe = HealthProbe(svc.port)
        self.addCleanup(probe.stop)
        tool = self.attack("slowloris", 40, 14, "/healthz", "-i", "1")
        trickler = Trickler(svc.port, [b"GET /healthz HTTP/1.1\r\n",
                                       b"Host: 127.0.0.1\r\n"]).start()
        self.addCleanup(trickler.stop)
        rows = tool.wait()
        trickler.join(5)
        self.check_cut_at_head_timeout(tool, rows, 40)
        self.assertIsNotNone(trickler.closed_after, "a trickled head was "
                             "still open after %.0f s" % trickler.limit)
        self.assertGreater(trickler.closed_after, HEAD_TIMEOUT - 1)
        self.assertLess(trickler.closed_after, HEAD_TIMEOUT + MARGIN)
        summary = self.assert_prompt(probe, "slowloris")
        print("\n  slowloris x40: healthz %s; trickled head closed after "
              "%.2f s" % (summary, trickler.closed_after), flush=True)
        self.assert_no_leak(svc)

    def test_slow_body_is_cut_at_the_head_timeout_healthz_prompt(self):
        # The whole first request (head and body) has the 10 s timer.
        svc = self.start("--max-http-connections", "100")
        probe = HealthProbe(svc.port)
        self.addCleanup(probe.stop)
        tool = self.attack("slow_body", 40, 14, "/healthz", "-i", "1",
                           "-s", "8192")
        trickler = Trickler(svc.port, [build_request(
            "POST", "/healthz", [("Content-Length", "8192")])]).start()
        self.addCleanup(trickler.stop)
        rows = tool.wait()
        trickler.join(5)
        self.check_cut_at_head_timeout(tool, rows, 40)
        self.assertIsNotNone(trickler.closed_after, "a trickled body was "
                             "still open after %.0f s" % trickler.limit)
        self.assertLess(trickler.closed_after, HEAD_TIMEOUT + MARGIN)
        summary = self.assert_prompt(probe, "slow body")
        print("\n  slow body x40: healthz %s; trickled body closed after "
              "%.2f s" % (summary, trickler.closed_after), flush=True)
        self.assert_no_leak(svc)

    def test_slow_read_keeps_healthz_prompt_and_leaks_nothing(self):
        svc = self.start("--max-http-connections", "100")
        probe = HealthProbe(svc.port)
        self.addCleanup(probe.stop)
        # slowhttptest: 40 connections, 10 pipelined GETs of the largest
        # file each, a 1-64 byte window, 5 bytes read per second.
        tool = self.attack("slow_read", 40, 8, "/chart.js", "-k", "10",
                           "-n", "1", "-w", "1", "-y", "64", "-z", "5")
        # Raw: 5 never-reading clients (1 KiB window, 88-byte segments) with
        # 100 pipelined GETs each (~1.1 MB of answers): the server's writes
        # block for good on them.
        readers = []
        for _ in range(5):
            conn = RawConnection(svc.port, rcvbuf=1024, mss=88)
            self.addCleanup(conn.close)
            conn.send(build_request("GET", "/chart.js") * 100)
            readers.append(conn)
        rows = tool.wait()
        self.assertTrue(any(r[3] >= 36 for r in rows),
                        "the attack never took hold: %r" % rows)
        summary = self.assert_prompt(probe, "slow read")
        print("\n  slow read x40 + 5 stalled: healthz %s" % summary,
              flush=True)
        # The stalled writes hold their sessions (bounded by the 30 s idle
        # timeout); they end as soon as the clients go.
        self.wait_until(lambda: self.live(svc)["http_session"]
                        == 1 + len(readers), 5,
                        "only the 5 stalled sessions left")
        for conn in readers:
            conn.close()
        self.assert_no_leak(svc)


class MaxHttpConnectionsTest(HostileCase):
    def test_beyond_max_http_connections_503_then_recovery(self):
        svc = self.start_service(self.start_upstream(),
                                 "--max-http-connections", "10")
        idle = []
        for _ in range(10):  # half a head each, then silence
            conn = RawConnection(svc.port, timeout=HEAD_TIMEOUT + 5)
            self.addCleanup(conn.close)
            conn.send(b"GET /healthz HTTP/1.1\r\n")
            idle.append(conn)
        opened = time.monotonic()
        # All ten accepted: a request more is one too many.
        self.wait_until(lambda: http_request(svc.port, "GET", "/api/v1/info")
                        .status == 503, 5, "a 503 once the 10 are accepted")
        for target in ("/api/v1/info", "/api/v1/price", "/"):
            started = time.monotonic()
            response = http_request(svc.port, "GET", target)
            self.assertLess(time.monotonic() - started, PROMPT)
            self.assert_json_error(response, 503)
            self.assertEqual(response.header("Retry-After"), "1")
        # The liveness probe is answered all the same, and promptly.
        started = time.monotonic()
        self.assertEqual(http_request(svc.port, "GET", "/healthz").status, 200)
        self.assertLess(time.monotonic() - started, PROMPT)
        # So is a new stream: --max-clients bounds streams.
        stream = self.open_ok_stream(svc)
        self.read_frames(stream, 1)
        stream.close()
        for conn in idle[:5]:  # some leave: served again at once
            conn.close()
        self.wait_until(lambda: http_request(svc.port, "GET", "/api/v1/info")
                        .status == 200, 2, "/api/v1/info 200 after 5 left")
        # The others are closed by the head timeout, not before.
        for conn in idle[5:]:
            took = wait_closed(conn, HEAD_TIMEOUT + MARGIN
                               - (time.monotonic() - opened))
            self.assertIsNotNone(took, "an idle half head outlived the "
                                 "head timeout")
        elapsed = time.monotonic() - opened
        self.assertGreater(elapsed, HEAD_TIMEOUT - 1)
        print("\n  idle half heads closed after %.2f s" % elapsed, flush=True)
        self.assert_no_leak(svc)
        stream = self.open_ok_stream(svc)
        self.read_frames(stream, 1)


class KeepAliveSlowlorisTest(HostileCase):
    def test_a_trickled_second_request_head_is_cut_at_the_head_timeout(self):
        # After one quick request, the next head trickled on the same
        # connection must not get longer than a first one.
        svc = self.start_service(self.start_upstream())
        trickler = Trickler(svc.port, [], limit=HEAD_TIMEOUT + MARGIN + 0.5)
        self.addCleanup(trickler.stop)
        trickler.conn.send(build_request("GET", "/healthz"))
        response = trickler.conn.read_head(5)
        trickler.conn.read_body(response)
        self.assertEqual(response.status, 200)
        trickler.lines = [b"GET /healthz HTTP/1.1\r\n"]
        trickler.start()
        trickler.join(trickler.limit + 2)
        self.assertIsNotNone(
            trickler.closed_after, "a second request's head trickled on a "
            "kept-alive connection was still open after %.1f s (the 10 s "
            "head timeout applies to the first request only; the next one "
            "gets the 30 s idle timeout)" % trickler.limit)
        self.assertLess(trickler.closed_after, HEAD_TIMEOUT + MARGIN)
        trickler.stop()
        self.assert_no_leak(svc)


H = b"Host: 127.0.0.1\r\n"
SMUGGLED = b"GET /nope HTTP/1.1\r\n" + H + b"\r\n"


class MalformedRequestTest(HostileCase):
    def setUp(self):
        self.svc = self.start_service(self.start_upstream())

    def tearDown(self):
        if self.svc.running:
            self.assert_healthy(self.svc)
            self.assert_no_leak(self.svc)

    def test_1000_header_fields_over_the_head_limit_are_431(self):
        raw = b"GET /healthz HTTP/1.1\r\n" + H + b"".join(
            b"X-F%04d: vvvvvvvv\r\n" % i for i in range(1000)) + b"\r\n"
        first, closed = self.assert_refused(self.svc, raw, [431])
        self.assertTrue(closed)

    def test_1000_small_header_fields_are_refused(self):
        # 1,000 fields of 5 bytes fit the 8 KiB head limit: only a bound on
        # the number of fields refuses them (Apache: 100, 400 beyond).
        raw = b"GET /healthz HTTP/1.1\r\n" + H + \
            b"a:b\r\n" * 1000 + b"\r\n"
        self.assert_refused(self.svc, raw, [400, 431])

    def test_64_kib_header_line_and_request_line_are_431(self):
        for raw in (b"GET /healthz HTTP/1.1\r\n" + H + b"X-Big: "
                    + b"a" * 65536 + b"\r\n\r\n",
                    b"GET /" + b"a" * 65536 + b" HTTP/1.1\r\n" + H + b"\r\n",
                    b"GET /stream HTTP/1.1\r\n" + H + b"Last-Event-ID: "
                    + b"1" * 65536 + b"\r\n\r\n"):
            with self.subTest(raw=raw[:40]):
                first, closed = self.assert_refused(self.svc, raw, [431])
                self.assertTrue(closed)

    def test_content_length_with_transfer_encoding_is_400_and_closed(self):
        for fields in (b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
                       b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
                       b"Content-Length: 0\r\nTransfer-Encoding: chunked\r\n"):
            raw = b"POST /healthz HTTP/1.1\r\n" + H + fields + \
                b"\r\n0\r\n\r\n" + SMUGGLED
            with self.subTest(fields=fields):
                first, closed = self.assert_refused(self.svc, raw, [400])
                self.assertTrue(closed, "open after CL + TE")

    def test_transfer_encoding_not_ending_in_chunked_is_400_and_closed(self):
        # RFC 9112, 6.3: the length cannot be determined: 400, then close.
        # Else what follows the head (here a GET) is taken for the next
        # request: the desync of request smuggling.
        for method in (b"POST", b"GET"):
            for te in (b"gzip", b"chunked, gzip", b"identity"):
                raw = method + b" /healthz HTTP/1.1\r\n" + H + \
                    b"Transfer-Encoding: " + te + b"\r\n\r\n" + SMUGGLED
                with self.subTest(method=method, te=te):
                    first, closed = self.assert_refused(self.svc, raw, [400])
                    self.assertTrue(closed, "open after a bad TE")

    def test_a_final_chunk_in_pieces_is_refused_and_crashes_nothing(self):
        # Boost 1.74 asserts (a remote abort of builds with assertions) when
        # the bytes after a chunked body's "0\r\n" come in pieces
        # (test/fuzz/README.md, "Findings"): the session refuses any
        # Transfer-Encoding with the head, before a body byte is parsed.
        conn = RawConnection(self.svc.port, timeout=5)
        self.addCleanup(conn.close)
        for piece in (b"POST / HTTP/1.1\r\nHost: x\r\n"
                      b"Transfer-Encoding: chunked\r\n\r\n0\r\n", b"\r",
                      b"\n"):
            try:
                conn.send(piece)
            except (BrokenPipeError, ConnectionResetError):
                break
            time.sleep(0.1)
        response = conn.read_head(5)
        conn.read_body(response, "POST", 2.0)
        self.assert_json_error(response, 400)
        self.assertTrue(self.svc.running, "the service died")
        self.assertEqual(self.request(self.svc, "GET", "/healthz").status, 200)

    def test_chunked_over_http_1_0_is_refused_or_closed(self):
        # RFC 9112, 6.1: an HTTP/1.0 message with Transfer-Encoding has
        # faulty framing: the server closes after it, even if keep-alive.
        for method in (b"POST", b"GET"):
            raw = method + b" /healthz HTTP/1.0\r\n" + H + \
                b"Connection: keep-alive\r\nTransfer-Encoding: chunked\r\n" \
                b"\r\n0\r\n\r\n" + SMUGGLED
            with self.subTest(method=method):
                responses, closed = self.exchange(self.svc, raw)
                self.assertEqual(len(responses), 1,
                                 "answered after chunked HTTP/1.0: %r"
                                 % responses)
                self.assertTrue(closed, "kept alive after chunked HTTP/1.0: "
                                "%r" % responses)

    def test_requests_pipelined_behind_a_stream_are_never_answered(self):
        conn = RawConnection(self.svc.port)
        self.addCleanup(conn.close)
        conn.send(build_request("GET", "/stream") + SMUGGLED
                  + build_request("GET", "/healthz"))
        stream = self.open_raw_stream(conn)
        self.read_frames(stream, 2)
        self.assertNotIn(b"HTTP/1.", stream.raw)
        self.assertEqual(self.live(self.svc)["sse_session"], 1)
        stream.close()
        # HTTP/1.0 too (no chunking: the body runs to the close).
        conn = RawConnection(self.svc.port)
        self.addCleanup(conn.close)
        conn.send(build_request("GET", "/stream", version="HTTP/1.0")
                  + SMUGGLED)
        stream = self.open_raw_stream(conn)
        self.read_frames(stream, 2)
        self.assertNotIn(b"HTTP/1.", stream.raw)
        stream.close()

    def open_raw_stream(self, conn):
        response = conn.read_head(5)
        self.assertEqual(response.status, 200, repr(response))
        stream = SseStream(conn, response)
        self.assertRegex(stream.next_event(2).raw, rb"\Aretry: \d+\n\n\Z")
        return stream

    def test_nul_cr_and_non_utf8_in_last_event_id_are_400(self):
        for value in (b"12\x0034", b"12\r34", b"\x00", b"12\xff\xfe",
                      b"\xc3\x28", b"\xed\xa0\x80", b"1\x7f"):
            raw = b"GET /stream HTTP/1.1\r\n" + H + b"Last-Event-ID: " + \
                value + b"\r\n\r\n"
            with self.subTest(value=value):
                self.assert_refused(self.svc, raw, [400])
        for query in (b"1%00", b"1%0d", b"1%0d%0a", b"%ff", b"%c3%28",
                      b"1%00%0d%0aX:%20y"):
            with self.subTest(query=query):
                self.assert_refused(self.svc, b"GET /stream?lastEventId="
                                    + query + b" HTTP/1.1\r\n" + H + b"\r\n",
                                    [400])

    def test_nul_cr_and_non_utf8_in_the_path_are_4xx(self):
        for path in (b"/str\x00eam", b"/str\ream", b"/str\xffeam",
                     b"/\xc3\x28", b"/stream%00", b"/stream%0d%0aX:%20y",
                     b"/%ff", b"/healthz%00", b"/%2e%2e/%00"):
            with self.subTest(path=path):
                self.assert_refused(self.svc, b"GET " + path + b" HTTP/1.1\r\n"
                                    + H + b"\r\n", [400, 404])
        self.assertEqual(self.live(self.svc)["sse_session"], 0)


if __name__ == "__main__":
    unittest.main()
