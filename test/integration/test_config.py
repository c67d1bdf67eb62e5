"""Configuration (DESIGN.md, "Configuration"): every flag also as
BTCSTREAM_<FLAG>, a flag wins over the environment, bad values exit 2 naming
the flag, --help and --version."""

import os
import re
import socket
import subprocess
import tempfile
import unittest

from case import ServiceCase
from service import binary_path, clean_env

# Every flag of the DESIGN.md table (and the two new ones of the contract).
DESIGN_FLAGS = ["--listen", "--interval", "--history-ttl", "--history-max",
                "--upstream-url", "--upstream-ca", "--api-key",
                "--api-key-file", "--web-root", "--heartbeat", "--retry",
                "--client-queue", "--stall-timeout", "--max-clients",
                "--cors-origin", "--redis", "--log-format", "--log-level",
                "--io-threads", "--actor-threads"]
NEW_FLAGS = ["--shutdown-grace", "--max-http-connections", "--actor-policy"]

LOCAL_URL = "http://127.0.0.1:9/index/cc/v1/latest/tick"

# (flag, bad value): each must exit 2 with a message naming the flag.
BAD_VALUES = [
    ("--interval", "0s"), ("--interval", "5"), ("--interval", "abc"),
    ("--history-ttl", "-1s"), ("--history-max", "0"), ("--history-max", "x"),
    ("--client-queue", "10"), ("--client-queue", "1XB"),
    ("--listen", "nonsense"), ("--listen", "127.0.0.1:99999"),
    ("--upstream-url", "ftp://x"), ("--log-level", "loud"),
    ("--io-threads", "0"), ("--max-clients", "0"),
    ("--api-key-file", "/nonexistent"), ("--upstream-ca", "/nonexistent"),
    ("--actor-policy", "random"),
    # Over a year: the timers count nanoseconds and would wrap.
    ("--stall-timeout", "9999999h"), ("--heartbeat", "8761h"),
    ("--max-stream-age", "9999999h"),
    # A default --history-max over its maximum (25,920,001 entries).
    ("--history-ttl", "720h --interval 100ms"),
    # A name, not an address: found out only at the bind, it exited 1 (and a
    # service manager restarted it) instead of 2.
    ("--listen", "localhost:8080"), ("--admin-listen", "localhost:9"),
    ("--listen", "300.1.1.1:8080"), ("--listen", "[::1]"),
    ("--listen", "[127.0.0.1]:8080"),
    # A state file that could not be written at shutdown (the buffer lost).
    ("--state-file", "/nonexistent/state.json"),
    ("--state-file", "/"), ("--api-key-file", "/"),
]

# One bad value per flag, given through the environment instead.
BAD_ENV = [
    ("--listen", "nonsense"), ("--interval", "abc"),
    ("--history-ttl", "-1s"), ("--history-max", "0"),
    ("--upstream-url", "ftp://x"), ("--upstream-ca", "/nonexistent"),
    ("--api-key-file", "/nonexistent"), ("--heartbeat", "abc"),
    ("--retry", "abc"), ("--client-queue", "1XB"),
    ("--stall-timeout", "abc"), ("--max-clients", "0"),
    ("--log-format", "xml"), ("--log-level", "loud"),
    ("--io-threads", "0"), ("--actor-threads", "0"),
    ("--shutdown-grace", "abc"), ("--max-http-connections", "0"),
    ("--actor-policy", "fifo"),
]


def env_name(flag):
    return "BTCSTREAM_" + flag[2:].upper().replace("-", "_")


def run(args, env=None, timeout=5.0):
    """Runs the binary; returns (exit status or None if it kept running,
    stdout, stderr)."""
    proc = subprocess.Popen([binary_path()] + args, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=clean_env(env))
    try:
        out, err = proc.communicate(timeout=timeout)
        return proc.returncode, out.decode("utf-8", "replace"), \
            err.decode("utf-8", "replace")
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate(timeout=5)
        return None, out.decode("utf-8", "replace"), \
            err.decode("utf-8", "replace")


def with_defaults(args):
    """Safe defaults (loopback, no real upstream) unless `args` has them."""
    extra = []
    if "--listen" not in args:
        extra += ["--listen", "127.0.0.1:0"]
    if "--upstream-url" not in args:
        extra += ["--upstream-url", LOCAL_URL]
    return extra + args


class BadValueTest(unittest.TestCase):
    def test_bad_flag_values_exit_2_naming_the_flag(self):
        for flag, value in BAD_VALUES:
            with self.subTest(flag=flag, value=value):
                code, out, err = run(with_defaults([flag] + value.split()))
                self.assertEqual(code, 2, "%s %s -> exit %s; stderr %r"
                                 % (flag, value, code, err[-300:]))
                self.assertIn(flag, err, "the message must name the flag")

    def test_unknown_flag_exits_2(self):
        code, out, err = run(with_defaults(["--no-such-flag", "1"]))
        self.assertEqual(code, 2, err)
        self.assertIn("--no-such-flag", err)

    def test_bad_environment_values_exit_2(self):
        for flag, value in BAD_ENV:
            name = env_name(flag)
            with self.subTest(env=name, value=value):
                args = [] if flag == "--listen" else ["--listen",
                                                      "127.0.0.1:0"]
                if flag != "--upstream-url":
                    args += ["--upstream-url", LOCAL_URL]
                code, out, err = run(args, env={name: value})
                self.assertEqual(code, 2, "%s=%s -> exit %s; stderr %r"
                                 % (name, value, code, err[-300:]))
                self.assertTrue(flag in err or name in err,
                                "the message must name %s or %s: %r"
                                % (flag, name, err))

    def test_a_stray_word_is_refused(self):
        # It used to be ignored: `btcstream 127.0.0.1:9000` served on the
        # default 0.0.0.0:8080.
        code, out, err = run(with_defaults(["127.0.0.1:9000"]))
        self.assertEqual(code, 2, err)
        self.assertIn("not a flag", err)

    def test_an_abbreviated_flag_is_refused(self):
        code, out, err = run(with_defaults(["--heal"]))
        self.assertEqual(code, 2, err)
        self.assertIn("--heal", err)

    def test_a_bad_setting_fails_a_healthcheck_with_1_not_2(self):
        # Docker reads a health check's 2 as reserved; a probe says 0 or 1.
        code, out, err = run(["--healthcheck", "--interval", "5"])
        self.assertEqual(code, 1, err)
        self.assertIn("--interval", err)

    def test_port_in_use_names_listen(self):
        sock = socket.socket()
        self.addCleanup(sock.close)
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        port = sock.getsockname()[1]
        code, out, err = run(with_defaults(["--listen",
                                            "127.0.0.1:%d" % port]))
        self.assertIsNotNone(code, "kept running on a port in use")
        self.assertNotEqual(code, 0)
        self.assertIn("--listen", err)


class HelpAndVersionTest(unittest.TestCase):
    def test_help_lists_every_flag(self):
        code, out, err = run(["--help"])
        self.assertEqual(code, 0, err)
        for flag in DESIGN_FLAGS + NEW_FLAGS:
            with self.subTest(flag=flag):
                self.assertRegex(out, r"(?m)^\s*%s\b" % re.escape(flag),
                                 "--help does not list %s" % flag)

    def test_version(self):
        code, out, err = run(["--version"])
        self.assertEqual(code, 0, err)
        self.assertRegex(out, r"\Abtcstream \d+\.\d+\.\d+\S*\n?\Z")


class EnvironmentTest(ServiceCase):
    def info(self, svc):
        from client import http_request
        response = http_request(svc.port, "GET", "/api/v1/info")
        self.assertEqual(response.status, 200, repr(response))
        return response.json()

    def test_environment_configures_what_info_shows(self):
        up = self.start_upstream()
        svc = self.start_service(up, interval="", env={
            "BTCSTREAM_INTERVAL": "150ms", "BTCSTREAM_HISTORY_TTL": "2min",
            "BTCSTREAM_HISTORY_MAX": "9", "BTCSTREAM_HEARTBEAT": "1500ms"})
        self.assertEqual({k: v for k, v in self.info(svc).items()
                          if k != "version"},
                         {"interval_ms": 150, "history_ttl_ms": 120000,
                          "history_max": 9, "heartbeat_ms": 1500,
                          "mode": "single"})

    def test_a_misspelt_variable_is_warned_about_and_an_empty_one_unset(self):
        up = self.start_upstream()
        svc = self.start_service(up, interval="", env={
            "BTCSTREAM_HISTORYTTL": "2min", "BTCSTREAM_interval": "150ms",
            "BTCSTREAM_INTERVAL": "250ms", "BTCSTREAM_HISTORY_MAX": "",
            "BTCSTREAM_SOME_TOOL": "x"})
        log = svc.log()
        self.assertIn("BTCSTREAM_HISTORYTTL names no flag (ignored): did you "
                      "mean BTCSTREAM_HISTORY_TTL?", log)
        self.assertIn("BTCSTREAM_interval names no flag (ignored): did you "
                      "mean BTCSTREAM_INTERVAL?", log)
        # Not near any flag: a variable of some other tool, not a typo.
        self.assertNotIn("BTCSTREAM_SOME_TOOL", log)
        info = self.info(svc)
        # The empty BTCSTREAM_HISTORY_MAX is no setting: the default, derived.
        self.assertEqual((info["interval_ms"], info["history_ttl_ms"],
                          info["history_max"]), (250, 3600000, 14401))

    def test_an_empty_key_variable_does_not_hide_coindesk_api_key(self):
        code, out, err = run(with_defaults([]), env={
            "BTCSTREAM_API_KEY": "", "COINDESK_API_KEY": "k1"}, timeout=1.5)
        self.assertIsNone(code, err)  # it serves
        self.assertIn("api_key=<redacted>", err)

    def test_a_flag_wins_over_the_environment(self):
        up = self.start_upstream()
        svc = self.start_service(up, "--history-max", "11", "--heartbeat",
                                 "2s", interval="250ms", env={
                                     "BTCSTREAM_INTERVAL": "150ms",
                                     "BTCSTREAM_HISTORY_MAX": "9",
                                     "BTCSTREAM_HEARTBEAT": "1500ms"})
        info = self.info(svc)
        self.assertEqual((info["interval_ms"], info["history_max"],
                          info["heartbeat_ms"]), (250, 11, 2000))

    def test_environment_for_upstream_cors_retry_and_web_root(self):
        up = self.start_upstream()
        web = tempfile.mkdtemp(prefix="btcstream-web-")
        with open(os.path.join(web, "index.html"), "w") as f:
            f.write("<!doctype html><title>env web root</title>\n")
        svc = self.start_service(None, env={
            "BTCSTREAM_UPSTREAM_URL": up.url,
            "BTCSTREAM_CORS_ORIGIN": "https://env.example",
            "BTCSTREAM_RETRY": "10s",
            "BTCSTREAM_WEB_ROOT": web})
        self.assertTrue(up.wait_requests(1, 5),
                        "BTCSTREAM_UPSTREAM_URL not used")
        stream = self.open_ok_stream(svc)  # reads the retry block
        self.assertEqual(stream.response.header(
            "Access-Control-Allow-Origin"), "https://env.example")
        retry = int(re.match(rb"retry: (\d+)", stream.raw).group(1))
        self.assertTrue(8000 <= retry <= 12000, "retry: %d for 10 s ± 20 %%"
                        % retry)
        page = self.request(svc, "GET", "/")
        self.assertEqual(page.status, 200)
        self.assertIn(b"env web root", page.body)

    def test_environment_for_max_clients(self):
        up = self.start_upstream()
        svc = self.start_service(up, env={"BTCSTREAM_MAX_CLIENTS": "1"})
        # --listen and --log-level are always given here (the harness needs
        # the port from the log); their environment twins are covered by
        # test_bad_environment_values_exit_2.
        self.open_ok_stream(svc)
        self.assert_json_error(self.request(svc, "GET", "/stream"), 503)

if __name__ == "__main__":
    unittest.main()
