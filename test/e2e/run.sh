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

# Install playwright-core from the lock file, only when missing or changed.
cd "$here"
stamp=node_modules/.package-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -d node_modules/playwright-core ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  npm ci --no-audit --no-fund
  echo "$want" > "$stamp"
fi

cd "$root"
exec node --test --test-concurrency=1 test/e2e/
