"""Bad requests get JSON errors (DESIGN.md, "Public HTTP API")."""

import time
import unittest

from case import ServiceCase
from client import RawConnection


class BadRequestTest(ServiceCase):
    def setUp(self):
        self.svc = self.start_service(self.start_upstream())

    def check_error(self, response, status):
        self.assert_json_error(response, status)
        self.assertEqual(response.header("Access-Control-Allow-Origin"), "*",
                         "CORS headers on errors too: %r" % response)

    def test_unknown_path_is_404(self):
        for target in ["/nope", "/stream/x", "/api/v0/price", "/index.htm"]:
            with self.subTest(target=target):
                self.check_error(self.request(self.svc, "GET", target), 404)

    def test_post_to_stream_is_405_with_allow(self):
        for method in ["POST", "PUT", "DELETE"]:
            with self.subTest(method=method):
                response = self.request(self.svc, method, "/stream",
                                        headers=[("Content-Length", "0")])
                self.check_error(response, 405)
                self.assertEqual(response.header("Allow"), "GET, HEAD, OPTIONS")

    def test_404_wins_over_405(self):
        response = self.request(self.svc, "POST", "/nope",
                                headers=[("Content-Length", "0")])
        self.check_error(response, 404)

    def test_options_on_stream_is_a_cors_preflight(self):
        response = self.request(self.svc, "OPTIONS", "/stream",
                                headers=[("Origin", "https://example.org")])
        self.assertEqual(response.status, 204, repr(response))
        self.assertEqual(response.header("Access-Control-Allow-Methods"),
                         "GET, HEAD, OPTIONS")
        self.assertEqual(response.header("Access-Control-Allow-Headers"),
                         "Last-Event-ID")
        self.assertEqual(response.header("Access-Control-Max-Age"), "600")
        self.assertEqual(response.header("Access-Control-Allow-Origin"), "*")
        self.check_error(self.request(self.svc, "OPTIONS", "/nope"), 404)

    def test_oversized_request_head_is_431(self):
        response = self.request(self.svc, "GET", "/stream",
                                headers=[("X-Big", "a" * 65536)])
        self.check_error(response, 431)

    def test_many_headers_over_the_limit_are_431(self):
        headers = [("X-H%d" % i, "v" * 100) for i in range(700)]  # ~75 KB
        self.check_error(self.request(self.svc, "GET", "/", headers), 431)

    def test_garbage_request_line_is_400(self):
        for raw in [b"GARBAGE\r\n\r\n", b"GET\r\n\r\n",
                    b"GET /stream HTTP/9\r\n\r\n",
                    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n"]:
            with self.subTest(raw=raw):
                response = self.request(self.svc, None, None, raw=raw)
                self.assertEqual(response.status, 400, repr(response))

    def test_http11_needs_exactly_one_host(self):
        # RFC 9112 3.2; HTTP/1.0 needs none.
        for raw in (b"GET /api/v1/info HTTP/1.1\r\n\r\n",
                    b"GET /api/v1/info HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"):
            with self.subTest(raw=raw):
                response = self.request(self.svc, None, None, raw=raw)
                self.check_error(response, 400)
                self.assertIn("Host", response.body.decode())
        response = self.request(self.svc, None, None,
                                raw=b"GET /api/v1/info HTTP/1.0\r\n\r\n")
        self.assertEqual(response.status, 200, repr(response))

    def test_an_absolute_form_target_is_served(self):
        # RFC 9112 3.2.2: what a proxy is sent; a server must accept it.
        response = self.request(self.svc, "GET",
                                "http://example.com/api/v1/info")
        self.assertEqual(response.status, 200, repr(response))
        self.assertIn(b"interval_ms", response.body)
        stream = self.open_ok_stream(
            self.svc, target="http://example.com:8080/stream")
        self.read_frames(stream, 1)

    def test_a_resume_parameter_given_twice_is_400(self):
        for target in ("/api/v1/prices?since=1&since=x",
                       "/api/v1/prices?since=x&since=1",
                       "/stream?since=1&since=2",
                       "/stream?lastEventId=1&lastEventId=1"):
            with self.subTest(target=target):
                response = self.request(self.svc, "GET", target)
                self.check_error(response, 400)
                self.assertIn("given more than once", response.body.decode())

    def test_expect_100_continue_is_answered_at_once_then_closed(self):
        # The body is never sent: the answer must not wait for it (the
        # head timeout is 10 s; the read below gives up after 3 s).
        conn = RawConnection(self.svc.port, timeout=3)
        self.addCleanup(conn.close)
        started = time.monotonic()
        conn.send(b"POST /api/v1/price HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Length: 2048\r\nExpect: 100-continue\r\n\r\n")
        response = conn.read_body(conn.read_head(3))
        self.check_error(response, 405)
        self.assertLess(time.monotonic() - started, 3)
        self.assertEqual((response.header("Connection") or "").lower(),
                         "close", repr(response))
        closed, _ = conn.drain_until_closed(3)
        self.assertTrue(closed, "the connection stays open for a body")

    def test_the_service_survives_bad_requests(self):
        self.test_garbage_request_line_is_400()
        self.test_oversized_request_head_is_431()
        stream = self.open_ok_stream(self.svc)
        self.read_frames(stream, 2)


if __name__ == "__main__":
    unittest.main()
