"""The gap event: exactly when updates after the resume point may be missing,
byte for byte, before the replay and without an id (DESIGN.md, "/stream",
"Gap").

To know exactly what the buffer holds, the tests that need it run with
`--history-max 5` and pause the upstream (it answers 500): the buffer then
holds the 5 newest ids the reference client saw, and nothing moves.
"""

import unittest

from case import ServiceCase


def gap_bytes(requested, oldest):
    oldest_text = "null" if oldest is None else str(oldest)
    return ('event: gap\ndata: {"requested":"%s","oldest":%s}\n\n'
            % (requested, oldest_text)).encode()


class EvictionGapTest(ServiceCase):
    """--history-max 5, 8+ updates, upstream paused."""

    def setUp(self):
        self.up = self.start_upstream()
        self.svc = self.start_service(self.up, "--history-max", "5")
        self.ref = self.collect(self.svc)
        self.assertTrue(self.ref.wait_updates(9, 5))
        self.ids = self.pause_upstream(self.up, self.ref)
        self.raw = {e.int_id: e.raw for e in self.ref.updates()}
        self.buffered = self.ids[-5:]

    def resume(self, requested, target=None):
        """Opens a stream resuming from `requested` (a Last-Event-ID)."""
        if target is None:
            return self.open_ok_stream(
                self.svc, headers=[("Last-Event-ID", str(requested))])
        return self.open_ok_stream(self.svc, target)

    def assert_replay(self, stream, ids):
        events = [stream.next_event(2) for _ in ids]
        self.assertEqual([e.raw for e in events],
                         [self.raw[i] for i in ids])
        self.assert_no_event(stream, 0.3, "nothing after the replay")

    def assert_live_follows(self, stream):
        self.up.resume()
        live = self.read_frames(stream, 2, timeout=5)
        self.assertGreater(live[0].id, self.ids[-1])

    def test_gap_when_an_update_after_the_resume_id_was_evicted(self):
        requested = self.ids[-7]
        stream = self.resume(requested)
        self.assertEqual(stream.next_event(2).raw,
                         gap_bytes(requested, self.buffered[0]))
        self.assert_replay(stream, self.buffered)
        self.assert_live_follows(stream)

    def test_gap_for_since_older_than_the_buffer_keeps_the_text_as_given(self):
        frames = self.frames(self.ref.updates())
        ts = [f.ts_ms for f in frames if f.id == self.ids[-7]][0]
        since = "%d.%03d000" % (ts // 1000, ts % 1000)
        stream = self.resume(None, "/stream?since=" + since)
        self.assertEqual(stream.next_event(2).raw,
                         gap_bytes(since, self.buffered[0]))
        self.assert_replay(stream, self.buffered)

    def test_resume_from_the_newest_evicted_id_is_not_a_gap(self):
        stream = self.resume(self.ids[-6])
        self.assert_replay(stream, self.buffered)
        self.assert_live_follows(stream)

    def test_resume_from_the_latest_id_replays_nothing(self):
        stream = self.resume(self.ids[-1])
        self.assert_no_event(stream, 0.5, "no gap and no replay")
        self.assert_live_follows(stream)

    def test_resume_inside_the_buffer_is_not_a_gap(self):
        stream = self.resume(self.ids[-3])
        self.assert_replay(stream, self.ids[-2:])

    def test_gap_when_the_resume_id_is_newer_than_any_known(self):
        requested = 99999999999999
        stream = self.resume(requested)
        self.assertEqual(stream.next_event(2).raw,
                         gap_bytes(requested, self.buffered[0]))
        self.assert_no_event(stream, 0.3, "no replay")
        # Live updates are not filtered by the (too new) resume id.
        self.assert_live_follows(stream)


class FreshStartGapTest(ServiceCase):
    """Nothing evicted: a resume point older than the first update of this
    process is a gap, and the replay starts at that first update."""

    def setUp(self):
        self.up = self.start_upstream()
        self.svc = self.start_service(self.up)
        self.assertTrue(self.up.wait_valid(4, 5))

    def check(self, requested, headers=(), target="/stream"):
        stream = self.open_ok_stream(self.svc, target, headers)
        gap = stream.next_event(2)
        first = self.frame(stream.next_event(2))
        self.assertEqual(gap.raw, gap_bytes(requested, first.id))
        self.assertEqual(first.price, self.up.valid_prices()[0],
                         "the replay must start at the first update")
        replay = self.read_frames(stream, 3)
        self.assertEqual([f.price for f in replay],
                         self.up.valid_prices()[1:4])

    def test_last_event_id_1(self):
        self.check("1", headers=[("Last-Event-ID", "1")])

    def test_last_event_id_parameter_1(self):
        self.check("1", target="/stream?lastEventId=1")

    def test_since_1(self):
        self.check("1", target="/stream?since=1")

    def test_since_text_is_echoed_as_given(self):
        self.check("1.500", target="/stream?since=1.500")


class EmptyBufferGapTest(ServiceCase):
    """The upstream answers 500 from the start: the buffer is empty."""

    def setUp(self):
        self.up = self.start_upstream()
        self.up.pause()
        self.svc = self.start_service(self.up)
        self.assertTrue(self.up.wait_requests(2, 5))

    def check_gap_then_live(self, requested, **kwargs):
        stream = self.open_ok_stream(self.svc, **kwargs)
        self.assertEqual(stream.next_event(2).raw, gap_bytes(requested, None))
        self.assert_no_event(stream, 0.3, "nothing to replay")
        self.up.resume()
        live = self.frame(stream.next_event(3))
        self.assertEqual(live.price, self.up.valid_prices()[0])

    def test_resume_id_with_an_empty_buffer(self):
        self.check_gap_then_live("12345", headers=[("Last-Event-ID", "12345")])

    def test_since_with_an_empty_buffer(self):
        self.check_gap_then_live("1", target="/stream?since=1")

    def test_no_resume_point_with_an_empty_buffer_is_not_a_gap(self):
        stream = self.open_ok_stream(self.svc)
        self.assert_no_event(stream, 0.5, "no gap without a resume point")
        self.up.resume()
        self.assertEqual(self.frame(stream.next_event(3)).price,
                         self.up.valid_prices()[0])


if __name__ == "__main__":
    unittest.main()
