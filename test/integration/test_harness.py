"""Self-tests of the harness: the fake upstream, the raw client, the readers.

They need no btcstream binary, so a broken harness shows up as such and not
as a failure of the service.
"""

import json
import socket
import threading
import time
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from client import (ChunkedDecoder, RawConnection, SseStream, StreamClosed,
                    build_request, http_request)
from case import WaitingCase
from fake_upstream import TICK_PATH, FakeUpstream


class FakeUpstreamTest(WaitingCase):
    def setUp(self):
        self.up = FakeUpstream(price=97000, step=0.01).start()
        self.addCleanup(self.up.stop)
        self.target = self.up.url[len(self.up.base_url):]

    def get(self, headers=()):
        return http_request(self.up.port, "GET", self.target, headers)

    def test_price_walks_deterministically(self):
        prices = [self.get().json()["Data"]["BTC-USD"]["VALUE"]
                  for _ in range(3)]
        self.assertEqual(prices, [97000.0, 97000.01, 97000.02])
        self.assertEqual(self.up.valid_prices(), prices)
        body = self.get().json()
        self.assertEqual(body["Err"], {})
        self.assertAlmostEqual(body["Data"]["BTC-USD"]["VALUE_LAST_UPDATE_TS"],
                               time.time(), delta=2)

    def test_keep_alive_serves_several_requests_on_one_connection(self):
        conn = RawConnection(self.up.port)
        self.addCleanup(conn.close)
        for _ in range(3):
            conn.send(build_request("GET", self.target))
            response = conn.read_body(conn.read_head())
            self.assertEqual(response.status, 200)
            self.assertEqual(response.version, "HTTP/1.1")
        self.assertEqual(self.up.request_count, 3)

    def answer_unread_then_close(self):
        """Asks for a price on a raw connection and closes it with the whole
        answer unread, as a client that timed out does: Linux then resets
        the connection instead of closing it."""
        sock = socket.create_connection(("127.0.0.1", self.up.port))
        sock.sendall(build_request("GET", self.target))
        # Until the answer is in this socket's receive queue, unread.
        sock.settimeout(5.0)
        head = sock.recv(1, socket.MSG_PEEK)
        self.assertEqual(head, b"H")
        sock.close()

    def test_an_answer_the_client_resets_unread_is_not_served(self):
        self.answer_unread_then_close()
        self.wait_until(lambda: self.up.abandoned_count == 1, 5,
                        "the reset noticed")
        self.assertEqual(self.up.served(), [])
        self.assertEqual(self.up.valid_prices(), [])
        # The next client gets the next price: the abandoned one is skipped,
        # as by a service that timed out on it.
        self.assertEqual(self.get().json()["Data"]["BTC-USD"]["VALUE"],
                         97000.01)
        self.assertEqual(self.up.valid_prices(), [97000.01])

    def test_answers_read_before_the_next_request_stay_served(self):
        conn = RawConnection(self.up.port)
        for _ in range(2):
            conn.send(build_request("GET", self.target))
            self.assertEqual(conn.read_body(conn.read_head()).status, 200)
        conn.close()  # everything read: a FIN, not a reset
        self.answer_unread_then_close()  # a reset on another connection
        self.wait_until(lambda: self.up.abandoned_count == 1, 5,
                        "the reset noticed")
        self.assertEqual(self.up.valid_prices(), [97000.0, 97000.01])

    def test_a_delayed_answer_stays_served_when_the_client_resets(self):
        self.up.fail("delay", count=1, seconds=0.2)
        self.answer_unread_then_close()
        # Its handler sees the reset after the delay, when it writes or
        # reads next, and is done with the connection after that.
        self.assertTrue(self.up.wait_requests(1))
        self.wait_until(lambda: self.up.open_connections == 0, 5,
                        "the handler done with the connection")
        self.assertEqual(self.up.abandoned_count, 0)
        self.assertEqual([(p, d) for _, p, d in self.up.served()],
                         [(97000.0, True)])

    def test_faults_apply_in_order_for_their_count(self):
        self.up.fail("status", count=1, status=503, message="down")
        self.up.fail("status", count=1, status=429, retry_after=2)
        self.up.fail("malformed", count=1)
        self.up.fail("empty_data", count=1)
        self.up.fail("value", count=1, value="97000")
        self.up.fail("raw_value", count=1, value="1e999")
        r = self.get()
        self.assertEqual(r.status, 503)
        self.assertEqual(r.json(), {"Data": {}, "Err": {"type": 1,
                                                        "message": "down"}})
        r = self.get()
        self.assertEqual((r.status, r.header("Retry-After")), (429, "2"))
        self.assertRaises(ValueError, json.loads, self.get().body)
        self.assertEqual(self.get().json(), {"Data": {}, "Err": {}})
        self.assertEqual(self.get().json()["Data"]["BTC-USD"]["VALUE"],
                         "97000")
        self.assertIn(b'"VALUE":1e999,', self.get().body)
        self.assertEqual(self.get().json()["Data"]["BTC-USD"]["VALUE"], 97000)
        self.assertEqual(self.up.valid_prices(), [97000.0])

    def test_fault_without_count_lasts_until_cleared(self):
        self.up.fail("value", value=0)
        for _ in range(3):
            self.assertEqual(self.get().json()["Data"]["BTC-USD"]["VALUE"], 0)
        self.up.clear_faults()
        self.assertEqual(self.get().json()["Data"]["BTC-USD"]["VALUE"], 97000)

    def test_pause_answers_500_until_resumed(self):
        self.up.pause()
        self.assertEqual(self.get().status, 500)
        self.up.resume()
        self.assertEqual(self.get().status, 200)

    def test_delay_and_reset(self):
        self.up.fail("delay", count=1, seconds=0.3)
        start = time.monotonic()
        self.assertEqual(self.get().status, 200)
        self.assertGreaterEqual(time.monotonic() - start, 0.3)
        self.up.fail("reset", count=1)
        with self.assertRaises((StreamClosed, ConnectionResetError)):
            self.get()
        self.assertEqual(self.get().status, 200)

    def test_records_request_headers(self):
        self.get(headers=[("Authorization", "Apikey secret")])
        _, method, path, headers = self.up.requests()[-1]
        self.assertEqual((method, path.split("?")[0]), ("GET", TICK_PATH))
        self.assertEqual(headers["authorization"], "Apikey secret")

    def test_unknown_path_is_404(self):
        self.assertEqual(http_request(self.up.port, "GET", "/x").status, 404)


class ChunkedDecoderTest(unittest.TestCase):
    def test_decodes_byte_by_byte(self):
        wire = b"5\r\nhello\r\n1;ext=1\r\n \r\nA\r\n0123456789\r\n0\r\n\r\nNEXT"
        decoder = ChunkedDecoder()
        out = b"".join(decoder.feed(wire[i:i + 1]) for i in range(len(wire)))
        self.assertEqual(out, b"hello 0123456789")
        self.assertTrue(decoder.done)
        self.assertEqual(decoder.leftover(), b"NEXT")

    def test_rejects_bad_framing(self):
        self.assertRaises(ValueError, ChunkedDecoder().feed, b"zz\r\n")
        self.assertRaises(ValueError, ChunkedDecoder().feed, b"1\r\nab\r\n")


class _SseHandler(BaseHTTPRequestHandler):
    """Serves a fixed SSE body, chunked (HTTP/1.1) or close-delimited."""
    protocol_version = "HTTP/1.1"
    body = (b"retry: 3000\n\n: hb\n\nevent: gap\ndata: {\"oldest\":null}\n\n"
            b"id: 7\ndata: {\"timestamp\":\"2026-11-26T18:45:17.123Z\","
            b"\"price\":97000.5}\n\n")

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        if self.request_version == "HTTP/1.1":
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(0, len(self.body), 7):  # awkward chunk sizes
                piece = self.body[i:i + 7]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(self.body)
            self.close_connection = True


class SseStreamTest(unittest.TestCase):
    def setUp(self):
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _SseHandler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.addCleanup(self.server.server_close)
        self.addCleanup(self.server.shutdown)
        self.port = self.server.server_address[1]

    def check(self, version):
        stream = SseStream.open(self.port, "/stream", version=version)
        self.addCleanup(stream.close)
        events = [stream.next_event(2) for _ in range(4)]
        self.assertEqual(events[0].retry, "3000")
        self.assertTrue(events[1].is_heartbeat)
        self.assertTrue(events[2].is_gap)
        self.assertIsNone(events[2].id)
        self.assertTrue(events[3].is_update)
        self.assertEqual(events[3].int_id, 7)
        self.assertEqual(events[3].json()["price"], 97000.5)
        self.assertEqual(stream.raw, _SseHandler.body)
        with self.assertRaises(StreamClosed):
            stream.next_event(2)
        return stream

    def test_chunked(self):
        stream = self.check("HTTP/1.1")
        self.assertEqual(stream.response.header("Transfer-Encoding"),
                         "chunked")

    def test_close_delimited(self):
        stream = self.check("HTTP/1.0")
        self.assertIsNone(stream.response.header("Transfer-Encoding"))

    def test_timeout_is_bounded(self):
        listener = socket.socket()  # a peer that accepts and never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        self.addCleanup(listener.close)
        conn = RawConnection(listener.getsockname()[1])
        self.addCleanup(conn.close)
        start = time.monotonic()
        with self.assertRaises(socket.timeout):
            conn.read_head(timeout=0.3)
        self.assertLess(time.monotonic() - start, 1.0)


if __name__ == "__main__":
    unittest.main()
