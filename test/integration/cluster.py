"""Helpers for the cluster-mode tests (DESIGN.md, "Cluster mode (Redis)").

`ClusterCase` is a ServiceCase with a real Redis (redis_server.py), an
optional black-hole proxy (blackhole_proxy.py) and btcstream nodes started
with `--redis`, `--redis-prefix`, `--node-id` and `--lease-ttl`. It reads the
cluster's log straight from Redis (XRANGE) and checks it: entry ids
`<event id>-0`, fields `ts`, `price`, `prev`, `at`.

Fast settings: `--interval 200ms`, `--lease-ttl 1s`.

The tests need redis-server (Debian's package `redis-server`); without it
they skip with a message, except under BTCSTREAM_CI=1 where they fail.
BTCSTREAM_TEST_NO_CLUSTER=1 skips them on purpose (a binary without cluster
mode); otherwise a binary without `--lease-ttl` in its --help fails them.
"""

import json
import os
import signal
import subprocess
import time
import unittest

import prom
from blackhole_proxy import BlackholeProxy
from case import ServiceCase, timestamp_ms
from redis_server import RedisServer, redis_server_path
from service import binary_path

INTERVAL_S = 0.2
LEASE_TTL_S = 1.0

_HELP = None


def binary_help():
    global _HELP
    if _HELP is None:
        try:
            out = subprocess.run([binary_path(), "--help"],
                                 stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, timeout=10)
            _HELP = out.stdout.decode("utf-8", "replace")
        except (OSError, subprocess.TimeoutExpired) as e:
            _HELP = "<could not run %s --help: %s>" % (binary_path(), e)
    return _HELP


class LogEntry:
    """One entry of the cluster's log (a Redis Stream entry)."""

    def __init__(self, stream_id, fields):
        text = stream_id.decode()
        self.stream_id = text
        ms, _, seq = text.partition("-")
        self.id = int(ms)
        self.seq = int(seq)
        self.fields = {fields[i].decode(): fields[i + 1].decode()
                       for i in range(0, len(fields), 2)}

    def field(self, name):
        if name not in self.fields:
            raise AssertionError("log entry %s has no field %r: %r"
                                 % (self.stream_id, name, self.fields))
        return self.fields[name]

    @property
    def ts_ms(self):
        return parse_ms(self.field("ts"))

    @property
    def prev(self):
        return int(self.field("prev"))

    @property
    def price(self):
        return float(self.field("price"))

    def __repr__(self):
        return "LogEntry(%s, %r)" % (self.stream_id, self.fields)


def parse_ms(text):
    """A timestamp field as unix ms: digits (ms), or RFC 3339."""
    if text.isdigit():
        return int(text)
    return timestamp_ms(text)


def strictly_increasing(ids):
    return all(a < b for a, b in zip(ids, ids[1:]))


class ClusterCase(ServiceCase):
    interval = "200ms"
    lease_ttl = "1s"
    prefix = "itest"

    def setUp(self):
        super().setUp()
        if os.environ.get("BTCSTREAM_TEST_NO_CLUSTER") == "1":
            self.skipTest("BTCSTREAM_TEST_NO_CLUSTER=1")
        if not os.access(redis_server_path(), os.X_OK):
            if os.environ.get("BTCSTREAM_CI") == "1":
                self.fail("redis-server not found at %s (BTCSTREAM_CI=1 "
                          "never skips)" % redis_server_path())
            self.skipTest("redis-server is not installed (Debian package "
                          "`redis-server`; or set BTCSTREAM_TEST_REDIS)")
        if "--lease-ttl" not in binary_help():
            self.fail("%s --help lists no --lease-ttl: a binary without "
                      "cluster mode (BTCSTREAM_TEST_NO_CLUSTER=1 skips "
                      "these)" % binary_path())
        self._redises = []

    def run(self, result=None):
        before = len(result.failures) + len(result.errors) if result else 0
        outcome = super().run(result)
        if result and len(result.failures) + len(result.errors) > before:
            import sys
            for r in getattr(self, "_redises", []):
                sys.stderr.write("\n--- %s (redis log %s)\n%s\n" % (
                    self.id(), r.log_path, r.log_tail(15)))
        return outcome

    # -- processes ---------------------------------------------------------

    def start_redis(self, **kwargs):
        redis = RedisServer(name=self.id().rsplit(".", 1)[-1], **kwargs)
        self.addCleanup(redis.stop)
        redis.start()
        self._redises.append(redis)
        return redis

    def start_proxy(self, redis):
        proxy = BlackholeProxy(redis.port).start()
        self.addCleanup(proxy.stop)
        return proxy

    def start_node(self, redis_url, upstream, node_id, *flags, prefix=True,
                   lease_ttl=True, **kwargs):
        """A node with `--redis redis_url --node-id node_id`, this case's
        --redis-prefix (prefix=False: the default) and --lease-ttl."""
        args = []
        if redis_url is not None:
            args += ["--redis", redis_url]
        if prefix:
            args += ["--redis-prefix", self.prefix]
        if node_id is not None:
            args += ["--node-id", node_id]
        if lease_ttl:
            args += ["--lease-ttl", self.lease_ttl]
        svc = self.start_service(upstream, *(args + list(flags)), **kwargs)
        svc.node_id = node_id
        return svc

    def kill9(self, svc):
        svc.expect_unclean_exit = True
        svc.proc.kill()
        svc.proc.wait(5)

    def sigstop(self, svc):
        """SIGSTOP, with a cleanup that sends SIGCONT (before the stop)."""
        svc.signal(signal.SIGSTOP)
        self.addCleanup(lambda: svc.running and svc.signal(signal.SIGCONT))

    # -- observing nodes -----------------------------------------------------

    def info(self, svc):
        response = self.request(svc, "GET", "/api/v1/info")
        self.assertEqual(response.status, 200, repr(response))
        return response.json()

    def readyz(self, svc):
        response = self.request(svc, "GET", "/readyz")
        try:
            body = response.json()
        except ValueError:
            body = None
        return response.status, body

    def metrics(self, svc):
        return prom.scrape(svc.port)

    def metric(self, svc, name, **labels):
        return self.metrics(svc).get(name, **labels)

    def redis_errors(self, svc):
        """The sum of btcstream_redis_errors_total over its ops."""
        return sum(self.metrics(svc).series(
            "btcstream_redis_errors_total").values())

    def wait_ready(self, nodes, timeout=10.0):
        for svc in nodes:
            self.wait_until(lambda: self.readyz(svc)[0] == 200, timeout,
                            "%s /readyz 200 (last: %r)"
                            % (svc.node_id, self.readyz(svc)))

    def wait_leader(self, nodes, candidates=None, timeout=10.0):
        """Waits until every node of `nodes` names the same leader in
        /api/v1/info, one of `candidates` (default: `nodes`), and that node's
        btcstream_cluster_leader gauge is 1. Returns that node."""
        candidates = list(candidates or nodes)
        by_id = {c.node_id: c for c in candidates}
        deadline = time.monotonic() + timeout
        seen = None
        while time.monotonic() < deadline:
            seen = [self.info(n).get("leader") for n in nodes]
            if len(set(seen)) == 1 and seen[0] in by_id:
                leader = by_id[seen[0]]
                if self.metric(leader, "btcstream_cluster_leader") == 1:
                    return leader
            time.sleep(0.05)
        self.fail("no agreed leader among %r within %.0fs; the nodes %r "
                  "reported leaders %r" % (list(by_id), timeout,
                                           [n.node_id for n in nodes], seen))

    # -- the log in Redis ------------------------------------------------------

    def log_key(self, prefix=None):
        return "%s:log" % (prefix or self.prefix)

    def log_entries(self, redis, prefix=None):
        reply = redis.command("XRANGE", self.log_key(prefix), "-", "+")
        return [LogEntry(sid, fields) for sid, fields in reply]

    def log_top(self, redis, prefix=None):
        reply = redis.command("XREVRANGE", self.log_key(prefix), "+", "-",
                              "COUNT", "1")
        return LogEntry(*reply[0]).id if reply else None

    def assert_log_chain(self, entries, min_spacing_ms=INTERVAL_S * 500,
                         allow_holes=()):
        """Entry ids are `<id>-0`, strictly increasing; each `prev` is the
        entry before it (except right after an id in `allow_holes`); no two
        entries come from one poll interval: ts spacing >= `min_spacing_ms`
        (a late append by a deposed leader would carry an old ts)."""
        problems = []
        for e in entries:
            if e.seq != 0:
                problems.append("entry id %s is not <id>-0" % e.stream_id)
        for a, b in zip(entries, entries[1:]):
            if b.prev != a.id and a.id not in allow_holes:
                problems.append("entry %d has prev %d, the entry before it "
                                "is %d" % (b.id, b.prev, a.id))
            spacing = b.ts_ms - a.ts_ms
            if spacing < min_spacing_ms:
                problems.append("entries %d and %d are %d ms apart by ts "
                                "(< %d ms: two updates of one interval)"
                                % (a.id, b.id, spacing, min_spacing_ms))
        self.assertEqual(problems, [], "the log in Redis is not one chain "
                         "of one update per interval (%d entries)"
                         % len(entries))

    # -- checking streams --------------------------------------------------

    def assert_streams_are_the_log(self, redis, named_collectors):
        entries = self.log_entries(redis)
        self.assert_log_chain(entries)
        log_ids = [e.id for e in entries]
        for name, col in named_collectors:
            updates, gaps, _ = self.split_events(col.events())
            self.assertEqual([g.raw for g in gaps], [],
                             "%s: no gap expected" % name)
            self.assert_increasing(updates, name)
            ids = [e.int_id for e in updates]
            self.assertEqual([i for i in log_ids if ids[0] <= i <= ids[-1]],
                             ids, "%s: the stream is not the log" % name)

    def split_events(self, events):
        """(updates, gaps, heartbeats) of a collector's events; fails on
        anything else (the `retry:` block first is allowed)."""
        if events and events[0].retry is not None and events[0].id is None:
            events = events[1:]
        updates, gaps, hbs, other = [], [], [], []
        for e in events:
            (updates if e.is_update else gaps if e.is_gap else
             hbs if e.is_heartbeat else other).append(e)
        self.assertEqual(other, [], "unexpected events on a stream")
        return updates, gaps, hbs

    def assert_increasing(self, updates, what):
        ids = [e.int_id for e in updates]
        bad = [(a, b) for a, b in zip(ids, ids[1:]) if a >= b]
        self.assertEqual(bad, [], "%s: ids must strictly increase (no "
                         "duplicate, in order); pairs out of order" % what)

    def wait_collector_id(self, collector, floor, timeout, what):
        self.assertTrue(collector.wait_id_above(floor, timeout),
                        "%s: no update with id > %d within %.1fs (last ids "
                        "%r, closed=%s)" % (what, floor, timeout,
                                            collector.ids()[-5:],
                                            collector.closed))

    def first_after(self, collector, floor):
        """The first update with id > floor (it must be there)."""
        for e in collector.updates():
            if e.int_id > floor:
                return e
        return None

    def window(self, collectors, lo=None, hi=None):
        """[(id, raw)] of each collector over the ids every one of them
        covers (or [lo, hi])."""
        lists = [[(e.int_id, e.raw) for e in c.updates()] for c in collectors]
        if lo is None:
            lo = max(l[0][0] for l in lists)
        if hi is None:
            hi = min(l[-1][0] for l in lists)
        return lo, hi, [[p for p in l if lo <= p[0] <= hi] for l in lists]

    def resume_exactly(self, svc, after, reference, more=3, what="resume"):
        """Opens a stream on `svc` with Last-Event-ID `after` and checks it
        gets exactly the frames `reference` (a collector on a node that was
        connected throughout) has after `after`, byte for byte, up to `more`
        live updates past now, and no other event."""
        stream = self.open_ok_stream(svc,
                                     headers=[("Last-Event-ID", str(after))])
        have = len(reference.ids())
        self.assertTrue(reference.wait_updates(have + more, 5),
                        "%s: the reference client stopped getting updates"
                        % what)
        last = reference.ids()[-1]
        got = stream.read_until(lambda e: e.is_update and e.int_id >= last,
                                timeout=5)
        others = [e.raw for e in got if not e.is_update]
        expected = [(e.int_id, e.raw) for e in reference.updates()
                    if after < e.int_id <= last]
        self.assertEqual(others, [], "%s from %d on %s: no gap or other "
                         "event expected" % (what, after, svc.node_id))
        self.assertEqual([(e.int_id, e.raw) for e in got], expected,
                         "%s from %d on %s: exactly the frames after it, "
                         "as the reference saw them" % (what, after,
                                                        svc.node_id))
        stream.close()
        return got

    def upstream_spacing(self, upstream, t0, t1):
        """Times (s) between consecutive upstream requests in [t0, t1)."""
        times = [r[0] for r in upstream.requests() if t0 <= r[0] < t1]
        return times, [b - a for a, b in zip(times, times[1:])]

    def assert_one_poll_per_interval(self, upstream, t0, t1, what):
        times, gaps = self.upstream_spacing(upstream, t0, t1)
        span = t1 - t0
        allowed = int(span / INTERVAL_S) + 1
        self.assertLessEqual(len(times), allowed,
                             "%s: %d upstream requests in %.2fs, at most %d "
                             "expected (one per interval across the cluster)"
                             % (what, len(times), span, allowed))
        # Two requests on one connection come from one poller: a tick that
        # fires late is followed by the next on the grid, closer than half
        # an interval. Close requests on two connections are two pollers.
        conns = [c for r, (c, _) in zip(upstream.requests(),
                                        upstream.request_connections())
                 if t0 <= r[0] < t1]
        close = [round(g, 3) for g, a, b in zip(gaps, conns, conns[1:])
                 if g < INTERVAL_S * 0.5 and a != b]
        self.assertEqual(close, [], "%s: upstream requests on two connections"
                         " closer than half an interval (two pollers?)"
                         % what)
        return times

    @staticmethod
    def json_body(response):
        try:
            return json.loads(response.body.decode("utf-8"))
        except ValueError:
            return None
