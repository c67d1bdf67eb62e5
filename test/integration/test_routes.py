"""The REST and probe routes and what every route shares (DESIGN.md, "Public
HTTP API"): /api/v1/price, /api/v1/prices, /api/v1/info, /healthz, /readyz;
HEAD, OPTIONS, 405, CORS, keep-alive, the head timeout and
--max-http-connections."""

import os
import signal
import socket
import time
import unittest

from case import ServiceCase
from client import RawConnection, SseStream, build_request
from service import binary_path

ROUTES = ["/", "/stream", "/api/v1/price", "/api/v1/prices",
          "/api/v1/info", "/healthz", "/readyz"]
JSON_ROUTES = ["/api/v1/price", "/api/v1/prices", "/api/v1/info",
               "/healthz", "/readyz"]
BAD_SINCE = ["", "-1", "0x10", "1e9", "1E9", "nan", "NaN", "inf", "+5",
             "1.2.3", "abc", " 5"]


def version():
    import subprocess
    out = subprocess.run([binary_path(), "--version"], capture_output=True,
                         timeout=10).stdout.decode()
    return out.split()[1] if len(out.split()) == 2 else None


class RouteCase(ServiceCase):
    def get_json(self, svc, target, status=200):
        response = self.request(svc, "GET", target)
        self.assertEqual(response.status, status, "GET %s -> %r"
                         % (target, response))
        ctype = (response.header("Content-Type") or "").split(";")[0]
        self.assertEqual(ctype.strip(), "application/json", repr(response))
        return response.json()

    def check_update_object(self, obj, frame):
        """`obj` is {"id","timestamp","price"} equal to the stream Frame."""
        self.assertEqual(list(obj), ["id", "timestamp", "price"], repr(obj))
        self.assertIsInstance(obj["id"], int, "id must be a JSON number")
        self.assertNotIsInstance(obj["price"], bool)
        self.assertIsInstance(obj["price"], (int, float))
        self.assertEqual((obj["id"], obj["timestamp"], obj["price"]),
                         (frame.id, frame.ts_text, frame.price))


class BeforeFirstPriceTest(RouteCase):
    def setUp(self):
        self.up = self.start_upstream()
        self.up.pause()  # 500 from the start
        self.svc = self.start_service(self.up)
        self.assertTrue(self.up.wait_requests(2, 5))

    def test_price_is_503_before_the_first(self):
        self.assertEqual(list(self.get_json(self.svc, "/api/v1/price", 503)),
                         ["error"])

    def test_prices_is_empty_before_the_first(self):
        self.assertEqual(self.get_json(self.svc, "/api/v1/prices"), [])

    def test_readyz_is_starting_and_healthz_ok(self):
        self.assertEqual(self.get_json(self.svc, "/readyz", 503),
                         {"status": "starting"})
        self.assertEqual(self.get_json(self.svc, "/healthz"),
                         {"status": "ok"}, "liveness with the upstream down")

    def test_readyz_becomes_ok_with_the_first_price(self):
        self.up.resume()
        self.wait_until(lambda: self.request(self.svc, "GET", "/readyz")
                        .status == 200, 3, "/readyz 200 after a price")
        self.assertEqual(self.get_json(self.svc, "/readyz"), {"status": "ok"})


class PriceTest(RouteCase):
    interval = "100ms"

    def test_price_equals_the_latest_stream_frame(self):
        up = self.start_upstream()
        svc = self.start_service(up)
        ref = self.collect(svc)
        self.assertTrue(ref.wait_updates(3, 5))
        self.pause_upstream(up, ref)
        latest = self.frames(ref.updates())[-1]
        obj = self.get_json(svc, "/api/v1/price")
        self.check_update_object(obj, latest)
        stream = self.open_ok_stream(svc)
        self.assertEqual(self.read_frames(stream, 1)[0].raw, latest.raw)
        up.resume()
        self.assertTrue(ref.wait_id_above(latest.id, 3))
        self.wait_until(lambda: self.get_json(svc, "/api/v1/price")["id"]
                        > latest.id, 3, "/api/v1/price to follow updates")

    def test_prices_is_the_whole_buffer_oldest_first(self):
        up = self.start_upstream()
        svc = self.start_service(up, "--history-max", "5")
        ref = self.collect(svc)
        self.assertTrue(ref.wait_updates(8, 5))
        self.pause_upstream(up, ref)
        frames = self.frames(ref.updates())
        got = self.get_json(svc, "/api/v1/prices")
        self.assertIsInstance(got, list)
        self.assertEqual(len(got), 5, "want the 5 newest: %r" % got)
        for obj, frame in zip(got, frames[-5:]):
            self.check_update_object(obj, frame)

    def test_prices_since_is_inclusive_by_timestamp(self):
        up = self.start_upstream()
        svc = self.start_service(up, "--history-max", "5")
        ref = self.collect(svc)
        self.assertTrue(ref.wait_updates(8, 5))
        self.pause_upstream(up, ref)
        frames = self.frames(ref.updates())[-5:]
        at = frames[2].ts_ms
        cases = [
            ("%d.%03d" % (at // 1000, at % 1000), frames[2:]),
            ("%d.%03d" % ((at + 1) // 1000, (at + 1) % 1000), frames[3:]),
            ("%d" % (frames[0].ts_ms // 1000), frames),
            ("0", frames),
            ("%d" % (time.time() + 3600), []),  # future within a day
        ]
        for since, want in cases:
            with self.subTest(since=since):
                got = self.get_json(svc, "/api/v1/prices?since=" + since)
                self.assertEqual(len(got), len(want), repr(got))
                for obj, frame in zip(got, want):
                    self.check_update_object(obj, frame)

    def test_prices_bad_since_is_400(self):
        up = self.start_upstream()
        svc = self.start_service(up)
        self.assertTrue(up.wait_valid(1, 5))
        for since in BAD_SINCE + ["%d" % (time.time() + 2 * 86400)]:
            with self.subTest(since=since):
                response = self.request(svc, "GET",
                                        "/api/v1/prices?since=" +
                                        since.replace(" ", "%20"))
                self.assert_json_error(response, 400)
                self.assertEqual(
                    response.header("Access-Control-Allow-Origin"), "*")


class InfoTest(RouteCase):
    def test_info_reports_the_configuration(self):
        up = self.start_upstream()
        svc = self.start_service(up, "--history-ttl", "90s", "--history-max",
                                 "7", "--heartbeat", "700ms",
                                 interval="250ms")
        info = self.get_json(svc, "/api/v1/info")
        self.assertEqual(sorted(info), ["heartbeat_ms", "history_max",
                                        "history_ttl_ms", "interval_ms",
                                        "mode", "version"])
        self.assertEqual({k: v for k, v in info.items() if k != "version"},
                         {"interval_ms": 250, "history_ttl_ms": 90000,
                          "history_max": 7, "heartbeat_ms": 700,
                          "mode": "single"})
        self.assertIsInstance(info["version"], str)
        self.assertEqual(info["version"], version(),
                         "the version of --version")

    def test_default_history_max_follows_ttl_and_interval(self):
        up = self.start_upstream()
        svc = self.start_service(up, "--history-ttl", "10s",
                                 interval="250ms")
        info = self.get_json(svc, "/api/v1/info")
        self.assertEqual(info["history_max"], 41, "ceil(10 s / 250 ms) + 1")
        self.assertEqual(info["heartbeat_ms"], 15000, "the default")


class ReadyzTest(RouteCase):
    interval = "200ms"

    def test_stale_after_three_intervals_without_a_price(self):
        up = self.start_upstream()
        svc = self.start_service(up)
        self.assertTrue(up.wait_valid(3, 5))
        self.wait_until(lambda: self.request(svc, "GET", "/readyz")
                        .status == 200, 2, "/readyz 200")
        self.assertEqual(self.get_json(svc, "/readyz"), {"status": "ok"})
        up.pause()
        last_good = up.served()[-1][0]
        deadline = time.monotonic() + 3
        while True:
            body = self.get_json(svc, "/readyz")
            if body.get("status") == "stale":
                break
            self.assertEqual(body, {"status": "ok"})
            self.assertLess(time.monotonic(), deadline, "never stale")
            time.sleep(0.05)
        became_stale = time.time() - last_good
        self.assertLess(became_stale, 1.2, "stale only %.2f s after the last "
                        "price (3 intervals = 0.6 s)" % became_stale)
        self.assertEqual(sorted(body), ["last_price_age_s", "status"])
        age = body["last_price_age_s"]
        self.assertIsInstance(age, (int, float))
        self.assertGreater(age, 0.6)
        time.sleep(0.5)
        later = self.get_json(svc, "/readyz")
        self.assertEqual(later["status"], "stale")
        self.assertGreater(later["last_price_age_s"], age + 0.3,
                           "the age must grow")
        self.assertEqual(self.get_json(svc, "/healthz"), {"status": "ok"})
        up.resume()
        self.wait_until(lambda: self.request(svc, "GET", "/readyz")
                        .status == 200, 3,
                        "/readyz ok again after the upstream recovered")

    def test_draining_after_sigterm_on_an_open_connection(self):
        up = self.start_upstream()
        svc = self.start_service(up, grace="2s")
        self.assertTrue(up.wait_valid(2, 5))
        conn = RawConnection(svc.port)
        self.addCleanup(conn.close)
        conn.send(build_request("GET", "/readyz"))
        response = conn.read_body(conn.read_head())
        self.assertEqual(response.status, 200, repr(response))
        svc.signal(signal.SIGTERM)
        # Draining starts once the signal is handled, which a slowed service
        # (ASan under load) may take a moment to do: ask until 1.5 s, well
        # within the 2 s grace.
        deadline = time.monotonic() + 1.5
        while True:
            conn.send(build_request("GET", "/readyz"))
            response = conn.read_body(conn.read_head())
            if response.status != 200 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        self.assertEqual(response.status, 503, repr(response))
        self.assertEqual(response.json(), {"status": "draining"})
        # New connections are refused during the grace period.
        try:
            fresh = RawConnection(svc.port, timeout=2)
        except ConnectionRefusedError:
            pass
        else:
            self.addCleanup(fresh.close)
            try:
                fresh.send(build_request("GET", "/healthz"))
                closed, n = fresh.drain_until_closed(2)
            except OSError:
                closed, n = True, 0
            self.assertTrue(closed and n == 0, "a new connection was served "
                            "after SIGTERM (%d bytes)" % n)
        self.assertEqual(svc.wait(5), 0, "exit after the 2 s grace")


class CommonBehaviourTest(RouteCase):
    """With a 10 s interval nothing changes during a test: one price."""
    interval = "10s"

    def setUp(self):
        self.up = self.start_upstream()
        self.svc = self.start_service(self.up)
        self.assertTrue(self.up.wait_valid(1, 5))
        stream = SseStream.open(self.svc.port)  # the price is in
        try:
            stream.updates(1, 3)
        finally:
            stream.close()

    @staticmethod
    def without_date(response):
        return [(k.lower(), v) for k, v in response.headers
                if k.lower() != "date"]

    def test_head_is_get_without_a_body(self):
        for target in ROUTES:
            with self.subTest(target=target):
                if target == "/stream":
                    got = self.open_stream(self.svc).response
                else:
                    got = self.request(self.svc, "GET", target)
                conn = RawConnection(self.svc.port)
                self.addCleanup(conn.close)
                conn.send(build_request("HEAD", target))
                head = conn.read_head()
                self.assertEqual(head.status, got.status)
                # HEAD may leave out Transfer-Encoding (RFC 9110, 9.3.2).
                self.assertEqual(
                    self.without_date(head),
                    [h for h in self.without_date(got)
                     if h[0] != "transfer-encoding" or
                     head.header("Transfer-Encoding") is not None])
                # No body: nothing more arrives, or a next request's answer
                # comes right after the head.
                if target == "/stream":
                    try:
                        conn.recv_some(time.monotonic() + 0.3)
                    except socket.timeout:
                        pass
                    self.assertEqual(conn.buf, b"", "HEAD sent a body")
                else:
                    conn.send(build_request("GET", target))
                    nxt = conn.read_body(conn.read_head())
                    self.assertEqual(nxt.status, got.status,
                                     "HEAD sent a body? %r" % nxt)
                    self.assertEqual(nxt.body, got.body, "HEAD sent a body?")

    def test_options_is_a_preflight_on_every_route(self):
        for target in ROUTES:
            with self.subTest(target=target):
                response = self.request(
                    self.svc, "OPTIONS", target,
                    headers=[("Origin", "https://example.org"),
                             ("Access-Control-Request-Method", "GET")])
                self.assertEqual(response.status, 204, repr(response))
                self.assertEqual(
                    response.header("Access-Control-Allow-Methods"),
                    "GET, HEAD, OPTIONS")
                self.assertEqual(
                    response.header("Access-Control-Allow-Headers"),
                    "Last-Event-ID")
                self.assertEqual(response.header("Access-Control-Max-Age"),
                                 "600")
                self.assertEqual(
                    response.header("Access-Control-Allow-Origin"), "*")
        self.assert_json_error(self.request(self.svc, "OPTIONS",
                                            "/api/v1/nope"), 404)

    def test_post_is_405_with_allow_on_every_route(self):
        for target in ROUTES:
            with self.subTest(target=target):
                response = self.request(self.svc, "POST", target,
                                        headers=[("Content-Length", "0")])
                self.assert_json_error(response, 405)
                self.assertEqual(response.header("Allow"), "GET, HEAD, OPTIONS")
                self.assertEqual(
                    response.header("Access-Control-Allow-Origin"), "*")

    def test_cors_origin_on_every_answer(self):
        for target in JSON_ROUTES + ["/", "/nope"]:
            for method in ("GET", "HEAD", "OPTIONS"):
                with self.subTest(method=method, target=target):
                    response = self.request(self.svc, method, target)
                    self.assertEqual(
                        response.header("Access-Control-Allow-Origin"), "*",
                        repr(response))

    def test_several_requests_on_one_connection(self):
        conn = RawConnection(self.svc.port)
        self.addCleanup(conn.close)
        for method, target, status in [
                ("GET", "/healthz", 200), ("GET", "/api/v1/info", 200),
                ("HEAD", "/", 200), ("GET", "/nope", 404),
                ("GET", "/api/v1/prices", 200), ("OPTIONS", "/readyz", 204),
                ("GET", "/api/v1/price", 200), ("GET", "/readyz", 200)]:
            conn.send(build_request(method, target))
            response = conn.read_body(conn.read_head(), method)
            self.assertEqual(response.status, status,
                             "%s %s on a reused connection -> %r"
                             % (method, target, response))
            self.assertNotEqual((response.header("Connection") or "").lower(),
                                "close", repr(response))

    @unittest.skipUnless(os.environ.get("BTCSTREAM_TEST_SLOW") == "1",
                         "the idle timeout is 30 s and not configurable; "
                         "set BTCSTREAM_TEST_SLOW=1 to run")
    def test_idle_keep_alive_connection_is_closed_after_30_s(self):
        conn = RawConnection(self.svc.port, timeout=40)
        self.addCleanup(conn.close)
        conn.send(build_request("GET", "/healthz"))
        self.assertEqual(conn.read_body(conn.read_head()).status, 200)
        started = time.monotonic()
        closed, n = conn.drain_until_closed(35)
        self.assertTrue(closed, "an idle connection open for 35 s")
        self.assertGreater(time.monotonic() - started, 25)
        self.assertEqual(n, 0, "bytes sent on an idle connection")

    def test_half_a_request_head_is_disconnected(self):
        conn = RawConnection(self.svc.port, timeout=15)
        self.addCleanup(conn.close)
        conn.send(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        started = time.monotonic()
        closed, _ = conn.drain_until_closed(12.5)
        self.assertTrue(closed, "a half request head kept the connection "
                        "open for 12.5 s (the head timeout is 10 s)")
        self.assertGreater(time.monotonic() - started, 5,
                           "closed too early for a 10 s head timeout")


class CorsOriginTest(RouteCase):
    def test_configured_origin_and_vary_on_every_answer(self):
        up = self.start_upstream()
        svc = self.start_service(up, "--cors-origin", "https://example.com")
        self.assertTrue(up.wait_valid(1, 5))
        answers = []
        for target in ROUTES + ["/nope", "/api/v1/prices?since=x"]:
            for method in ("GET", "HEAD", "OPTIONS", "POST"):
                if method == "GET" and target == "/stream":
                    answers.append((method, target, self.open_stream(
                        svc, headers=[("Origin", "https://example.com")])
                        .response))
                    continue
                answers.append((method, target, self.request(
                    svc, method, target,
                    headers=[("Origin", "https://example.com"),
                             ("Content-Length", "0")])))
        for method, target, response in answers:
            with self.subTest(method=method, target=target):
                self.assertEqual(
                    response.header("Access-Control-Allow-Origin"),
                    "https://example.com", repr(response))
                vary = ",".join(response.headers_named("Vary"))
                self.assertIn("origin", [v.strip().lower()
                                         for v in vary.split(",")],
                              repr(response))


class MaxHttpConnectionsTest(RouteCase):
    def open_idle(self, svc):
        """A kept-alive connection that holds one slot. Asked again while
        the slot of the harness's readiness probe (Service.start connects
        and closes at once) may not be given back yet: the server sees
        that close asynchronously, and CI once refused the third idle
        connection for it. A slot that never comes back still fails."""
        deadline = time.monotonic() + 3
        while True:
            conn = RawConnection(svc.port)
            self.addCleanup(conn.close)
            # Not a probe: over the cap a probe is answered, then closed.
            conn.send(build_request("GET", "/api/v1/info"))
            response = conn.read_body(conn.read_head())
            if response.status != 503 or time.monotonic() > deadline:
                break
            conn.close()
            time.sleep(0.05)
        self.assertEqual(response.status, 200, repr(response))
        return conn

    def refused(self, svc):
        conn = RawConnection(svc.port)
        self.addCleanup(conn.close)
        try:
            conn.send(build_request("GET", "/api/v1/info"))
        except OSError:
            pass
        response = conn.read_body(conn.read_head())
        return conn, response

    def test_beyond_the_cap_gets_503_and_is_closed(self):
        up = self.start_upstream()
        svc = self.start_service(up, "--max-http-connections", "3")
        idle = [self.open_idle(svc) for _ in range(3)]
        conn, response = self.refused(svc)
        self.assert_json_error(response, 503)
        self.assertRegex(response.header("Retry-After") or "", r"\A\d+\Z",
                         repr(response))
        self.assertEqual(response.header("Access-Control-Allow-Origin"), "*")
        closed, _ = conn.drain_until_closed(2)
        self.assertTrue(closed, "the refused connection must be closed")
        # The idle ones still work.
        for c in idle[1:]:
            c.send(build_request("GET", "/healthz"))
            self.assertEqual(c.read_body(c.read_head()).status, 200)
        idle[0].close()
        deadline = time.monotonic() + 3
        while True:
            conn, response = self.refused(svc)
            if response.status == 200:
                break
            self.assertLess(time.monotonic(), deadline,
                            "no slot after an idle connection closed")
            conn.close()
            time.sleep(0.1)

    def test_probes_are_answered_beyond_the_cap_then_closed(self):
        # A flood of idle connections must not fail a healthy process's
        # liveness probe (and get it restarted with all its streams).
        up = self.start_upstream()
        svc = self.start_service(up, "--max-http-connections", "3")
        for _ in range(3):
            self.open_idle(svc)
        def ask(method, target):
            conn = RawConnection(svc.port)
            self.addCleanup(conn.close)
            conn.send(build_request(method, target))
            head = conn.read_head()
            return conn, head if method == "HEAD" else conn.read_body(head)

        for method, target in (("GET", "/healthz"), ("HEAD", "/healthz"),
                               ("GET", "/readyz")):
            with self.subTest(method=method, target=target):
                conn, response = ask(method, target)
                if target == "/healthz":
                    self.assertEqual(response.status, 200, repr(response))
                else:  # ok, or starting before the first price: its own
                    self.assertRegex(response.body.decode(),
                                     r'"status":"(ok|starting)"')
                self.assertEqual((response.header("Connection") or "").lower(),
                                 "close", repr(response))
                closed, _ = conn.drain_until_closed(2)
                self.assertTrue(closed, "a probe over the cap is closed")
        # Anything else, a probe's path with another method included: 503.
        for method, target in (("GET", "/metrics"), ("GET", "/"),
                               ("POST", "/healthz")):
            with self.subTest(method=method, target=target):
                _, response = ask(method, target)
                self.assert_json_error(response, 503)
                self.assertIn("too many connections",
                              response.body.decode(), repr(response))

    def test_new_streams_are_served_beyond_the_cap(self):
        # A flood of idle connections must not keep new clients out:
        # streams are bounded by --max-clients alone.
        up = self.start_upstream()
        svc = self.start_service(up, "--max-http-connections", "3")
        for _ in range(3):
            self.open_idle(svc)
        _, refused = self.refused(svc)
        self.assert_json_error(refused, 503)
        streams = [self.open_ok_stream(svc) for _ in range(2)]
        for s in streams:
            self.read_frames(s, 2)

    def test_streams_do_not_count_against_the_cap(self):
        up = self.start_upstream()
        svc = self.start_service(up, "--max-http-connections", "3")
        streams = [self.open_ok_stream(svc) for _ in range(4)]
        for s in streams:
            self.read_frames(s, 1)
        idle = [self.open_idle(svc) for _ in range(3)]
        _, response = self.refused(svc)
        self.assert_json_error(response, 503)
        for s in streams:  # unaffected
            self.read_frames(s, 1)


if __name__ == "__main__":
    unittest.main()
