"""Static files from the web root, and never a file outside it (DESIGN.md,
"Public HTTP API")."""

import os
import shutil
import tempfile
import unittest

from case import ServiceCase
from client import RawConnection, build_request
from service import source_root

SECRET = b"SECRET-OUTSIDE-THE-WEB-ROOT-7f3a"
INDEX = b"<!doctype html><title>btcstream test</title><p>index</p>\n"
APP_JS = b"console.log('app');\n"
STYLE = b"body { color: black; }\n"

TRAVERSALS = [
    "/../meson.build",
    "/%2e%2e/meson.build",
    "/%2E%2E/meson.build",
    "/..%2fmeson.build",
    "/%2e%2e%2fmeson.build",
    "/%2e%2e%2fetc/passwd",
    "/../../../../../../etc/passwd",
    "/./../secret.txt",
    "/sub/../../secret.txt",
    "/sub/%2e%2e/%2e%2e/secret.txt",
    "/..%5csecret.txt",
    "/link-file",
    "/link-dir/secret.txt",
    "/sub/link-up/secret.txt",
]


def content_type(response):
    return response.header("Content-Type")


class StaticFilesTest(ServiceCase):
    """A temporary web root inside a directory that holds the secrets."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="btcstream-web-")
        self.addCleanup(shutil.rmtree, self.tmp)
        root = os.path.join(self.tmp, "web")
        os.makedirs(os.path.join(root, "sub"))
        files = {"index.html": INDEX, "app.js": APP_JS, "style.css": STYLE,
                 "sub/page.html": INDEX}
        for name, data in files.items():
            with open(os.path.join(root, name), "wb") as f:
                f.write(data)
        for name in ["secret.txt", "meson.build"]:
            with open(os.path.join(self.tmp, name), "wb") as f:
                f.write(SECRET)
        os.symlink(os.path.join(self.tmp, "secret.txt"),
                   os.path.join(root, "link-file"))
        os.symlink(self.tmp, os.path.join(root, "link-dir"))
        os.symlink("../..", os.path.join(root, "sub", "link-up"))
        self.svc = self.start_service(self.start_upstream(),
                                      "--web-root", root)

    def get(self, target, method="GET"):
        return self.request(self.svc, method, target)

    def test_index_is_served_as_html(self):
        for target in ["/", "/index.html"]:
            with self.subTest(target=target):
                response = self.get(target)
                self.assertEqual(response.status, 200)
                self.assertEqual(content_type(response),
                                 "text/html; charset=utf-8")
                self.assertEqual(response.body, INDEX)
                self.assertEqual(response.header("Access-Control-Allow-"
                                                 "Origin"), "*")

    def test_content_types(self):
        for target, ctype, body in [("/app.js", "text/javascript", APP_JS),
                                    ("/style.css", "text/css", STYLE),
                                    ("/sub/page.html", "text/html", INDEX)]:
            with self.subTest(target=target):
                response = self.get(target)
                self.assertEqual(response.status, 200)
                self.assertEqual(content_type(response).split(";")[0], ctype)
                self.assertEqual(response.body, body)

    def test_missing_file_is_404_json(self):
        self.assert_json_error(self.get("/nothing.js"), 404)

    def test_hidden_files_are_404(self):
        root = os.path.join(self.tmp, "web")
        os.makedirs(os.path.join(root, ".git"))
        for name in (".env", ".git/config", "sub/.hidden.js"):
            with open(os.path.join(root, name), "wb") as f:
                f.write(SECRET)
        for target in ("/.env", "/.git/config", "/sub/.hidden.js",
                       "/%2eenv"):
            with self.subTest(target=target):
                response = self.get(target)
                self.assert_json_error(response, 404)
                self.assertNotIn(SECRET, response.body)

    def test_the_extension_sets_the_type_in_any_case(self):
        root = os.path.join(self.tmp, "web")
        with open(os.path.join(root, "UP.JS"), "wb") as f:
            f.write(APP_JS)
        response = self.get("/UP.JS")
        self.assertEqual(response.status, 200, repr(response))
        self.assertEqual(content_type(response).split(";")[0],
                         "text/javascript")

    def test_every_file_is_revalidated_by_its_etag(self):
        # HTML and assets alike: a new release never runs new HTML with an
        # old cached script.
        for target in ("/", "/app.js", "/style.css"):
            with self.subTest(target=target):
                response = self.get(target)
                self.assertEqual(response.header("Cache-Control"), "no-cache")
                self.assertEqual(response.header("X-Content-Type-Options"),
                                 "nosniff")
                etag = response.header("ETag")
                self.assertTrue(etag and etag.startswith('W/"'), etag)
                # Optional whitespace around a list member: spaces or tabs.
                for inm in (etag, '"x", ' + etag, '"x",\t' + etag + "\t"):
                    again = self.request(self.svc, "GET", target,
                                         headers=[("If-None-Match", inm)])
                    self.assertEqual(again.status, 304, (inm, repr(again)))
                    self.assertEqual(again.body, b"")
                    self.assertEqual(again.header("ETag"), etag)
                changed = self.request(self.svc, "GET", target,
                                       headers=[("If-None-Match", '"x"')])
                self.assertEqual(changed.status, 200)

    def test_head_has_the_headers_of_get_and_no_body(self):
        conn = RawConnection(self.svc.port)
        self.addCleanup(conn.close)
        conn.send(build_request("HEAD", "/"))
        head = conn.read_head()
        self.assertEqual(head.status, 200)
        self.assertEqual(content_type(head), "text/html; charset=utf-8")
        self.assertEqual(head.header("Content-Length"), str(len(INDEX)))
        # Keep-alive: the next bytes on the connection are the next answer,
        # which proves that HEAD sent no body.
        conn.send(build_request("GET", "/app.js"))
        response = conn.read_body(conn.read_head())
        self.assertEqual(response.status, 200, repr(response))
        self.assertEqual(response.body, APP_JS)

    def test_path_traversal_never_escapes_the_web_root(self):
        for target in TRAVERSALS:
            with self.subTest(target=target):
                response = self.get(target)
                self.assertNotIn(SECRET, response.body)
                self.assertNotIn(b"root:", response.body)
                self.assertEqual(response.status, 404, repr(response))


class ProjectWebRootTest(ServiceCase):
    """The project's own web/ directory."""

    def setUp(self):
        self.web = os.path.join(source_root(), "web")
        index = os.path.join(self.web, "index.html")
        if not os.path.isfile(index):
            if os.environ.get("BTCSTREAM_CI") == "1":
                self.fail("no %s (BTCSTREAM_CI=1 never skips)" % index)
            self.skipTest("no %s yet" % index)
        with open(index, "rb") as f:
            self.index = f.read()
        self.svc = self.start_service(self.start_upstream(),
                                      "--web-root", self.web)

    def test_root_serves_web_index_html(self):
        response = self.request(self.svc, "GET", "/")
        self.assertEqual(response.status, 200)
        self.assertEqual(content_type(response), "text/html; charset=utf-8")
        self.assertEqual(response.body, self.index)

    def test_assets_have_their_types(self):
        types = {".js": "text/javascript", ".css": "text/css"}
        for name in sorted(os.listdir(self.web)):
            ext = os.path.splitext(name)[1]
            if ext in types:
                with self.subTest(name=name):
                    response = self.request(self.svc, "GET", "/" + name)
                    self.assertEqual(response.status, 200)
                    self.assertEqual(content_type(response).split(";")[0],
                                     types[ext])

    def test_meson_build_next_to_web_is_not_served(self):
        with open(os.path.join(source_root(), "meson.build"), "rb") as f:
            secret = f.read()[:40]
        for target in TRAVERSALS[:6]:
            with self.subTest(target=target):
                response = self.request(self.svc, "GET", target)
                self.assertEqual(response.status, 404)
                self.assertNotIn(secret, response.body)


if __name__ == "__main__":
    unittest.main()
