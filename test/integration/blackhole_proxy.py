"""A TCP proxy that can become a black hole: a half-open network partition.

    proxy = BlackholeProxy(target_port).start()
    proxy.port      # connect here instead of target_port
    proxy.drop()    # stop forwarding, silently, both ways
    proxy.heal()    # close what was dropped; forward new connections again
    proxy.stop()

While dropped, the proxy keeps every socket open and reads and discards what
arrives on either side: nobody gets a FIN, a RST or a byte, as when a cable is
cut or a firewall starts dropping packets. A connection accepted while dropped
is never forwarded (its client sees a connect that succeeds and then silence,
like a SYN that reaches nothing it can tell). heal() closes the dropped
connections (the peers then see EOF) and forwards new connections again.
Threads only; loopback only.
"""

import select
import socket
import threading


class _Pair:
    """One client connection and its upstream connection (or None)."""

    def __init__(self, proxy, client, upstream, dropped):
        self.proxy = proxy
        self.client = client
        self.upstream = upstream
        self.dropped = dropped
        self.closed = False
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, daemon=True,
                                       name="blackhole-pair")

    def _run(self):
        socks = [s for s in (self.client, self.upstream) if s is not None]
        try:
            while True:
                with self.lock:
                    if self.closed:
                        return
                try:
                    readable, _, _ = select.select(socks, [], [], 0.05)
                except (OSError, ValueError):
                    return
                for s in readable:
                    try:
                        data = s.recv(65536)
                    except OSError:
                        data = b""
                    with self.lock:
                        dropped = self.dropped or self.closed
                    if dropped:
                        if not data:  # the peer went; stay silent anyway
                            socks = [x for x in socks if x is not s]
                        continue  # read and discard
                    if not data:
                        self.close()
                        return
                    other = self.upstream if s is self.client else self.client
                    try:
                        other.sendall(data)
                        if s is self.client:
                            self.proxy._count(len(data), 0)
                        else:
                            self.proxy._count(0, len(data))
                    except OSError:
                        self.close()
                        return
                if not socks:
                    with self.lock:
                        if self.closed:
                            return
                    # both peers left while dropped: wait for heal()/stop()
                    threading.Event().wait(0.05)
        finally:
            self.proxy._forget(self)

    def drop(self):
        with self.lock:
            self.dropped = True

    def close(self):
        with self.lock:
            if self.closed:
                return
            self.closed = True
        for s in (self.client, self.upstream):
            if s is None:
                continue
            try:
                s.close()
            except OSError:
                pass


class BlackholeProxy:
    def __init__(self, target_port, target_host="127.0.0.1"):
        self.target = (target_host, target_port)
        self._lock = threading.Lock()
        self._pairs = set()
        self._dropped = False
        self._listener = None
        self._thread = None
        self._stopping = False
        self.accepted = 0
        self.bytes_up = 0    # client -> target, forwarded
        self.bytes_down = 0  # target -> client, forwarded

    def start(self):
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self._listener.settimeout(0.05)
        self._thread = threading.Thread(target=self._accept_loop, daemon=True,
                                        name="blackhole-accept")
        self._thread.start()
        return self

    @property
    def port(self):
        return self._listener.getsockname()[1]

    @property
    def url(self):
        return "redis://127.0.0.1:%d" % self.port

    def _accept_loop(self):
        while True:
            with self._lock:
                if self._stopping:
                    return
            try:
                client, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                dropped = self._dropped
            upstream = None
            if not dropped:
                try:
                    upstream = socket.create_connection(self.target, 2)
                    upstream.setsockopt(socket.IPPROTO_TCP,
                                        socket.TCP_NODELAY, 1)
                except OSError:
                    client.close()  # target down: refuse, as it would
                    continue
            pair = _Pair(self, client, upstream, dropped)
            with self._lock:
                self.accepted += 1
                self._pairs.add(pair)
            pair.thread.start()

    def _count(self, up, down):
        with self._lock:
            self.bytes_up += up
            self.bytes_down += down

    def _forget(self, pair):
        with self._lock:
            self._pairs.discard(pair)

    @property
    def connections(self):
        with self._lock:
            return len(self._pairs)

    @property
    def dropped(self):
        with self._lock:
            return self._dropped

    def drop(self):
        """From now on nothing passes, in either direction, on any
        connection; no socket is closed."""
        with self._lock:
            self._dropped = True
            pairs = list(self._pairs)
        for p in pairs:
            p.drop()

    def heal(self):
        """Closes the dropped connections; new ones are forwarded again."""
        with self._lock:
            self._dropped = False
            pairs = [p for p in self._pairs if p.dropped]
        for p in pairs:
            p.close()

    def stop(self):
        with self._lock:
            self._stopping = True
            pairs = list(self._pairs)
        for p in pairs:
            p.close()
        if self._thread is not None:
            self._thread.join(2)
        if self._listener is not None:
            self._listener.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
