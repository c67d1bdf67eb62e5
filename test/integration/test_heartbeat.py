"""The `: hb` comment heartbeat after --heartbeat without traffic."""

import socket
import time
import unittest

from case import ServiceCase

HEARTBEAT = "300ms"
QUIET_HEARTBEAT = "1s"  # where a heartbeat must not come while updates flow


class HeartbeatTest(ServiceCase):
    def read_for(self, stream, seconds):
        """Every event that arrives within `seconds`."""
        deadline = time.monotonic() + seconds
        events = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return events
            try:
                events.append(stream.next_event(left))
            except socket.timeout:
                return events

    def test_heartbeats_while_no_update_arrives(self):
        up = self.start_upstream()
        up.pause()
        svc = self.start_service(up, "--heartbeat", HEARTBEAT)
        stream = self.open_ok_stream(svc)
        events = self.read_for(stream, 1.6)
        self.assertTrue(all(e.raw == b": hb\n\n" for e in events),
                        "only exact heartbeats expected: %r" % events)
        # One every 300 ms: at least 3 in 1.6 s, and no flood.
        self.assertGreaterEqual(len(events), 3, repr(events))
        self.assertLessEqual(len(events), 7, repr(events))
        gaps = [b.received - a.received for a, b in zip(events, events[1:])]
        self.assertTrue(all(g > 0.15 for g in gaps),
                        "heartbeats too close together: %r" % gaps)

    def test_no_heartbeat_while_updates_flow_faster(self):
        up = self.start_upstream()
        # Updates every 100 ms, a heartbeat after 1 s without one: a service
        # stalled for a few hundred ms (ASan under load) must not read as a
        # heartbeat sent between updates.
        svc = self.start_service(up, "--heartbeat", QUIET_HEARTBEAT,
                                 interval="100ms")
        stream = self.open_ok_stream(svc)
        events = self.read_for(stream, 2.0)
        self.assertEqual([e for e in events if not e.is_update], [],
                         "no heartbeat expected while updates flow")
        self.assertGreaterEqual(len(events), 10)

    def test_heartbeats_start_when_updates_stop_and_stop_when_they_resume(self):
        up = self.start_upstream()
        svc = self.start_service(up, "--heartbeat", QUIET_HEARTBEAT)
        stream = self.open_ok_stream(svc)
        self.read_frames(stream, 2)
        up.pause()
        events = stream.read_until(lambda e: e.is_heartbeat, timeout=3.0)
        self.assertTrue(all(e.is_update for e in events[:-1]), repr(events))
        up.resume()
        stream.read_until(lambda e: e.is_update, timeout=2.0)
        events = self.read_for(stream, 1.0)
        self.assertEqual([e for e in events if not e.is_update], [],
                         "heartbeats continued while updates flow again")


if __name__ == "__main__":
    unittest.main()
