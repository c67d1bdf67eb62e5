"""`/stream` basics: headers, framing, the retry block, update frames, the
first frame without a resume point, ids across a restart (DESIGN.md,
"Event identity" and "/stream")."""

import re
import time
import unittest

from case import ServiceCase
from client import StreamClosed

SSE_HEADERS = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
    "Access-Control-Allow-Origin": "*",
}


class HeadersTest(ServiceCase):
    def setUp(self):
        self.up = self.start_upstream()
        self.svc = self.start_service(self.up)

    def assert_sse_headers(self, response):
        self.assertEqual(response.status, 200, repr(response))
        for name, value in SSE_HEADERS.items():
            self.assertEqual(response.header(name), value,
                             "%s in %r" % (name, response.headers))
        self.assertIsNone(response.header("Content-Length"))
        self.assertIsNone(response.header("Content-Encoding"))

    def test_http11_stream_is_chunked_with_sse_headers(self):
        stream = self.open_stream(self.svc)
        self.assert_sse_headers(stream.response)
        self.assertEqual(stream.response.version, "HTTP/1.1")
        self.assertEqual(stream.response.header("Transfer-Encoding"),
                         "chunked")
        # The chunks decode to exact blocks.
        self.assertRegex(stream.next_event(2).raw, rb"\Aretry: \d+\n\n\Z")
        self.read_frames(stream, 2)

    def test_http10_stream_is_close_delimited(self):
        stream = self.open_stream(self.svc, version="HTTP/1.0")
        self.assert_sse_headers(stream.response)
        self.assertIsNone(stream.response.header("Transfer-Encoding"))
        # Raw body bytes are SSE blocks themselves: no chunk-size lines.
        self.assertRegex(stream.next_event(2).raw, rb"\Aretry: \d+\n\n\Z")
        self.read_frames(stream, 2)
        self.assertTrue(stream.raw.startswith(b"retry: "))
        # The body ends when the server closes the connection.
        self.svc.stop()
        deadline = time.monotonic() + 5
        with self.assertRaises(StreamClosed):
            while time.monotonic() < deadline:
                event = stream.next_event(deadline - time.monotonic())
                self.assertTrue(event.is_update or event.is_heartbeat,
                                repr(event))


class CorsOriginTest(ServiceCase):
    def test_cors_origin_flag_sets_the_header_and_vary(self):
        svc = self.start_service(self.start_upstream(),
                                 "--cors-origin", "https://example.org")
        stream = self.open_ok_stream(svc)
        self.assertEqual(stream.response.header("Access-Control-Allow-Origin"),
                         "https://example.org")
        self.assertEqual(stream.response.header("Vary"), "Origin")


class RetryTest(ServiceCase):
    def retry_values(self, svc, n):
        values = []
        for _ in range(n):
            stream = self.open_stream(svc)
            self.assertEqual(stream.response.status, 200)
            start = time.monotonic()
            event = stream.next_event(1.0)
            self.assertLess(time.monotonic() - start, 1.0)
            match = re.fullmatch(rb"retry: (\d+)\n\n", event.raw)
            self.assertIsNotNone(match, "first block %r" % event.raw)
            self.assertTrue(stream.raw.startswith(b"retry: "))
            values.append(int(match.group(1)))
            stream.close()
        return values

    def test_default_retry_is_3s_jittered_20_percent_per_connection(self):
        up = self.start_upstream()
        up.pause()  # the retry block comes at once, even with no price yet
        svc = self.start_service(up)
        values = self.retry_values(svc, 10)
        for v in values:
            self.assertTrue(2400 <= v <= 3600, "retry %d not in 2400..3600 "
                            "(all: %r)" % (v, values))
        self.assertGreater(len(set(values)), 1,
                           "10 connections got the same retry %r" % values)

    def test_retry_flag_sets_the_centre_of_the_jitter(self):
        svc = self.start_service(self.start_upstream(), "--retry", "10s")
        values = self.retry_values(svc, 5)
        for v in values:
            self.assertTrue(8000 <= v <= 12000, "retry %d not in 8000..12000"
                            % v)


class UpdateFrameTest(ServiceCase):
    def test_frames_are_exact_and_carry_the_upstream_price(self):
        up = self.start_upstream(price=97000, step=0.01)
        svc = self.start_service(up)
        stream = self.open_ok_stream(svc)
        events = stream.updates(8, timeout=5)
        frames = self.frames(events)  # each block matches FRAME_RE exactly
        self.assertEqual(len(frames), len(events), "only frames: %r" % events)
        valid = up.valid_prices()
        for event, f in zip(events, frames):
            now_ms = event.received * 1000
            self.assertLessEqual(f.ts_ms, now_ms + 5, f)
            self.assertLess(now_ms - f.ts_ms, 1000, "timestamp %s is more "
                            "than a second old" % f.ts_text)
            self.assertGreaterEqual(f.id, f.ts_ms, "id below its retrieval "
                                    "time: %r" % f)
            self.assertIn(f.price, valid)
        ids = [f.id for f in frames]
        self.assertEqual(ids, sorted(set(ids)), "ids not strictly increasing")
        # Every successful poll is one update: the prices are consecutive
        # answers of the upstream.
        index = [valid.index(f.price) for f in frames]
        self.assertEqual(index, list(range(index[0], index[0] + len(index))),
                         "frames skip or repeat upstream answers")

    def test_an_unchanged_price_is_still_an_update(self):
        up = self.start_upstream(price=97123.45, step=0)
        svc = self.start_service(up)
        frames = self.read_frames(self.open_ok_stream(svc), 5)
        self.assertEqual({f.price for f in frames}, {97123.45})
        self.assertIn(b'"price":97123.45}', frames[0].raw)
        ids = [f.id for f in frames]
        self.assertEqual(ids, sorted(set(ids)))

    def test_without_resume_point_the_latest_update_comes_first_at_once(self):
        up = self.start_upstream()
        svc = self.start_service(up, interval="1s")
        self.assertTrue(up.wait_valid(2, 5), "no two polls within 5 s")
        latest = up.valid_prices()[-1]
        # Stored (the next poll is ~0.8 s away): however slow the service.
        self.wait_until(lambda: self.request(
            svc, "GET", "/api/v1/price").json()["price"] == latest, 2,
            "the second price stored")
        stream = self.open_ok_stream(svc)
        start = time.monotonic()
        first = self.frame(stream.next_event(1.0))
        self.assertLess(time.monotonic() - start, 0.5,
                        "the buffered latest update must come at once")
        self.assertEqual(first.price, latest)
        live = self.read_frames(stream, 1, timeout=3)[0]
        self.assertGreater(live.id, first.id)
        self.assertEqual(live.price, up.valid_prices()[-1])


class RestartTest(ServiceCase):
    def test_ids_keep_increasing_across_a_restart(self):
        up = self.start_upstream()
        first = self.start_service(up)
        ref = self.collect(first)
        self.assertTrue(ref.wait_updates(3, 5))
        first.stop()
        self.wait_until(lambda: ref.closed, 5, "the old stream to end")
        last_old = ref.ids()[-1]
        ref.stop()
        second = self.start_service(up)
        stream = self.open_ok_stream(second)
        new = self.read_frames(stream, 2)
        self.assertGreater(new[0].id, last_old,
                           "first id after restart %d <= last id before %d"
                           % (new[0].id, last_old))


if __name__ == "__main__":
    unittest.main()
