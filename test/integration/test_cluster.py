"""Cluster mode (DESIGN.md, "Cluster mode (Redis)"): several btcstream nodes
on one real Redis share one upstream poller (the lease holder) and one log
(a Redis Stream); every node streams only what it reads from the log.

Each test starts its own redis-server (AOF, appendfsync always) on a loopback
port, a fake upstream and 1-3 nodes with --interval 200ms --lease-ttl 1s; see
cluster.py. Measured times (failover, Redis outage) are printed to stderr.
"""

import os
import signal
import socket
import sys
import tempfile
import time
import unittest

from cluster import (INTERVAL_S, LEASE_TTL_S, ClusterCase, strictly_increasing)
from redis_server import free_port
from service import binary_path, clean_env
import subprocess

HEARTBEAT = "300ms"
HEARTBEAT_S = 0.3


def note(text):
    sys.stderr.write("\n  [cluster] %s\n" % text)
    sys.stderr.flush()


class SharedLogTest(ClusterCase):

    def test_three_nodes_stream_the_same_frames_and_poll_once_per_interval(self):
        redis = self.start_redis()
        up = self.start_upstream()
        nodes = [self.start_node(redis.url, up, "node%d" % i)
                 for i in (1, 2, 3)]
        self.wait_ready(nodes)
        self.wait_leader(nodes)
        cols = [self.collect(n) for n in nodes]
        t0 = time.time()
        for n, c in zip(nodes, cols):
            self.assertTrue(c.wait_updates(16, 10), "%s streamed %d updates"
                            % (n.node_id, len(c.ids())))
        t1 = time.time()
        lo, hi, seqs = self.window(cols)
        self.assertGreaterEqual(len(seqs[0]), 12, "too short a common window")
        for n, c, seq in zip(nodes, cols, seqs):
            updates, gaps, hbs = self.split_events(c.events())
            self.assertEqual(gaps, [], "%s: no gap expected" % n.node_id)
            self.assert_increasing(updates, n.node_id)
            self.assertEqual(seq, seqs[0], "%s streamed other (id, frame) "
                             "pairs than %s over ids %d..%d"
                             % (n.node_id, nodes[0].node_id, lo, hi))
        # The frames are the log's entries, one for one.
        entries = {e.id: e for e in self.log_entries(redis)}
        frames = self.frames([e for e in cols[0].updates()
                              if lo <= e.int_id <= hi])
        missing = [f.id for f in frames if f.id not in entries]
        self.assertEqual(missing, [], "streamed ids not in the Redis log")
        self.assertEqual(sorted(i for i in entries if lo <= i <= hi),
                         [f.id for f in frames],
                         "log entries in the window that were not streamed")
        for f in frames:
            e = entries[f.id]
            self.assertEqual((f.price, f.ts_ms), (e.price, e.ts_ms),
                             "frame %d vs its log entry %r" % (f.id, e))
        self.assert_log_chain(self.log_entries(redis))
        # One poller: at most one upstream request per interval in total.
        times = self.assert_one_poll_per_interval(up, t0, t1, "3 nodes")
        self.assertGreaterEqual(len(times), int((t1 - t0) / INTERVAL_S * 0.6),
                                "the cluster polls far less than once per "
                                "interval")
        note("3 nodes: %d upstream requests in %.2fs (interval %.1fs)"
             % (len(times), t1 - t0, INTERVAL_S))

    def test_resume_on_another_node_exactly_once(self):
        redis = self.start_redis()
        up = self.start_upstream()
        a = self.start_node(redis.url, up, "node-a")
        b = self.start_node(redis.url, up, "node-b")
        self.wait_ready([a, b])
        refs = {a: self.collect(a), b: self.collect(b)}
        for ref in refs.values():
            self.assertTrue(ref.wait_updates(3, 5))
        for first, second in ((a, b), (b, a)):
            with self.subTest(read_on=first.node_id, resume_on=second.node_id):
                stream = self.open_ok_stream(first)
                read = self.read_frames(stream, 4)
                stream.close()
                self.assertTrue(strictly_increasing([f.id for f in read]),
                                [f.id for f in read])
                last = read[-1].id
                ref = refs[second]
                self.wait_collector_id(ref, last, 5, second.node_id)
                # miss a few updates, then resume on the other node
                n = len(ref.ids())
                self.assertTrue(ref.wait_updates(n + 3, 5))
                self.resume_exactly(second, last, ref,
                                    what="resume of a %s client"
                                    % first.node_id)


class LogTrimmingTest(ClusterCase):
    """The leader trims the log in Redis as the buffer is trimmed: to
    --history-max entries (XADD MAXLEN) and to --history-ttl (XTRIM MINID:
    ids older than the appended update's ts minus the TTL). The log key
    itself has no TTL."""

    def appends_ok(self, svc):
        return self.metric(svc, "btcstream_cluster_appends_total",
                           result="ok") or 0

    def test_the_log_keeps_at_most_history_max_entries(self):
        redis = self.start_redis()
        up = self.start_upstream()
        a = self.start_node(redis.url, up, "node-a", "--history-max", "5")
        self.wait_ready([a])
        self.wait_until(lambda: self.appends_ok(a) >= 12, 10,
                        "12 appends by node-a")
        self.assertEqual(redis.command("XLEN", self.log_key()), 5,
                         "--history-max 5: the log is cut to 5 entries")
        entries = self.log_entries(redis)
        self.assert_log_chain(entries)
        self.assertEqual(redis.command("PTTL", self.log_key()), -1,
                         "the log key never expires as a whole")

    def test_the_log_drops_entries_older_than_history_ttl(self):
        redis = self.start_redis()
        up = self.start_upstream()
        a = self.start_node(redis.url, up, "node-a", "--history-ttl", "1s",
                            "--history-max", "1000")
        self.wait_ready([a])
        self.wait_until(lambda: self.log_entries(redis), 10, "a log entry")
        first = self.log_entries(redis)[0]
        # Appends for 3 s past the first: it is 2 s past the TTL.
        self.wait_until(lambda: self.log_entries(redis)[-1].ts_ms
                        >= first.ts_ms + 3000, 10, "3 s of appends")
        entries = self.log_entries(redis)  # one XRANGE: one state of the log
        newest = entries[-1]
        old = [e.id for e in entries if e.id < newest.ts_ms - 1000]
        self.assertEqual(old, [], "entries more than --history-ttl 1s "
                         "before the newest one's ts %d" % newest.ts_ms)
        self.assertNotIn(first.id, [e.id for e in entries])
        self.assertLessEqual(len(entries), 10, "about 1 s of 200 ms "
                             "intervals")
        self.assert_log_chain(entries)


class LeaseHandoverTest(ClusterCase):
    """A leader stopped cleanly hands its lease over: with a 10 s lease the
    next node polls within about an interval, not after the TTL."""

    lease_ttl = "10s"

    def test_sigterm_of_the_leader_hands_the_lease_over_at_once(self):
        redis = self.start_redis()
        up = self.start_upstream()
        a = self.start_node(redis.url, up, "node-a", grace="1s")
        self.wait_ready([a])
        self.wait_leader([a])
        b = self.start_node(redis.url, up, "node-b")
        self.wait_ready([b])
        self.assertIs(self.wait_leader([a, b]), a)
        col_b = self.collect(b)
        self.assertTrue(col_b.wait_updates(4, 5))
        t_term = time.time()
        a.signal(signal.SIGTERM)
        # The release comes before the grace period: the lease is b's (or
        # free) long before its 10 s could run out.
        top = self.log_top(redis)
        self.wait_collector_id(col_b, top, 3.0, "node-b after node-a's SIGTERM")
        handover = self.first_after(col_b, top).received - t_term
        note("handover: SIGTERM of the leader -> first new update on node-b "
             "after %.3fs (lease-ttl 10s, interval %.1fs)"
             % (handover, INTERVAL_S))
        self.assertLess(handover, 4 * INTERVAL_S + 1.0)
        self.assertEqual(a.wait(10), 0, "node-a's exit status")
        self.assertIn("bus released the lease", a.log())
        self.assertIs(self.wait_leader([b]), b)
        self.assertEqual(self.metric(b, "btcstream_cluster_leader"), 1)
        self.assertTrue(col_b.wait_updates(len(col_b.ids()) + 3, 5))
        self.assert_streams_are_the_log(redis, [("node-b", col_b)])
        self.assert_one_poll_per_interval(up, t_term - 1, time.time(),
                                          "across the handover")


class FailoverTest(ClusterCase):

    def test_kill9_of_the_leader_fails_over_within_lease_ttl_plus_interval(self):
        redis = self.start_redis()
        up = self.start_upstream()
        nodes = [self.start_node(redis.url, up, "node%d" % i)
                 for i in (1, 2, 3)]
        self.wait_ready(nodes)
        leader = self.wait_leader(nodes)
        survivors = [n for n in nodes if n is not leader]
        cols = {n: self.collect(n) for n in nodes}
        for n, c in cols.items():
            self.assertTrue(c.wait_updates(5, 5), n.node_id)
        t_kill = time.time()
        self.kill9(leader)
        top = self.log_top(redis)  # nothing can be appended after the kill
        for n in survivors:
            self.wait_collector_id(cols[n], top, LEASE_TTL_S + INTERVAL_S + 5,
                                   "%s after the leader's kill -9" % n.node_id)
        firsts = [self.first_after(cols[n], top) for n in survivors]
        failover = min(e.received for e in firsts) - t_kill
        note("failover: kill -9 of the leader %s -> first new update on a "
             "survivor after %.3fs (bound: lease-ttl %.1fs + interval %.1fs "
             "+ 0.5s slack); per survivor: %s"
             % (leader.node_id, failover, LEASE_TTL_S, INTERVAL_S,
                ", ".join("%s %.3fs" % (n.node_id, e.received - t_kill)
                          for n, e in zip(survivors, firsts))))
        self.assertLessEqual(failover, LEASE_TTL_S + INTERVAL_S + 0.5,
                             "failover took %.3fs" % failover)
        new_leader = self.wait_leader(survivors)
        self.assertNotEqual(new_leader.node_id, leader.node_id)
        # Survivors: connected throughout, the same frames, nothing lost.
        for n in survivors:
            self.assertTrue(cols[n].wait_updates(len(cols[n].ids()) + 3, 5))
        lo, hi, seqs = self.window([cols[n] for n in survivors])
        self.assertEqual(seqs[0], seqs[1], "survivors streamed different "
                         "frames over %d..%d" % (lo, hi))
        log_ids = [e.id for e in self.log_entries(redis)]
        for n in survivors:
            updates, gaps, _ = self.split_events(cols[n].events())
            self.assertEqual(gaps, [], "%s: a gap across the failover"
                             % n.node_id)
            self.assert_increasing(updates, n.node_id)
            ids = [e.int_id for e in updates]
            self.assertEqual([i for i in log_ids if ids[0] <= i <= ids[-1]],
                             ids, "%s: the stream is not the log" % n.node_id)
        self.assert_log_chain(self.log_entries(redis))
        self.assert_one_poll_per_interval(up, t_kill, time.time(),
                                          "after the failover")
        # The dead leader's client resumes on each survivor exactly once.
        last = cols[leader].ids()[-1]
        for n in survivors:
            self.resume_exactly(n, last, cols[n],
                                what="resume of the dead leader's client")

    def start_a_then_b(self, redis, up):
        """node-a, the leader, then node-b; clients on both."""
        a = self.start_node(redis.url, up, "node-a")
        self.wait_ready([a])
        self.wait_leader([a])
        b = self.start_node(redis.url, up, "node-b")
        self.wait_ready([b])
        self.assertIs(self.wait_leader([a, b]), a)
        col_a, col_b = self.collect(a), self.collect(b)
        self.assertTrue(col_a.wait_updates(4, 5))
        self.assertTrue(col_b.wait_updates(4, 5))
        return a, b, col_a, col_b

    def test_a_paused_leader_is_deposed_and_appends_nothing_late(self):
        """SIGSTOP the leader with an upstream request in flight (its answer
        arrives while it is stopped), past its lease; SIGCONT. The update it
        then holds must not reach the log: refused by Redis (fenced) or
        dropped by the node itself; either way the log stays one chain of
        one update per interval, and the node polls no more."""
        redis = self.start_redis()
        up = self.start_upstream()
        a, b, col_a, col_b = self.start_a_then_b(redis, up)
        n = up.request_count
        up.fail("delay", count=1, seconds=INTERVAL_S * 0.3)
        self.assertTrue(up.wait_requests(n + 1, 2), "the leader stopped "
                        "polling")
        self.sigstop(a)
        t_stop = time.time()
        time.sleep(LEASE_TTL_S * 2 + 2 * INTERVAL_S)
        self.assertEqual(self.info(b).get("leader"), "node-b",
                         "node-b must hold the lease while node-a is stopped")
        self.wait_collector_id(col_b, self.log_top(redis) - 1, 1, "node-b")
        a.signal(signal.SIGCONT)
        t_cont = time.time()
        time.sleep(1.5)
        self.assertEqual(self.wait_leader([a, b]), b, "node-b stays leader")
        self.assertEqual(self.metric(a, "btcstream_cluster_leader"), 0)
        self.assertGreaterEqual(
            self.metric(a, "btcstream_cluster_lease_losses_total") or 0, 1,
            "node-a lost its lease: lease_losses_total")
        self.assert_streams_are_the_log(redis, (("node-a", col_a),
                                                ("node-b", col_b)))
        self.assert_one_poll_per_interval(up, t_cont, time.time(),
                                          "after node-a's SIGCONT")
        appends = self.metrics(a).by_label("btcstream_cluster_appends_total",
                                           "result")
        note("paused leader: node-a stopped %.2fs; its appends %r; 'fenced' "
             "in its log: %s" % (t_cont - t_stop, appends,
                                 "fenced" in a.service_log()))

    def test_an_append_with_a_stolen_lease_is_fenced(self):
        """The lease changes hands in Redis right after node-a renewed it
        (seen with MONITOR): node-a's next append, within the same renewal
        period, must be refused atomically by Redis (fenced), node-a must
        stop polling, and nothing reaches the log until the lease is
        someone's again."""
        redis = self.start_redis()
        up = self.start_upstream()
        a, b, col_a, col_b = self.start_a_then_b(redis, up)
        lease_key, token_key = self.prefix + ":lease", self.prefix + ":token"
        monitor = redis.connect(timeout=5)
        self.addCleanup(monitor.close)
        self.assertEqual(monitor.call("MONITOR"), b"OK")
        thief = redis.connect()
        self.addCleanup(thief.close)
        deadline = time.monotonic() + 5
        while True:  # a lease renewal by node-a: [.. "<lease>" "<token>" "node-a" ..]
            line = monitor._line()
            if (('"%s" "%s" "node-a"' % (lease_key, token_key)).encode()
                    in line):
                break
            self.assertLess(time.monotonic(), deadline,
                            "no lease renewal by node-a seen with MONITOR")
        token = thief.call("INCR", token_key)
        thief.call("SET", lease_key, "%d intruder" % token, "PX", 3000)
        t_steal = time.time()
        monitor.close()
        top = self.log_top(redis)

        def fenced():
            value = self.metric(a, "btcstream_cluster_appends_total",
                                result="fenced") or 0
            return value >= 1 and "fenced" in a.service_log()
        try:
            self.wait_until(fenced, 2, "node-a's append refused")
        except AssertionError:
            s = self.metrics(a)
            self.fail("node-a's append after the lease was stolen was not "
                      "refused as fenced (metric and log): "
                      "btcstream_cluster_appends_total %r, 'fenced' in its "
                      "log: %s; lease losses %r"
                      % (s.by_label("btcstream_cluster_appends_total",
                                    "result"), "fenced" in a.service_log(),
                         s.get("btcstream_cluster_lease_losses_total")))
        self.wait_until(lambda: self.info(a).get("leader") == "intruder" and
                        self.info(b).get("leader") == "intruder", 1.5,
                        "both nodes to see the intruder's lease")
        self.assertEqual(self.metric(a, "btcstream_cluster_leader"), 0)
        time.sleep(max(0, t_steal + 2.5 - time.time()))
        self.assertEqual(self.log_top(redis), top, "nothing may be appended "
                         "while the intruder holds the lease")
        polls, _ = self.upstream_spacing(up, t_steal + 0.5, t_steal + 2.5)
        self.assertEqual(polls, [], "a node polled while the intruder held "
                         "the lease")
        # The intruder's lease expires: a node leads and polls again.
        self.wait_leader([a, b], timeout=5)
        self.wait_collector_id(col_a, top, 3, "node-a after the intruder")
        self.wait_collector_id(col_b, top, 3, "node-b after the intruder")
        self.assert_streams_are_the_log(redis, (("node-a", col_a),
                                                ("node-b", col_b)))


class RedisRestartTest(ClusterCase):

    def start_pair(self, redis, up):
        a = self.start_node(redis.url, up, "node-a", "--heartbeat", HEARTBEAT)
        b = self.start_node(redis.url, up, "node-b", "--heartbeat", HEARTBEAT)
        self.wait_ready([a, b])
        self.wait_leader([a, b])
        return a, b

    def test_redis_kill9_and_restart_from_its_aof_loses_nothing(self):
        redis = self.start_redis()
        up = self.start_upstream()
        a, b = self.start_pair(redis, up)
        cols = [self.collect(a), self.collect(a), self.collect(b)]
        for c in cols:
            self.assertTrue(c.wait_updates(5, 5))
        before = self.log_entries(redis)
        t_down = time.time()
        redis.kill9()
        top = before[-1].id
        time.sleep(INTERVAL_S * 4 + 0.5)
        for svc in (a, b):
            status, body = self.readyz(svc)
            self.assertEqual((status, (body or {}).get("status")),
                             (200, "stale"), "%s /readyz with Redis down "
                             "for %.1fs" % (svc.node_id, time.time() - t_down))
            self.assertEqual(self.metric(svc, "btcstream_redis_up"), 0,
                             "%s btcstream_redis_up with Redis down"
                             % svc.node_id)
        redis.restart(keep_data=True)
        t_up = time.time()
        for c in cols:
            self.wait_collector_id(c, top, 10, "a client across the restart")
            self.assertTrue(c.wait_updates(len(c.ids()) + 4, 5))
        entries = self.log_entries(redis)
        self.assertEqual([e.stream_id for e in entries[:len(before)]],
                         [e.stream_id for e in before],
                         "the log lost entries across the AOF restart")
        self.assert_log_chain(entries)
        log_ids = [e.id for e in entries]
        delays = []
        for i, c in enumerate(cols):
            self.assertFalse(c.closed, "client %d was disconnected" % i)
            updates, gaps, hbs = self.split_events(c.events())
            self.assertEqual([g.raw for g in gaps], [],
                             "client %d: no gap across an AOF restart" % i)
            self.assert_increasing(updates, "client %d" % i)
            ids = [e.int_id for e in updates]
            self.assertEqual([x for x in log_ids if ids[0] <= x <= ids[-1]],
                             ids, "client %d: not every log entry" % i)
            down = [e for e in hbs if t_down < e.received < t_up]
            self.assertGreaterEqual(len(down), 1, "client %d: no heartbeat "
                                    "while Redis was down" % i)
            delays.append(self.first_after(c, top).received - t_up)
        lo, hi, seqs = self.window(cols)
        self.assertTrue(seqs[0] == seqs[1] == seqs[2],
                        "clients saw different frames over %d..%d" % (lo, hi))
        note("Redis kill -9 + AOF restart: down %.2fs; first new update "
             "%.3f..%.3fs after the restart; no client disconnected, no gap"
             % (t_up - t_down, min(delays), max(delays)))
        # A resume from before the outage, on either node: nothing lost.
        self.resume_exactly(b, before[-3].id, cols[2],
                            what="resume across the AOF restart")
        self.resume_exactly(a, before[-3].id, cols[0],
                            what="resume across the AOF restart")

    def test_redis_restarted_empty_is_one_gap_per_client(self):
        redis = self.start_redis()
        up = self.start_upstream()
        a, b = self.start_pair(redis, up)
        cols = [self.collect(a), self.collect(a), self.collect(b)]
        for c in cols:
            self.assertTrue(c.wait_updates(5, 5))
        # Nothing is appended from here to the restart, however long the
        # steps take: `top` is the last id before it.
        self.pause_upstream(up)
        before = self.log_entries(redis)
        top = before[-1].id
        for c in cols:
            self.wait_collector_id(c, top - 1, 2, "caught up before")
        t_down = time.time()
        redis.restart(keep_data=False)
        t_up = time.time()
        up.resume()
        for c in cols:
            self.wait_collector_id(c, top, 10, "a client across the restart")
            self.assertTrue(c.wait_updates(len(c.ids()) + 4, 5))
        after = self.log_entries(redis)
        self.assertTrue(after and after[0].id > top,
                        "ids must keep increasing across an empty restart: "
                        "old top %d, new log starts %r" % (top, after[:1]))
        self.assert_log_chain(after)
        delays = []
        for i, c in enumerate(cols):
            self.assertFalse(c.closed, "client %d was disconnected" % i)
            events = c.events()
            updates, gaps, _ = self.split_events(events)
            self.assert_increasing(updates, "client %d" % i)
            self.assertEqual(len(gaps), 1, "client %d: exactly one gap "
                             "expected, got %r" % (i, [g.raw for g in gaps]))
            pos = events.index(gaps[0])
            last_before = [e for e in events[:pos] if e.is_update][-1]
            first_after = [e for e in events[pos:] if e.is_update][0]
            self.assertLessEqual(last_before.int_id, top)
            self.assertGreater(first_after.int_id, top)
            self.assertEqual(gaps[0].id, None, "a gap has no id")
            self.assertEqual(gaps[0].json(),
                             {"requested": str(last_before.int_id),
                              "oldest": first_after.int_id},
                             "client %d: the live gap's data" % i)
            new_ids = [e.int_id for e in updates if e.int_id > top]
            self.assertEqual([x.id for x in after
                              if new_ids[0] <= x.id <= new_ids[-1]], new_ids,
                             "client %d: not every entry of the new log" % i)
            delays.append(first_after.received - t_up)
        note("Redis restarted empty: down %.2fs; one gap per client; first "
             "new update %.3f..%.3fs after the restart"
             % (t_up - t_down, min(delays), max(delays)))
        # A resume from the last id before the restart (a client that was
        # connected up to it): a gap, then the new log.
        for svc, col in ((a, cols[0]), (b, cols[2])):
            stream = self.open_ok_stream(
                svc, headers=[("Last-Event-ID", str(top))])
            got = [stream.next_event(3) for _ in range(4)]
            expected = [('event: gap\ndata: {"requested":"%d","oldest":%d}'
                         '\n\n' % (top, after[0].id)).encode()]
            expected += [e.raw for e in col.updates()
                         if e.int_id in [x.id for x in after[:3]]]
            self.assertEqual([e.raw for e in got], expected,
                             "%s: a resume from %d, the last id before an "
                             "empty restart: a gap naming the first id after "
                             "it, then the new log" % (svc.node_id, top))

class PartitionTest(ClusterCase):

    def test_a_node_cut_off_from_redis_recovers_and_loses_nothing(self):
        redis = self.start_redis()
        proxy = self.start_proxy(redis)
        up = self.start_upstream()
        a = self.start_node(redis.url, up, "node-a", "--heartbeat", HEARTBEAT)
        self.wait_ready([a])
        self.wait_leader([a])
        b = self.start_node(proxy.url, up, "node-b", "--heartbeat", HEARTBEAT)
        self.wait_ready([b])
        self.assertIs(self.wait_leader([a, b]), a)
        col_a, col_b = self.collect(a), self.collect(b)
        for c in (col_a, col_b):
            self.assertTrue(c.wait_updates(5, 5))
        errors_before = self.redis_errors(b)
        self.assertEqual(self.metric(b, "btcstream_redis_up"), 1)
        pre = col_b.ids()[-3]
        proxy.drop()
        t_drop = time.time()

        def detected():
            s = self.metrics(b)
            return s.get("btcstream_redis_up") == 0 or sum(
                s.series("btcstream_redis_errors_total").values()) > \
                errors_before
        self.wait_until(detected, 10, "node-b to notice the partition "
                        "(btcstream_redis_up 0 or a redis error counted)")
        detect = time.time() - t_drop
        time.sleep(max(0, INTERVAL_S * 4 + 0.3 - detect))
        status, body = self.readyz(b)
        self.assertEqual((status, (body or {}).get("status")), (200, "stale"),
                         "node-b /readyz while cut off for %.1fs"
                         % (time.time() - t_drop))
        a_top = col_a.ids()[-1]
        self.assertTrue(col_a.wait_updates(len(col_a.ids()) + 3, 5),
                        "node-a must go on streaming")
        self.assertFalse(col_b.closed, "node-b's client was disconnected")
        t_heal = time.time()
        proxy.heal()
        target = col_a.ids()[-1]
        self.wait_collector_id(col_b, target - 1, 10,
                               "node-b after heal (backfill)")
        caught_up = self.first_after(col_b, a_top).received - t_heal
        self.assertTrue(col_a.wait_updates(len(col_a.ids()) + 3, 5))
        self.wait_collector_id(col_b, col_a.ids()[-1] - 1, 5, "node-b live")
        self.wait_until(lambda: self.metric(b, "btcstream_redis_up") == 1, 5,
                        "btcstream_redis_up 1 on node-b after heal")
        self.wait_until(lambda: self.readyz(b)[1].get("status") == "ok", 5,
                        "node-b /readyz ok after heal")
        updates, gaps, hbs = self.split_events(col_b.events())
        self.assertEqual([g.raw for g in gaps], [],
                         "node-b's client: no gap (the log kept everything)")
        self.assert_increasing(updates, "node-b's client")
        during = [e for e in hbs if t_drop < e.received < t_heal]
        self.assertGreaterEqual(len(during), 1, "node-b's client got no "
                                "heartbeat while cut off")
        lo, hi, seqs = self.window([col_a, col_b])
        self.assertEqual(seqs[1], seqs[0], "node-b's client vs node-a's over "
                         "%d..%d" % (lo, hi))
        self.resume_exactly(b, pre, col_a,
                            what="resume on node-b across its partition")
        note("partition of node-b: detected after %.3fs; cut off %.2fs; "
             "caught up %.3fs after heal; %d heartbeats meanwhile"
             % (detect, t_heal - t_drop, caught_up, len(during)))

    def test_a_leader_cut_off_from_redis_stops_polling(self):
        redis = self.start_redis()
        proxy = self.start_proxy(redis)
        up = self.start_upstream()
        a = self.start_node(proxy.url, up, "node-a", "--heartbeat", HEARTBEAT)
        self.wait_ready([a])
        self.wait_leader([a])
        b = self.start_node(redis.url, up, "node-b", "--heartbeat", HEARTBEAT)
        self.wait_ready([b])
        self.assertIs(self.wait_leader([a, b]), a)
        col_a, col_b = self.collect(a), self.collect(b)
        for c in (col_a, col_b):
            self.assertTrue(c.wait_updates(4, 5))
        t_drop = time.time()
        proxy.drop()
        top = self.log_top(redis)
        self.wait_collector_id(col_b, top, LEASE_TTL_S + INTERVAL_S + 5,
                               "node-b after node-a was cut off")
        takeover = self.first_after(col_b, top).received - t_drop
        time.sleep(1.0)
        self.assert_one_poll_per_interval(up, t_drop - 1, time.time(),
                                          "around the leader's partition")
        proxy.heal()
        self.wait_until(lambda: self.metric(a, "btcstream_redis_up") == 1,
                        10, "node-a reconnected")
        self.assertEqual(self.wait_leader([a, b]), b)
        self.wait_collector_id(col_a, col_b.ids()[-1] - 1, 5,
                               "node-a backfilled")
        self.assert_log_chain(self.log_entries(redis))
        for name, c in (("node-a", col_a), ("node-b", col_b)):
            updates, gaps, _ = self.split_events(c.events())
            self.assertEqual([g.raw for g in gaps], [], name)
            self.assert_increasing(updates, name)
        lo, hi, seqs = self.window([col_a, col_b])
        self.assertEqual(seqs[0], seqs[1])
        note("leader cut off: node-b streamed a new update %.3fs after the "
             "drop" % takeover)


def run_binary(args, env=None, timeout=5.0):
    proc = subprocess.Popen([binary_path()] + args, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=clean_env(env))
    try:
        out, err = proc.communicate(timeout=timeout)
        return proc.returncode, (out + err).decode("utf-8", "replace")
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate(timeout=5)
        return None, (out + err).decode("utf-8", "replace")


LOCAL_URL = "http://127.0.0.1:9/index/cc/v1/latest/tick"


class ConfigTest(ClusterCase):

    def test_bad_redis_values_exit_2_naming_the_flag(self):
        cases = [("--redis", "not-a-url"), ("--redis", "http://127.0.0.1:6379"),
                 ("--redis", "redis://"), ("--redis", "redis://127.0.0.1:x"),
                 ("--redis", "redis://127.0.0.1:99999"),
                 ("--lease-ttl", "0s"), ("--lease-ttl", "abc"),
                 ("--redis-password-file", "/nonexistent")]
        for flag, value in cases:
            with self.subTest(flag=flag, value=value):
                args = ["--listen", "127.0.0.1:0", "--upstream-url", LOCAL_URL]
                if flag != "--redis":
                    args += ["--redis", "redis://127.0.0.1:%d" % free_port()]
                code, out = run_binary(args + [flag, value])
                self.assertIsNotNone(code, "%s %s: kept running" % (flag,
                                                                    value))
                self.assertEqual(code, 2, "%s %s -> exit %s (as every bad "
                                 "value): %r" % (flag, value, code, out[-300:]))
                self.assertIn(flag, out, "the message must name %s" % flag)
        code, out = run_binary(["--listen", "127.0.0.1:0", "--upstream-url",
                                LOCAL_URL], env={"BTCSTREAM_REDIS": "nope"})
        self.assertEqual(code, 2, "BTCSTREAM_REDIS=nope -> %s: %r"
                         % (code, out[-300:]))
        self.assertTrue("--redis" in out or "BTCSTREAM_REDIS" in out, out)

    def test_nothing_listening_starts_not_ready_and_retries(self):
        up = self.start_upstream()
        url = "redis://127.0.0.1:1"
        svc = self.start_node(url, up, "lonely")
        time.sleep(2.0)
        self.assertTrue(svc.running, "the node exited with Redis "
                        "unreachable:\n%s" % svc.log_tail())
        status, body = self.readyz(svc)
        self.assertEqual((status, body), (503, {"status": "starting"}),
                         "/readyz before any backfill")
        info = self.info(svc)
        self.assertEqual((info.get("mode"), info.get("node"),
                          info.get("leader", "absent")),
                         ("cluster", "lonely", None), repr(info))
        s1 = self.metrics(svc)
        self.assertEqual(s1.get("btcstream_redis_up"), 0)
        c1 = s1.get("btcstream_redis_errors_total", op="connect") or 0
        self.assertGreaterEqual(c1, 1, "connect errors counted")
        time.sleep(2.0)
        c2 = self.metric(svc, "btcstream_redis_errors_total",
                         op="connect") or 0
        self.assertGreater(c2, c1, "the node must keep retrying")
        self.assertEqual(up.request_count, 0,
                         "a node without the lease must not poll")
        stream = self.open_ok_stream(svc)
        self.assert_no_event(stream, 0.5, "nothing to stream")
        note("--redis redis://127.0.0.1:1: the node runs, /readyz 503 "
             "starting, %d connect errors in 4s" % c2)


class InfoAndReadinessTest(ClusterCase):

    def test_info_in_single_mode(self):
        up = self.start_upstream()
        svc = self.start_service(up)
        info = self.info(svc)
        self.assertEqual(info.get("mode"), "single", repr(info))
        self.assertNotIn("node", info, "node is a cluster-mode field")
        self.assertNotIn("leader", info, "leader is a cluster-mode field")
        for key in ("interval_ms", "history_ttl_ms", "history_max",
                    "heartbeat_ms", "version"):
            self.assertIn(key, info)
        names = self.metrics(svc).families
        cluster = sorted(n for n in names if n.startswith(
            ("btcstream_cluster_", "btcstream_redis_")))
        self.assertEqual(cluster, [], "cluster metrics in single mode")

    def test_info_and_readyz_in_cluster_mode(self):
        redis = self.start_redis()
        redis.pause()  # the node can connect, but gets no answer
        up = self.start_upstream()
        svc = self.start_node(redis.url, up, "solo")
        time.sleep(0.5)
        status, body = self.readyz(svc)
        self.assertEqual((status, body), (503, {"status": "starting"}),
                         "/readyz before the first backfill")
        info = self.info(svc)
        self.assertEqual((info.get("mode"), info.get("node"),
                          info.get("leader", "absent")),
                         ("cluster", "solo", None), repr(info))
        self.assertEqual(info.get("interval_ms"), 200, repr(info))
        redis.resume()
        self.wait_until(lambda: self.readyz(svc) == (200, {"status": "ok"}),
                        10, "/readyz 200 ok after Redis answers")
        self.assertIs(self.wait_leader([svc]), svc)
        info = self.info(svc)
        self.assertEqual((info.get("mode"), info.get("node"),
                          info.get("leader")), ("cluster", "solo", "solo"))
        s = self.metrics(svc)
        for name, labels, floor in (
                ("btcstream_cluster_leader", {}, 1),
                ("btcstream_redis_up", {}, 1),
                ("btcstream_cluster_lease_acquisitions_total", {}, 1),
                ("btcstream_cluster_lease_losses_total", {}, 0),
                ("btcstream_cluster_appends_total", {"result": "ok"}, 1),
                ("btcstream_cluster_appends_total", {"result": "fenced"}, 0),
                ("btcstream_cluster_appends_total", {"result": "error"}, 0),
                ("btcstream_cluster_ingested_total", {}, 1),
                ("btcstream_cluster_backfilled_total", {}, 0),
                ("btcstream_cluster_holes_total", {}, 0)):
            with self.subTest(metric=name, **labels):
                value = s.get(name, **labels)
                self.assertIsNotNone(value, "no sample %s%r" % (name, labels))
                self.assertGreaterEqual(value, floor)
        # The ingest lag: a gauge, or a histogram that has observations.
        lag = "btcstream_cluster_ingest_lag_seconds"
        self.assertIn(lag, s.types, "no %s family" % lag)
        if s.types[lag] in ("histogram", "summary"):
            self.assertGreaterEqual(s.count(lag), 1, lag)
        else:
            self.assertIsNotNone(s.get(lag), lag)
        for op in ("connect", "lease", "append", "read", "decode"):
            self.assertIsNotNone(s.get("btcstream_redis_errors_total", op=op),
                                 "btcstream_redis_errors_total{op=%r}" % op)
        self.assertEqual(s.get("btcstream_cluster_holes_total"), 0)


class PasswordTest(ClusterCase):
    PASSWORD = "Pw9f3kQ7zXc2t"

    def test_password_in_the_url_and_in_a_file_never_shown(self):
        redis = self.start_redis(password=self.PASSWORD)
        up = self.start_upstream()
        fd, path = tempfile.mkstemp(prefix="btcstream-redis-pw-")
        with os.fdopen(fd, "w") as f:
            f.write(self.PASSWORD + "\n")  # as `echo pw > file` writes it
        self.addCleanup(os.unlink, path)
        # The default prefix here: keys btcstream:*.
        a = self.start_node(redis.url_with_password(), up, "node-a",
                            prefix=False)
        b = self.start_node(redis.url, up, "node-b",
                            "--redis-password-file", path, prefix=False)
        wrong = self.start_node(redis.url_with_password("wrongpass-77"), up,
                                "node-w", prefix=False)
        self.wait_ready([a, b])
        leader = self.wait_leader([a, b])
        cols = [self.collect(a), self.collect(b)]
        for c in cols:
            self.assertTrue(c.wait_updates(5, 5))
        lo, hi, seqs = self.window(cols)
        self.assertEqual(seqs[0], seqs[1])
        self.assertGreater(len(redis.command("XRANGE", "btcstream:log", "-",
                                             "+")), 0, "key btcstream:log")
        lease = redis.command("GET", "btcstream:lease")
        self.assertRegex(lease or b"", rb"\A\d+ %s\Z"
                         % leader.node_id.encode(),
                         "btcstream:lease is '<token> <node>'")
        status, body = self.readyz(wrong)
        self.assertEqual((status, body), (503, {"status": "starting"}),
                         "a node with a wrong password is not ready")
        self.assertGreaterEqual(self.redis_errors(wrong), 1,
                                "the wrong password counts as a Redis error")
        for svc in (a, b, wrong):
            for route in ("/api/v1/info", "/metrics", "/readyz"):
                body = self.request(svc, "GET", route).body
                self.assertNotIn(self.PASSWORD.encode(), body,
                                 "%s %s shows the password" % (svc.node_id,
                                                               route))
                self.assertNotIn(b"wrongpass-77", body)
        for svc in (a, b, wrong):
            svc.stop()
            log = svc.service_log()
            self.assertNotIn(self.PASSWORD, log, "%s logged the password"
                             % svc.node_id)
            self.assertNotIn("wrongpass-77", log, "%s logged the (wrong) "
                             "password" % svc.node_id)


if __name__ == "__main__":
    unittest.main()
