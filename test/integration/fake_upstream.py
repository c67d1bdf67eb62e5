#!/usr/bin/env python3
"""A fake CoinDesk Data API for the integration suite and for manual runs.

It answers `GET /index/cc/v1/latest/tick?market=ccix&instruments=BTC-USD`
like CoinDesk (HTTP/1.1, keep-alive, Content-Length) with a price that walks
deterministically: the n-th valid answer (n from 0) carries
`round(price + n * step, 8)`.

In-process use (every setter is thread-safe):

    up = FakeUpstream(price=97000, step=0.01)
    up.start()
    up.url                      # the full tick URL to pass as --upstream-url
    up.fail("status", status=500, count=2)
    up.fail("value", value=0)   # count=None: until clear_faults()
    up.pause(); up.resume()     # answer 500 while paused
    up.valid_prices()           # what was served, in order (see served())
    up.stop()

Fault kinds for `fail(kind, count=None, **params)`, applied in the order they
were added; the first one still active answers the request:
  status       HTTP `status` (default 500) with a CoinDesk error body; with
               `retry_after` (seconds or an HTTP-date) a Retry-After header
  malformed    HTTP 200 whose body is not JSON
  empty_data   HTTP 200 with `{"Data":{},"Err":{}}`
  value        HTTP 200 with VALUE = `value` (any JSON value: 0, -1, "97000")
  raw_value    HTTP 200 with VALUE spliced in as text (`NaN`, `1e999`)
  delay        wait `seconds`, then a normal answer
  reset        close the connection with a TCP reset instead of answering

Keep-alive modes, `keep_alive_mode(mode)`, for the fetcher's connection reuse:
  None           normal keep-alive (the default)
  "close_after"  every response is sent as keep-alive (no `Connection: close`)
                 and then the connection is closed silently (FIN), so a client
                 that reuses it fails before the first response byte
  "drop_reused"  a second request on one connection is read and then the
                 connection is closed (FIN) without any answer: the race of a
                 server closing an idle connection as the client reuses it

TLS: pass a server-side `ssl.SSLContext` as `ssl_context`; every accepted
connection is wrapped (handshake on the handler thread). `sni_names()` lists
the SNI host names clients sent (None when a client sent none),
`tls_failures()` the handshakes that failed. `url_host` names the host in
`url` (e.g. "localhost") while the server still binds `host`.

CLI: `python3 fake_upstream.py --port 9000 [--price 97000] [--step 0.01]
[--control-port 9001]`. With `--control-port` (0 picks a free port) a second
small HTTP server on the same host lets another process (the browser tests)
drive the fake: `POST /pause`, `POST /resume`, `POST /price?value=V[&step=S]`
(set_price) answer 204; `GET /state` answers
`{"paused":…,"served":<valid answers>,"last_price":<or null>}`. Its port is
printed as `fake upstream control on <host>:<port>`.
"""

import argparse
import json
import os
import socket
import ssl
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TICK_PATH = "/index/cc/v1/latest/tick"
TICK_QUERY = "market=ccix&instruments=BTC-USD"

FAULT_KINDS = ("status", "malformed", "empty_data", "value", "raw_value",
               "delay", "reset")


def _dumps(obj):
    return json.dumps(obj, separators=(",", ":"))


class _Fault:
    def __init__(self, kind, count, params):
        if kind not in FAULT_KINDS:
            raise ValueError("unknown fault kind %r" % kind)
        self.kind = kind
        self.remaining = count  # None: until cleared
        self.params = params


class _Answer:
    """What one request gets; computed under the lock, written outside it."""

    def __init__(self, status=200, body=b"", headers=(), delay=0.0,
                 reset=False):
        self.status = status
        self.body = body
        self.headers = list(headers)
        self.delay = delay
        self.reset = reset
        self.served_index = None  # valid answers: the index in served()
        self.drop = False  # close without answering ("drop_reused")
        self.close_after = False  # close silently after it ("close_after")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # The head and the body are two writes: with Nagle's algorithm the body
    # waits for the client's delayed ACK (up to 40 ms), which capped a
    # kept-alive client at ~20 requests/s (test/bench: 200 updates/s).
    disable_nagle_algorithm = True
    server_version = "FakeCoinDesk/1"

    def log_message(self, fmt, *args):  # keep test output quiet
        if self.server.upstream.verbose:
            sys.stderr.write("fake upstream: " + (fmt % args) + "\n")

    def setup(self):
        super().setup()
        self.requests_here = 0  # requests read on this connection
        # The served index of the last answer, if it was an undelayed valid
        # one and no request has followed it on this connection.
        self.unread_valid = None
        self.conn_serial = self.server.upstream._track(self.connection, True)

    def finish(self):
        try:
            super().finish()
        finally:
            self.server.upstream._track(self.connection, False)

    def handle(self):
        try:
            super().handle()
        except (ConnectionResetError, BrokenPipeError):
            # The client reset the connection on its last answer unread:
            # it gave up on it.
            if self.unread_valid is not None:
                self.server.upstream._abandoned(self.unread_valid)
            raise

    def do_GET(self):
        upstream = self.server.upstream
        reused = self.requests_here > 0
        self.requests_here += 1
        self.unread_valid = None  # a new request: the last answer was read
        answer = upstream._answer(self.command, self.path, self.headers,
                                  self.conn_serial, reused)
        if answer.served_index is not None and not answer.delay:
            self.unread_valid = answer.served_index
        if answer.drop:
            self.close_connection = True  # FIN, no answer at all
            return
        upstream._in_flight(+1)
        try:
            if answer.delay:
                time.sleep(answer.delay)
            if answer.reset:
                self._reset()
                return
            self.send_response(answer.status)
            self.send_header("Content-Type",
                             "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(answer.body)))
            for name, value in answer.headers:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(answer.body)
            self.wfile.flush()
            if answer.close_after:
                self.close_connection = True  # silently: no header said so
        finally:
            upstream._in_flight(-1)

    def do_HEAD(self):
        self.do_GET()

    def _reset(self):
        """Closes the connection with RST (SO_LINGER 0) instead of FIN."""
        self.close_connection = True
        sock = self.connection
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                            struct.pack("ii", 1, 0))
            # detach() so that the handler's own cleanup cannot close the
            # descriptor a second time (after it may have been reused).
            os.close(sock.detach())
        except OSError:
            pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def handle_error(self, request, client_address):
        # A client that gave up (timeout, reset) is expected here.
        if self.upstream.verbose:
            super().handle_error(request, client_address)

    def finish_request(self, request, client_address):
        """On the handler thread: the TLS handshake first, if any."""
        context = self.upstream._ssl_context
        if context is None:
            return super().finish_request(request, client_address)
        request.settimeout(5.0)  # a client that never handshakes
        try:
            tls = context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as e:
            self.upstream._tls_failed(e)
            return
        tls.settimeout(None)
        self.upstream._tls_done(tls.session_reused)
        try:
            self.RequestHandlerClass(tls, client_address, self)
        finally:
            try:
                tls.close()
            except OSError:
                pass


class FakeUpstream:
    """A fake CoinDesk server on 127.0.0.1; see the module docstring."""

    def __init__(self, price=97000.0, step=0.01, host="127.0.0.1", port=0,
                 instrument="BTC-USD", ssl_context=None, verbose=False,
                 url_host=None):
        self.host = host
        self.url_host = url_host or host
        self.instrument = instrument
        self.verbose = verbose
        self._requested_port = port
        self._ssl_context = ssl_context
        self._lock = threading.Condition()
        self._base = float(price)
        self._step = float(step)
        self._n = 0  # valid answers so far
        self._faults = []
        self._paused = False
        self._requests = []  # (time, method, path, {header: value})
        self._served = []  # (time, price, delayed) of valid answers
        self._abandoned_indices = set()  # of _served: see served()
        self._answers = []  # (time, status or "reset", fault kind or None)
        self._connections = set()
        self._conn_serial = 0  # connections accepted so far
        self._request_conns = []  # (connection serial, reused) per request
        self._keep_alive_mode = None
        self._busy = 0  # requests being answered right now
        self._max_busy = 0
        self._sni = []  # SNI names of TLS handshakes, in order
        self._tls_failures = []  # (time, error text)
        self._tls_resumed = []  # per successful handshake: session reused?
        if ssl_context is not None:
            ssl_context.sni_callback = self._on_sni
        self._server = None
        self._thread = None

    # -- lifecycle ---------------------------------------------------------

    def start(self):
        self._server = _Server((self.host, self._requested_port), _Handler)
        self._server.upstream = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
            name="fake-upstream", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            conns = list(self._connections)
        for conn in conns:  # end keep-alive connections too
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(5)
        self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def port(self):
        return self._server.server_address[1]

    @property
    def base_url(self):
        scheme = "https" if self._ssl_context is not None else "http"
        return "%s://%s:%d" % (scheme, self.url_host, self.port)

    @property
    def url(self):
        """The full tick URL, for `--upstream-url`."""
        return "%s%s?%s" % (self.base_url, TICK_PATH, TICK_QUERY)

    # -- setters -----------------------------------------------------------

    def set_price(self, price, step=0.0):
        """Restarts the walk at `price` (step 0: a fixed price)."""
        with self._lock:
            self._base = float(price)
            self._step = float(step)
            self._n = 0

    def fail(self, kind, count=None, **params):
        """Adds a fault for the next `count` answers (None: until cleared)."""
        with self._lock:
            self._faults.append(_Fault(kind, count, params))

    def clear_faults(self):
        with self._lock:
            self._faults = []

    def keep_alive_mode(self, mode):
        """None, "close_after" or "drop_reused"; see the module docstring."""
        if mode not in (None, "close_after", "drop_reused"):
            raise ValueError("unknown keep-alive mode %r" % mode)
        with self._lock:
            self._keep_alive_mode = mode

    def pause(self):
        """Answers 500 until resume(): the service gets no updates."""
        with self._lock:
            self._paused = True

    def resume(self):
        with self._lock:
            self._paused = False

    @property
    def paused(self):
        with self._lock:
            return self._paused

    # -- observers ---------------------------------------------------------

    @property
    def request_count(self):
        with self._lock:
            return len(self._requests)

    def requests(self):
        """[(time, method, path, headers dict with lower-case names)]."""
        with self._lock:
            return list(self._requests)

    def answers(self):
        """[(time, HTTP status, "reset" or "dropped", fault kind or None)]
        per request."""
        with self._lock:
            return list(self._answers)

    def served(self):
        """[(time, price, delayed)] of every valid answer, in order, but for
        the undelayed ones the client abandoned: it reset the connection
        without asking again, so it gave up waiting (a request timeout on a
        loaded machine) and never stored the price. Answers a test delayed
        on purpose stay, whatever the client did with them."""
        with self._lock:
            return [s for i, s in enumerate(self._served)
                    if i not in self._abandoned_indices]

    def valid_prices(self):
        """The prices of served(), in order."""
        return [price for _, price, _ in self.served()]

    @property
    def open_connections(self):
        """Connections whose handler has not finished yet."""
        with self._lock:
            return len(self._connections)

    @property
    def abandoned_count(self):
        """How many undelayed valid answers the client abandoned."""
        with self._lock:
            return len(self._abandoned_indices)

    def request_connections(self):
        """[(connection serial, reused)] per request, like requests()."""
        with self._lock:
            return list(self._request_conns)

    @property
    def connections_accepted(self):
        with self._lock:
            return self._conn_serial

    @property
    def max_in_flight(self):
        """The most requests ever being answered at once."""
        with self._lock:
            return self._max_busy

    def sni_names(self):
        with self._lock:
            return list(self._sni)

    def tls_failures(self):
        with self._lock:
            return list(self._tls_failures)

    @property
    def faults_pending(self):
        with self._lock:
            return len(self._faults)

    def wait_requests(self, n, timeout=10.0):
        """Waits until at least `n` requests arrived; returns whether so."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self._requests) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(left)
            return True

    def wait_valid(self, n, timeout=10.0):
        """Waits until at least `n` valid answers were served (as served()
        counts them)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self._served) - len(self._abandoned_indices) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(left)
            return True

    # -- serving -----------------------------------------------------------

    def _track(self, conn, alive):
        """Returns the connection's serial (1, 2, ...) when it comes."""
        with self._lock:
            if alive:
                self._connections.add(conn)
                self._conn_serial += 1
                return self._conn_serial
            self._connections.discard(conn)
            return None

    def _in_flight(self, delta):
        with self._lock:
            self._busy += delta
            self._max_busy = max(self._max_busy, self._busy)

    def _on_sni(self, ssl_object, server_name, context):
        with self._lock:
            self._sni.append(server_name)
        return None  # go on with the handshake

    def _tls_done(self, resumed):
        with self._lock:
            self._tls_resumed.append(bool(resumed))

    def tls_resumptions(self):
        """Per successful TLS handshake, in order: whether it resumed a
        session."""
        with self._lock:
            return list(self._tls_resumed)

    def _tls_failed(self, error):
        with self._lock:
            self._tls_failures.append((time.time(), str(error)))
            self._lock.notify_all()

    def _answer(self, method, path, headers, conn_serial=None, reused=False):
        now = time.time()
        with self._lock:
            self._request_conns.append((conn_serial, reused))
            mode = self._keep_alive_mode
            if mode == "drop_reused" and reused:
                self._requests.append(
                    (now, method, path,
                     {k.lower(): v for k, v in headers.items()}))
                self._answers.append((now, "dropped", None))
                self._lock.notify_all()
                answer = _Answer()
                answer.drop = True
                return answer
            answer, kind = self._choose(now, method, path, headers)
            answer.close_after = mode == "close_after"
            self._answers.append(
                (now, "reset" if answer.reset else answer.status, kind))
            return answer

    def _choose(self, now, method, path, headers):
        """Returns (answer, fault kind or None); called under the lock."""
        self._requests.append(
            (now, method, path, {k.lower(): v for k, v in headers.items()}))
        self._lock.notify_all()
        if path.split("?", 1)[0] != TICK_PATH:
            return self._error(404, "Not found"), None
        if self._paused:
            return self._error(500, "paused by the test"), "pause"
        fault = self._take_fault()
        if fault is None:
            return self._valid(now, delay=0.0), None
        p = fault.params
        if fault.kind == "status":
            answer = self._error(p.get("status", 500),
                                 p.get("message", "injected error"))
            if "retry_after" in p:
                answer.headers.append(("Retry-After", str(p["retry_after"])))
        elif fault.kind == "malformed":
            answer = _Answer(body=b'{"Data":{"BTC-USD":{"VALUE":97000,')
        elif fault.kind == "empty_data":
            answer = _Answer(body=_dumps({"Data": {}, "Err": {}}).encode())
        elif fault.kind == "value":
            answer = _Answer(body=self._tick_body(_dumps(p["value"]), now))
        elif fault.kind == "raw_value":
            answer = _Answer(body=self._tick_body(p["value"], now))
        elif fault.kind == "delay":
            answer = self._valid(now, delay=float(p.get("seconds", 1.0)))
        else:  # "reset"
            answer = _Answer(reset=True)
        return answer, fault.kind

    def _take_fault(self):
        while self._faults:
            fault = self._faults[0]
            if fault.remaining is None:
                return fault
            if fault.remaining > 0:
                fault.remaining -= 1
                if fault.remaining == 0:
                    self._faults.pop(0)
                return fault
            self._faults.pop(0)
        return None

    def _valid(self, now, delay):
        price = round(self._base + self._n * self._step, 8)
        self._n += 1
        self._served.append((now, price, delay > 0))
        self._lock.notify_all()
        answer = _Answer(body=self._tick_body(_dumps(price), now), delay=delay)
        answer.served_index = len(self._served) - 1
        return answer

    def _abandoned(self, index):
        with self._lock:
            self._abandoned_indices.add(index)
            self._lock.notify_all()

    def _tick_body(self, value_text, now):
        return ('{"Data":{"%s":{"VALUE":%s,"VALUE_LAST_UPDATE_TS":%d}},'
                '"Err":{}}' % (self.instrument, value_text, int(now))).encode()

    @staticmethod
    def _error(status, message):
        body = _dumps({"Data": {}, "Err": {"type": 1, "message": message}})
        return _Answer(status=status, body=body.encode())


class _ControlHandler(BaseHTTPRequestHandler):
    """The CLI's optional control endpoint (see the module docstring)."""
    protocol_version = "HTTP/1.1"
    server_version = "FakeCoinDesk-control/1"

    def log_message(self, fmt, *args):
        if self.server.upstream.verbose:
            sys.stderr.write("fake upstream control: " + (fmt % args) + "\n")

    def _reply(self, status, obj=None):
        body = b"" if obj is None else _dumps(obj).encode()
        self.send_response(status)
        if obj is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path.split("?", 1)[0] != "/state":
            return self._reply(404, {"error": "not found"})
        up = self.server.upstream
        prices = up.valid_prices()
        self._reply(200, {"paused": up.paused, "served": len(prices),
                          "last_price": prices[-1] if prices else None})

    def do_POST(self):
        from urllib.parse import parse_qs, urlsplit
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        up = self.server.upstream
        try:
            if url.path == "/pause":
                up.pause()
            elif url.path == "/resume":
                up.resume()
            elif url.path == "/price":
                up.set_price(float(query["value"]),
                             float(query.get("step", 0.0)))
            else:
                return self._reply(404, {"error": "not found"})
        except (KeyError, ValueError) as e:
            return self._reply(400, {"error": str(e)})
        self._reply(204)


def _start_control(upstream, host, port):
    server = ThreadingHTTPServer((host, port), _ControlHandler)
    server.daemon_threads = True
    server.upstream = upstream
    threading.Thread(target=server.serve_forever, name="fake-control",
                     daemon=True).start()
    return server


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--price", type=float, default=97000.0,
                        help="first price of the walk")
    parser.add_argument("--step", type=float, default=0.01,
                        help="added per valid answer (0: fixed price)")
    parser.add_argument("--control-port", type=int, default=None,
                        help="serve the control endpoint on this port "
                        "(0: any free port)")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    upstream = FakeUpstream(price=args.price, step=args.step, host=args.host,
                            port=args.port, verbose=args.verbose).start()
    control = None
    if args.control_port is not None:
        control = _start_control(upstream, args.host, args.control_port)
        print("fake upstream control on %s:%d"
              % (args.host, control.server_address[1]), flush=True)
    print("fake upstream listening on %s:%d; --upstream-url %s"
          % (args.host, upstream.port, upstream.url), flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        if control is not None:
            control.shutdown()
            control.server_close()
        upstream.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
