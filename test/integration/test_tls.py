"""The upstream over TLS: certificate and host-name verification, SNI, and
`--upstream-ca` (DESIGN.md, "fetcher" and "Configuration").

The certificates are made at test time with the `openssl` command in a
temporary directory: a test CA, a server certificate for `localhost` and
127.0.0.1 signed by it, an unrelated second CA, and a certificate for
`example.invalid` only, signed by the test CA.
"""

import os
import re
import shutil
import ssl
import subprocess
import tempfile
import time
import unittest

import tools
from case import ServiceCase

OPENSSL = tools.find("openssl")


def _openssl(*args, cwd):
    subprocess.run([OPENSSL] + list(args), cwd=cwd, check=True, timeout=30,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def make_ca(directory, name, cn):
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", name + ".key", "-out", name + ".pem", "-days", "2",
             "-subj", "/CN=" + cn,
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign",
             cwd=directory)
    return os.path.join(directory, name + ".pem")


def make_server_cert(directory, name, ca, cn, san):
    """A leaf certificate for `san` (e.g. "DNS:localhost,IP:127.0.0.1")
    signed by the CA called `ca`; returns (cert path, key path)."""
    ext = os.path.join(directory, name + ".ext")
    with open(ext, "w") as f:
        f.write("basicConstraints=CA:FALSE\n"
                "keyUsage=critical,digitalSignature\n"
                "extendedKeyUsage=serverAuth\n"
                "subjectAltName=%s\n" % san)
    _openssl("req", "-new", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", name + ".key", "-out", name + ".csr",
             "-subj", "/CN=" + cn, cwd=directory)
    _openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem",
             "-CAkey", ca + ".key", "-CAcreateserial", "-days", "2",
             "-out", name + ".pem", "-extfile", ext, cwd=directory)
    return (os.path.join(directory, name + ".pem"),
            os.path.join(directory, name + ".key"))


def server_context(cert, key):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


@unittest.skipIf(OPENSSL is None, "the openssl command is not installed")
class TlsUpstreamTest(ServiceCase):
    interval = "200ms"

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="btcstream-tls-")
        cls.ca = make_ca(cls.dir, "ca", "btcstream test CA")
        cls.other_ca = make_ca(cls.dir, "other-ca", "unrelated test CA")
        cls.localhost = make_server_cert(cls.dir, "localhost", "ca",
                                         "localhost",
                                         "DNS:localhost,IP:127.0.0.1")
        cls.elsewhere = make_server_cert(cls.dir, "elsewhere", "ca",
                                         "example.invalid",
                                         "DNS:example.invalid")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def start_tls_upstream(self, cert_and_key):
        return self.start_upstream(ssl_context=server_context(*cert_and_key),
                                   url_host="localhost")

    def test_updates_stream_with_the_right_ca_and_sni(self):
        up = self.start_tls_upstream(self.localhost)
        self.assertTrue(up.url.startswith("https://localhost:"), up.url)
        svc = self.start_service(up, "--upstream-ca", self.ca)
        ref = self.collect(svc)
        self.assertTrue(ref.wait_updates(3, 5),
                        "no updates over TLS; tls failures seen by the "
                        "upstream: %r" % up.tls_failures())
        valid = up.valid_prices()
        for frame in self.frames(ref.updates()):
            self.assertIn(frame.price, valid)
        self.assertEqual(up.tls_failures(), [])
        sni = up.sni_names()
        self.assertTrue(sni, "no TLS handshake seen")
        self.assertEqual(set(sni), {"localhost"},
                         "the service must send SNI localhost")
        # keep-alive over TLS too: fewer handshakes than requests
        self.assertLess(len(sni), up.request_count,
                        "a new TLS connection per request (no keep-alive)")

    def test_reconnects_resume_the_tls_session(self):
        up = self.start_tls_upstream(self.localhost)
        up.keep_alive_mode("close_after")  # a new connection per request
        svc = self.start_service(up, "--upstream-ca", self.ca)
        ref = self.collect(svc)
        self.assertTrue(ref.wait_updates(4, 8), "no updates over TLS")
        resumed = up.tls_resumptions()
        self.assertGreaterEqual(len(resumed), 3, resumed)
        self.assertFalse(resumed[0], "the first handshake cannot resume")
        self.assertTrue(all(resumed[1:]),
                        "later handshakes must resume the session: %r"
                        % resumed)

    def check_never_streams(self, up, svc, why):
        ref = self.collect(svc)
        self.wait_until(lambda: len(up.tls_failures()) >= 2, 5,
                        "two failed handshakes at the upstream")
        time.sleep(1.0)  # ~5 more ticks
        self.assertEqual(up.request_count, 0,
                         "an HTTP request went through despite %s" % why)
        self.assertEqual(ref.updates(), [], "an update streamed despite %s"
                         % why)
        self.assertFalse(ref.closed, "the stream must stay open")
        # Visible at the default level: an info, warn or error line.
        lines = [line for line in svc.log().splitlines()
                 if re.match(r"\S+ (info|warn|error) ", line)
                 and re.search(r"tls|ssl|certificate", line, re.I)]
        self.assertTrue(lines, "no info/warn/error log line mentions the TLS "
                        "failure")

    def test_wrong_ca_is_rejected(self):
        up = self.start_tls_upstream(self.localhost)
        svc = self.start_service(up, "--upstream-ca", self.other_ca)
        self.check_never_streams(up, svc, "an untrusted certificate")

    def test_system_store_does_not_trust_the_test_ca(self):
        up = self.start_tls_upstream(self.localhost)
        svc = self.start_service(up)
        self.check_never_streams(up, svc, "no --upstream-ca")

    def test_certificate_for_another_host_name_is_rejected(self):
        up = self.start_tls_upstream(self.elsewhere)
        svc = self.start_service(up, "--upstream-ca", self.ca)
        self.check_never_streams(up, svc, "a certificate for example.invalid")


if __name__ == "__main__":
    unittest.main()
