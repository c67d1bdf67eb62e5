"""HAProxy in front of the test's btcstream nodes, with the settings of
docs/deploy/haproxy.cfg.

    proxy = HAProxy([node1.port, node2.port, node3.port]).start()
    proxy.port                  # the balancer's frontend, 127.0.0.1
    proxy.server_states()       # {"n1": "UP", "n2": "DOWN", ...}
    proxy.wait_states({"n1": "UP", ...}, timeout)
    proxy.stop()                # SIGTERM (hard stop), SIGKILL if need be

The configuration is the documented one, rewritten for loopback: the
frontends bind 127.0.0.1 on free ports, the documented `server` lines give
way to one per node (`n1`, `n2`, ... = 127.0.0.1:<port>), the `resolvers`
section goes (no DNS here), and `global` gains an admin socket in the scratch
directory (`show stat`). The test backend also names the server that
answered in `X-Btcstream-Server`, so a test sees where a stream landed.

HAProxy runs in the foreground (`-db`), logs to a file next to the service
logs. The binary is Debian's /usr/sbin/haproxy (package `haproxy`,
scripts/deps --test) or $BTCSTREAM_TEST_HAPROXY.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from redis_server import free_port
from service import log_dir, source_root

SERVER_HEADER = "X-Btcstream-Server"


def haproxy_path():
    explicit = os.environ.get("BTCSTREAM_TEST_HAPROXY")
    if explicit:
        return explicit
    for p in ("/usr/sbin/haproxy", "/usr/bin/haproxy",
              shutil.which("haproxy") or ""):
        if p and os.access(p, os.X_OK):
            return p
    return "/usr/sbin/haproxy"


def documented_config_path():
    return os.path.join(source_root(), "docs", "deploy", "haproxy.cfg")


def loopback_config(text, port, stats_port, backends, admin_socket,
                    server_header=True):
    """docs/deploy/haproxy.cfg rewritten for loopback (see the module doc).
    `backends`: [(name, port)]."""
    out = []
    section = None
    skipping = False
    servers_written = False
    for line in text.splitlines():
        stripped = line.strip()
        head = re.match(r"^(global|defaults|frontend|backend|listen|"
                        r"resolvers|peers|userlist|program)\b\s*(\S*)", line)
        if head:
            section = (head.group(1), head.group(2))
            skipping = section[0] == "resolvers"
            if skipping:
                continue
            out.append(line)
            if section[0] == "global":
                out.append("    stats socket %s mode 600 level admin"
                           % admin_socket)
            continue
        if skipping:
            continue
        if stripped.startswith("bind "):
            target = port if section == ("frontend", "btcstream") else \
                stats_port
            out.append("    bind 127.0.0.1:%d" % target)
            continue
        if section and section[0] == "backend" and \
                stripped.startswith("server "):
            if not servers_written:
                for name, p in backends:
                    out.append("    server %s 127.0.0.1:%d" % (name, p))
                if server_header:
                    out.append("    http-response set-header %s %%s"
                               % SERVER_HEADER)
                servers_written = True
            continue
        if stripped.startswith("default-server "):
            line = re.sub(r"\s+resolvers\s+\S+", "", line)
            line = re.sub(r"\s+init-addr\s+\S+", "", line)
        out.append(line)
    if not servers_written:
        raise ValueError("the documented haproxy.cfg has no server lines")
    return "\n".join(out) + "\n"


class HAProxy:
    def __init__(self, node_ports, name="haproxy", config_text=None):
        self.binary = haproxy_path()
        self.dir = tempfile.mkdtemp(prefix="btcstream-haproxy-")
        self.admin_socket = os.path.join(self.dir, "admin.sock")
        self.backends = [("n%d" % (i + 1), p)
                         for i, p in enumerate(node_ports)]
        if config_text is None:
            with open(documented_config_path(), encoding="utf-8") as f:
                config_text = f.read()
        self.config_text = config_text
        self.config_path = os.path.join(self.dir, "haproxy.cfg")
        self._configure()
        self.log_path = os.path.join(
            log_dir(), "%s-%d-%d.haproxy.log" % (name, os.getpid(), self.port))
        self.proc = None
        self._log = None

    def _configure(self):
        """Free ports for both frontends, and the config that binds them."""
        self.port = free_port()
        self.stats_port = free_port()
        self.config = loopback_config(self.config_text, self.port,
                                      self.stats_port, self.backends,
                                      self.admin_socket)
        with open(self.config_path, "w", encoding="utf-8") as f:
            f.write(self.config)

    def name_of(self, node_port):
        for name, p in self.backends:
            if p == node_port:
                return name
        raise KeyError(node_port)

    # -- process -----------------------------------------------------------

    def start(self, timeout=10.0):
        """Starts HAProxy and waits until it listens; when another process
        took one of its free ports meanwhile, again on other ones."""
        if not os.access(self.binary, os.X_OK):
            raise RuntimeError("haproxy not found at %s" % self.binary)
        check = subprocess.run([self.binary, "-c", "-q", "-f",
                                self.config_path], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=20)
        if check.returncode != 0:
            raise RuntimeError("haproxy -c refuses the generated config:\n%s"
                               "\n%s" % (check.stdout.decode("utf-8",
                                                             "replace"),
                                         self.config))
        for attempt in range(5):
            if attempt:
                self._configure()
            if self._spawn(timeout):
                return self
        raise RuntimeError("haproxy found no free ports in 5 attempts:\n%s"
                           % self.log_tail())

    def _spawn(self, timeout):
        """One haproxy process: True once it listens, False when it exited
        because a port was in use."""
        if os.path.exists(self.admin_socket):
            os.unlink(self.admin_socket)  # left by a failed attempt
        self._log = open(self.log_path, "ab")
        self._log.write(("$ %s -db -f %s\n" % (self.binary, self.config_path)
                         ).encode())
        self._log.write(self.config.encode())
        self._log.flush()
        offset = self._log.tell()
        self.proc = subprocess.Popen([self.binary, "-db", "-f",
                                      self.config_path],
                                     stdin=subprocess.DEVNULL,
                                     stdout=self._log, stderr=self._log)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                self._log.close()
                self._log = None
                with open(self.log_path, "rb") as f:
                    f.seek(offset)
                    if b"Address already in use" in f.read():
                        return False
                raise RuntimeError("haproxy exited with %s:\n%s"
                                   % (self.proc.returncode, self.log_tail()))
            if self._listening():
                return True
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("haproxy did not listen within %.0fs:\n%s"
                                   % (timeout, self.log_tail()))
            time.sleep(0.02)

    def _listening(self):
        """This process (its pid on the admin socket, not a leftover socket
        file) accepts on the frontend port."""
        try:
            socket.create_connection(("127.0.0.1", self.port), 1).close()
            return "\nPid: %d\n" % self.proc.pid in self.admin("show info")
        except OSError:
            return False

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        """Hard stop (SIGTERM: HAProxy closes everything at once), SIGKILL
        after 5 s; removes the scratch directory. Safe to call twice."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self._log is not None:
            self._log.close()
            self._log = None
        shutil.rmtree(self.dir, ignore_errors=True)

    def log_tail(self, lines=30):
        try:
            with open(self.log_path, "rb") as f:
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    # -- runtime API -----------------------------------------------------------

    def admin(self, command, timeout=3.0):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            s.connect(self.admin_socket)
            s.sendall(command.encode() + b"\n")
            chunks = []
            while True:
                data = s.recv(65536)
                if not data:
                    break
                chunks.append(data)
            return b"".join(chunks).decode("utf-8", "replace")
        finally:
            s.close()

    def stats(self):
        """`show stat` of the backend's servers: {name: {column: value}}."""
        text = self.admin("show stat")
        lines = [l for l in text.splitlines() if l.strip()]
        if not lines or not lines[0].startswith("# "):
            raise RuntimeError("bad `show stat` answer: %r" % text[:300])
        cols = lines[0][2:].split(",")
        out = {}
        for line in lines[1:]:
            row = dict(zip(cols, line.split(",")))
            if row.get("pxname") == "nodes" and \
                    row.get("svname") not in ("FRONTEND", "BACKEND"):
                out[row["svname"]] = row
        return out

    def server_states(self):
        """{server: "UP" | "DOWN" | "UP 1/2" | "DOWN 1/2" | "MAINT" ...}"""
        return {k: v.get("status", "") for k, v in self.stats().items()}

    def wait_states(self, want, timeout):
        """Waits until each server named in `want` has that exact status;
        returns the states, or raises AssertionError with the last seen."""
        deadline = time.monotonic() + timeout
        states = None
        while time.monotonic() < deadline:
            states = self.server_states()
            if all(states.get(k) == v for k, v in want.items()):
                return states
            time.sleep(0.05)
        raise AssertionError("haproxy servers %r, expected %r within %.1fs"
                             % (states, want, timeout))
