#!/usr/bin/env python3
"""Feeds nchan what btcstream streams: polls the (fake) CoinDesk upstream at a
fixed rate and POSTs each price to nchan's publisher location.

    publisher.py --upstream URL --publish http://127.0.0.1:PORT/pub
                 [--interval 1.0] [--duration S] [--timeout 5.0]

Per tick: GET the upstream (one kept-alive connection), parse it as
src/core/coindesk.cpp does, and POST the exact `data:` text of btcstream's
frame (src/core/sse.cpp, update_data_json):

    {"timestamp":"2025-11-26T21:03:20.123Z","price":97000.01}

`timestamp` is what btcstream puts there: the retrieval time (this host's wall
clock, in ms, when the answer has been read; never going back), not the
upstream's VALUE_LAST_UPDATE_TS, so receive time minus timestamp means the same
for both servers. Ticks are at start + k * interval; a tick missed while a
request was in flight is skipped, not queued (as btcstream's fetcher). Errors
are printed to stderr once per kind; the loop goes on. Ends at --duration, or
on SIGTERM/SIGINT, with exit status 0. Python 3 standard library only.
"""

import argparse
import decimal
import http.client
import json
import math
import signal
import sys
import time
import urllib.parse


class _Stop(Exception):
    pass


def _on_signal(signum, frame):
    raise _Stop()


# -- btcstream's encoding (src/core/sse.cpp) ----------------------------------

def format_timestamp(unix_ms):
    """`2025-11-26T21:03:20.123Z`, as btcstream's format_timestamp."""
    secs, ms = divmod(unix_ms, 1000)
    t = time.gmtime(secs)
    return "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ" % (
        t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec, ms)


def format_price(price):
    """As btcstream's format_price (std::to_chars): the shortest round-trip
    digits in fixed notation where JavaScript uses it (1e-6 <= |x| < 1e21):
    97000 (not 97000.0), 97000.01, 0.0000015; else the shorter of exponent
    form and fixed (a tie goes to fixed): 1.5e-07."""
    if not math.isfinite(price):
        return "null"
    text = repr(float(price))  # shortest round-trip digits
    if price == 0:
        return text[:-2]  # "0", "-0"
    if abs(price) >= 2.0 ** 53:  # an integer: to_chars prints it exactly
        fixed = str(int(price))
    else:
        fixed = format(decimal.Decimal(text), "f")
        if "." in fixed:
            fixed = fixed.rstrip("0").rstrip(".")
    if 1e-6 <= abs(price) < 1e21 or len(fixed) <= len(text):
        return fixed
    return text  # exponent form here, as C's: 1.5e-07, 1e+21


def update_data_json(ts_ms, price):
    return '{"timestamp":"%s","price":%s}' % (format_timestamp(ts_ms),
                                             format_price(price))


# -- btcstream's parsing (src/core/coindesk.cpp) ------------------------------

class ParseError(Exception):
    def __init__(self, kind, detail):
        super().__init__("%s: %s" % (kind, detail))
        self.kind = kind
        self.detail = detail


def _reject_constant(name):
    raise ValueError("not JSON: " + name)  # NaN, Infinity: nlohmann refuses


def parse_coindesk(status, body, instrument):
    """The price of `instrument` in a CoinDesk latest-tick answer, or
    ParseError with btcstream's error kind."""
    try:
        doc = json.loads(body, parse_constant=_reject_constant)
        not_json = False
    except (ValueError, RecursionError):
        doc, not_json = None, True
    if status != 200:
        msg = None
        if isinstance(doc, dict) and isinstance(doc.get("Err"), dict):
            msg = doc["Err"].get("message")
        raise ParseError("http_status",
                         msg if isinstance(msg, str) and msg
                         else "HTTP %d" % status)
    if not_json:
        raise ParseError("not_json", "invalid JSON")
    if not isinstance(doc, dict):
        raise ParseError("bad_shape", "document is not an object")
    err = doc.get("Err")
    if "Err" in doc and err is not None and err != {}:
        raise ParseError("bad_shape", "Err is not empty")
    data = doc.get("Data")
    if not isinstance(data, dict):
        raise ParseError("bad_shape", "no Data object")
    if instrument not in data:
        raise ParseError("no_instrument", "no %s in Data" % instrument)
    item = data[instrument]
    if not isinstance(item, dict):
        raise ParseError("bad_value", "instrument is not an object")
    if "VALUE" not in item:
        raise ParseError("bad_value", "no VALUE")
    value = item["VALUE"]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ParseError("bad_value", "VALUE is not a number")
    try:
        price = float(value)
    except OverflowError:  # an integer beyond double range
        raise ParseError("bad_value", "number out of range") from None
    if not math.isfinite(price) or not price > 0:
        raise ParseError("bad_value", "VALUE is not finite and > 0")
    return price


def instrument_of(url):
    """The first `instruments` query value, or BTC-USD (btcstream's
    url::instrument)."""
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    first = query.get("instruments", [""])[0].split(",")[0]
    return first or "BTC-USD"


# -- HTTP ---------------------------------------------------------------------

class Endpoint:
    """One kept-alive HTTP/1.1 connection to the host of `url`, reopened after
    any failure."""

    def __init__(self, url, timeout):
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise SystemExit("publisher.py: not an http(s) URL: " + url)
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = parts.port
        self.target = (parts.path or "/") + (
            "?" + parts.query if parts.query else "")
        self.timeout = timeout
        self.conn = None

    def request(self, method, body=None, headers=None):
        """Returns (status, body bytes); raises OSError or HTTPException."""
        for attempt in (0, 1):
            reused = self.conn is not None
            if self.conn is None:
                cls = (http.client.HTTPSConnection if self.scheme == "https"
                       else http.client.HTTPConnection)
                self.conn = cls(self.host, self.port, timeout=self.timeout)
            try:
                self.conn.request(method, self.target, body=body,
                                  headers=headers or {})
                resp = self.conn.getresponse()
                data = resp.read()
                if resp.will_close:
                    self.close()
                return resp.status, data
            except (OSError, http.client.HTTPException):
                self.close()
                # A kept-alive connection the peer closed meanwhile: one
                # retry on a fresh one.
                if not reused or attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


# -- the loop -----------------------------------------------------------------

def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0].replace("\n", " "))
    parser.add_argument("--upstream", required=True,
                        help="the CoinDesk-style latest-tick URL")
    parser.add_argument("--publish", required=True,
                        help="nchan's publisher URL, e.g. "
                        "http://127.0.0.1:8080/pub")
    parser.add_argument("--interval", type=float, default=1.0,
                        help="seconds between ticks (default 1.0)")
    parser.add_argument("--duration", type=float, default=None,
                        help="stop after this many seconds (default: run "
                        "until SIGTERM/SIGINT)")
    parser.add_argument("--timeout", type=float, default=5.0,
                        help="per HTTP request, seconds (default 5.0)")
    args = parser.parse_args(argv)
    if not args.interval > 0:
        parser.error("--interval must be > 0")

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)

    instrument = instrument_of(args.upstream)
    upstream = Endpoint(args.upstream, args.timeout)
    nchan = Endpoint(args.publish, args.timeout)
    seen_errors = set()
    stats = {"ticks": 0, "skipped": 0, "published": 0, "failed": 0}
    last_ts = 0

    def error(kind, detail):
        stats["failed"] += 1
        if kind not in seen_errors:
            seen_errors.add(kind)
            print("publisher: %s: %s (further ones of this kind not "
                  "printed)" % (kind, detail), file=sys.stderr, flush=True)

    print("publisher: polling %s (%s) every %gs, publishing to %s%s"
          % (args.upstream, instrument, args.interval, args.publish,
             "" if args.duration is None
             else " for %gs" % args.duration),
          file=sys.stderr, flush=True)
    start = time.monotonic()
    k = 0
    try:
        while True:
            due = start + k * args.interval
            if args.duration is not None and due - start >= args.duration:
                break
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            stats["ticks"] += 1
            try:
                status, body = upstream.request(
                    "GET", headers={"Accept": "application/json"})
                price = parse_coindesk(status, body, instrument)
            except (OSError, http.client.HTTPException) as e:
                error("upstream " + type(e).__name__, e)
                price = None
            except ParseError as e:
                error("upstream " + e.kind, e.detail)
                price = None
            if price is not None:
                # btcstream's fetcher: the retrieval time, never going back.
                last_ts = max(time.time_ns() // 1_000_000, last_ts)
                payload = update_data_json(last_ts, price).encode()
                try:
                    status, _ = nchan.request(
                        "POST", body=payload,
                        headers={"Content-Type": "application/json"})
                    if 200 <= status < 300:
                        stats["published"] += 1
                    else:
                        error("publish HTTP %d" % status,
                              "nchan answers %d" % status)
                except (OSError, http.client.HTTPException) as e:
                    error("publish " + type(e).__name__, e)
            # The next tick not yet begun; the ones missed are skipped.
            now = time.monotonic()
            k += 1
            while start + k * args.interval < now:
                k += 1
                stats["skipped"] += 1
    except _Stop:
        pass
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        upstream.close()
        nchan.close()
    print("publisher: stopped: %(ticks)d ticks, %(published)d published, "
          "%(failed)d failed, %(skipped)d skipped" % stats,
          file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
