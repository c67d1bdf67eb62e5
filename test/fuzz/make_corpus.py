#!/usr/bin/env python3
"""Writes the seed corpus of every fuzz target (corpus/<target>/).

Run by hand after changing a seed; the files are checked in. libFuzzer adds
its own finds to a copy (test/fuzz/run.sh), never to these directories.
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# (a) fuzz_request: what clients send.
req = {
    "get-stream": "GET /stream HTTP/1.1\r\nHost: localhost:8080\r\nAccept: text/event-stream\r\n\r\n",
    "stream-last-event-id": "GET /stream HTTP/1.1\r\nHost: x\r\nLast-Event-ID: 1764182717123\r\n\r\n",
    "stream-bad-last-event-id": "GET /stream HTTP/1.1\r\nHost: x\r\nLast-Event-ID: 12a\r\n\r\n",
    "stream-query-id": "GET /stream?lastEventId=1764182717123 HTTP/1.1\r\nHost: x\r\n\r\n",
    "stream-since": "GET /stream?since=1764182000.5 HTTP/1.1\r\nHost: x\r\n\r\n",
    "stream-since-future": "GET /stream?since=1764200000 HTTP/1.1\r\nHost: x\r\n\r\n",
    "head-stream": "HEAD /stream HTTP/1.0\r\n\r\n",
    "prices-since": "GET /api/v1/prices?since=1764182000 HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n",
    "pipelined": "GET /api/v1/price HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    "options-preflight": "OPTIONS /api/v1/info HTTP/1.1\r\nHost: x\r\nOrigin: https://example.com\r\nAccess-Control-Request-Method: GET\r\n\r\n",
    "post-body": "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
    "chunked-body": "PUT /api/v1/info HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    "cl-and-te": "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "static-index": "GET / HTTP/1.1\r\nHost: x\r\nIf-None-Match: W/\"1-2\"\r\n\r\n",
    "static-traversal": "GET /%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n",
    "static-missing": "GET /nope.js?x=1&&y=%41+b HTTP/1.1\r\nHost: x\r\n\r\n",
    "bad-escape": "GET /stream?since=%zz HTTP/1.1\r\nHost: x\r\n\r\n",
    "http10-close": "GET /api/v1/info HTTP/1.0\r\n\r\n",
    "big-header": "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + "a" * 9000 + "\r\n\r\n",
    "big-body": "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 20000\r\n\r\n" + "b" * 64,
    "truncated": "GET /stream HTTP/1.1\r\nHost:",
    # Findings (README): the last chunk's CRLF, and a 9 KiB head.
    "chunked-final": "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "head-9k": "GET /" + "a" * 4000 + " HTTP/1.1\r\nHost: x\r\nX-Big: " + "b" * 5000 + "\r\n\r\n",
}
for k, v in req.items():
    write("fuzz_request", k, v)

# (b) fuzz_coindesk: [status selector][instrument length][instrument][body]
ok = ('{"Data":{"BTC-USD":{"TYPE":"984","MARKET":"cadli","INSTRUMENT":"BTC-USD",'
      '"VALUE":97123.45,"VALUE_FLAG":"UP","VALUE_LAST_UPDATE_TS":1764182717}},'
      '"Err":{}}')
cd = {
    "ok": (0, "", ok),
    "ok-eth": (0, "ETH-USD", ok.replace("BTC-USD", "ETH-USD")),
    "err-401": (5, "", '{"Data":{},"Err":{"type":1,"message":"Not authenticated","other_info":{}}}'),
    "err-429": (7, "", '{"Data":{},"Err":{"type":99,"message":"You are over your rate limit please upgrade your account!"}}'),
    "err-in-200": (0, "", '{"Data":{},"Err":{"type":2,"message":"Instrument not found: BTC-XXX","other_info":{"param":"instruments","values":["BTC-XXX"]}}}'),
    "no-instrument": (0, "", '{"Data":{"ETH-USD":{"VALUE":3000}},"Err":{}}'),
    "value-string": (0, "", '{"Data":{"BTC-USD":{"VALUE":"97123.45"}},"Err":{}}'),
    "value-zero": (0, "", '{"Data":{"BTC-USD":{"VALUE":0}},"Err":{}}'),
    "value-huge": (0, "", '{"Data":{"BTC-USD":{"VALUE":1e400}},"Err":{}}'),
    "not-json": (0, "", "<html><body>502 Bad Gateway</body></html>"),
    "truncated": (0, "", ok[:40]),
    "html-502": (9, "", "<html>bad gateway</html>"),
    "utf8-message": (4, "", '{"Err":{"message":"' + "é" * 120 + '"}}'),
}
for k, (st, inst, body) in cd.items():
    b = inst.encode()
    write("fuzz_coindesk", k, bytes([st, len(b)]) + b + body.encode())

# (c) fuzz_sse: id, ts, price, retry, oldest flag, oldest, requested
def sse(uid, ts, price, retry, has_oldest, oldest, requested):
    return struct.pack("<QqdqBQ", uid, ts, price, retry, has_oldest, oldest) + requested


sse_seeds = {
    "typical": sse(1764182717123, 1764182717123, 97123.45, 3000, 1, 1764182000000, b"1764182000000"),
    "since": sse(1764182717124, 1764182717120, 0.1, 2400, 0, 0, b"1764182000.5"),
    "injection": sse(1, 1, 1.0, 0, 1, 5, b"1\r\nevent: evil\ndata: x\r\rid: 9\x00"),
    "non-utf8": sse(2**64 - 1, -1, 1e21, -1, 0, 0, b"\xff\xfe\xc3\x28 \xed\xa0\x80"),
    "extremes": sse(0, -(2**63), 5e-324, 2**63 - 1, 1, 2**64 - 1, b"\"\\\x7f\u2028".replace(b"\\u2028", "\u2028".encode())),
    "nan": sse(7, 2**63 - 1, float("nan"), 1, 0, 0, b""),
}
for k, v in sse_seeds.items():
    write("fuzz_sse", k, v)

# (d) fuzz_units: each input goes through every parser.
units = [
    "250ms", "5s", "1.5s", "2min", "2m", "1h", "0.1ms", "9223372036854775807ms",
    "16KiB", "8192", "1MiB", "4GiB", "12B",
    "https://data-api.coindesk.com/index/cc/v1/latest/tick?market=cadli&instruments=BTC-USD",
    "http://127.0.0.1:8081/tick?instruments=ETH-USD,BTC-USD",
    "http://[::1]:9000", "HTTPS://example.com?x=%41",
    "120", " 0\t", "Wed, 26 Nov 2025 18:45:17 GMT", "Sun, 06 Nov 1994 08:49:37 GMT",
    "redis://localhost", "redis://:s3cr3t-password@10.0.0.5:6380/2",
    "redis://app:p%40ss@[::1]:6379/15", "redis://user:pass@@host/16",
]
for i, v in enumerate(units):
    write("fuzz_units", "seed-%02d" % i, v)

# (e) fuzz_redis: RESP2 replies as Redis sends them.
def bulk(s):
    s = s.encode() if isinstance(s, str) else s
    return b"$%d\r\n%s\r\n" % (len(s), s)


def arr(*items):
    return b"*%d\r\n" % len(items) + b"".join(items)


def entry(i, ts, price, prev, at):
    return arr(bulk("%d-0" % i), arr(bulk("ts"), bulk(str(ts)), bulk("price"), bulk(price),
                                     bulk("prev"), bulk(str(prev)), bulk("at"), bulk(str(at))))


e1 = entry(1764182717123, 1764182717123, "97123.45", 1764182712120, 1764182717130)
e2 = entry(1764182722124, 1764182722124, "97130.1", 1764182717123, 1764182722129)
redis = {
    "xread": arr(arr(bulk("btcstream:log"), arr(e1, e2))),
    "xread-nil": b"*-1\r\n",
    "xrange": arr(e1, e2),
    "xrange-malformed": arr(e1, arr(bulk("5-1"), arr(bulk("ts"), bulk("1"))), arr(bulk("9-0"), arr(bulk("price"), bulk("-1")))),
    "lease": arr(b":42\r\n", bulk("node-a")),
    "lease-nobody": arr(b":0\r\n", bulk("")),
    "append": b":1764182717123\r\n",
    "append-fenced": b"+FENCED\r\n",
    "error": b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
    "pipelined": b"+OK\r\n+OK\r\n:7\r\n" + arr(b":3\r\n", bulk("node-b")),
    "nested": b"*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n",
    "binary": bulk(b"a\r\nb\x00c"),
    # Findings (README): an empty error; a multi-bulk count hiredis 0.14
    # allocates for at once (the target skips it).
    "empty-error": b"-\r\n",
    "huge-multibulk": b"*1182722110\r\n$2\r\nat\r\n",
}
for k, v in redis.items():
    write("fuzz_redis", k, v)

# (f) fuzz_state: state files as the service writes them, and as a disk or a
# hand may leave them. Header: flags (BTC-USD), now, ttl (1 h), max_entries.
state_header = struct.pack("<BQIH", 0, 1764182800000, 3600000 - 1, 721)
good = ('{"format":"btcstream-state","version":1,"instrument":"BTC-USD",'
        '"updates":[{"id":1764182717123,"ts":1764182717123,"price":97123.45},'
        '{"id":1764182722124,"ts":1764182722124,"price":97130.1}]}\n')
state = {
    "good": good,
    "empty": '{"format":"btcstream-state","version":1,"instrument":"BTC-USD","updates":[]}\n',
    "expired-one": good.replace("1764182717123,\"ts\":1764182717123", "1764179000000,\"ts\":1764179000000"),
    "truncated": good[:97],
    "other-instrument": good.replace("BTC-USD", "ETH-USD"),
    "version-2": good.replace('"version":1', '"version":2'),
    "out-of-order": good.replace("1764182722124,\"ts\"", "1764182700000,\"ts\""),
    "bad-price": good.replace("97130.1", "-0.0"),
    "string-id": good.replace('"id":1764182717123', '"id":"1764182717123"'),
    "not-json": "btcstream-state v1\n",
}
for k, v in state.items():
    write("fuzz_state", k, state_header + v.encode())
