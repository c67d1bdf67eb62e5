"""The operations documentation against the real binary (issue 5):

- docs/operations.md lists every flag of `btcstream --help` with its
  environment variable, and every metric btcstream exports with its type and
  labels (and nothing that is not exported);
- docs/prometheus-rules.yml passes `promtool check rules`, names only
  exported metrics (or `up`), and its alerts fire exactly as documented on
  synthetic series (`promtool test rules`);
- docs/grafana-dashboard.json is a well-formed dashboard whose every
  expression is valid PromQL and names only exported metrics.

The Prometheus checks skip (with a message) only when the Debian package
`prometheus` is missing; scripts/deps --test installs it.
"""

import json
import os
import re
import subprocess
import tempfile
import unittest

import prom
from case import ServiceCase
from service import binary_path, clean_env, source_root

DOCS = os.path.join(source_root(), "docs")
OPERATIONS = os.path.join(DOCS, "operations.md")
RULES = os.path.join(DOCS, "prometheus-rules.yml")
DASHBOARD = os.path.join(DOCS, "grafana-dashboard.json")
README = os.path.join(source_root(), "README.md")
NOT_CONFIG = {"--help", "--version", "--healthcheck"}


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def help_flags():
    out = subprocess.run([binary_path(), "--help"], env=clean_env(),
                         capture_output=True, text=True, timeout=10)
    assert out.returncode == 0, out
    return re.findall(r"^  (--[a-z][a-z0-9-]*)", out.stdout, re.M)


def rule_expressions(text):
    """[(alert name, expr)] from the rules file: `expr:` inline or as a `|`
    or `>` block (the stdlib has no YAML reader; the file keeps to this)."""
    out = []
    lines = text.split("\n")
    alert = None
    i = 0
    while i < len(lines):
        line = lines[i]
        m = re.match(r"\s*- (?:alert|record): (\S+)", line)
        if m:
            alert = m.group(1)
        m = re.match(r"(\s*)expr: ?(.*)$", line)
        if m:
            indent, value = len(m.group(1)), m.group(2).strip()
            if value in ("|", ">", "|-", ">-"):
                block = []
                i += 1
                while i < len(lines) and (not lines[i].strip() or len(
                        lines[i]) - len(lines[i].lstrip()) > indent):
                    block.append(lines[i].strip())
                    i += 1
                out.append((alert, "\n".join(block).strip()))
                continue
            out.append((alert, value))
        i += 1
    return out


def dashboard_expressions(dashboard):
    """Every PromQL expression in the dashboard: panel targets' `expr` and
    the templating queries, as (where, expr)."""
    found = []

    def walk(node, where):
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "expr" and isinstance(v, str):
                    found.append((where, v))
                else:
                    walk(v, node.get("title", where))
        elif isinstance(node, list):
            for v in node:
                walk(v, where)

    walk(dashboard.get("panels", []), "panels")
    for var in dashboard.get("templating", {}).get("list", []):
        if var.get("type") == "query":
            query = var.get("query")
            if isinstance(query, dict):
                query = query.get("query")
            found.append(("variable " + var["name"], query))
    return found


def grafana_to_promql(expr):
    """A dashboard expression as plain PromQL (variables substituted;
    `label_values(m, l)` becomes `m`)."""
    expr = expr.replace("$__rate_interval", "1m").replace("$__interval", "1m")
    expr = expr.replace('"$job"', '"btcstream"').replace("$job", "btcstream")
    expr = expr.replace('"$instance"', '".*"')
    m = re.fullmatch(r"label_values\((.*),\s*[a-zA-Z_]+\)", expr.strip())
    if m:
        expr = m.group(1)
    return expr


class DocsCase(ServiceCase):
    interval = "100ms"

    def full_scrape(self):
        """A scrape in which every family appears: a price, a client, an
        HTTP request answered before it."""
        up = self.start_upstream()
        svc = self.start_service(up)
        stream = self.open_ok_stream(svc)
        self.read_frames(stream, 2)
        self.request(svc, "GET", "/api/v1/info")
        s = prom.scrape(svc.port)
        from test_metrics import FAMILIES
        self.assertEqual(set(s.types), set(FAMILIES),
                         "not every family in the scrape")
        return s

    def assert_exported(self, names, scrape, where):
        for name in sorted(names):
            if name == "up":
                continue
            self.assertIsNotNone(scrape.family_of(name),
                                 "%s names %s, which btcstream does not "
                                 "export" % (where, name))


class OperationsDocTest(DocsCase):
    def test_every_flag_of_help_with_its_environment_variable(self):
        text = read(OPERATIONS)
        flags = help_flags()
        self.assertGreater(len(flags), 20, flags)
        for flag in flags:
            self.assertIn("`%s`" % flag, text, "operations.md misses %s"
                          % flag)
            if flag not in NOT_CONFIG:
                env = "BTCSTREAM_" + flag[2:].upper().replace("-", "_")
                self.assertRegex(text, r"\| `%s` \| `%s`" % (
                    re.escape(flag), env),
                    "operations.md: %s without %s in its table row"
                    % (flag, env))
        self.assertIn("`COINDESK_API_KEY`", text)
        # Nothing documented that --help does not know.
        documented = set(re.findall(r"^\| `(--[a-z0-9-]+)`", text, re.M))
        self.assertEqual(documented, set(flags))

    def test_every_metric_with_type_and_labels_and_nothing_else(self):
        text = read(OPERATIONS)
        rows = {}
        for m in re.finditer(r"^\| `([a-z_:]+)` \| (\w+) \|([^|]*)\| "
                             r"(.*) \|$", text, re.M):
            labels = set(re.findall(r"`(\w+)`", m.group(3)))
            rows[m.group(1)] = (m.group(2), labels, m.group(4))
        s = self.full_scrape()
        self.assertEqual(set(rows), set(s.types),
                         "the metrics table of operations.md differs from "
                         "the families exported")
        for family, kind in s.types.items():
            doc_kind, doc_labels, meaning = rows[family]
            self.assertEqual(doc_kind, kind, family)
            labels, values = set(), set()
            for (name, label_set), _ in s.samples.items():
                if s.family_of(name) == family:
                    for k, v in label_set:
                        if k != "le":
                            labels.add(k)
                            values.add(v)
            self.assertEqual(doc_labels, labels, "labels of %s" % family)
            if family in ("btcstream_sse_disconnects_total",
                          "btcstream_sse_rejected_total",
                          "btcstream_upstream_requests_total",
                          "btcstream_live_objects"):
                for v in values:
                    self.assertIn("`%s`" % v, meaning,
                                  "%s: label value %s undocumented"
                                  % (family, v))
        from test_metrics import REASONS, OUTCOMES, REJECT_REASONS
        for v in REASONS + OUTCOMES + REJECT_REASONS:
            self.assertIn("`%s`" % v, text)

    def test_links_proxy_and_systemd(self):
        text = read(OPERATIONS)
        self.assertIn("docs/operations.md", read(README),
                      "README.md must link docs/operations.md")
        self.assertIn("(prometheus-rules.yml)", text)
        self.assertIn("(grafana-dashboard.json)", text)
        nginx = re.search(r"```nginx\n(.*?)```", text, re.S)
        self.assertIsNotNone(nginx, "no nginx example")
        stream = re.search(r"location = /stream \{(.*?)\n    \}",
                           nginx.group(1), re.S)
        self.assertIsNotNone(stream, "no location block for /stream")
        for directive in ("proxy_buffering off;", "proxy_http_version 1.1;",
                          'proxy_set_header Connection "";',
                          "proxy_read_timeout 1h;", "proxy_pass "):
            self.assertIn(directive, stream.group(1))
        self.assertRegex(nginx.group(1), r"location / \{")
        self.assertIn("X-Accel-Buffering", text)
        unit = re.search(r"```ini\n(.*?)```", text, re.S)
        self.assertIsNotNone(unit, "no systemd unit")
        unit = unit.group(1)
        for line in ("[Service]", "ExecStart=/", "LimitNOFILE=",
                     "Restart=on-failure", "DynamicUser=yes",
                     "KillSignal=SIGTERM", "TimeoutStopSec=",
                     "Environment=BTCSTREAM_", "[Install]"):
            self.assertIn(line, unit)
        for section in ("## Health checks", "## Logs", "## Metrics",
                        "## Alerting", "## Dashboard", "## Capacity",
                        "## Shutdown", "/healthz", "/readyz"):
            self.assertIn(section, text)


class RulesTest(DocsCase):
    def test_rules_name_only_exported_metrics(self):
        text = read(RULES)
        exprs = rule_expressions(text)
        self.assertEqual(len(exprs), len(re.findall(r"- alert: ", text)))
        s = self.full_scrape()
        for alert, expr in exprs:
            names = prom.metric_names(expr)
            self.assertTrue(names, "%s: no metric found in %r"
                            % (alert, expr))
            self.assert_exported(names, s, "rule %s" % alert)

    def test_documented_alerts_are_the_rules(self):
        alerts = {a for a, _ in rule_expressions(read(RULES))}
        documented = set(re.findall(r"^\| `(Btcstream\w+)` \|",
                                    read(OPERATIONS), re.M))
        self.assertEqual(documented, alerts)
        for needed in ("BtcstreamPriceStale", "BtcstreamUpstreamErrors",
                       "BtcstreamSlowConsumers", "BtcstreamClientsNearMax",
                       "BtcstreamDown"):
            self.assertIn(needed, alerts)

    @unittest.skipIf(prom.promtool() is None, prom.MISSING)
    def test_promtool_check_rules(self):
        result = prom.run_promtool("check", "rules", RULES)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        n = len(rule_expressions(read(RULES)))
        self.assertIn("SUCCESS: %d rules found" % n, result.stdout)

    @unittest.skipIf(prom.promtool() is None, prom.MISSING)
    def test_alerts_fire_exactly_when_documented(self):
        """`promtool test rules` on synthetic series: after 20 minutes the
        broken instances fire their alerts and the healthy one none."""
        def s(name, instance, values, **labels):
            labels.update(job="btcstream", instance=instance)
            text = ", ".join('%s="%s"' % kv for kv in sorted(labels.items()))
            return "      - series: '%s{%s}'\n        values: '%s'\n" % (
                name, text, values)

        series = (
            s("up", "down:1", "0x30")
            + s("up", "noprice:1", "1x30")
            + s("up", "stale:1", "1x30")
            + s("btcstream_last_price_age_seconds", "stale:1",
                "5 5 5 40+5x27")
            + s("up", "ok:1", "1x30")
            + s("btcstream_last_price_age_seconds", "ok:1", "3x30")
            + s("btcstream_upstream_requests_total", "ok:1", "0+12x30",
                outcome="ok")
            + s("btcstream_upstream_requests_total", "ok:1", "0+1x30",
                outcome="timeout")
            + s("btcstream_sse_disconnects_total", "ok:1", "0+1x30",
                reason="slow_consumer")
            + s("btcstream_sse_rejected_total", "ok:1", "0x30",
                reason="max_clients")
            + s("btcstream_sse_clients", "ok:1", "100x30")
            + s("btcstream_sse_max_clients", "ok:1", "1000x30")
            + s("process_open_fds", "ok:1", "110x30")
            + s("process_max_fds", "ok:1", "1100x30")
            + s("btcstream_event_delivery_seconds_bucket", "ok:1",
                "0+100x30", le="0.01")
            + s("btcstream_event_delivery_seconds_bucket", "ok:1",
                "0+100x30", le="1")
            + s("btcstream_event_delivery_seconds_bucket", "ok:1",
                "0+100x30", le="+Inf")
            + s("btcstream_upstream_requests_total", "bad:1", "0+12x4 48x26",
                outcome="ok")
            + s("btcstream_upstream_requests_total", "bad:1", "0x4 0+12x26",
                outcome="http_error")
            + s("btcstream_sse_disconnects_total", "bad:1", "0+10x30",
                reason="slow_consumer")
            + s("btcstream_sse_rejected_total", "bad:1", "0+2x30",
                reason="max_clients")
            + s("btcstream_sse_clients", "bad:1", "950x30")
            + s("btcstream_sse_max_clients", "bad:1", "1000x30")
            + s("process_open_fds", "bad:1", "1050x30")
            + s("process_max_fds", "bad:1", "1100x30")
            + s("btcstream_event_delivery_seconds_bucket", "bad:1",
                "0x30", le="1")
            + s("btcstream_event_delivery_seconds_bucket", "bad:1",
                "0+100x30", le="2.5")
            + s("btcstream_event_delivery_seconds_bucket", "bad:1",
                "0+100x30", le="+Inf"))
        firing = [("BtcstreamDown", "down:1", "critical"),
                  ("BtcstreamPriceStale", "noprice:1", "critical"),
                  ("BtcstreamPriceStale", "stale:1", "critical")]
        for alert in ("BtcstreamUpstreamErrors", "BtcstreamSlowConsumers",
                      "BtcstreamClientsNearMax", "BtcstreamClientsRejected",
                      "BtcstreamFileDescriptorsNearLimit",
                      "BtcstreamSlowDelivery"):
            firing.append((alert, "bad:1", "warning"))
        samples = "".join(
            "          - labels: 'ALERTS{alertname=\"%s\", alertstate="
            "\"firing\", instance=\"%s\", job=\"btcstream\", severity=\"%s\"}'"
            "\n            value: 1\n" % f for f in sorted(firing))
        test = ("rule_files:\n  - %s\n"
                "evaluation_interval: 1m\n"
                "tests:\n"
                "  - interval: 1m\n"
                "    input_series:\n%s"
                "    promql_expr_test:\n"
                "      - expr: ALERTS{alertstate=\"firing\"}\n"
                "        eval_time: 20m\n"
                "        exp_samples:\n%s"
                "      - expr: ALERTS{instance=\"ok:1\"}\n"
                "        eval_time: 20m\n"
                "        exp_samples: []\n"
                % (json.dumps(RULES), series, samples))
        with tempfile.NamedTemporaryFile("w", suffix=".yml",
                                         prefix="btcstream-rules-test-",
                                         delete=False) as f:
            f.write(test)
        self.addCleanup(os.unlink, f.name)
        result = prom.run_promtool("test", "rules", f.name)
        self.assertEqual(result.returncode, 0, "promtool test rules:\n%s%s"
                         "\n--- test file:\n%s" % (result.stdout,
                                                   result.stderr, test))


class DashboardTest(DocsCase):
    REQUIRED = {
        "btcstream_last_price_usd", "btcstream_last_price_age_seconds",
        "btcstream_sse_clients", "btcstream_sse_max_clients",
        "btcstream_sse_connections_total",
        "btcstream_sse_disconnects_total", "btcstream_event_fanout_seconds",
        "btcstream_event_delivery_seconds",
        "btcstream_upstream_requests_total",
        "btcstream_upstream_request_seconds", "btcstream_buffer_entries",
        "btcstream_http_requests_total", "process_resident_memory_bytes",
        "process_cpu_seconds_total", "process_open_fds", "process_max_fds",
    }

    def load(self):
        with open(DASHBOARD, encoding="utf-8") as f:
            return json.load(f)

    def test_dashboard_is_well_formed(self):
        d = self.load()
        self.assertIsInstance(d.get("schemaVersion"), int)
        self.assertGreaterEqual(d["schemaVersion"], 36)
        self.assertTrue(d.get("title"))
        self.assertTrue(d.get("uid"))
        ids = [p["id"] for p in d["panels"]]
        self.assertEqual(len(ids), len(set(ids)), "panel ids repeat")
        cells = set()
        for p in d["panels"]:
            g = p["gridPos"]
            self.assertLessEqual(g["x"] + g["w"], 24, p["title"])
            for x in range(g["x"], g["x"] + g["w"]):
                for y in range(g["y"], g["y"] + g["h"]):
                    self.assertNotIn((x, y), cells, "%s overlaps"
                                     % p["title"])
                    cells.add((x, y))
            if p["type"] == "row":
                continue
            self.assertTrue(p.get("targets"), "%s has no query" % p["title"])
            self.assertEqual(p["datasource"]["type"], "prometheus")
            refs = [t["refId"] for t in p["targets"]]
            self.assertEqual(len(refs), len(set(refs)), p["title"])
            for t in p["targets"]:
                self.assertTrue(t.get("expr"), p["title"])
        names = set()
        for _, expr in dashboard_expressions(d):
            names |= prom.metric_names(grafana_to_promql(expr))
        families = {n[:-len(sfx)] if n.endswith(sfx) else n
                    for n in names for sfx in ("_bucket",)}
        missing = self.REQUIRED - families - names
        self.assertEqual(missing, set(), "the dashboard shows no panel for")

    def test_dashboard_names_only_exported_metrics(self):
        exprs = dashboard_expressions(self.load())
        self.assertGreater(len(exprs), 20)
        s = self.full_scrape()
        for where, expr in exprs:
            names = prom.metric_names(grafana_to_promql(expr))
            self.assertTrue(names, "%s: no metric in %r" % (where, expr))
            self.assert_exported(names, s, "dashboard panel %r" % where)

    @unittest.skipIf(prom.promtool() is None, prom.MISSING)
    def test_dashboard_expressions_are_valid_promql(self):
        """Each expression, as a recording rule, passes promtool's parser."""
        rules = "groups:\n  - name: dashboard\n    rules:\n"
        for i, (_, expr) in enumerate(dashboard_expressions(self.load())):
            rules += "      - record: dashboard:expr%d\n        expr: %s\n" % (
                i, json.dumps(grafana_to_promql(expr)))
        with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False,
                                         prefix="btcstream-dash-") as f:
            f.write(rules)
        self.addCleanup(os.unlink, f.name)
        result = prom.run_promtool("check", "rules", f.name)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr
                         + "\n" + rules)


if __name__ == "__main__":
    unittest.main()
