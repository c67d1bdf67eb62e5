"""`/metrics` (issue 5, "Observability and operations"): every value right,
not just present. The tests hold clients open, cause events, faults, slow and
stalled clients and rejections, and check that the numbers move exactly as
they should; the exposition passes `promtool check metrics`, and a real
Prometheus server scrapes the service as up.

Exactness needs stillness: the tests pause the fake upstream (it answers 500,
so no update is stored) or freeze the fetcher with a 429 + `Retry-After: 30`,
then compare. Values that a session updates after its write completes are
polled (bounded) until they settle, then checked not to move further.
"""

import os
import re
import shutil
import signal
import socket
import tempfile
import time
import unittest

import prom
import tools
from case import ServiceCase, timestamp_ms
from client import RawConnection, StreamClosed, build_request
from test_limits import TCP_ESTABLISHED, server_side_state

# Every family btcstream exports, with its type. The two `last_price_*`
# gauges and `buffer_oldest_age_seconds` exist only once there is a price.
FAMILIES = {
    "btcstream_sse_clients": "gauge",
    "btcstream_sse_max_clients": "gauge",
    "btcstream_sse_connections_total": "counter",
    "btcstream_sse_disconnects_total": "counter",
    "btcstream_sse_rejected_total": "counter",
    "btcstream_events_published_total": "counter",
    "btcstream_event_fanout_seconds": "histogram",
    "btcstream_event_delivery_seconds": "histogram",
    "btcstream_replayed_events_total": "counter",
    "btcstream_gap_events_total": "counter",
    "btcstream_upstream_requests_total": "counter",
    "btcstream_upstream_request_seconds": "histogram",
    "btcstream_upstream_skipped_ticks_total": "counter",
    "btcstream_last_price_age_seconds": "gauge",
    "btcstream_last_price_usd": "gauge",
    "btcstream_buffer_entries": "gauge",
    "btcstream_buffer_oldest_age_seconds": "gauge",
    "btcstream_http_requests_total": "counter",
    "btcstream_live_objects": "gauge",
    "btcstream_build_info": "gauge",
    "process_resident_memory_bytes": "gauge",
    "process_cpu_seconds_total": "counter",
    "process_open_fds": "gauge",
    "process_max_fds": "gauge",
    "process_start_time_seconds": "gauge",
}
ONLY_WITH_A_PRICE = {"btcstream_last_price_age_seconds",
                     "btcstream_last_price_usd",
                     "btcstream_buffer_oldest_age_seconds"}
# The fetcher, the buffer and the broadcaster: btcstream_live_objects
# "actor" count without clients (each stream adds its connection actor).
CORE_ACTORS = 3
REASONS = ("client_closed", "slow_consumer", "shutdown", "error")
REJECT_REASONS = ("max_clients", "bad_request")
OUTCOMES = ("ok", "http_error", "timeout", "invalid", "rate_limited",
            "tls_error", "connect_error")
HISTOGRAM_BOUNDS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                    0.25, 0.5, 1, 2.5, 5, 10, float("inf")]


class MetricsCase(ServiceCase):
    """ServiceCase with scrapes and settling checks."""

    scrapes = 0  # answered scrapes of this test, each a metrics/200

    def scrape(self, svc):
        s = prom.scrape(svc.port)
        self.scrapes += 1
        return s

    def wait_scrape(self, svc, check, timeout=5.0, what="the metrics"):
        """Scrapes until `check(scrape)` returns None (all right) and returns
        that scrape; fails with the last complaint after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            s = self.scrape(svc)
            complaint = check(s)
            if complaint is None:
                return s
            if time.monotonic() > deadline:
                self.fail("%s never settled within %.1f s: %s\nlast scrape:"
                          "\n%s" % (what, timeout, complaint, s.text))
            time.sleep(0.05)

    @staticmethod
    def expect(**wanted):
        """A check for wait_scrape: {"name" or ("name", {labels}): value}
        given as keyword arguments name=value or name=(labels, value)."""
        def check(s):
            for name, spec in wanted.items():
                labels, value = spec if isinstance(spec, tuple) else ({}, spec)
                got = s.get(name, **labels)
                if got != value:
                    return "%s%s is %r, expected %r" % (
                        name, labels or "", got, value)
            return None
        return check

    def disconnects(self, s):
        return {r: s.value("btcstream_sse_disconnects_total", reason=r)
                for r in REASONS}

    def outcomes(self, s):
        return {o: s.value("btcstream_upstream_requests_total", outcome=o)
                for o in OUTCOMES}

    def http_requests(self, s):
        return {(dict(k)["route"], dict(k)["code"]): v
                for k, v in s.series("btcstream_http_requests_total").items()}

    def assert_histogram(self, s, name):
        """Buckets exactly at the documented bounds, cumulative, +Inf equal
        to _count; returns _count."""
        buckets = s.buckets(name)
        self.assertEqual([b for b, _ in buckets], HISTOGRAM_BOUNDS, name)
        counts = [c for _, c in buckets]
        self.assertEqual(counts, sorted(counts), "%s not cumulative" % name)
        count = s.count(name)
        self.assertEqual(counts[-1], count, "%s +Inf bucket != _count" % name)
        self.assertGreaterEqual(s.value(name + "_sum"), 0)
        return count

    def wait_for_price(self, svc, timeout=5.0):
        self.wait_scrape(svc, lambda s: None if s.get(
            "btcstream_last_price_usd") is not None else "no price yet",
            timeout, "the first price")

    def get_json(self, svc, target):
        response = self.request(svc, "GET", target)
        self.assertEqual(response.status, 200, repr(response))
        return response.json()


class ExpositionTest(MetricsCase):
    def test_format_families_and_zero_start(self):
        up = self.start_upstream()
        up.pause()  # no price: the families that need one are absent
        svc = self.start_service(up)
        self.assertTrue(up.wait_requests(2, 5))
        response = self.request(svc, "GET", "/metrics")
        self.assertEqual(response.status, 200)
        self.assertEqual(response.header("Content-Type"),
                         "text/plain; version=0.0.4; charset=utf-8")
        s = prom.parse(response.body.decode("utf-8"))
        for name, kind in FAMILIES.items():
            if name in ONLY_WITH_A_PRICE:
                self.assertNotIn(name, s.types, "%s before any price" % name)
                continue
            self.assertEqual(s.types.get(name), kind, name)
            self.assertTrue(s.helps.get(name), "%s has no HELP" % name)
        self.assertEqual(set(s.types) - set(FAMILIES), set(),
                         "families this test does not know: document and "
                         "test them")
        self.assertTrue(all(n.startswith(("btcstream_", "process_"))
                            for n in s.order))
        # Counters start at 0, every label value present from the start.
        self.assertEqual(s.value("btcstream_sse_clients"), 0)
        self.assertEqual(s.value("btcstream_sse_connections_total"), 0)
        self.assertEqual(self.disconnects(s), dict.fromkeys(REASONS, 0))
        self.assertEqual(s.by_label("btcstream_sse_rejected_total", "reason"),
                         dict.fromkeys(REJECT_REASONS, 0))
        self.assertEqual(s.value("btcstream_events_published_total"), 0)
        self.assertEqual(s.value("btcstream_replayed_events_total"), 0)
        self.assertEqual(s.value("btcstream_gap_events_total"), 0)
        for h in ("btcstream_event_fanout_seconds",
                  "btcstream_event_delivery_seconds"):
            self.assertEqual(self.assert_histogram(s, h), 0, h)
        self.assertEqual(set(self.outcomes(s)), set(OUTCOMES))
        self.assertEqual(self.outcomes(s)["ok"], 0)
        # One request in flight at most: the first was counted before the
        # second went out.
        self.assertGreaterEqual(self.outcomes(s)["http_error"], 1)
        self.assertEqual(s.value("btcstream_buffer_entries"), 0)
        # Only (route, code) pairs that occurred: none before this scrape,
        # which counts itself only after it was rendered.
        self.assertEqual(self.http_requests(s), {})
        self.assertEqual(s.by_label("btcstream_live_objects", "kind"),
                         {"sse_session": 0, "http_session": 1,
                          "connection_actor": 0, "actor": CORE_ACTORS})
        version = self.get_json(svc, "/api/v1/info")["version"]
        self.assertEqual(s.series("btcstream_build_info"),
                         {frozenset({("version", version)}): 1})
        s2 = self.scrape(svc)
        self.assertEqual(self.http_requests(s2), {("metrics", "200"): 1,
                                                  ("info", "200"): 1})
        # With a price, the price and buffer-age gauges appear.
        up.resume()
        self.wait_for_price(svc)
        s3 = self.scrape(svc)
        for name in ONLY_WITH_A_PRICE:
            self.assertEqual(s3.types.get(name), "gauge", name)

    @unittest.skipIf(prom.promtool() is None, prom.MISSING)
    def test_promtool_check_metrics_passes_with_every_family(self):
        up = self.start_upstream()
        svc = self.start_service(up, "--max-clients", "2")
        ref = self.collect(svc)
        self.assertTrue(ref.wait_updates(3, 5))
        up.fail("status", status=500, count=1)
        up.fail("malformed", count=1)
        up.fail("status", status=429, count=1)
        self.wait_until(lambda: up.faults_pending == 0, 5, "the faults")
        ids = ref.ids()
        resumed = self.open_ok_stream(svc, headers=[("Last-Event-ID",
                                                     str(ids[0]))])
        self.assertEqual(self.request(svc, "GET", "/stream").status, 503)
        self.assertEqual(self.request(svc, "GET", "/stream?since=x").status,
                         400)
        resumed.close()
        for target in ("/", "/api/v1/price", "/api/v1/prices", "/healthz",
                       "/readyz", "/nope"):
            self.request(svc, "GET", target)
        self.assertTrue(ref.wait_updates(len(ids) + 3, 5))
        s = self.scrape(svc)
        self.assertEqual(set(s.types), set(FAMILIES))
        self.assertGreater(self.assert_histogram(
            s, "btcstream_event_delivery_seconds"), 0)
        result = prom.run_promtool("check", "metrics", stdin=s.text)
        self.assertEqual(result.returncode, 0,
                         "promtool check metrics:\n%s%s\n--- scrape:\n%s"
                         % (result.stdout, result.stderr, s.text))
        self.assertEqual((result.stdout + result.stderr).strip(), "",
                         "promtool complains")


class ClientMetricsTest(MetricsCase):
    def test_clients_connections_and_client_closed_move_exactly(self):
        up = self.start_upstream()
        svc = self.start_service(up)
        self.wait_for_price(svc)
        s = self.scrape(svc)
        self.assertEqual(s.value("btcstream_sse_clients"), 0)
        self.assertEqual(s.value("btcstream_sse_connections_total"), 0)
        n, k = 5, 2
        streams = [self.open_ok_stream(svc) for _ in range(n)]
        for st in streams:
            self.read_frames(st, 1)  # the latest update: subscribed
        s = self.wait_scrape(svc, lambda s: None if s.by_label(
            "btcstream_live_objects", "kind") == {
                "sse_session": n, "http_session": 1,
                "connection_actor": n, "actor": CORE_ACTORS + n} else "live objects %r" % s.by_label(
                    "btcstream_live_objects", "kind"))
        self.assertEqual(s.value("btcstream_sse_clients"), n)
        self.assertEqual(s.value("btcstream_sse_connections_total"), n)
        self.assertEqual(self.disconnects(s), dict.fromkeys(REASONS, 0))
        self.assertEqual(self.http_requests(s).get(("stream", "200")), n)

        for st in streams[:k]:
            st.close()
        s = self.wait_scrape(svc, self.expect(
            btcstream_sse_clients=n - k,
            btcstream_sse_disconnects_total=({"reason": "client_closed"}, k)))
        self.assertEqual(s.value("btcstream_sse_connections_total"), n)
        self.assertEqual(self.disconnects(s), {
            "client_closed": k, "slow_consumer": 0, "shutdown": 0,
            "error": 0})
        for st in streams[k:]:  # the others are still served
            self.read_frames(st, 1)

        for st in streams[k:]:
            st.close()
        s = self.wait_scrape(svc, lambda s: None if (
            s.value("btcstream_sse_clients") == 0
            and s.by_label("btcstream_live_objects", "kind") == {
                "sse_session": 0, "http_session": 1, "connection_actor": 0,
                "actor": CORE_ACTORS})
            else "clients %r, live objects %r" % (
                s.value("btcstream_sse_clients"),
                s.by_label("btcstream_live_objects", "kind")))
        self.assertEqual(self.disconnects(s)["client_closed"], n)
        self.assertEqual(s.value("btcstream_sse_connections_total"), n)
        time.sleep(0.3)
        s = self.scrape(svc)
        self.assertEqual(self.disconnects(s), {
            "client_closed": n, "slow_consumer": 0, "shutdown": 0,
            "error": 0}, "counted twice?")


class SlowConsumerMetricsTest(MetricsCase):
    interval = "10ms"  # ~9 KB/s of frames


    def check_dropped_once(self, svc, conn, ref, timeout):
        deadline = time.monotonic() + timeout
        while server_side_state(svc.port, conn.local_port) == TCP_ESTABLISHED:
            self.assertLess(time.monotonic(), deadline,
                            "the server kept a client that never reads")
            time.sleep(0.05)
        s = self.wait_scrape(svc, self.expect(
            btcstream_sse_disconnects_total=({"reason": "slow_consumer"}, 1),
            btcstream_sse_clients=1))
        self.assertEqual(self.disconnects(s), {
            "client_closed": 0, "slow_consumer": 1, "shutdown": 0,
            "error": 0})
        self.assertEqual(s.value("btcstream_sse_connections_total"), 2)
        conn.close()  # the client goes too: no second count
        time.sleep(0.5)
        s = self.scrape(svc)
        self.assertEqual(self.disconnects(s), {
            "client_closed": 0, "slow_consumer": 1, "shutdown": 0,
            "error": 0})
        self.assertFalse(ref.closed, "the reading client must stay open")
        self.assertEqual(s.value("btcstream_sse_clients"), 1)

    def test_over_client_queue_counts_one_slow_consumer(self):
        up = self.start_upstream()
        svc = self.start_service(up, "--client-queue", "4KiB",
                                 "--stall-timeout", "10min")
        ref = self.collect(svc)
        conn = self.open_non_reader(svc)
        self.check_dropped_once(svc, conn, ref, 20)

    def test_stalled_past_stall_timeout_counts_one_slow_consumer(self):
        up = self.start_upstream()
        svc = self.start_service(up, "--stall-timeout", "1s")
        ref = self.collect(svc)
        conn = self.open_non_reader(svc)
        self.check_dropped_once(svc, conn, ref, 15)


class RejectionMetricsTest(MetricsCase):
    def test_max_clients_rejections(self):
        up = self.start_upstream()
        svc = self.start_service(up, "--max-clients", "2")
        streams = [self.open_ok_stream(svc) for _ in range(2)]
        for i in (1, 2):
            self.assertEqual(self.request(svc, "GET", "/stream").status, 503)
            s = self.wait_scrape(svc, self.expect(
                btcstream_sse_rejected_total=({"reason": "max_clients"}, i)))
            self.assertEqual(
                s.by_label("btcstream_sse_rejected_total", "reason"),
                {"max_clients": i, "bad_request": 0})
            self.assertEqual(self.http_requests(s).get(("stream", "503")), i)
            self.assertEqual(self.http_requests(s).get(("stream", "200")), 2)
            self.assertEqual(s.value("btcstream_sse_connections_total"), 2,
                             "a refused stream is no connection")
            self.assertEqual(s.value("btcstream_sse_clients"), 2)
            self.assertEqual(s.value("btcstream_sse_max_clients"), 2)
        # A HEAD opens no stream: told 503 as a GET would be, not counted.
        self.assertEqual(self.request(svc, "HEAD", "/stream").status, 503)
        self.assertEqual(self.request(svc, "HEAD", "/stream?since=x").status,
                         400)
        s = self.scrape(svc)
        self.assertEqual(s.by_label("btcstream_sse_rejected_total", "reason"),
                         {"max_clients": 2, "bad_request": 0})
        for st in streams:
            self.read_frames(st, 1)

    def test_bad_resume_points_are_bad_request_rejections(self):
        up = self.start_upstream()
        svc = self.start_service(up)
        bad = [("/stream", [("Last-Event-ID", "abc")]),
               ("/stream?lastEventId=-1", []),
               ("/stream?since=1e9", []),
               ("/stream", [("Last-Event-ID", "0x10")])]
        for i, (target, headers) in enumerate(bad, 1):
            response = self.request(svc, "GET", target, headers)
            self.assertEqual(response.status, 400, repr(response))
            s = self.wait_scrape(svc, self.expect(
                btcstream_sse_rejected_total=({"reason": "bad_request"}, i)))
            self.assertEqual(
                s.value("btcstream_sse_rejected_total", reason="max_clients"),
                0)
            self.assertEqual(self.http_requests(s).get(("stream", "400")), i)
            self.assertEqual(s.value("btcstream_sse_connections_total"), 0)


class ShutdownMetricsTest(MetricsCase):
    """The `shutdown` reason is counted as the streams end, after the grace,
    when no scrape can be answered any more: during the grace a scrape shows
    the streams still open and nothing counted; the debug log shows one
    `sse session ends: shutdown` per stream and no other reason."""

    def test_sigterm_ends_streams_with_reason_shutdown(self):
        up = self.start_upstream()
        svc = self.start_service(up, grace="1s")
        streams = [self.open_ok_stream(svc) for _ in range(3)]
        for st in streams:
            self.read_frames(st, 1)
        keep_alive = RawConnection(svc.port)  # opened before the signal
        self.addCleanup(keep_alive.close)

        def scrape_on(conn):
            conn.send(build_request("GET", "/metrics"))
            response = conn.read_body(conn.read_head(5), "GET", 5)
            self.assertEqual(response.status, 200)
            return prom.parse(response.body.decode())

        before = scrape_on(keep_alive)
        self.assertEqual(before.value("btcstream_sse_clients"), 3)
        svc.signal(signal.SIGTERM)
        time.sleep(0.3)  # inside the 1 s grace
        during = scrape_on(keep_alive)
        self.assertEqual(during.value("btcstream_sse_clients"), 3)
        self.assertEqual(self.disconnects(during), dict.fromkeys(REASONS, 0))
        for st in streams:
            deadline = time.monotonic() + 5
            with self.assertRaises(StreamClosed):
                while True:
                    st.next_event(max(0.01, deadline - time.monotonic()))
        self.assertEqual(svc.wait(5), 0)
        log = svc.service_log()
        ends = re.findall(r"debug sse session ends: (\w+)", log)
        self.assertEqual(ends, ["shutdown"] * 3, log)
        self.assertNotIn("drops a client", log)


class EventMetricsTest(MetricsCase):
    interval = "100ms"

    def test_published_fanout_and_delivery_counts(self):
        up = self.start_upstream()
        svc = self.start_service(up)
        self.wait_for_price(svc)
        self.pause_upstream(up)
        s0 = self.scrape(svc)
        published0 = s0.value("btcstream_events_published_total")
        prices = self.get_json(svc, "/api/v1/prices")
        served = [p for _, p, delayed in up.served() if not delayed]
        self.assertEqual(published0, len(prices))
        self.assertEqual(published0, len(served))
        self.assertEqual(published0, self.outcomes(s0)["ok"])
        # Nobody was subscribed: no fan-out, no delivery.
        self.assertEqual(s0.count("btcstream_event_fanout_seconds"), 0)
        self.assertEqual(s0.count("btcstream_event_delivery_seconds"), 0)

        n = 3
        collectors = [self.collect(svc) for _ in range(n)]
        for c in collectors:  # the latest update first: not a live delivery
            self.assertTrue(c.wait_updates(1, 5))
        time.sleep(0.2)
        s1 = self.scrape(svc)
        self.assertEqual(s1.value("btcstream_events_published_total"),
                         published0)
        self.assertEqual(s1.count("btcstream_event_fanout_seconds"), 0)
        self.assertEqual(s1.count("btcstream_event_delivery_seconds"), 0)

        up.resume()
        for c in collectors:
            self.assertTrue(c.wait_updates(7, 5))
        self.pause_upstream(up)
        last = self.get_json(svc, "/api/v1/price")["id"]
        for c in collectors:
            self.assertTrue(c.wait_for(lambda evs: any(
                e.is_update and e.int_id == last for e in evs), 5))
        live = [len(c.updates()) - 1 for c in collectors]
        self.assertEqual(len(set(live)), 1, "clients saw different counts")
        k = live[0]
        self.assertGreaterEqual(k, 6)

        def check(s):
            got = (s.value("btcstream_events_published_total") - published0,
                   s.count("btcstream_event_fanout_seconds"),
                   s.count("btcstream_event_delivery_seconds"))
            want = (k, k, n * k)
            return None if got == want else \
                "(published, fanout, delivery) moved by %r, expected %r" % (
                    got, want)

        s2 = self.wait_scrape(svc, check)
        self.assertEqual(s2.value("btcstream_events_published_total"),
                         len(self.get_json(svc, "/api/v1/prices")))
        for h in ("btcstream_event_fanout_seconds",
                  "btcstream_event_delivery_seconds"):
            self.assert_histogram(s2, h)
            self.assertLess(s2.value(h + "_sum") / s2.count(h), 0.1,
                            "%s: a mean over 100 ms on loopback" % h)
        time.sleep(0.5)
        self.assertIsNone(check(self.scrape(svc)), "counts moved later")

    def test_replayed_and_gap_events_count_exactly_what_resumes_got(self):
        up = self.start_upstream()
        svc = self.start_service(up)
        ref = self.collect(svc)
        self.assertTrue(ref.wait_updates(8, 5))
        self.pause_upstream(up, ref)
        ids = [u["id"] for u in self.get_json(svc, "/api/v1/prices")]
        self.assertEqual(ids[-1], ref.ids()[-1])
        s = self.scrape(svc)
        self.assertEqual(s.value("btcstream_replayed_events_total"), 0,
                         "a fresh client's latest update is no replay")
        self.assertEqual(s.value("btcstream_gap_events_total"), 0)
        delivered = s.count("btcstream_event_delivery_seconds")

        replayed = gaps = 0

        def resume(target="/stream", headers=(), frames=0, gap=False):
            nonlocal replayed, gaps
            stream = self.open_ok_stream(svc, target, headers)
            events = []
            try:  # what is expected, however slow; then 0.4 s of nothing
                while sum(1 for e in events if e.is_update) < frames or (
                        gap and not any(e.is_gap for e in events)):
                    events.append(stream.next_event(5))
                while True:
                    events.append(stream.next_event(0.4))
            except socket.timeout:
                pass
            stream.close()
            self.assertEqual(sum(1 for e in events if e.is_update), frames,
                             "%s %r: %r" % (target, headers, events))
            self.assertEqual(sum(1 for e in events if e.is_gap), int(gap),
                             "%s %r: %r" % (target, headers, events))
            replayed += frames if (headers or "?" in target) else 0
            gaps += int(gap)
            self.wait_scrape(svc, self.expect(
                btcstream_replayed_events_total=replayed,
                btcstream_gap_events_total=gaps),
                what="after %s %r" % (target, headers))

        resume(headers=[("Last-Event-ID", str(ids[-4]))], frames=3)
        resume("/stream?lastEventId=%d" % ids[-6], frames=5)
        resume(headers=[("Last-Event-ID", str(ids[-1]))], frames=0)
        resume(frames=1)  # fresh: the latest update, not counted
        ts = self.get_json(svc, "/api/v1/prices")[-3]["timestamp"]
        since = timestamp_ms(ts)
        resume("/stream?since=%d.%03d" % (since // 1000, since % 1000),
               frames=3)
        # Older than the first update this process holds: gap, then all.
        resume(headers=[("Last-Event-ID", "1")], frames=len(ids), gap=True)
        # Newer than any id known: gap, nothing to replay.
        resume(headers=[("Last-Event-ID", str(ids[-1] + 10**9))], frames=0,
               gap=True)
        s = self.scrape(svc)
        self.assertEqual(s.count("btcstream_event_delivery_seconds"),
                         delivered, "replayed frames are not live deliveries")


class UpstreamMetricsTest(MetricsCase):
    interval = "200ms"  # request timeout 160 ms

    def expected_outcomes(self, up):
        """The outcome of every request the fake answered, as the service
        must count it: a reset on a reused keep-alive connection is retried
        at once and not counted; on a fresh connection it is connect_error."""
        expected = dict.fromkeys(OUTCOMES, 0)
        for (_, status, kind), (_, reused) in zip(up.answers(),
                                                  up.request_connections()):
            if kind == "reset":
                if not reused:
                    expected["connect_error"] += 1
            elif kind == "delay":
                expected["timeout"] += 1
            elif status == 429:
                expected["rate_limited"] += 1
            elif status != 200:
                expected["http_error"] += 1
            elif kind in ("malformed", "empty_data", "value", "raw_value"):
                expected["invalid"] += 1
            else:
                expected["ok"] += 1
        return expected

    def test_every_outcome_counted_exactly(self):
        up = self.start_upstream()
        # 500 ms (request timeout 400 ms): the fake counts each answer it
        # gives as what the service must count, so no plain answer may be
        # late enough to time out, even in a slowed (ASan) service.
        svc = self.start_service(up, interval="500ms")
        self.assertTrue(up.wait_valid(3, 5))
        up.fail("status", status=500, count=1)
        up.fail("malformed", count=1)
        up.fail("status", status=429, count=1)  # no Retry-After
        up.fail("delay", seconds=1.0, count=1)  # beyond 0.8 x interval
        up.fail("value", value=0, count=1)
        up.fail("reset", count=2)  # reused (retried at once), then fresh
        up.fail("status", status=404, count=1)
        up.fail("empty_data", count=1)
        # Finally freeze the fetcher: no request for 30 s.
        up.fail("status", status=429, retry_after=30, count=1)
        self.wait_until(lambda: up.faults_pending == 0, 20,
                        "the faults were served")
        n = up.request_count
        time.sleep(1.0)
        self.assertEqual(up.request_count, n, "Retry-After: 30 not honoured")
        expected = self.expected_outcomes(up)
        for o in OUTCOMES:
            if o != "tls_error":
                self.assertGreater(expected[o], 0, "no %s caused: %r"
                                   % (o, up.answers()))
        s = self.wait_scrape(svc, lambda s: None if self.outcomes(s) ==
                             expected else "outcomes %r, expected %r"
                             % (self.outcomes(s), expected))
        total = sum(expected.values())
        self.assertEqual(self.assert_histogram(
            s, "btcstream_upstream_request_seconds"), total)
        # The timed-out request took the 400 ms timeout.
        le_01 = dict(s.buckets("btcstream_upstream_request_seconds"))[0.1]
        self.assertLessEqual(le_01, total - expected["timeout"])
        self.assertGreaterEqual(
            s.value("btcstream_upstream_request_seconds_sum"), 0.35)
        self.assertGreater(s.value("btcstream_upstream_skipped_ticks_total"),
                           0, "ticks during Retry-After are skipped")
        self.assertEqual(s.value("btcstream_events_published_total"),
                         expected["ok"])
        served = [p for _, p, delayed in up.served() if not delayed]
        self.assertEqual(len(served), expected["ok"])
        self.assertEqual(s.value("btcstream_last_price_usd"), served[-1])
        price = self.get_json(svc, "/api/v1/price")
        self.assertEqual(price["price"], served[-1])
        # The price ages while nothing new comes.
        age = s.value("btcstream_last_price_age_seconds")
        expected_age = time.time() - timestamp_ms(price["timestamp"]) / 1000
        self.assertAlmostEqual(age, expected_age, delta=0.3)
        time.sleep(1.0)
        s2 = self.scrape(svc)
        grown = s2.value("btcstream_last_price_age_seconds") - age
        self.assertGreater(grown, 0.8)
        self.assertLess(grown, 1.6)
        self.assertEqual(self.outcomes(s2), expected)

    @unittest.skipIf(tools.find("openssl") is None,
                     "the openssl command is not installed")
    def test_tls_failures_are_tls_error(self):
        from test_tls import make_ca, make_server_cert, server_context
        directory = tempfile.mkdtemp(prefix="btcstream-metrics-tls-")
        self.addCleanup(shutil.rmtree, directory, True)
        make_ca(directory, "ca", "btcstream metrics test CA")
        cert = make_server_cert(directory, "server", "ca", "localhost",
                                "DNS:localhost,IP:127.0.0.1")
        up = self.start_upstream(ssl_context=server_context(*cert),
                                 url_host="localhost")
        svc = self.start_service(up)  # the CA is not trusted
        self.wait_until(lambda: len(up.tls_failures()) >= 3, 5,
                        "three failed handshakes")

        def check(s):
            got = self.outcomes(s)
            want = dict.fromkeys(OUTCOMES, 0)
            want["tls_error"] = len(up.tls_failures())
            return None if got == want else "outcomes %r, expected %r" % (
                got, want)

        s = self.wait_scrape(svc, check)
        self.assertEqual(s.count("btcstream_upstream_request_seconds"),
                         s.value("btcstream_upstream_requests_total",
                                 outcome="tls_error"))
        self.assertEqual(up.request_count, 0)

    def test_connect_refused_is_connect_error(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]  # closed again: nothing listens
        svc = self.start_service(None, "--upstream-url",
                                 "http://127.0.0.1:%d/index/cc/v1/latest/"
                                 "tick?market=ccix&instruments=BTC-USD" % port)
        s = self.wait_scrape(svc, lambda s: None if self.outcomes(s)[
            "connect_error"] >= 3 else "connect_error %r" % self.outcomes(s))
        outcomes = self.outcomes(s)
        self.assertEqual(sum(outcomes.values()), outcomes["connect_error"])
        self.assertEqual(s.count("btcstream_upstream_request_seconds"),
                         outcomes["connect_error"])

    def test_buffer_gauges_follow_the_buffer(self):
        up = self.start_upstream()
        svc = self.start_service(up, "--history-max", "5")
        self.assertTrue(up.wait_valid(8, 5))
        self.pause_upstream(up)
        prices = self.get_json(svc, "/api/v1/prices")
        self.assertEqual(len(prices), 5)
        s = self.scrape(svc)
        self.assertEqual(s.value("btcstream_buffer_entries"), 5)
        oldest_age = time.time() - timestamp_ms(prices[0]["timestamp"]) / 1000
        self.assertAlmostEqual(
            s.value("btcstream_buffer_oldest_age_seconds"), oldest_age,
            delta=0.3)
        newest_age = time.time() - timestamp_ms(prices[-1]["timestamp"]) / 1000
        self.assertAlmostEqual(s.value("btcstream_last_price_age_seconds"),
                               newest_age, delta=0.3)
        self.assertEqual(s.value("btcstream_last_price_usd"),
                         prices[-1]["price"])
        self.assertGreater(s.value("btcstream_events_published_total"), 5,
                           "published counts every update, evicted or not")

    def test_buffer_gauges_expire_without_any_read(self):
        """Nothing but the scrape reads the buffer, yet its gauges drop what
        outlived --history-ttl."""
        up = self.start_upstream()
        svc = self.start_service(up, "--history-ttl", "1s")
        self.assertTrue(up.wait_valid(3, 5))
        self.pause_upstream(up)
        time.sleep(1.5)
        s = self.scrape(svc)  # no /healthz, /prices or resume before it
        self.assertEqual(s.value("btcstream_buffer_entries"), 0)
        self.assertNotIn("btcstream_buffer_oldest_age_seconds", s.types)

    def test_buffer_gauges_after_the_ttl_expires(self):
        up = self.start_upstream()
        svc = self.start_service(up, "--history-ttl", "1s")
        self.assertTrue(up.wait_valid(3, 5))
        self.pause_upstream(up)
        time.sleep(1.3)
        # /api/v1/prices expires what outlived the TTL; the gauges follow.
        self.assertEqual(self.get_json(svc, "/api/v1/prices"), [])
        s = self.wait_scrape(svc, self.expect(btcstream_buffer_entries=0))
        self.assertNotIn("btcstream_buffer_oldest_age_seconds", s.types)
        # The latest price is still known (and old).
        self.assertGreater(s.value("btcstream_last_price_age_seconds"), 1.0)


class HttpRequestMetricsTest(MetricsCase):
    def test_requests_by_route_and_code_are_exact(self):
        up = self.start_upstream()
        svc = self.start_service(up, "--max-clients", "1")
        self.assertEqual(self.http_requests(self.scrape(svc)), {})
        tally = {}  # what this test asked, but for the scrapes

        def req(route, method, target, headers=(), status=None, **kw):
            response = self.request(svc, method, target, headers, **kw)
            if status is not None:
                self.assertEqual(response.status, status,
                                 "%s %s -> %r" % (method, target, response))
            key = (route, str(response.status))
            tally[key] = tally.get(key, 0) + 1
            return response

        for _ in range(3):
            req("info", "GET", "/api/v1/info", status=200)
        req("unknown", "GET", "/nope", status=404)
        req("unknown", "PUT", "/nope", [("Content-Length", "0")], status=404)
        req("info", "POST", "/api/v1/info", [("Content-Length", "0")],
            status=405)
        req("info", "OPTIONS", "/api/v1/info", status=204)
        req("static", "HEAD", "/", status=200)
        etag = req("static", "GET", "/", status=200).header("ETag")
        self.assertTrue(etag, "no ETag on /")
        req("static", "GET", "/", [("If-None-Match", etag)], status=304)
        req("unknown", "GET", "/no-such-file.js", status=404)
        req("healthz", "GET", "/healthz", status=200)
        self.wait_for_price(svc)  # scrapes until the first poll is in
        req("readyz", "GET", "/readyz", status=200)
        req("price", "GET", "/api/v1/price", status=200)
        req("prices", "GET", "/api/v1/prices", status=200)
        req("prices", "GET", "/api/v1/prices?since=abc", status=400)
        req("stream", "HEAD", "/stream", status=200)  # no stream opened
        req("stream", "GET", "/stream?since=abc", status=400)
        stream = self.open_ok_stream(svc)
        tally[("stream", "200")] = tally.get(("stream", "200"), 0) + 1
        req("stream", "GET", "/stream", status=503)  # --max-clients 1
        req("unknown", "GET", "/", [("X-Big", "x" * 9000)], status=431)
        req("unknown", None, None, raw=b"NONSENSE\r\n\r\n", status=400)
        stream.close()

        def check(s):
            # A scrape counts itself only after it is rendered: `s` shows
            # every scrape before it, wait_for_price's and retries included.
            want = dict(tally)
            want[("metrics", "200")] = self.scrapes - 1
            got = self.http_requests(s)
            return None if got == want else "got %r\nexpected %r" % (
                sorted(got.items()), sorted(want.items()))

        s = self.wait_scrape(svc, check)
        self.assertEqual(s.value("btcstream_sse_connections_total"), 1,
                         "HEAD /stream opens no stream")
        # Every sample's labels are exactly route and code, from the lists.
        for labels in s.series("btcstream_http_requests_total"):
            d = dict(labels)
            self.assertEqual(set(d), {"route", "code"})
            self.assertIn(d["route"], ("stream", "price", "prices", "info",
                                       "healthz", "readyz", "metrics",
                                       "static", "unknown"))
            self.assertIn(d["code"], ("200", "204", "304", "400", "404",
                                      "405", "413", "431", "503", "other"))


    def test_over_max_http_connections_counts_as_unknown_503(self):
        up = self.start_upstream()
        svc = self.start_service(up, "--max-http-connections", "1")
        idle = RawConnection(svc.port)  # holds the one non-stream slot
        self.addCleanup(idle.close)
        time.sleep(0.2)
        refused = self.request(svc, "GET", "/api/v1/info")
        self.assertEqual(refused.status, 503, repr(refused))
        idle.close()
        deadline = time.monotonic() + 5
        while True:  # the slot frees once the server sees the close
            response = self.request(svc, "GET", "/metrics")
            if response.status == 200:
                break
            self.assertLess(time.monotonic(), deadline, "no slot freed")
            time.sleep(0.05)
        got = self.http_requests(prom.parse(response.body.decode()))
        refused_scrapes = got.pop(("unknown", "503"), 0)
        self.assertGreaterEqual(refused_scrapes, 1)
        self.assertEqual(got, {}, "a refused request counts as unknown/503 "
                         "only")


class ProcessMetricsTest(MetricsCase):
    def test_process_metrics_are_plausible(self):
        up = self.start_upstream()
        started = time.time()
        svc = self.start_service(up, fd_limit=256)
        self.wait_for_price(svc)
        streams = [self.open_ok_stream(svc) for _ in range(20)]
        s = self.scrape(svc)
        pid = svc.proc.pid
        rss = s.value("process_resident_memory_bytes")
        with open("/proc/%d/statm" % pid) as f:
            resident = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        self.assertGreater(rss, 1 << 20)
        self.assertLess(abs(rss - resident), max(resident * 0.5, 8 << 20))
        fds = s.value("process_open_fds")
        actual = len(os.listdir("/proc/%d/fd" % pid))
        self.assertGreaterEqual(fds, len(streams))
        self.assertLessEqual(abs(fds - actual), 3, "open_fds %r, /proc says "
                             "%d" % (fds, actual))
        self.assertEqual(s.value("process_max_fds"), 256)
        start = s.value("process_start_time_seconds")
        self.assertGreaterEqual(start, started - 2)
        self.assertLessEqual(start, time.time())
        self.assertLess(time.time() - start, 60)
        for st in streams:
            st.close()
        s = self.wait_scrape(svc, lambda s: None if s.value(
            "process_open_fds") < fds - len(streams) + 3 else
            "open_fds %r after closing %d" % (s.value("process_open_fds"),
                                              len(streams)))
        cpu = s.value("process_cpu_seconds_total")
        self.assertGreater(cpu, 0)
        deadline = time.monotonic() + 15
        while True:  # work until the CPU counter moves
            for _ in range(50):
                self.request(svc, "GET", "/api/v1/prices")
            now = self.scrape(svc).value("process_cpu_seconds_total")
            if now > cpu:
                break
            self.assertLess(time.monotonic(), deadline, "CPU time never grew")


@unittest.skipIf(prom.prometheus() is None, prom.MISSING)
class PrometheusServerTest(MetricsCase):
    def test_a_real_prometheus_scrapes_the_service_as_up(self):
        up = self.start_upstream()
        svc = self.start_service(up)
        streams = [self.open_ok_stream(svc) for _ in range(3)]
        server = prom.PrometheusServer("127.0.0.1:%d" % svc.port)
        self.addCleanup(server.cleanup)
        server.start()
        target = server.wait_target_up(20)
        self.assertEqual(target.get("lastError"), "")

        def wait_query(expr, value, timeout=15):
            deadline = time.monotonic() + timeout
            while True:
                got = server.query(expr)
                if [v for _, v in got] == [value]:
                    return got
                if time.monotonic() > deadline:
                    self.fail("%s = %r, expected %r\nprometheus log:\n%s"
                              % (expr, got, value, server.log_tail()))
                time.sleep(0.25)

        wait_query("btcstream_sse_clients", 3)
        wait_query('up{job="btcstream"}', 1)
        streams[0].close()
        wait_query("btcstream_sse_clients", 2)
        got = wait_query('btcstream_sse_disconnects_total'
                         '{reason="client_closed"}', 1)
        self.assertEqual(got[0][0].get("job"), "btcstream")
        # A histogram and a rate work on the stored series.
        self.assertTrue(server.query(
            "histogram_quantile(0.99, rate("
            "btcstream_upstream_request_seconds_bucket[5s]))"))
        # Prometheus reports no problem with the exposition.
        samples = server.query("scrape_samples_scraped")
        self.assertGreater(samples[0][1], 50)


if __name__ == "__main__":
    unittest.main()
