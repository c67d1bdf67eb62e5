"""The CoinDesk API key (DESIGN.md, "Upstream" and "Configuration"): where it
comes from, that it travels only as `Authorization: Apikey <key>`, and that
it shows nowhere else: not in the URL, the log, or any HTTP answer."""

import os
import subprocess
import tempfile
import time
import unittest

from case import ServiceCase
from client import RawConnection, build_request
from service import binary_path, clean_env

KEY = "SECRET123"

ROUTES = ["/", "/stream", "/api/v1/price", "/api/v1/prices",
          "/api/v1/prices?since=0", "/api/v1/info", "/healthz", "/readyz",
          "/metrics", "/index.html", "/no-such-path",
          "/api/v1/prices?since=abc", "/stream?since=-1"]


class ApiKeySourceTest(ServiceCase):
    interval = "100ms"

    def key_file(self, text):
        fd, path = tempfile.mkstemp(prefix="btcstream-key-")
        with os.fdopen(fd, "w") as f:
            f.write(text)
        self.addCleanup(os.unlink, path)
        return path

    def authorization(self, *flags, env=None):
        """The Authorization headers the upstream saw (None: no header)."""
        up = self.start_upstream()
        self.start_service(up, *flags, env=env)
        self.assertTrue(up.wait_requests(2, 5), "the service did not poll")
        seen = set()
        for _, _, path, headers in up.requests():
            seen.add(headers.get("authorization"))
            self.assertNotIn(KEY, path, "the key is in the URL")
            self.assertNotIn("FILEKEY", path, "the key is in the URL")
        self.assertEqual(len(seen), 1, "the header changed: %r" % seen)
        return seen.pop()

    def test_flag(self):
        self.assertEqual(self.authorization("--api-key", KEY),
                         "Apikey " + KEY)

    def test_no_key_no_header(self):
        self.assertIsNone(self.authorization())

    def test_file_with_trailing_white_space(self):
        path = self.key_file("FILEKEY42 \t\n\n  \n")
        self.assertEqual(self.authorization("--api-key-file", path),
                         "Apikey FILEKEY42")

    def test_btcstream_api_key_env(self):
        self.assertEqual(self.authorization(env={"BTCSTREAM_API_KEY": "ENVKEY1"}),
                         "Apikey ENVKEY1")

    def test_btcstream_api_key_file_env(self):
        path = self.key_file("FILEKEY43\n")
        self.assertEqual(self.authorization(
            env={"BTCSTREAM_API_KEY_FILE": path}), "Apikey FILEKEY43")

    def test_coindesk_api_key_env(self):
        self.assertEqual(self.authorization(env={"COINDESK_API_KEY": "CDKEY1"}),
                         "Apikey CDKEY1")

    def test_flag_beats_both_environment_variables(self):
        self.assertEqual(self.authorization(
            "--api-key", KEY, env={"BTCSTREAM_API_KEY": "ENVKEY1",
                                   "COINDESK_API_KEY": "CDKEY1"}),
            "Apikey " + KEY)

    def test_key_file_flag_beats_the_environment(self):
        path = self.key_file("FILEKEY44\n")
        self.assertEqual(self.authorization(
            "--api-key-file", path, env={"BTCSTREAM_API_KEY": "ENVKEY1",
                                         "COINDESK_API_KEY": "CDKEY1"}),
            "Apikey FILEKEY44")

    def test_btcstream_env_beats_coindesk_env(self):
        self.assertEqual(self.authorization(
            env={"BTCSTREAM_API_KEY": "ENVKEY1", "COINDESK_API_KEY": "CDKEY1"}),
            "Apikey ENVKEY1")

    def test_key_and_key_file_together_is_an_error(self):
        path = self.key_file("FILEKEY45\n")
        proc = subprocess.run(
            [binary_path(), "--listen", "127.0.0.1:0", "--upstream-url",
             "http://127.0.0.1:9/index/cc/v1/latest/tick", "--api-key", KEY,
             "--api-key-file", path],
            env=clean_env(), capture_output=True, timeout=10)
        self.assertEqual(proc.returncode, 2, proc.stderr)
        err = proc.stderr.decode("utf-8", "replace")
        self.assertIn("--api-key", err)
        self.assertNotIn(KEY, err + proc.stdout.decode("utf-8", "replace"),
                         "the key is echoed in the error")
        self.assertNotIn("FILEKEY45", err)


class ApiKeySecrecyTest(ServiceCase):
    interval = "100ms"

    def all_answers(self, svc):
        """The answers (head and body bytes) to GET, HEAD, OPTIONS and POST
        on every route; a stream is read for 0.5 s."""
        out = []
        for target in ROUTES:
            for method in ("GET", "HEAD", "OPTIONS", "POST"):
                conn = RawConnection(svc.port)
                try:
                    headers = [("Origin", "https://example.org")]
                    if method == "POST":
                        headers.append(("Content-Length", "0"))
                    conn.send(build_request(method, target, headers))
                    response = conn.read_head(5)
                    if method == "GET" and response.status == 200 and \
                            target.startswith("/stream"):
                        deadline = time.monotonic() + 0.5
                        try:
                            while not conn.eof:
                                conn.recv_some(deadline)
                        except OSError:  # the deadline: streams stay open
                            pass
                        response.body = conn.buf
                    else:
                        conn.read_body(response, method, 5)
                    raw = ("%s %d %s\r\n" % (response.version,
                                              response.status,
                                              response.reason)).encode()
                    raw += "".join("%s: %s\r\n" % h for h in
                                   response.headers).encode("latin-1")
                    out.append((method, target, raw + b"\r\n" +
                                response.body))
                finally:
                    conn.close()
        return out

    def check_no_key_anywhere(self, up, svc):
        for method, target, raw in self.all_answers(svc):
            self.assertTrue(raw, "no answer to %s %s" % (method, target))
            self.assertNotIn(KEY.encode(), raw, "the key is in the answer to "
                             "%s %s" % (method, target))
        for _, _, path, _ in up.requests():
            self.assertNotIn(KEY, path, "the key is in the URL")
        self.assertNotIn(KEY, svc.service_log(), "the key is in the log")

    def test_key_never_shown_in_answers_or_log(self):
        up = self.start_upstream()
        svc = self.start_service(up, "--api-key", KEY)
        self.assertTrue(up.wait_valid(2, 5))
        self.check_no_key_anywhere(up, svc)
        for _, _, _, headers in up.requests():
            self.assertEqual(headers.get("authorization"), "Apikey " + KEY)

    def test_key_from_the_environment_never_shown(self):
        up = self.start_upstream()
        svc = self.start_service(up, env={"COINDESK_API_KEY": KEY})
        self.assertTrue(up.wait_valid(2, 5))
        self.check_no_key_anywhere(up, svc)

    def test_key_not_logged_when_the_upstream_answers_401(self):
        up = self.start_upstream()
        up.fail("status", status=401,
                message="Unauthorized: the api key is not valid")
        svc = self.start_service(up, "--api-key", KEY)
        self.assertTrue(up.wait_requests(1, 5))
        # The 401 is handled and logged before the log is searched.
        self.wait_until(lambda: "refused by the upstream (HTTP 401)"
                        in svc.service_log(), 5, "the 401 line in the log")
        self.check_no_key_anywhere(up, svc)


if __name__ == "__main__":
    unittest.main()
