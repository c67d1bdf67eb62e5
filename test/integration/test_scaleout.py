"""Scale-out flags of one process: --reuse-port, --admin-listen,
--max-stream-age and --state-file (issue 12)."""

import json
import os
import re
import shutil
import socket
import tempfile
import time

import prom
from case import ServiceCase
from client import RawConnection, StreamClosed, build_request, http_request

ADMIN_RE = re.compile(r"admin port \(metrics, health\) on 127\.0\.0\.1:(\d+)")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ScaleOutCase(ServiceCase):
    interval = "200ms"

    def admin_port(self, svc):
        match = ADMIN_RE.search(svc.log())
        self.assertIsNotNone(match, "no admin port in the log")
        return int(match.group(1))

    def state_dir(self):
        d = tempfile.mkdtemp(prefix="btcstream-state-")
        self.addCleanup(shutil.rmtree, d, True)
        return d


class ReusePortTest(ScaleOutCase):

    def test_three_processes_share_one_port_and_each_has_its_admin_port(self):
        up = self.start_upstream()
        a = self.start_service(up, "--reuse-port", "--admin-listen",
                               "127.0.0.1:0")
        port = a.port
        others = [self.start_service(up, "--reuse-port", "--admin-listen",
                                     "127.0.0.1:0",
                                     listen="127.0.0.1:%d" % port)
                  for _ in range(2)]
        nodes = [a] + others
        for svc in others:
            self.assertEqual(svc.port, port)
        streams = [self.open_ok_stream(a) for _ in range(45)]
        for s in streams[:5]:
            self.assertEqual(len(self.read_frames(s, 2)), 2)
        per_node = [prom.scrape(self.admin_port(svc)).get(
            "btcstream_sse_clients") for svc in nodes]
        self.assertEqual(sum(per_node), 45, per_node)
        self.assertTrue(all(n > 0 for n in per_node),
                        "the kernel spreads streams over every process: %r"
                        % per_node)

    def test_a_port_in_use_without_reuse_port_is_an_error(self):
        up = self.start_upstream()
        a = self.start_service(up, "--reuse-port")
        b = self.start_service(up, listen="127.0.0.1:%d" % a.port,
                               start=False)
        b.expect_unclean_exit = True
        with self.assertRaises(Exception):
            b.start(timeout=3)
        self.assertIn("--listen", b.log())


class AdminListenTest(ScaleOutCase):

    def test_the_admin_port_serves_metrics_health_and_nothing_else(self):
        up = self.start_upstream()
        svc = self.start_service(up, "--admin-listen", "127.0.0.1:0")
        admin = self.admin_port(svc)
        self.wait_until(lambda: http_request(admin, "GET", "/readyz").status
                        == 200, 5, "ready on the admin port")
        for path in ("/metrics", "/healthz", "/readyz", "/api/v1/info"):
            self.assertEqual(http_request(admin, "GET", path).status, 200,
                             path)
        for path in ("/stream", "/", "/api/v1/price", "/index.html"):
            r = http_request(admin, "GET", path)
            self.assert_json_error(r, 404)
        # The public port serves everything as before.
        self.assertEqual(self.request(svc, "GET", "/api/v1/price").status, 200)
        self.assertEqual(self.request(svc, "GET", "/metrics").status, 200)

    def hold(self, port, count):
        """count kept-alive connections to port, each answered once (so the
        server has counted it), then left idle holding its slot."""
        held = []
        deadline = time.monotonic() + 3
        while len(held) < count:
            conn = RawConnection(port)
            self.addCleanup(conn.close)
            conn.send(build_request("GET", "/api/v1/info"))
            response = conn.read_body(conn.read_head())
            if response.status == 200:
                held.append(conn)
                continue
            # A connection closed just before (a readiness probe, an earlier
            # request) may not have given its slot back yet.
            self.assertEqual(response.status, 503, repr(response))
            self.assertLess(time.monotonic(), deadline, "no slot came back")
            conn.close()
            time.sleep(0.05)
        return held

    def test_each_port_has_its_own_connection_bound(self):
        # Idle connections that fill the public port's --max-http-connections
        # must not shut out the scrapes that would show them, and the other
        # way round.
        up = self.start_upstream()
        svc = self.start_service(up, "--admin-listen", "127.0.0.1:0",
                                 "--max-http-connections", "2")
        admin = self.admin_port(svc)
        self.hold(svc.port, 2)
        self.assert_json_error(self.request(svc, "GET", "/api/v1/info"), 503)
        for path in ("/metrics", "/api/v1/info"):
            self.assertEqual(http_request(admin, "GET", path).status, 200,
                             path)
        # The admin port's own bound (64) holds too, and leaves the public
        # port's slots alone.
        self.hold(admin, 64)
        r = http_request(admin, "GET", "/metrics")
        self.assert_json_error(r, 503)
        self.assertIn("too many connections", r.body.decode())
        self.assertEqual(http_request(admin, "GET", "/healthz").status, 200)

    def test_an_admin_port_in_use_is_an_error_naming_the_flag(self):
        up = self.start_upstream()
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            svc = self.start_service(
                up, "--admin-listen", "127.0.0.1:%d" % taken.getsockname()[1],
                start=False)
            svc.expect_unclean_exit = True
            with self.assertRaises(Exception):
                svc.start(timeout=3)
        self.assertIn("--admin-listen", svc.log())


class MaxStreamAgeTest(ScaleOutCase):

    def test_streams_end_within_their_jittered_age_and_resume_seamlessly(self):
        up = self.start_upstream()
        svc = self.start_service(up, "--max-stream-age", "2s")
        ids = []
        ends = []
        last = None
        t0 = time.monotonic()
        for _ in range(3):
            headers = [("Last-Event-ID", str(last))] if last else []
            stream = self.open_ok_stream(svc, headers=headers)
            opened = time.monotonic()
            try:
                while True:
                    event = stream.next_event(5.0)
                    self.assertTrue(event.is_update,
                                    "no gap or other event: %r" % event.raw)
                    ids.append(event.int_id)
                    last = event.int_id
            except StreamClosed:
                ends.append(time.monotonic() - opened)
        for age in ends:
            self.assertGreaterEqual(age, 1.8 - 0.05, ends)
            self.assertLessEqual(age, 2.2 + 0.5, ends)
        self.assertEqual(ids, sorted(set(ids)), "every id once, in order")
        # Nothing the upstream produced meanwhile is missing.
        prices = self.request(svc, "GET", "/api/v1/prices").json()
        known = [p["id"] for p in prices if ids[0] <= p["id"] <= ids[-1]]
        self.assertEqual(ids, known)
        self.assertGreater(time.monotonic() - t0, 5)
        # The last end is counted as the session finishes, which may be just
        # after this client saw its stream close.
        self.wait_until(lambda: prom.scrape(svc.port).get(
            "btcstream_sse_disconnects_total", reason="max_age") >= 3, 5,
            "three max_age disconnects counted")

    def test_max_stream_age_needs_a_duration(self):
        up = self.start_upstream()
        svc = self.start_service(up, "--max-stream-age", "soon", start=False)
        svc.expect_unclean_exit = True
        with self.assertRaises(Exception):
            svc.start(timeout=3)
        self.assertIn("--max-stream-age", svc.log())


class StateFileTest(ScaleOutCase):

    def test_a_restart_keeps_the_history_and_a_resume_has_no_gap(self):
        path = os.path.join(self.state_dir(), "state.json")
        up = self.start_upstream()
        a = self.start_service(up, "--state-file", path)
        stream = self.open_ok_stream(a)
        before = [f.id for f in self.read_frames(stream, 6)]
        stream.close()
        self.assertEqual(a.stop(), 0)
        with open(path) as f:
            saved = json.load(f)
        self.assertEqual(saved["format"], "btcstream-state")
        saved_ids = [u["id"] for u in saved["updates"]]
        self.assertTrue(set(before) <= set(saved_ids))
        up.pause()
        b = self.start_service(up, "--state-file", path)
        self.assertIn("restored %d updates" % len(saved_ids), b.log())
        prices = [p["id"] for p in
                  self.request(b, "GET", "/api/v1/prices").json()]
        self.assertEqual(prices, saved_ids)
        up.resume()
        resumed = self.open_ok_stream(
            b, headers=[("Last-Event-ID", str(before[2]))])
        frames = self.read_frames(resumed, len(saved_ids) - 3 + 2)
        ids = [f.id for f in frames]
        self.assertEqual(ids[:len(saved_ids) - 3],
                         [i for i in saved_ids if i > before[2]])
        self.assertEqual(ids, sorted(set(ids)), "strictly increasing")
        self.assertGreater(ids[-1], saved_ids[-1])

    def check_ignored(self, content, why):
        path = os.path.join(self.state_dir(), "state.json")
        with open(path, "w") as f:
            f.write(content)
        up = self.start_upstream()
        up.pause()
        svc = self.start_service(up, "--state-file", path)
        self.wait_until(lambda: "ignored" in svc.log(), 3, "the warning")
        self.assertRegex(svc.log(), why)
        self.assertEqual(self.request(svc, "GET", "/api/v1/prices").json(),
                         [])
        up.resume()
        self.assertEqual(self.read_frames(self.open_ok_stream(svc), 1)[0].price
                         > 0, True)
        self.assertEqual(svc.stop(), 0)
        with open(path) as f:  # replaced by a valid file at shutdown
            self.assertEqual(json.load(f)["format"], "btcstream-state")

    def test_a_corrupt_file_is_reported_and_ignored(self):
        self.check_ignored('{"format":"btcstream-state","version":1,"upd',
                           r"--state-file '.*' ignored: not a JSON object")

    def test_a_foreign_file_is_reported_and_ignored(self):
        self.check_ignored(json.dumps({"format": "btcstream-state",
                                       "version": 1,
                                       "instrument": "ETH-USD",
                                       "updates": []}),
                           r"ignored: for instrument \"ETH-USD\"")

    def test_an_entry_out_of_order_makes_the_whole_file_ignored(self):
        now = int(time.time() * 1000)
        self.check_ignored(json.dumps({
            "format": "btcstream-state", "version": 1,
            "instrument": "BTC-USD", "updates": [
                {"id": now, "ts": now, "price": 1.0},
                {"id": now - 5, "ts": now, "price": 2.0}]}),
            r"ignored: entry \d+ is out of order or invalid")

    def test_expired_entries_are_dropped(self):
        path = os.path.join(self.state_dir(), "state.json")
        now = int(time.time() * 1000)
        old, fresh = now - 3 * 3600 * 1000, now - 1000
        with open(path, "w") as f:
            json.dump({"format": "btcstream-state", "version": 1,
                       "instrument": "BTC-USD", "updates": [
                           {"id": old, "ts": old, "price": 1.5},
                           {"id": fresh, "ts": fresh, "price": 2.5}]}, f)
        up = self.start_upstream()
        up.pause()
        svc = self.start_service(up, "--state-file", path)
        self.assertIn("restored 1 updates (1 expired)", svc.log())
        self.assertEqual([p["id"] for p in
                          self.request(svc, "GET", "/api/v1/prices").json()],
                         [fresh])

    def test_state_file_is_refused_in_cluster_mode(self):
        up = self.start_upstream()
        svc = self.start_service(up, "--state-file", "/tmp/x.json",
                                 "--redis", "redis://127.0.0.1:1",
                                 start=False)
        svc.expect_unclean_exit = True
        with self.assertRaises(Exception):
            svc.start(timeout=3)
        self.assertIn("--state-file: only without --redis", svc.log())
