#!/bin/sh
# The end-to-end suite: the web page in headless Chromium (Debian's
# /usr/bin/chromium, driven by playwright-core) against the btcstream binary
# ($BTCSTREAM_BIN, default build/btcstream) and the fake upstream.
# Screenshots and logs go to $BTCSTREAM_E2E_ARTIFACTS (default
# build/e2e-artifacts). BTCSTREAM_E2E_UPDATE_DOCS=1 also refreshes
# docs/img/ui.png.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=${BTCSTREAM_SOURCE_ROOT:-$(cd "$here/../.." && pwd)}
export BTCSTREAM_SOURCE_ROOT="$root"
export BTCSTREAM_BIN="${BTCSTREAM_BIN:-$root/build/btcstream}"

for tool in node npm python3; do
  command -v "$tool" >/dev/null 2>&1 || { echo "e2e: $tool not found" >&2; exit 1; }
done
chromium=${BTCSTREAM_CHROMIUM:-/usr/bin/chromium}
[ -x "$chromium" ] || { echo "e2e: $chromium not found (apt-get install chromium)" >&2; exit 1; }

# Node 18 (Debian 12's own nodejs) and newer: playwright-core is pinned to
# 1.61.1, the last release that declares (and accepts at start) Node 18;
# 1.62 and later need Node 20.
major=$(node -p 'process.versions.node.split(".")[0]')
[ "$major" -ge 18 ] || { echo "e2e: Node.js 18 or newer needed, found $(node --version)" >&2; exit 1; }

# Install playwright-core from the lock file, only when missing or changed.
cd "$here"
stamp=node_modules/.package-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -d node_modules/playwright-core ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  npm ci --no-audit --no-fund
  echo "$want" > "$stamp"
fi

# One test file at a time. --test-concurrency is not in every Node 18
# release: without it, each file gets its own `node --test`.
cd "$root"
if node --test-concurrency=1 -e 0 >/dev/null 2>&1; then
  exec node --test --test-concurrency=1 test/e2e/
fi
status=0
for f in test/e2e/*.test.mjs; do
  node --test "$f" || status=1
done
exit $status
