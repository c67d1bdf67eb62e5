// The page's pure logic in Node, without a browser: web/format.js and the
// chart's price scale (web/chart.js touches the DOM only when drawn).

import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';

// web/*.js are ES modules without a package.json saying so (the browser
// needs none): Node 18, Debian 12's, reads them as CommonJS. A copy beside
// a package.json with "type": "module" imports alike in every Node.
const webCopy = mkdtempSync(join(tmpdir(), 'btcstream-web-'));
after(() => rmSync(webCopy, { recursive: true, force: true }));
const web = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'web');
for (const name of readdirSync(web).filter((n) => n.endsWith('.js'))) {
  copyFileSync(join(web, name), join(webCopy, name));
}
writeFileSync(join(webCopy, 'package.json'), '{"type": "module"}\n');
const webModule = (name, query = '') => import(pathToFileURL(join(webCopy, name)).href + query);

// ECMA-402 before its 2021 edition (Chromium < 89, Safari < 14.1): a
// maximumFractionDigits below the style's default minimum (2 for USD) is a
// RangeError unless minimumFractionDigits is given too.
function oldEngineNumberFormat(Native) {
  return function NumberFormat(locales, options = {}) {
    const significant = options.minimumSignificantDigits !== undefined
      || options.maximumSignificantDigits !== undefined;
    if (!significant && options.maximumFractionDigits !== undefined) {
      const min = options.minimumFractionDigits ?? (options.style === 'currency' ? 2 : 0);
      if (options.maximumFractionDigits < min) {
        throw new RangeError('maximumFractionDigits value is out of range.');
      }
    }
    return new Native(locales, options);
  };
}

test('format.js loads where maximumFractionDigits may not undercut the currency minimum', async () => {
  const Native = Intl.NumberFormat;
  Intl.NumberFormat = oldEngineNumberFormat(Native);
  try {
    const format = await webModule('format.js', '?old-engine');
    Intl.NumberFormat = Native;
    const label = format.formatAxisPrice(97120, 10).replace(/\D+$/, '');
    assert.match(label, /97/);
    assert.doesNotMatch(label, /[.,]\d\d$/, `no cents in ${label}`);
  } finally {
    Intl.NumberFormat = Native;
  }
});

test('a change is coloured by the cent it shows: "$0.00" is flat', async () => {
  const { direction, formatDelta } = await webModule('format.js');
  for (const d of [0.004, -0.004, 0.0049, -0.0049, 1e-9, -1e-9, 0, -0]) {
    assert.equal(direction(d), 'flat', `${d} shows ${formatDelta(d)}`);
  }
  assert.equal(direction(0.006), 'up');
  assert.equal(direction(-0.006), 'down');
  assert.equal(direction(0.37), 'up');
  // Sign shown and colour agree, on both sides of every half cent.
  for (let c = -300; c <= 300; c += 1) {
    for (const d of [c / 1000, (c + 0.5) / 1000, (c - 0.0001) / 1000]) {
      const text = formatDelta(d);
      const shown = /\+/.test(text) ? 'up' : /[-\u2212]/.test(text) ? 'down' : 'flat';
      assert.equal(direction(d), shown, `${d} shows ${text}`);
    }
  }
});

test('the price axis of a window a few ulp wide is a flat line with a finite grid', async () => {
  const { priceDomain, priceTicks } = await webModule('chart.js');
  for (const prices of [[97123.45, 97123.45000000001], [97123.45], [97123.45, 97123.459], [5e-324, 0]]) {
    const { lo, hi } = priceDomain(prices);
    assert.ok(hi - lo >= 0.01, `${prices}: a span of ${hi - lo}`);
    assert.ok(lo < Math.min(...prices) && hi > Math.max(...prices), `${prices} inside [${lo}, ${hi}]`);
    const { step, values } = priceTicks(lo, hi, 6);
    assert.ok(values.length >= 2 && values.length <= 7, `${prices}: ${values.length} grid lines`);
    for (let i = 1; i < values.length; i += 1) {
      assert.ok(Math.abs(values[i] - values[i - 1] - step) < step / 1000, `even steps: ${values}`);
    }
  }
  // A range of a cent or more is drawn as it is, between the margins.
  const { lo, hi } = priceDomain([97000, 97000.37]);
  assert.ok(lo > 96999.9 && hi < 97000.47, `[${lo}, ${hi}]`);
});

/** A PriceFeed that is never started: updates go to accept() by hand. */
async function feedForTest() {
  globalThis.addEventListener ??= () => {}; // the page's `online` event
  globalThis.CustomEvent ??= class extends Event { // Node 18
    constructor(type, { detail } = {}) {
      super(type);
      this.detail = detail;
    }
  };
  const { PriceFeed } = await webModule('stream.js');
  const feed = new PriceFeed();
  clearInterval(feed.staleTimer);
  const shown = [];
  feed.addEventListener('update', (e) => shown.push(e.detail.rewound ? `<${e.detail.update.id}` : e.detail.update.id));
  const at = (id) => ({ id: String(id), timestamp: new Date(id).toISOString(), price: 97000 });
  return { feed, shown, at, gap: () => { feed.afterGap = true; } };
}

test('ids go back only after a gap, and only to an id not seen', async () => {
  const { feed, shown, at, gap } = await feedForTest();
  for (const id of [1000, 2000, 3000]) feed.accept(at(id), false);
  feed.accept(at(2500), true); // no gap: a duplicate, as ever
  assert.deepEqual(shown, [1000, 2000, 3000]);
  assert.equal(feed.duplicates, 1);

  gap(); // a restart with the clock behind
  feed.accept(at(2500), true);
  feed.accept(at(2600), true);
  assert.deepEqual(shown, [1000, 2000, 3000, '<2500', 2600]);
  assert.equal(feed.lastId, 2600);
  feed.accept(at(2550), true); // the gap is used up
  assert.equal(feed.duplicates, 2);

  gap(); // a node behind the last one: what it sends we have seen
  feed.accept(at(2000), true);
  feed.accept(at(2600), true);
  feed.accept(at(2700), true);
  assert.deepEqual(shown.slice(5), [2700]);
  assert.equal(feed.duplicates, 4);
  assert.equal(feed.rejected, 0);
});

test('updates without a valid id, price or timestamp are counted and dropped', async () => {
  const { feed, shown, at } = await feedForTest();
  const warn = console.warn;
  console.warn = () => {};
  try {
    feed.accept(at(1000), true);
    feed.accept({ ...at(2000), timestamp: undefined }, true);
    feed.accept({ ...at(3000), timestamp: 'not a time' }, true);
    feed.accept({ ...at(4000), price: '97000' }, true);
    feed.accept({ ...at(5000), id: 'x' }, true);
    feed.accept(at(6000), true);
  } finally {
    console.warn = warn;
  }
  assert.deepEqual(shown, [1000, 6000]);
  assert.equal(feed.rejected, 4);
});

test('the page backs off from 3 s ± 20 % (as the server hints), doubling up to 30 s', async () => {
  const { backoffDelay } = await webModule('stream.js');
  assert.equal(backoffDelay(0, 0), 2400);
  assert.equal(backoffDelay(0, 0.5), 3000);
  assert.ok(backoffDelay(0, 0.999999) <= 3600);
  assert.deepEqual([1, 2, 3, 4, 5, 20].map((n) => backoffDelay(n, 0.5)),
    [6000, 12000, 24000, 30000, 30000, 30000]);
  assert.ok(backoffDelay(50, 0.999999) <= 36000);
});

test('a stale page opens a new stream after about two heartbeats, then waits longer each time', async () => {
  const { staleReopenDelay } = await webModule('stream.js');
  assert.equal(staleReopenDelay(15000, 0, 0.5), 30000);
  assert.equal(staleReopenDelay(15000, 0, 0), 24000);
  assert.ok(staleReopenDelay(15000, 0, 0.999999) <= 36000);
  assert.deepEqual([1, 2, 3, 9].map((n) => staleReopenDelay(15000, n, 0.5)),
    [60000, 120000, 240000, 240000]);
});
