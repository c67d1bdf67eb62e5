"""A tiny raw-socket HTTP/1.x client and an SSE reader, for exact-byte tests.

Nothing here normalises what is sent: the request bytes go out as given
(`..` and `%2e` in targets included), and the response is read from the socket
as it comes: status line, headers, then the body by its framing
(Content-Length, chunked, or until the server closes).

- `http_request(port, "GET", "/")`: one request, the whole response.
- `SseStream.open(port, "/stream", headers=[...])`: reads the head, then
  `next_event()` yields parsed `SseEvent`s; `stream.raw` holds every body byte
  after de-chunking, so tests can compare exactly.
- `StreamCollector(stream)`: reads a stream on a background thread (a
  reference client that is "connected throughout").
"""

import json
import re
import socket
import threading
import time

FRAME_RE = re.compile(
    rb'id: (\d+)\ndata: \{"timestamp":"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)",'
    rb'"price":(-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?)\}\n\n')


class StreamClosed(Exception):
    """The server closed the connection (EOF or reset)."""


class HttpResponse:
    def __init__(self, version, status, reason, headers):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers  # [(name, value)] as received
        self.body = b""

    def header(self, name):
        """The value of the first header called `name` (any case), or None."""
        values = self.headers_named(name)
        return values[0] if values else None

    def headers_named(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        return "<HTTP %s %d %r headers=%r body=%r>" % (
            self.version, self.status, self.reason, self.headers,
            self.body[:200])


def build_request(method, target, headers=(), version="HTTP/1.1", body=b"",
                  host="127.0.0.1"):
    """The exact bytes of a request; adds Host unless `headers` has one."""
    lines = ["%s %s %s" % (method, target, version)]
    names = [k.lower() for k, _ in headers]
    if "host" not in names and host is not None:
        lines.append("Host: %s" % host)
    for k, v in headers:
        lines.append("%s: %s" % (k, v))
    if body and "content-length" not in names:
        lines.append("Content-Length: %d" % len(body))
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class RawConnection:
    """One TCP connection; reads with deadlines, never blocks forever."""

    def __init__(self, port, host="127.0.0.1", rcvbuf=None, mss=None,
                 timeout=5.0):
        """`rcvbuf` and `mss` (set before connect) make a slow reader: a small
        window, and small segments so that the server's send buffer, which
        Linux sizes from the MSS (about 1.6 MB at loopback's 64 KiB MSS),
        fills after some 15 KB."""
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if mss is not None:
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, mss)
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))
        self.buf = b""
        self.eof = False

    @property
    def local_port(self):
        return self.sock.getsockname()[1]

    def send(self, data):
        self.sock.sendall(data)

    def recv_some(self, deadline):
        """Reads what is available before `deadline` into self.buf.

        Returns the number of bytes read; raises socket.timeout at the
        deadline; sets self.eof (and returns 0) on EOF or reset.
        """
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("deadline reached")
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            data = b""
        if not data:
            self.eof = True
            return 0
        self.buf += data
        return len(data)

    def read_head(self, timeout=5.0):
        """Reads the status line and headers; the rest stays in self.buf."""
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self.buf:
            if self.eof or self.recv_some(deadline) == 0:
                raise StreamClosed("connection closed before a full head: %r"
                                   % self.buf[:300])
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        version, status, reason = (lines[0].split(" ", 2) + [""])[:3]
        headers = []
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers.append((name, value.strip()))
        return HttpResponse(version, int(status), reason, headers)

    def read_body(self, response, method="GET", timeout=5.0):
        """Reads the body of `response` by its framing into response.body."""
        deadline = time.monotonic() + timeout
        if method == "HEAD" or response.status in (204, 304) \
                or 100 <= response.status < 200:
            return response
        te = (response.header("Transfer-Encoding") or "").lower()
        length = response.header("Content-Length")
        if "chunked" in te:
            decoder = ChunkedDecoder()
            out = decoder.feed(self._take())
            while not decoder.done:
                if self.eof or self.recv_some(deadline) == 0:
                    raise StreamClosed("closed inside a chunked body")
                out += decoder.feed(self._take())
            self.buf = decoder.leftover()
            response.body = out
        elif length is not None:
            n = int(length)
            while len(self.buf) < n:
                if self.eof or self.recv_some(deadline) == 0:
                    raise StreamClosed("closed after %d of %d body bytes"
                                       % (len(self.buf), n))
            response.body, self.buf = self.buf[:n], self.buf[n:]
        else:
            while not self.eof:
                self.recv_some(deadline)
            response.body = self._take()
        return response

    def drain_until_closed(self, timeout):
        """Reads and discards until EOF/reset. Returns (closed, bytes read)."""
        deadline = time.monotonic() + timeout
        total = len(self._take())
        try:
            while not self.eof:
                total += self.recv_some(deadline)
                self.buf = b""
        except socket.timeout:
            return False, total
        return True, total

    def _take(self):
        data, self.buf = self.buf, b""
        return data

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def http_request(port, method, target, headers=(), version="HTTP/1.1",
                 body=b"", timeout=5.0, raw=None):
    """Sends one request (or the exact bytes `raw`) and reads the response."""
    conn = RawConnection(port, timeout=timeout)
    try:
        data = raw if raw is not None else build_request(
            method, target, headers, version, body)
        try:
            conn.send(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and close before reading it all
        response = conn.read_head(timeout)
        return conn.read_body(response, method, timeout)
    finally:
        conn.close()


class ChunkedDecoder:
    """Incremental `Transfer-Encoding: chunked` decoder (strict framing)."""

    def __init__(self):
        self._buf = b""
        self._state = "size"  # size, data, crlf, trailer
        self._remaining = 0
        self.done = False

    def feed(self, data):
        """Returns the payload bytes that `data` completes (maybe none)."""
        self._buf += data
        out = bytearray()
        while not self.done:
            if self._state == "size":
                if b"\r\n" not in self._buf:
                    break
                line, self._buf = self._buf.split(b"\r\n", 1)
                size = line.split(b";", 1)[0].strip()
                if not re.fullmatch(rb"[0-9a-fA-F]+", size):
                    raise ValueError("bad chunk size line %r" % line)
                self._remaining = int(size, 16)
                self._state = "data" if self._remaining else "trailer"
            elif self._state == "data":
                if not self._buf:
                    break
                take = min(len(self._buf), self._remaining)
                out += self._buf[:take]
                self._buf = self._buf[take:]
                self._remaining -= take
                if self._remaining == 0:
                    self._state = "crlf"
            elif self._state == "crlf":
                if len(self._buf) < 2:
                    break
                if self._buf[:2] != b"\r\n":
                    raise ValueError("chunk not followed by CRLF: %r"
                                     % self._buf[:20])
                self._buf = self._buf[2:]
                self._state = "size"
            else:  # trailer: header lines, then an empty line
                if b"\r\n" not in self._buf:
                    break
                line, self._buf = self._buf.split(b"\r\n", 1)
                if not line:
                    self.done = True
        return bytes(out)

    def leftover(self):
        return self._buf


class SseEvent:
    """One SSE block (up to and including its blank line)."""

    def __init__(self, raw):
        self.raw = raw  # exact bytes, e.g. b"id: 1\ndata: {...}\n\n"
        self.id = None
        self.event = None
        self.data = None
        self.retry = None
        self.comments = []
        data_lines = []
        for line in raw.decode("utf-8").split("\n")[:-2]:
            if line.startswith(":"):
                self.comments.append(line[1:].lstrip(" "))
                continue
            name, sep, value = line.partition(":")
            if sep and value.startswith(" "):
                value = value[1:]
            if name == "id":
                self.id = value
            elif name == "event":
                self.event = value
            elif name == "data":
                data_lines.append(value)
            elif name == "retry":
                self.retry = value
        if data_lines:
            self.data = "\n".join(data_lines)

    @property
    def is_update(self):
        return self.id is not None and self.event is None \
            and self.data is not None

    @property
    def is_gap(self):
        return self.event == "gap"

    @property
    def is_heartbeat(self):
        return self.raw == b": hb\n\n"

    @property
    def int_id(self):
        return int(self.id)

    def json(self):
        return json.loads(self.data)

    def __repr__(self):
        return "SseEvent(%r)" % self.raw


class SseStream:
    """A `/stream` response being read: the head, then SSE blocks."""

    def __init__(self, conn, response):
        self.conn = conn
        self.response = response
        self.raw = b""  # every body byte so far, de-chunked
        self.opened_at = time.monotonic()
        te = (response.header("Transfer-Encoding") or "").lower()
        self._chunked = ChunkedDecoder() if "chunked" in te else None
        self._pending = b""  # body bytes not yet parsed into blocks
        self.closed = False
        self._absorb(conn._take())

    @classmethod
    def open(cls, port, target="/stream", headers=(), version="HTTP/1.1",
             timeout=5.0):
        """Connects, sends GET, reads the head. A non-200 answer is read
        whole into `stream.response.body` and the connection closed."""
        conn = RawConnection(port, timeout=timeout)
        conn.send(build_request("GET", target, headers, version))
        response = conn.read_head(timeout)
        if response.status != 200:
            try:
                conn.read_body(response, "GET", timeout)
            finally:
                conn.close()
        return cls(conn, response)

    def _absorb(self, data):
        if self._chunked is not None:
            data = self._chunked.feed(data)
            if self._chunked.done:
                self.closed = True
        self.raw += data
        self._pending += data

    def next_event(self, timeout=5.0):
        """The next SSE block. Raises socket.timeout, or StreamClosed at EOF."""
        deadline = time.monotonic() + timeout
        while b"\n\n" not in self._pending:
            if self.closed or self.conn.eof:
                self.closed = True
                raise StreamClosed("stream closed; unparsed tail %r"
                                   % self._pending)
            self.conn.recv_some(deadline)
            self._absorb(self.conn._take())
        block, self._pending = self._pending.split(b"\n\n", 1)
        event = SseEvent(block + b"\n\n")
        event.received = time.time()
        return event

    def read_until(self, predicate, timeout=5.0):
        """Events up to and including the first one matching `predicate`."""
        deadline = time.monotonic() + timeout
        events = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("no matching event within %.1fs; got %r"
                                     % (timeout, events[-5:]))
            event = self.next_event(left)
            events.append(event)
            if predicate(event):
                return events

    def updates(self, n, timeout=5.0):
        """Reads until `n` update frames arrived; returns all events read."""
        seen = []
        return self.read_until(
            lambda e: e.is_update and seen.append(e) is None
            and len(seen) >= n, timeout)

    def close(self):
        self.conn.close()


class StreamCollector:
    """Reads an SseStream on a thread and keeps every event."""

    def __init__(self, stream):
        self.stream = stream
        self._cond = threading.Condition()
        self._events = []
        self._stop = False
        self.closed = False
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name="sse-collector")
        self._thread.start()

    def _run(self):
        while True:
            with self._cond:
                if self._stop:
                    return
            try:
                event = self.stream.next_event(0.2)
            except socket.timeout:
                continue
            except (StreamClosed, OSError, ValueError):
                with self._cond:
                    self.closed = True
                    self._cond.notify_all()
                return
            with self._cond:
                self._events.append(event)
                self._cond.notify_all()

    def events(self):
        with self._cond:
            return list(self._events)

    def updates(self):
        return [e for e in self.events() if e.is_update]

    def ids(self):
        return [e.int_id for e in self.updates()]

    def wait_for(self, predicate, timeout):
        """Waits until predicate(events) is true; returns whether it was."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self._events):
                left = deadline - time.monotonic()
                if left <= 0 or self.closed:
                    return predicate(self._events)
                self._cond.wait(left)
            return True

    def wait_updates(self, n, timeout):
        return self.wait_for(
            lambda evs: sum(1 for e in evs if e.is_update) >= n, timeout)

    def wait_id_above(self, floor, timeout):
        """Waits for an update with id > floor."""
        return self.wait_for(
            lambda evs: any(e.is_update and e.int_id > floor for e in evs),
            timeout)

    def stop(self):
        with self._cond:
            self._stop = True
        self._thread.join(2)
        self.stream.close()
