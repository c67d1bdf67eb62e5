"""Logs (issue 5, "Observability and operations"): one line per event on
stderr; `--log-format text` (`<ts> <level> <msg>`) or `json` (one object per
line with `ts` RFC 3339, `level`, `msg`); `--log-level` filters; the start
line shows the effective configuration with the key redacted; upstream
failures are logged with their outcome and rate-limited (the first of a run
and every 100th), recoveries at info; slow-consumer drops and rejections at
warn; connects and disconnects at debug; shutdown at info. The API key shows
in no line, at any level, in either format.
"""

import datetime
import json
import re
import socket
import time
import unittest

import prom
from case import ServiceCase
from service import Service, ServiceError

KEY = "LOGSECRET987"
LEVELS = ("debug", "info", "warn", "error")
TS_RE = re.compile(r"\A\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\Z")
TEXT_RE = re.compile(r"\A(\S+Z) (debug|info|warn|error) (\S.*)\Z")


def parse_ts(text):
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc)


class FixedPortService(Service):
    """A Service on a port chosen here: at --log-level warn or error there
    is no `listening on` line to read the port from (Service.start then
    only waits for the port to accept)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.port = prom.free_port()
        i = self.args.index("--listen")
        self.args[i + 1] = "127.0.0.1:%d" % self.port


class LogCase(ServiceCase):
    def lines(self, svc):
        """The service's own lines (without the harness's command line)."""
        return [line for line in svc.service_log().split("\n") if line]

    def json_lines(self, svc):
        out = []
        for line in self.lines(svc):
            try:
                obj = json.loads(line)
            except ValueError:
                self.fail("not a JSON line: %r" % line)
            self.assertIsInstance(obj, dict, line)
            self.assertEqual(list(obj), ["ts", "level", "msg"], line)
            self.assertRegex(obj["ts"], TS_RE)
            self.assertIn(obj["level"], LEVELS, line)
            self.assertIsInstance(obj["msg"], str, line)
            self.assertNotIn("\n", obj["msg"])
            out.append(obj)
        return out

    def text_lines(self, svc):
        out = []
        for line in self.lines(svc):
            m = TEXT_RE.match(line)
            self.assertIsNotNone(m, "not a `<ts> <level> <msg>` line: %r"
                                 % line)
            self.assertRegex(m.group(1), TS_RE)
            out.append({"ts": m.group(1), "level": m.group(2),
                        "msg": m.group(3)})
        return out

    def msgs(self, entries, level=None, contains=""):
        return [e["msg"] for e in entries
                if (level is None or e["level"] == level)
                and contains in e["msg"]]

    def start_fixed_port(self, upstream, *flags, log_level, env=None):
        svc = FixedPortService(upstream.url, *flags, interval=self.interval,
                               name=self.id().rsplit(".", 2)[-1],
                               log_level=log_level, env=env)
        self._services.append(svc)
        self.addCleanup(self._stop_and_check, svc)
        for attempt in range(3):  # the free port may be taken meanwhile
            try:
                return svc.start()
            except ServiceError:
                if attempt == 2 or "in use" not in svc.log():
                    svc.expect_unclean_exit = True
                    raise
                svc.port = prom.free_port()
                i = svc.args.index("--listen")
                svc.args[i + 1] = "127.0.0.1:%d" % svc.port

    def stop(self, svc):
        self.assertEqual(svc.stop(), 0)


class FormatTest(LogCase):
    interval = "100ms"

    def exercise(self, up, svc):
        """Connects, resumes, gets rejected, sees an upstream failure run
        and its recovery, then stops the service."""
        stream = self.open_ok_stream(svc)
        last = self.read_frames(stream, 2)[-1].id
        resumed = self.open_ok_stream(
            svc, headers=[("Last-Event-ID", str(last))])
        self.assertEqual(self.request(svc, "GET", "/stream").status, 503)
        self.assertEqual(self.request(
            svc, "GET", "/stream", [("Last-Event-ID", "nope")]).status, 400)
        resumed.close()
        stream.close()
        self.pause_upstream(up)
        up.resume()
        self.wait_until(lambda: "recovers after" in svc.log(), 5,
                        "the recovery line")
        self.request(svc, "GET", "/metrics")
        self.stop(svc)

    def check_events(self, entries, svc):
        start = self.msgs(entries, "info", "starts: config ")
        self.assertEqual(len(start), 1, entries)
        self.assertIn("api_key=<redacted>", start[0])
        self.assertTrue(self.msgs(entries, "info", "listening on "))
        self.assertEqual(len(self.msgs(
            entries, "debug", "http session opens a stream from ")), 2)
        self.assertEqual(len(self.msgs(
            entries, "debug", "sse session ends: client_closed")), 2)
        self.assertEqual(self.msgs(
            entries, "warn", "http session rejects a stream: at "
            "--max-clients"), ["http session rejects a stream: at "
                               "--max-clients"])
        self.assertEqual(len(self.msgs(
            entries, "warn", "http session rejects a stream: ")), 2)
        fail = self.msgs(entries, "warn", "fetcher gets no usable answer")
        self.assertTrue(fail)
        self.assertIn("(1 in a row): http_error (HTTP 500)", fail[0])
        self.assertTrue(self.msgs(entries, "info", "fetcher recovers after"))
        self.assertEqual(self.msgs(entries, "info", "btcstream stops on "),
                         ["btcstream stops on SIGTERM"])
        self.assertEqual(entries[-1]["msg"], "btcstream exits with code 0")
        self.assertNotIn(KEY, svc.service_log())
        now = datetime.datetime.now(datetime.timezone.utc)
        times = [parse_ts(e["ts"]) for e in entries]
        self.assertEqual(times, sorted(times), "timestamps go back")
        for t in times:
            self.assertLess(abs((now - t).total_seconds()), 60,
                            "a timestamp far from now (not UTC?)")

    def test_json_one_object_per_line(self):
        up = self.start_upstream()
        svc = self.start_service(up, "--log-format", "json", "--api-key",
                                 KEY, "--max-clients", "2")
        self.exercise(up, svc)
        self.check_events(self.json_lines(svc), svc)

    def test_text_lines(self):
        up = self.start_upstream()
        svc = self.start_service(up, "--api-key", KEY, "--max-clients", "2")
        self.exercise(up, svc)
        self.check_events(self.text_lines(svc), svc)

    def test_json_from_the_environment(self):
        up = self.start_upstream()
        svc = self.start_service(up, log_level=None,
                                 env={"BTCSTREAM_LOG_FORMAT": "json",
                                      "BTCSTREAM_LOG_LEVEL": "debug"})
        self.open_ok_stream(svc).close()
        self.wait_until(lambda: "sse session ends" in svc.log(), 5,
                        "the disconnect line")
        self.stop(svc)
        entries = self.json_lines(svc)
        self.assertTrue(self.msgs(entries, "debug", "opens a stream"))


class LevelTest(LogCase):
    interval = "10ms"  # frames fast enough to fill a slow client's queue

    def test_warn_hides_info_and_debug_and_keeps_drops_and_rejections(self):
        up = self.start_upstream()
        svc = self.start_fixed_port(up, "--client-queue", "4KiB",
                                    "--max-clients", "2", "--api-key", KEY,
                                    log_level="warn")
        ref = self.open_ok_stream(svc)
        self.open_non_reader(svc)
        self.wait_until(lambda: "drops a client" in svc.log(), 20,
                        "the slow consumer's drop")
        self.assertEqual(self.request(svc, "GET", "/stream?since=x").status,
                         400)
        ref.close()
        self.stop(svc)
        entries = self.text_lines(svc)
        self.assertEqual({e["level"] for e in entries}, {"warn"}, entries)
        self.assertEqual(self.msgs(entries, "warn", "drops a client"),
                         ["sse session drops a client: slow"])
        self.assertEqual(len(self.msgs(entries, "warn", "rejects a stream")),
                         1)
        self.assertNotIn("starts: config", svc.service_log())
        self.assertNotIn("listening on", svc.service_log())
        self.assertNotIn("stops on", svc.service_log())
        self.assertNotIn(KEY, svc.service_log())

    def test_error_hides_warn(self):
        up = self.start_upstream()
        up.pause()  # failures are warn
        svc = self.start_fixed_port(up, "--log-format", "json",
                                    log_level="error")
        self.assertTrue(up.wait_requests(5, 5))
        self.assertEqual(self.request(svc, "GET", "/stream?since=x").status,
                         400)
        self.stop(svc)
        self.assertEqual(self.lines(svc), [])

    def test_error_shows_the_refused_key(self):
        up = self.start_upstream()
        up.fail("status", status=401, message="bad key")
        svc = self.start_fixed_port(up, "--api-key", KEY, "--log-format",
                                    "json", log_level="error")
        self.assertTrue(up.wait_requests(1, 5))
        self.wait_until(lambda: "refused" in svc.log(), 5, "the 401 line")
        self.stop(svc)
        entries = self.json_lines(svc)
        self.assertEqual([e["level"] for e in entries], ["error"])
        self.assertIn("fetcher is refused by the upstream (HTTP 401)",
                      entries[0]["msg"])
        self.assertNotIn(KEY, svc.service_log())

    def test_connects_and_disconnects_only_at_debug(self):
        up = self.start_upstream()
        for level, shown in (("info", False), ("debug", True)):
            svc = self.start_service(up, log_level=level)
            stream = self.open_ok_stream(svc)
            last = self.read_frames(stream, 1)[-1].id
            stream.close()
            resumed = self.open_ok_stream(
                svc, headers=[("Last-Event-ID", str(last))])
            resumed.close()
            if shown:  # both closes seen, however slow the service
                self.wait_until(lambda: svc.log().count(
                    "sse session ends: client_closed") == 2, 5,
                    "two client_closed lines")
            else:
                time.sleep(0.3)
            self.stop(svc)
            entries = self.text_lines(svc)
            opens = self.msgs(entries, "debug", "http session opens a stream")
            ends = self.msgs(entries, "debug", "sse session ends: ")
            if not shown:
                self.assertEqual(opens + ends, [])
                self.assertFalse([e for e in entries
                                  if e["level"] == "debug"])
                continue
            self.assertEqual(opens, [
                "http session opens a stream from the latest update",
                "http session opens a stream from %d" % last])
            self.assertEqual(ends, ["sse session ends: client_closed"] * 2)


class StartLineTest(LogCase):
    interval = "100ms"

    def start_line(self, svc):
        self.stop(svc)
        lines = self.msgs(self.text_lines(svc), "info", "starts: config ")
        self.assertEqual(len(lines), 1)
        return lines[0]

    def test_effective_configuration_with_the_key_redacted(self):
        up = self.start_upstream()
        svc = self.start_service(up, "--api-key", KEY, "--history-max", "7",
                                 "--client-queue", "64KiB",
                                 "--max-clients", "33", "--retry", "2s")
        line = self.start_line(svc)
        for part in ("listen=127.0.0.1:0", "interval=100ms",
                     "history_max=7", "client_queue=65536", "max_clients=33",
                     "retry=2000ms", "api_key=<redacted>",
                     "upstream_url=" + up.url, "shutdown_grace=0ms",
                     "cors_origin=*"):
            self.assertIn(part, line)
        self.assertNotIn(KEY, svc.service_log())

    def test_no_key_is_none(self):
        up = self.start_upstream()
        line = self.start_line(self.start_service(up))
        self.assertIn("api_key=none", line)

    def test_key_from_the_environment_is_redacted_in_json(self):
        up = self.start_upstream()
        svc = self.start_service(up, "--log-format", "json",
                                 env={"COINDESK_API_KEY": KEY})
        self.open_ok_stream(svc).close()
        up.fail("status", status=500, count=2)
        up.fail("status", status=401)
        self.wait_until(lambda: "refused" in svc.log(), 5, "the 401 line")
        self.stop(svc)
        entries = self.json_lines(svc)
        start = self.msgs(entries, "info", "starts: config ")
        self.assertIn("api_key=<redacted>", start[0])
        self.assertNotIn(KEY, svc.service_log())
        self.assertTrue(self.msgs(entries, "error", "refused"))
        for _, _, _, headers in up.requests():
            self.assertEqual(headers.get("authorization"), "Apikey " + KEY)


class RateLimitTest(LogCase):
    interval = "20ms"  # 50 polls a second: past 100 failures in ~2 s

    def test_failures_logged_first_and_every_100th_then_recovery(self):
        up = self.start_upstream()
        svc = self.start_service(up)
        self.assertTrue(up.wait_valid(3, 5))
        up.pause()
        n = up.request_count
        self.assertTrue(up.wait_requests(n + 150, 15),
                        "fewer than 150 polls while failing")
        up.resume()
        self.wait_until(lambda: "recovers after" in svc.log(), 5,
                        "the recovery line")
        time.sleep(0.2)
        self.stop(svc)
        entries = self.text_lines(svc)
        # Split into runs: failure lines up to a recovery line.
        runs, current = [], []
        for e in entries:
            m = re.match(r"fetcher gets no usable answer \((\d+) in a row\): "
                         r"(\w+)", e["msg"])
            if m:
                self.assertEqual(e["level"], "warn")
                current.append((int(m.group(1)), m.group(2)))
                continue
            m = re.match(r"fetcher recovers after (\d+) failed requests\Z",
                         e["msg"])
            if m:
                self.assertEqual(e["level"], "info")
                runs.append((current, int(m.group(1))))
                current = []
        self.assertTrue(runs, "no recovery logged")
        longest = max(runs, key=lambda r: r[1])
        self.assertGreaterEqual(longest[1], 150)
        for lines, failed in runs:
            expected = [1] + list(range(100, failed + 1, 100))
            self.assertEqual([n for n, _ in lines], expected,
                             "a run of %d failures" % failed)
        lines, failed = longest
        self.assertIn("http_error", {o for _, o in lines})
        self.assertLess(len(lines), failed / 50,
                        "far fewer lines than failed requests")


if __name__ == "__main__":
    unittest.main()
