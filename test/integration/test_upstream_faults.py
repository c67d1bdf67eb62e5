"""Unusable upstream answers are never streamed, and the stream survives
them (DESIGN.md, "Upstream" and "fetcher")."""

import os
import shutil
import socket
import tempfile
import time
import unittest

import prom
from case import ServiceCase
from service import Service

BAD_ANSWERS = [
    ("status", {"status": 500}),
    ("status", {"status": 503, "message": "maintenance"}),
    ("malformed", {}),
    ("empty_data", {}),
    ("value", {"value": 0}),
    ("value", {"value": -5}),
    ("value", {"value": "97000.5"}),
    ("value", {"value": None}),
    ("raw_value", {"value": "NaN"}),
    ("raw_value", {"value": "1e999"}),
    ("raw_value", {"value": "-1e999"}),
]


class UpstreamFaultTest(ServiceCase):
    def test_bad_answers_are_never_streamed(self):
        up = self.start_upstream(price=97000, step=0.01)
        svc = self.start_service(up)
        ref = self.collect(svc)
        self.assertTrue(ref.wait_updates(2, 5))
        for kind, params in BAD_ANSWERS:
            up.fail(kind, count=2, **params)
        n = up.request_count
        self.wait_until(lambda: up.faults_pending == 0, 15,
                        "the service to poll through every bad answer")
        self.assertGreaterEqual(up.request_count - n, 2 * len(BAD_ANSWERS))
        good = len(up.valid_prices())
        self.assertTrue(up.wait_valid(good + 3, 5), "polling stopped")
        later = up.valid_prices()[good + 2]
        self.assertTrue(ref.wait_for(
            lambda evs: any(e.is_update and e.json()["price"] == later
                            for e in evs), 5), "no update after the faults")

        self.assertFalse(ref.closed, "the stream must stay open")
        events = ref.events()[1:]  # after the retry block
        self.assertEqual([e for e in events if not e.is_update], [],
                         "only update frames expected")
        frames = self.frames(events)
        valid = up.valid_prices()
        index = [valid.index(f.price) for f in frames]  # fails on a bad one
        self.assertEqual(index, list(range(index[0], index[0] + len(index))),
                         "every valid answer is one update, in order")
        ids = [f.id for f in frames]
        self.assertEqual(ids, sorted(set(ids)))

    def test_delays_and_resets_do_not_break_the_stream(self):
        up = self.start_upstream()
        svc = self.start_service(up)
        ref = self.collect(svc)
        self.assertTrue(ref.wait_updates(2, 5))
        up.fail("reset", count=2)
        up.fail("delay", count=2, seconds=0.5)  # longer than the interval
        up.fail("reset", count=1)
        self.wait_until(lambda: up.faults_pending == 0, 10,
                        "the service to poll through the faults")
        count = len(ref.ids())
        self.assertTrue(ref.wait_updates(count + 3, 5),
                        "no updates after resets and delays")
        self.assertFalse(ref.closed)
        valid = up.valid_prices()
        prices = [f.price for f in self.frames(ref.updates())]
        self.assertTrue(all(p in valid for p in prices))
        self.assertEqual(prices, sorted(prices), "prices out of order")

    def test_retry_after_is_honoured_beyond_the_interval(self):
        up = self.start_upstream()
        self.start_service(up)
        self.assertTrue(up.wait_valid(2, 5))
        up.fail("status", count=1, status=429, retry_after=1)
        self.wait_until(lambda: up.faults_pending == 0, 5, "the 429 answer")
        refused_at = [t for t, status, _ in up.answers() if status == 429][0]
        self.wait_until(
            lambda: any(t > refused_at for t, _, _, _ in up.requests()), 5,
            "a request after the Retry-After")
        after = [t for t, _, _, _ in up.requests() if t > refused_at]
        self.assertGreaterEqual(after[0] - refused_at, 0.95,
                                "next request %.3f s after a 429 with "
                                "Retry-After: 1" % (after[0] - refused_at))

    def test_retry_after_0_backs_off_instead_of_asking_again_at_once(self):
        up = self.start_upstream()
        self.start_service(up, interval="1s")
        self.assertTrue(up.wait_valid(1, 5))
        up.fail("status", count=4, status=429, retry_after=0)
        self.wait_until(lambda: up.faults_pending == 0, 10, "the 429 answers")
        refused = [t for t, status, _ in up.answers() if status == 429]
        gaps = [b - a for a, b in zip(refused, refused[1:])]
        # The backoff: 250 ms, then 500, then the interval (±20 %); at once,
        # a rate limiter would be asked again within a millisecond or two.
        self.assertTrue(gaps and min(gaps) >= 0.18,
                        "gaps between requests after 429 Retry-After: 0: %r"
                        % gaps)


class SlowDnsTest(ServiceCase):
    """A name server that never answers: the lookup is held to the
    request's timeout, counted as a timeout, and the ticks go on. Needs
    root (a private mount of /etc/resolv.conf, port 53 on 127.0.0.0/8)."""

    def setUp(self):
        super().setUp()
        if os.geteuid() != 0 or shutil.which("unshare") is None:
            if os.environ.get("BTCSTREAM_CI") == "1":
                self.fail("CI runs as root with util-linux: this test runs")
            self.skipTest("needs root and unshare")
        self.dns = None
        for last in range(2, 50):  # a free 127.0.0.x:53
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                sock.bind(("127.0.0.%d" % last, 53))
            except OSError:
                sock.close()
                continue
            self.dns = sock  # bound, never read: every query goes unanswered
            self.addCleanup(sock.close)
            break
        self.assertIsNotNone(self.dns, "no free 127.0.0.x:53")
        directory = tempfile.mkdtemp(prefix="btcstream-dns-")
        self.addCleanup(shutil.rmtree, directory, True)
        self.resolv = os.path.join(directory, "resolv.conf")
        with open(self.resolv, "w") as f:
            f.write("nameserver %s\noptions timeout:5 attempts:1\n"
                    % self.dns.getsockname()[0])

    def test_a_lookup_that_never_ends_is_a_timeout(self):
        svc = Service("http://btcstream-slow-dns.test:9/x", interval="500ms")
        # In a mount namespace of its own, /etc/resolv.conf names the silent
        # server; the rest of the machine is untouched.
        svc.args = ["unshare", "-m", "sh", "-c",
                    'mount --bind "$0" /etc/resolv.conf && exec "$@"',
                    self.resolv] + svc.args
        svc.start()
        self.addCleanup(svc.stop)
        def outcomes():
            got = prom.scrape(svc.port)
            return {k: got.value("btcstream_upstream_requests_total",
                                 outcome=k)
                    for k in ("timeout", "connect_error")}
        # Lookups take 5 s here; requests time out after 0.8 x 500 ms.
        self.wait_until(lambda: outcomes()["timeout"] >= 3, 4,
                        "three requests timed out in their lookup")
        self.assertEqual(outcomes()["connect_error"], 0)
        self.assertIn("timeout: resolve: timeout", svc.log())


if __name__ == "__main__":
    unittest.main()
