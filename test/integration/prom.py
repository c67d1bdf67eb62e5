"""Prometheus helpers for the metrics tests (Python 3 standard library only).

- `parse(text)`: a strict reader of the text exposition format 0.0.4; a
  `Scrape` maps (sample name, labels) to the value and keeps `# TYPE`/`# HELP`.
- `scrape(port)`: GET /metrics and parse it.
- `promtool()`, `prometheus()`: the Debian `prometheus` package's binaries, or
  None (tests skip with a clear message then).
- `PrometheusServer`: a real Prometheus server with a temporary config and
  TSDB that scrapes one target every second; `wait_target_up()`, `query()`.
- `metric_names(expr)`: the metric names a PromQL expression refers to (for
  the checks of docs/prometheus-rules.yml and docs/grafana-dashboard.json).
"""

import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request

import tools
from client import http_request

SAMPLE_RE = re.compile(
    r'([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? '
    r'([-+]?(?:[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?|NaN|\+Inf|-Inf))'
    r'(?: (-?[0-9]+))?')
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"')
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


class ParseError(Exception):
    pass


class Scrape:
    """One parsed exposition."""

    def __init__(self, text):
        self.text = text
        self.types = {}  # family name -> counter, gauge, histogram, ...
        self.helps = {}  # family name -> help text
        self.samples = {}  # (name, frozenset(labels)) -> float
        self.order = []  # sample names in order of appearance

    def family_of(self, sample_name):
        """The family a sample belongs to (histogram suffixes stripped)."""
        if sample_name in self.types:
            return sample_name
        for suffix in HISTOGRAM_SUFFIXES:
            if sample_name.endswith(suffix):
                base = sample_name[:-len(suffix)]
                if self.types.get(base) in ("histogram", "summary"):
                    return base
        return None

    @property
    def families(self):
        return set(self.types)

    def get(self, name, **labels):
        """The value of the sample `name{labels}` (exact label set), or None."""
        return self.samples.get((name, frozenset(labels.items())))

    def value(self, name, **labels):
        """Like get(), but the sample must exist."""
        v = self.get(name, **labels)
        if v is None:
            raise KeyError("no sample %s%r in the scrape:\n%s"
                           % (name, labels, self.text))
        return v

    def series(self, name):
        """{frozenset(labels): value} of every sample called `name`."""
        return {labels: v for (n, labels), v in self.samples.items()
                if n == name}

    def by_label(self, name, label):
        """{label value: sample value} of every sample called `name`."""
        out = {}
        for labels, v in self.series(name).items():
            out[dict(labels).get(label)] = v
        return out

    def count(self, name):
        """A histogram's `_count`."""
        return self.value(name + "_count")

    def buckets(self, name):
        """A histogram's buckets as [(le as float, cumulative count)]."""
        out = []
        for labels, v in self.series(name + "_bucket").items():
            out.append((float(dict(labels)["le"]), v))
        return sorted(out)


def parse(text):
    """Parses the text format strictly: every sample belongs to a family
    declared by `# TYPE` before it, no sample repeats, values are numbers."""
    s = Scrape(text)
    if text and not text.endswith("\n"):
        raise ParseError("the exposition does not end with a newline")
    for n, line in enumerate(text.split("\n")[:-1], 1):
        if not line:
            raise ParseError("line %d is empty" % n)
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) >= 3 and parts[1] == "TYPE":
                if parts[2] in s.types:
                    raise ParseError("line %d: second TYPE for %s"
                                     % (n, parts[2]))
                s.types[parts[2]] = parts[3]
            elif len(parts) >= 3 and parts[1] == "HELP":
                s.helps[parts[2]] = parts[3] if len(parts) > 3 else ""
            continue
        m = SAMPLE_RE.fullmatch(line)
        if not m:
            raise ParseError("line %d is not a sample: %r" % (n, line))
        name, labels_text, value = m.group(1), m.group(2), m.group(3)
        labels = {}
        if labels_text:
            pos = 0
            for lm in LABEL_RE.finditer(labels_text):
                if lm.start() != pos:
                    raise ParseError("line %d: bad labels %r" % (n, line))
                labels[lm.group(1)] = lm.group(2)
                pos = lm.end()
                if pos < len(labels_text):
                    if labels_text[pos] != ",":
                        raise ParseError("line %d: bad labels %r" % (n, line))
                    pos += 1
            if pos != len(labels_text):
                raise ParseError("line %d: bad labels %r" % (n, line))
        if s.family_of(name) is None:
            raise ParseError("line %d: sample %s before its # TYPE"
                             % (n, name))
        key = (name, frozenset(labels.items()))
        if key in s.samples:
            raise ParseError("line %d: repeated sample %r" % (n, line))
        s.samples[key] = float(value.replace("Inf", "inf"))
        s.order.append(name)
    return s


def scrape(port, timeout=5.0):
    response = http_request(port, "GET", "/metrics", timeout=timeout)
    if response.status != 200:
        raise AssertionError("GET /metrics -> %r" % response)
    scrape_ = parse(response.body.decode("utf-8"))
    scrape_.response = response
    return scrape_


# -- the Prometheus binaries -------------------------------------------------

def promtool():
    return tools.find("promtool")


def prometheus():
    return tools.find("prometheus")


MISSING = ("the Debian package `prometheus` is not installed (promtool and "
           "prometheus; scripts/deps --test installs it)")


def run_promtool(*args, stdin=None, timeout=60):
    """Runs promtool; returns the CompletedProcess (text)."""
    return subprocess.run([promtool()] + list(args), input=stdin,
                          capture_output=True, text=True, timeout=timeout)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrometheusServer:
    """A Prometheus server on 127.0.0.1 scraping `target` ("host:port")
    every second, with a temporary config and TSDB under `workdir`."""

    def __init__(self, target, workdir=None, job="btcstream"):
        self.target = target
        self.job = job
        self.dir = workdir or tempfile.mkdtemp(prefix="btcstream-prom-")
        self.port = None
        self.proc = None
        self.log_path = os.path.join(self.dir, "prometheus.log")

    def start(self, timeout=30.0):
        config = os.path.join(self.dir, "prometheus.yml")
        with open(config, "w") as f:
            f.write("global:\n"
                    "  scrape_interval: 1s\n"
                    "  scrape_timeout: 1s\n"
                    "  evaluation_interval: 1s\n"
                    "scrape_configs:\n"
                    "  - job_name: %s\n"
                    "    static_configs:\n"
                    "      - targets: ['%s']\n" % (self.job, self.target))
        deadline = time.monotonic() + timeout
        for _ in range(5):  # the free port may be taken meanwhile: retry
            self.port = free_port()
            self._log = open(self.log_path, "wb")
            self.proc = subprocess.Popen(
                [prometheus(), "--config.file=" + config,
                 "--web.listen-address=127.0.0.1:%d" % self.port,
                 "--storage.tsdb.path=" + os.path.join(self.dir, "data"),
                 "--storage.tsdb.retention.time=1h"],
                stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log,
                cwd=self.dir)
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                try:
                    if self.api("/-/ready", raw=True) is not None:
                        return self
                except OSError:
                    pass
                time.sleep(0.2)
            if self.proc.poll() is None:
                self.stop()
                raise RuntimeError("prometheus not ready within %.0f s:\n%s"
                                   % (timeout, self.log_tail()))
            self._log.close()
            if "address already in use" not in self.log_tail():
                raise RuntimeError("prometheus exited with %s:\n%s"
                                   % (self.proc.returncode, self.log_tail()))
        raise RuntimeError("prometheus found no free port")

    def api(self, path, params=None, raw=False):
        url = "http://127.0.0.1:%d%s" % (self.port, path)
        if params:
            url += "?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=5) as r:
            body = r.read()
        return body if raw else json.loads(body)

    def targets(self):
        return self.api("/api/v1/targets")["data"]["activeTargets"]

    def wait_target_up(self, timeout=20.0):
        """Waits until the target reports health "up"; returns the target
        entry, or raises AssertionError with the last state seen."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                targets = self.targets()
                last = targets
                for t in targets:
                    if t.get("scrapeUrl", "").find(self.target) >= 0 and \
                            t.get("health") == "up":
                        return t
            except OSError:
                pass
            time.sleep(0.25)
        raise AssertionError("prometheus never saw %s up within %.0f s; "
                             "targets: %r\nlog:\n%s"
                             % (self.target, timeout, last, self.log_tail()))

    def query(self, expr):
        """An instant query: [(labels dict, float value)]."""
        out = self.api("/api/v1/query", {"query": expr})
        if out.get("status") != "success":
            raise AssertionError("query %r failed: %r" % (expr, out))
        return [(r["metric"], float(r["value"][1]))
                for r in out["data"]["result"]]

    def log_tail(self, lines=30):
        try:
            with open(self.log_path, "rb") as f:
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if getattr(self, "_log", None):
            self._log.close()

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


# -- metric names in PromQL ---------------------------------------------------

PROMQL_FUNCTIONS = {
    "abs", "absent", "absent_over_time", "acos", "acosh", "asin", "asinh",
    "atan", "atanh", "avg_over_time", "ceil", "changes", "clamp", "clamp_max",
    "clamp_min", "cos", "cosh", "count_over_time", "day_of_month",
    "day_of_week", "day_of_year", "days_in_month", "deg", "delta", "deriv",
    "exp", "floor", "histogram_count", "histogram_fraction",
    "histogram_quantile", "histogram_stddev", "histogram_stdvar",
    "histogram_sum", "holt_winters", "hour", "idelta", "increase", "irate",
    "label_join", "label_replace", "last_over_time", "ln", "log10", "log2",
    "max_over_time", "min_over_time", "minute", "month", "pi",
    "predict_linear", "present_over_time", "quantile_over_time", "rad", "rate",
    "resets", "round", "scalar", "sgn", "sin", "sinh", "sort", "sort_desc",
    "sqrt", "stddev_over_time", "stdvar_over_time", "sum_over_time", "tan",
    "tanh", "time", "timestamp", "vector", "year",
}
PROMQL_AGGREGATIONS = {
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count",
    "count_values", "bottomk", "topk", "quantile",
}
PROMQL_KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool",
    "and", "or", "unless", "offset", "atan2", "inf", "nan",
}
IDENT_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def _strip_promql(expr):
    """`expr` without string literals, label matchers, grouping label lists
    and range/offset durations, so that the identifiers left are metric
    names, functions and keywords."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""',
                  expr)
    expr = re.sub(r"\{[^{}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges and subqueries
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*"
                  r"\([^)]*\)", r"\1", expr)  # label lists
    expr = re.sub(r"\boffset\s+[0-9a-z]+", "", expr)
    expr = re.sub(r"\$\{?[a-zA-Z_][a-zA-Z0-9_]*\}?", "", expr)  # Grafana vars
    expr = re.sub(r"\b[0-9]+(\.[0-9]+)?(e[+-]?[0-9]+)?\b", "", expr)
    return expr


def metric_names(expr):
    """The metric names `expr` selects (a `_bucket`, `_sum` or `_count`
    suffix kept: map them with Scrape.family_of)."""
    names = set()
    stripped = _strip_promql(expr)
    for m in IDENT_RE.finditer(stripped):
        word = m.group(0)
        rest = stripped[m.end():].lstrip()
        if word in PROMQL_KEYWORDS:
            continue
        if rest.startswith("(") and (word in PROMQL_FUNCTIONS
                                     or word in PROMQL_AGGREGATIONS):
            continue
        if word in PROMQL_AGGREGATIONS and re.match(r"(by|without)\b", rest):
            continue
        names.add(word)
    return names
