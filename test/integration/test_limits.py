"""Slow and stalled clients are closed and resume without loss; at
--max-clients a stream is refused with 503 (DESIGN.md, "/stream" and "Public
HTTP API").

A client that never reads has a small window (SO_RCVBUF) and small segments
(TCP_MAXSEG) so that the server's socket fills after some 15 KB; that the
server closed its end is read from /proc/net/tcp without reading the socket.
"""

import os
import socket
import time
import unittest

from case import ServiceCase
from client import (RawConnection, SseStream, StreamClosed, build_request,
                    http_request)

TCP_ESTABLISHED = 1


def server_side_socket(server_port, client_port):
    """The server's end of a loopback connection in /proc/net/tcp, as
    (TCP state, bytes the kernel holds to send: tx_queue); None once the
    socket is gone. State 1 is ESTABLISHED."""
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            local, remote = fields[1], fields[2]
            if int(local.split(":")[1], 16) == server_port and \
                    int(remote.split(":")[1], 16) == client_port:
                return (int(fields[3], 16),
                        int(fields[4].split(":")[0], 16))
    return None


def server_side_state(server_port, client_port):
    """The TCP state of the server's end (1 = ESTABLISHED); None once the
    socket is gone."""
    socket_ = server_side_socket(server_port, client_port)
    return socket_[0] if socket_ else None


def server_side_send_queue(server_port, client_port):
    """The bytes the kernel holds for the client on the server's end; None
    once the socket is gone."""
    socket_ = server_side_socket(server_port, client_port)
    return socket_[1] if socket_ else None


class StalledClientCase(ServiceCase):
    """Helpers: wait for the server to close a client, drain it, resume."""

    def wait_server_closed(self, svc, conn, timeout):
        deadline = time.monotonic() + timeout
        while server_side_state(svc.port, conn.local_port) == TCP_ESTABLISHED:
            if time.monotonic() > deadline:
                self.fail("the server kept a client that never reads for "
                          "%.0f s" % timeout)
            time.sleep(0.05)

    def drain(self, conn):
        """Reads everything the server had sent; asserts it then closed.
        Returns the id of the last complete update frame."""
        response = conn.read_head(5)
        self.assertEqual(response.status, 200)
        stream = SseStream(conn, response)
        last = None
        deadline = time.monotonic() + 10
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    self.fail("no EOF/reset within 10 s of draining")
                event = stream.next_event(left)
                if event.is_update:
                    last = event.int_id
        except StreamClosed:
            pass
        self.assertIsNotNone(last, "no complete frame before the close")
        return last

    def check_resume_loses_nothing(self, svc, ref, last):
        stream = self.open_ok_stream(svc, headers=[("Last-Event-ID",
                                                    str(last))])
        target = ref.ids()[-1]
        got = stream.read_until(lambda e: e.is_update and e.int_id >= target,
                                timeout=10)
        self.assertEqual([e for e in got if not e.is_update], [],
                         "no gap expected: everything is still buffered")
        expected = [e for e in ref.updates() if last < e.int_id <= target]
        self.assertEqual([e.int_id for e in got],
                         [e.int_id for e in expected])
        self.assertEqual([e.raw for e in got], [e.raw for e in expected])

class SlowClientTest(StalledClientCase):
    interval = "10ms"  # ~9 KB/s of frames

    def test_slow_consumer_over_client_queue_is_closed_and_resumes(self):
        up = self.start_upstream()
        svc = self.start_service(up, "--client-queue", "4KiB",
                                 "--stall-timeout", "10min")
        ref = self.collect(svc)
        conn = self.open_non_reader(svc)
        self.wait_server_closed(svc, conn, timeout=20)
        last = self.drain(conn)
        self.check_resume_loses_nothing(svc, ref, last)
        self.assertFalse(ref.closed, "the reading client must stay open")

    def test_a_paused_reader_gets_every_frame_whole_when_it_reads_again(self):
        # Once the client's window and the server's send buffer are full,
        # the server's writes stop, one of them mid-frame: the rest of that
        # frame must go out first when the client reads again, then the
        # frames queued meanwhile, nothing lost, cut or repeated.
        up = self.start_upstream()
        svc = self.start_service(up, "--client-queue", "10MiB",
                                 "--stall-timeout", "10min")
        ref = self.collect(svc)
        conn = self.open_non_reader(svc)
        self.wait_writes_blocked(svc, ref, conn)
        response = conn.read_head(5)
        self.assertEqual(response.status, 200)
        stream = SseStream(conn, response)
        target = ref.ids()[-1]
        got = stream.read_until(lambda e: e.is_update and e.int_id >= target,
                                timeout=20)
        updates = [e for e in got if e.is_update]
        expected = [e for e in ref.updates()
                    if updates[0].int_id <= e.int_id <= target]
        self.assertGreater(len(expected), 100, "a backlog was queued")
        self.assertEqual([e.raw for e in updates], [e.raw for e in expected])
        self.assertFalse(ref.closed, "the reading client must stay open")

    def wait_writes_blocked(self, svc, ref, conn):
        """Until the server's end of `conn` holds bytes it cannot send and
        takes no more while 10 updates go out to `ref`."""
        deadline = time.monotonic() + 20
        while True:
            before = server_side_send_queue(svc.port, conn.local_port)
            ids = len(ref.ids())
            self.wait_until(lambda: len(ref.ids()) >= ids + 10, 5,
                            "10 updates on the reference stream")
            after = server_side_send_queue(svc.port, conn.local_port)
            if before and before == after:
                return
            if time.monotonic() > deadline:
                self.fail("the server's writes to a client that does not "
                          "read never blocked (send queue %s)" % after)

    def test_stalled_client_is_closed_after_stall_timeout_and_resumes(self):
        up = self.start_upstream()
        svc = self.start_service(up, "--stall-timeout", "1s")
        ref = self.collect(svc)
        conn = self.open_non_reader(svc)
        self.wait_server_closed(svc, conn, timeout=15)
        last = self.drain(conn)
        self.check_resume_loses_nothing(svc, ref, last)
        self.assertFalse(ref.closed, "the reading client must stay open")


class QuietStalledClientTest(StalledClientCase):
    interval = "100ms"  # ~1 KB/s: the server's send buffer takes a minute

    def test_stalled_client_is_closed_by_the_kernel_before_writes_block(self):
        # A normal-sized segment, so the server's send buffer (64 KiB, fixed)
        # stays far from full: only the zero window shows the stall, and
        # TCP_USER_TIMEOUT (= --stall-timeout) ends the connection.
        up = self.start_upstream()
        svc = self.start_service(up, "--stall-timeout", "1s",
                                 "--client-queue", "10MiB")
        ref = self.collect(svc)
        conn = RawConnection(svc.port, rcvbuf=1024)
        self.addCleanup(conn.close)
        conn.send(build_request("GET", "/stream"))
        started = time.monotonic()
        self.wait_server_closed(svc, conn, timeout=20)
        self.assertLess(time.monotonic() - started, 15)
        self.wait_until(lambda: "sse session drops a client: stalled"
                        in svc.log(), 5, "the stalled drop in the log")
        last = self.drain(conn)
        self.check_resume_loses_nothing(svc, ref, last)
        self.assertFalse(ref.closed, "the reading client must stay open")


class MaxClientsTest(ServiceCase):
    def test_stream_beyond_max_clients_gets_503_until_one_leaves(self):
        up = self.start_upstream()
        svc = self.start_service(up, "--max-clients", "3")
        streams = [self.open_ok_stream(svc) for _ in range(3)]
        refused = self.request(svc, "GET", "/stream")
        self.assert_json_error(refused, 503)
        retry_after = refused.header("Retry-After")
        self.assertIsNotNone(retry_after, repr(refused))
        self.assertRegex(retry_after, r"\A\d+\Z")
        self.assertEqual(refused.header("Access-Control-Allow-Origin"), "*")
        for s in streams[1:]:  # the others are unaffected
            self.read_frames(s, 1)

        streams[0].close()
        deadline = time.monotonic() + 5
        while True:
            stream = self.open_stream(svc)
            if stream.response.status == 200:
                break
            self.assertEqual(stream.response.status, 503)
            self.assertLess(time.monotonic(), deadline,
                            "a slot never freed after a client left")
            time.sleep(0.1)
        self.assertRegex(stream.next_event(2).raw, rb"\Aretry: \d+\n\n\Z")
        self.read_frames(stream, 1)
        self.assert_json_error(self.request(svc, "GET", "/stream"), 503)

    def test_head_of_a_stream_at_max_clients_says_503_as_get_does(self):
        up = self.start_upstream()
        svc = self.start_service(up, "--max-clients", "1")
        head = self.request(svc, "HEAD", "/stream")
        self.assertEqual(head.status, 200, repr(head))
        stream = self.open_ok_stream(svc)
        self.read_frames(stream, 1)
        head = self.request(svc, "HEAD", "/stream")
        self.assertEqual(head.status, 503, repr(head))
        self.assertRegex(head.header("Retry-After") or "", r"\A\d+\Z")
        self.assertEqual(head.body, b"")
        self.read_frames(stream, 1)  # a HEAD takes no slot, ends none


if __name__ == "__main__":
    unittest.main()


class OutOfDescriptorsTest(ServiceCase):
    """With every descriptor in use, accept fails (EMFILE): the listener must
    back off instead of spinning, and serve again once descriptors free."""

    def cpu_seconds(self, pid):
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def test_accept_backs_off_on_emfile_and_recovers(self):
        up = self.start_upstream()
        svc = self.start_service(up, "--max-clients", "1000",
                                 "--max-http-connections", "1000",
                                 fd_limit=64)
        hogs = []
        try:
            for _ in range(120):  # more than the 64 descriptors it has
                hogs.append(socket.create_connection(("127.0.0.1", svc.port),
                                                     timeout=2))
            time.sleep(0.5)  # let it run into EMFILE
            before = self.cpu_seconds(svc.proc.pid)
            time.sleep(2.0)
            used = self.cpu_seconds(svc.proc.pid) - before
            self.assertLess(used, 0.5, "the server spun on EMFILE: %.2f s of "
                            "CPU in 2 s" % used)
            # One line per run of accept failures. A run can end early: a
            # poll that times out closes the upstream connection, and the
            # listener takes that descriptor before failing again.
            log = svc.log()
            self.assertEqual(log.count("cannot accept"),
                             log.count("accepts again") + 1,
                             "one log line per run of accept failures")
        finally:
            for s in hogs:
                s.close()
        # Descriptors free again: it serves.
        deadline = time.monotonic() + 5
        while True:
            try:
                status = http_request(svc.port, "GET", "/healthz").status
                if status == 200:
                    break
            except OSError:
                pass
            self.assertLess(time.monotonic(), deadline, "no recovery")
            time.sleep(0.1)
        stream = self.open_ok_stream(svc)
        self.assertIn("accepts again", svc.log())
        event = stream.next_event(5)
        self.assertIsNotNone(event.id, "an update after the recovery")
