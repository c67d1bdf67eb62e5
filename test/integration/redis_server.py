"""A real redis-server for the cluster tests, and a tiny RESP client.

    redis = RedisServer(password=None).start()
    redis.url                   # redis://127.0.0.1:<port> (no password)
    redis.url_with_password()   # redis://:<password>@127.0.0.1:<port>
    redis.command("XRANGE", "btcstream:log", "-", "+")
    redis.kill9(); redis.restart(keep_data=True)   # the same port, from AOF
    redis.restart(keep_data=False)                 # the same port, empty
    redis.pause(); redis.resume()                  # SIGSTOP / SIGCONT
    redis.stop()                                   # also removes the data

The server is Debian's /usr/bin/redis-server (or $BTCSTREAM_TEST_REDIS), run
in the foreground on 127.0.0.1 with its data in a temporary directory, as the
operations guide recommends: `appendonly yes`, `appendfsync always`, no RDB
snapshots, `maxmemory-policy noeviction`. Its output goes to a log file next
to the service logs. No redis-py: the client speaks RESP2 on a raw socket.
"""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from service import log_dir


def redis_server_path():
    return os.environ.get("BTCSTREAM_TEST_REDIS") or \
        shutil.which("redis-server") or "/usr/bin/redis-server"


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class RedisError(Exception):
    """An error reply (`-ERR ...`) from Redis."""


class RespConnection:
    """One RESP2 connection: send a command, read its reply."""

    def __init__(self, port, password=None, timeout=5.0, host="127.0.0.1"):
        self.sock = socket.create_connection((host, port), timeout)
        self.sock.settimeout(timeout)
        self.buf = b""
        if password is not None:
            self.call("AUTH", password)

    @staticmethod
    def encode(args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            if isinstance(a, str):
                a = a.encode()
            elif isinstance(a, (int, float)):
                a = str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        return b"".join(out)

    def call(self, *args):
        """Sends one command; returns the reply (bytes, int, list or None);
        raises RedisError for an error reply."""
        self.sock.sendall(self.encode(args))
        reply = self._read()
        if isinstance(reply, RedisError):
            raise reply
        return reply

    def _line(self):
        while b"\r\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("redis closed the connection")
            self.buf += data
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("redis closed the connection")
            self.buf += data
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def _read(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest
        if kind == b"-":
            return RedisError(rest.decode("utf-8", "replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n)
        if kind == b"*":
            n = int(rest)
            if n < 0:
                return None
            return [self._read() for _ in range(n)]
        raise ConnectionError("bad RESP reply line %r" % line)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class RedisServer:
    """One redis-server process on a fixed loopback port (kept across
    restarts)."""

    def __init__(self, password=None, name="redis", extra=()):
        self.password = password
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="btcstream-redis-")
        self.extra = list(extra)
        self.log_path = os.path.join(
            log_dir(), "%s-%d-%d.redis.log" % (name, os.getpid(), self.port))
        self.proc = None
        self.paused = False
        self._log = None
        self._started = False  # once started, restarts keep the port

    # -- addresses ---------------------------------------------------------

    @property
    def url(self):
        return "redis://127.0.0.1:%d" % self.port

    def url_with_password(self, password=None):
        return "redis://:%s@127.0.0.1:%d" % (
            password if password is not None else self.password, self.port)

    # -- process -----------------------------------------------------------

    def args(self):
        args = [redis_server_path(), "--port", str(self.port),
                "--bind", "127.0.0.1", "--dir", self.dir,
                "--appendonly", "yes", "--appendfsync", "always",
                "--save", "", "--daemonize", "no",
                "--maxmemory-policy", "noeviction",
                "--protected-mode", "no", "--logfile", ""]
        if self.password is not None:
            args += ["--requirepass", self.password]
        return args + self.extra

    def start(self, timeout=10.0):
        """Starts redis-server and waits until it answers PING as itself.
        The first start takes another free port when another process took
        this one meanwhile; a restart keeps its port and retries binding it
        for up to `timeout`."""
        if self.proc is not None and self.proc.poll() is None:
            raise RuntimeError("redis-server already running")
        first = not self._started
        attempts = 0
        deadline = time.monotonic() + timeout
        while not self._spawn(timeout):
            attempts += 1
            if first:
                if attempts == 5:
                    raise RuntimeError("redis-server found no free port in 5 "
                                       "attempts:\n%s" % self.log_tail())
                self.port = free_port()
            elif time.monotonic() > deadline:
                raise RuntimeError("redis-server: port %d still in use after "
                                   "%.0fs:\n%s" % (self.port, timeout,
                                                    self.log_tail()))
            else:
                time.sleep(0.1)
        self._started = True
        return self

    def _spawn(self, timeout):
        """One redis-server process on self.port: True once it answers,
        False when it exited because the port was in use."""
        self._log = open(self.log_path, "ab")
        self._log.write(("$ %s\n" % " ".join(
            a if a != self.password else "<password>"
            for a in self.args())).encode())
        self._log.flush()
        offset = self._log.tell()
        self.proc = subprocess.Popen(self.args(), stdin=subprocess.DEVNULL,
                                     stdout=self._log, stderr=self._log)
        self.paused = False
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                self._closed()
                if b"Address already in use" in self._log_from(offset):
                    return False
                raise RuntimeError("redis-server exited with %s:\n%s"
                                   % (self.proc.returncode, self.log_tail()))
            if self._answers_as_itself():
                return True
            if time.monotonic() > deadline:
                self.kill9()
                raise RuntimeError("redis-server did not answer PING within "
                                   "%.0fs:\n%s" % (timeout, self.log_tail()))
            time.sleep(0.02)

    def _answers_as_itself(self):
        """PONG (up, the AOF loaded) from this process, not from another one
        that holds the port."""
        try:
            conn = self.connect(1.0)
        except (OSError, RedisError):
            return False  # not listening yet, or AUTH refused: not ours
        try:
            info = conn.call("INFO", "server")
            return conn.call("PING") == b"PONG" and \
                b"\r\nprocess_id:%d\r\n" % self.proc.pid in info
        except (OSError, ConnectionError, RedisError):
            return False  # -LOADING the AOF, or not a Redis of ours
        finally:
            conn.close()

    def _log_from(self, offset):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                return f.read()
        except OSError:
            return b""

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines=30):
        try:
            with open(self.log_path, "rb") as f:
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def _closed(self):
        if self._log is not None:
            self._log.close()
            self._log = None

    def kill9(self):
        """SIGKILL: what an AOF with appendfsync always keeps is all that
        survives."""
        if self.running:
            self.proc.kill()
            self.proc.wait(5)
        self.paused = False
        self._closed()

    def pause(self):
        self.proc.send_signal(signal.SIGSTOP)
        self.paused = True

    def resume(self):
        if self.running:
            self.proc.send_signal(signal.SIGCONT)
        self.paused = False

    def shutdown(self, timeout=5.0):
        """SIGTERM (Redis fsyncs and exits), SIGKILL after `timeout`."""
        if self.running:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.paused = False
        self._closed()

    def wipe(self):
        for entry in os.listdir(self.dir):
            path = os.path.join(self.dir, entry)
            if os.path.isdir(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                os.unlink(path)

    def restart(self, keep_data=True, timeout=10.0):
        """Stops the server if it runs (SIGKILL when keep_data is False, as
        the data goes anyway) and starts it again on the same port, with its
        AOF (keep_data) or empty."""
        if keep_data:
            self.shutdown()
        else:
            self.kill9()
            self.wipe()
        return self.start(timeout)

    def stop(self):
        """Stops the server and removes its data directory."""
        self.kill9()
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- client --------------------------------------------------------------

    def connect(self, timeout=5.0):
        return RespConnection(self.port, self.password, timeout)

    def command(self, *args, timeout=5.0):
        """One command on a fresh connection (AUTH first with a password)."""
        conn = self.connect(timeout)
        try:
            return conn.call(*args)
        finally:
            conn.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
