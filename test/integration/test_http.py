"""Bad requests get JSON errors (DESIGN.md, "Public HTTP API")."""

import unittest

from case import ServiceCase


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
                self.assertEqual(response.header("Allow"), "GET, HEAD")

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

    def test_the_service_survives_bad_requests(self):
        self.test_garbage_request_line_is_400()
        self.test_oversized_request_head_is_431()
        stream = self.open_ok_stream(self.svc)
        self.read_frames(stream, 2)


if __name__ == "__main__":
    unittest.main()
