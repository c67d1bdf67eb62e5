"""Runs the btcstream binary as a subprocess for one test.

The binary comes from $BTCSTREAM_BIN (run.py's `--binary` sets it), else
<source root>/build/btcstream. It listens on 127.0.0.1:0 and we read the port
from its `listening on 127.0.0.1:<port>` log line; stderr and stdout go to a
log file under $BTCSTREAM_TEST_LOGDIR (default: a temporary directory).

The child's environment has no BTCSTREAM_* or COINDESK_API_KEY variable of
the caller's (the service reads them as configuration); pass `env` to set
some. `--shutdown-grace 0s` is passed unless `grace` says otherwise (None:
the flag is left out), or $BTCSTREAM_TEST_NO_GRACE_FLAG=1 (for binaries that
predate the flag).

The raw HTTP client and the SSE reader live in client.py.
"""

import os
import resource
import re
import signal
import socket
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
LISTENING_RE = re.compile(r"listening on 127\.0\.0\.1:(\d+)")


def source_root():
    return os.environ.get("BTCSTREAM_SOURCE_ROOT") or \
        os.path.dirname(os.path.dirname(HERE))


def binary_path():
    return os.environ.get("BTCSTREAM_BIN") or \
        os.path.join(source_root(), "build", "btcstream")


def log_dir():
    path = os.environ.get("BTCSTREAM_TEST_LOGDIR")
    if not path:
        path = tempfile.mkdtemp(prefix="btcstream-it-")
        os.environ["BTCSTREAM_TEST_LOGDIR"] = path  # one directory per run
    os.makedirs(path, exist_ok=True)
    return path


def clean_env(extra=None):
    """os.environ without the service's own configuration variables."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("BTCSTREAM_") and k != "COINDESK_API_KEY"}
    env.update(extra or {})
    return env


class ServiceError(Exception):
    pass


class Service:
    """One btcstream process: start(), port, log(), stop()."""

    _serial = 0

    def __init__(self, upstream_url, *flags, interval="100ms", name="svc",
                 env=None, grace="0s", log_level="debug", fd_limit=None,
                 listen="127.0.0.1:0"):
        """`flags` are extra command-line arguments, e.g. "--retry", "1s".
        A falsy `interval` or `log_level` leaves that flag out."""
        self.binary = binary_path()
        self.fd_limit = fd_limit  # RLIMIT_NOFILE (soft = hard) for the child
        self.args = [self.binary, "--listen", listen]
        if interval:
            self.args += ["--interval", interval]
        if log_level:
            self.args += ["--log-level", log_level]
        if grace is not None and \
                os.environ.get("BTCSTREAM_TEST_NO_GRACE_FLAG") != "1":
            self.args += ["--shutdown-grace", grace]
        if upstream_url is not None:
            self.args += ["--upstream-url", upstream_url]
        # Run the whole suite under other settings, e.g.
        # BTCSTREAM_TEST_EXTRA_FLAGS="--io-threads 2" (only flags no test
        # sets itself: the binary refuses a flag given twice).
        self.args += os.environ.get("BTCSTREAM_TEST_EXTRA_FLAGS", "").split()
        self.args += list(flags)
        Service._serial += 1
        self.log_path = os.path.join(
            log_dir(), "%s-%d-%d.log" % (name, os.getpid(), Service._serial))
        self.env = clean_env(env)
        self.proc = None
        self.port = None

    def start(self, timeout=10.0):
        if not os.access(self.binary, os.X_OK):
            raise ServiceError("btcstream binary not found at %s (set "
                               "BTCSTREAM_BIN or pass --binary)" % self.binary)
        self._log = open(self.log_path, "wb")
        self._log.write(("$ %s\n" % " ".join(self.args)).encode())
        self._log.flush()
        limit = self.fd_limit

        def lower_fd_limit():
            if limit is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

        self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL,
                                     stdout=self._log, stderr=self._log,
                                     env=self.env, preexec_fn=lower_fd_limit)
        deadline = time.monotonic() + timeout
        while self.port is None:
            match = LISTENING_RE.search(self.log())
            if match:
                self.port = int(match.group(1))
                break
            if self.proc.poll() is not None:
                raise ServiceError("btcstream exited with %s before listening:"
                                   "\n%s" % (self.proc.returncode, self.log()))
            if time.monotonic() > deadline:
                self.stop()
                raise ServiceError("no 'listening on' line within %.0fs:\n%s"
                                   % (timeout, self.log()))
            time.sleep(0.02)
        while True:  # the port accepts connections
            try:
                socket.create_connection(("127.0.0.1", self.port), 1).close()
                return self
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise ServiceError("port %d never accepted:\n%s"
                                       % (self.port, self.log()))
                time.sleep(0.02)

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def service_log(self):
        """What the service wrote: the log without the harness's `$ command`
        line (which holds the arguments as given)."""
        text = self.log()
        if text.startswith("$ "):
            text = text.split("\n", 1)[1] if "\n" in text else ""
        return text

    def log_tail(self, lines=40):
        return "\n".join(self.log().splitlines()[-lines:])

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait(self, timeout):
        """Waits for the exit; returns the status, or None at the timeout."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout=5.0):
        """SIGTERM, then SIGKILL after `timeout`. Returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()
        return self.proc.returncode

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
