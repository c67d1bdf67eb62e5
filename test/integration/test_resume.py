"""Resuming a stream: Last-Event-ID, ?lastEventId=, ?since=, their precedence
and the 400 answers for malformed values (DESIGN.md, "/stream")."""

import time
import unittest
import urllib.parse

from case import ServiceCase

MALFORMED_IDS = [
    "abc", "-1", "1.5", "0x10", "1e3", "+5", "12 34",
    "123456789012345678901",  # 21 digits
    "18446744073709551616",   # 2^64: 20 digits that overflow uint64
]

MALFORMED_SINCE = ["", "-1", "0x10", "1e9", "nan", "NaN", "inf", "abc",
                   "%2B5", "1.2.3", "%201", "1,5"]


def since_text(ts_ms, extra=""):
    """Unix seconds with a millisecond fraction: 1764182717.123 (+ extra)."""
    return "%d.%03d%s" % (ts_ms // 1000, ts_ms % 1000, extra)


class ResumeTest(ServiceCase):
    """A reference client is connected throughout; resumed clients must get
    exactly its frames after the resume point, byte for byte."""

    def setUp(self):
        self.up = self.start_upstream()
        self.svc = self.start_service(self.up)
        self.ref = self.collect(self.svc)
        self.assertTrue(self.ref.wait_updates(8, 5),
                        "the reference got %d updates" % len(self.ref.ids()))
        self.ref_frames = self.frames(self.ref.updates())

    def check_exactly_after(self, stream, after_id=None, from_ts=None):
        """Reads `stream` up to 3 live updates past now and compares it with
        the reference: every frame with id > after_id (or ts >= from_ts)."""
        live_from = len(self.ref.ids())
        self.assertTrue(self.ref.wait_updates(live_from + 3, 5))
        last = self.ref.ids()[-1]
        got = stream.read_until(lambda e: e.is_update and e.int_id >= last,
                                timeout=5)
        self.assertEqual([e for e in got if not e.is_update], [],
                         "no gap or other event expected")
        frames = self.frames(self.ref.updates())
        if after_id is not None:
            expected = [f for f in frames if after_id < f.id <= last]
        else:
            expected = [f for f in frames if f.ts_ms >= from_ts
                        and f.id <= last]
        self.assertEqual([e.int_id for e in got], [f.id for f in expected])
        self.assertEqual([e.raw for e in got], [f.raw for f in expected],
                         "replayed and live frames must be the same bytes")

    def test_last_event_id_header_replays_exactly_what_followed(self):
        after = self.ref_frames[2].id
        stream = self.open_ok_stream(self.svc,
                                     headers=[("Last-Event-ID", str(after))])
        self.check_exactly_after(stream, after_id=after)

    def test_last_event_id_query_parameter(self):
        after = self.ref_frames[3].id
        stream = self.open_ok_stream(self.svc, "/stream?lastEventId=%d" % after)
        self.check_exactly_after(stream, after_id=after)

    def test_resume_from_an_id_between_updates(self):
        after = self.ref_frames[4].id + 1  # no update has this id
        self.assertLess(after, self.ref_frames[5].id)
        stream = self.open_ok_stream(self.svc,
                                     headers=[("Last-Event-ID", str(after))])
        self.check_exactly_after(stream, after_id=after)

    def test_header_wins_over_query_parameters(self):
        late, early = self.ref_frames[5].id, self.ref_frames[2].id
        stream = self.open_ok_stream(
            self.svc, "/stream?lastEventId=%d&since=1" % early,
            headers=[("Last-Event-ID", str(late))])
        self.check_exactly_after(stream, after_id=late)

    def test_last_event_id_parameter_wins_over_since(self):
        late = self.ref_frames[5].id
        stream = self.open_ok_stream(
            self.svc, "/stream?since=1&lastEventId=%d" % late)
        self.check_exactly_after(stream, after_id=late)

    def test_since_is_inclusive_to_the_millisecond(self):
        ts = self.ref_frames[3].ts_ms
        stream = self.open_ok_stream(self.svc, "/stream?since=" +
                                     since_text(ts))
        self.check_exactly_after(stream, from_ts=ts)

    def test_since_with_sub_millisecond_fraction(self):
        ts = self.ref_frames[3].ts_ms
        # Just above ts: frame 3 excluded; just below: included.
        above = self.open_ok_stream(self.svc, "/stream?since=" +
                                    since_text(ts, "5"))
        below = self.open_ok_stream(self.svc, "/stream?since=" +
                                    since_text(ts - 1, "6"))
        self.check_exactly_after(above, from_ts=ts + 1)
        self.check_exactly_after(below, from_ts=ts)

    def test_future_since_within_a_day_is_live_only_without_gap(self):
        ids = self.pause_upstream(self.up, self.ref)
        since = "%d.5" % (time.time() + 3600)
        stream = self.open_ok_stream(self.svc, "/stream?since=" + since)
        self.assert_no_event(stream, 0.5, "nothing buffered is replayed and "
                             "no gap is sent")
        self.up.resume()
        live = self.read_frames(stream, 2, timeout=5)
        self.assertGreater(live[0].id, ids[-1])


class MalformedResumeTest(ServiceCase):
    def setUp(self):
        self.up = self.start_upstream()
        self.svc = self.start_service(self.up)

    def check_400(self, target, headers=()):
        response = self.request(self.svc, "GET", target, headers)
        self.assert_json_error(response, 400)
        self.assertEqual(response.header("Access-Control-Allow-Origin"), "*")

    def test_malformed_last_event_id_header_is_400(self):
        for value in MALFORMED_IDS:
            with self.subTest(value=value):
                self.check_400("/stream", [("Last-Event-ID", value)])

    def test_malformed_last_event_id_parameter_is_400(self):
        for value in MALFORMED_IDS + [""]:
            with self.subTest(value=value):
                self.check_400("/stream?lastEventId=" +
                               urllib.parse.quote(value))

    def test_malformed_since_is_400(self):
        for value in MALFORMED_SINCE:
            with self.subTest(value=value):
                self.check_400("/stream?since=" + value)

    def test_since_more_than_a_day_ahead_is_400(self):
        self.check_400("/stream?since=%d" % (time.time() + 86400 + 600))
        self.check_400("/stream?since=%d.25" % (time.time() + 3 * 86400))


if __name__ == "__main__":
    unittest.main()
