// End-to-end: the web page in headless Chromium against the real btcstream
// binary and the fake upstream (interval 300 ms). Points are checked by id
// through the page's test hooks (data-ids on the chart, data-state on the
// connection state), never by pixels.

import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';

import {
  assertIncreasing, getJSON, holdStream, hooks, ids, INTERVAL_MS, launchBrowser, openPage,
  quiesce, request, screenshot, Session, sleep, SOURCE_ROOT, timeBreaks, waitFor, waitPageAt,
  waitState,
} from './harness.mjs';

let browser;
before(async () => { browser = await launchBrowser(); });
after(async () => { await browser?.close(); });

/** Runs `body(session)` and always stops what it started. */
function e2e(name, body, timeout = 120000) {
  test(name, { timeout }, async () => {
    const session = new Session(name);
    try {
      await body(session);
    } finally {
      await session.close();
    }
  });
}

/** The chart holds exactly the points of the fill(s) and the stream, once each. */
function assertChartIsWhatArrived(h, fills) {
  const fill = fills.flat();
  assertIncreasing(h.ids, 'chart');
  assertIncreasing(h.sse.ids, 'stream');
  const arrived = [...new Set([...fill, ...h.sse.ids])].sort((a, b) => (BigInt(a) < BigInt(b) ? -1 : 1));
  assert.deepEqual(h.ids, arrived);
  assert.equal(h.count, h.ids.length);
}

e2e('the price appears, updates, and matches /api/v1/price', async (s) => {
  const up = await s.upstream({ price: 97000, step: 0.37 });
  const srv = await s.server(up);

  // Served right: HTML and modules alike revalidated by their ETag (a new
  // release never runs new HTML with an older module), modules as JavaScript.
  const html = await request(srv.base);
  assert.match(html.headers['content-type'], /^text\/html/);
  assert.equal(html.headers['cache-control'], 'no-cache');
  for (const asset of ['app.js', 'stream.js', 'chart.js', 'format.js']) {
    const res = await request(srv.base + asset);
    assert.equal(res.status, 200, asset);
    assert.match(res.headers['content-type'], /^text\/javascript/, asset);
    assert.equal(res.headers['cache-control'], 'no-cache', asset);
    assert.match(res.headers.etag ?? '', /^W\/"/, asset);
  }

  const page = await openPage(browser, s, srv.base);
  const first = await waitFor(async () => {
    const h = await hooks(page);
    return h.priceId && h;
  }, { what: 'a price' });
  assert.match(first.priceText, /^\$97,\d{3}\.\d{2}$/);
  const later = await waitFor(async () => {
    const h = await hooks(page);
    return BigInt(h.priceId) > BigInt(first.priceId) && h;
  }, { what: 'the price to update' });
  assert.ok(later.price > first.price, 'the walk goes up');
  assert.equal(await page.getAttribute('#change-last', 'data-dir'), 'up');
  assert.match(await page.textContent('#change-last'), /^\+\$0\.37 \(\+0\.00038%\)$/);

  await quiesce(up, srv);
  const latest = await getJSON(`${srv.base}api/v1/price`);
  const h = await waitPageAt(page, latest.id);
  assert.equal(h.price, latest.price);
  assert.equal(h.priceText,
    new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD' }).format(latest.price));
  assert.equal(h.updated, latest.timestamp);
  assert.equal(await page.getAttribute('#price-said', 'aria-live'), 'polite');
  assert.match(await page.textContent('#updated'), /^\d\d:\d\d:\d\d (AM|PM) GMT\+\d/);
  page.check();
});

e2e('the chart grows by one point per event and holds exactly the events received', async (s) => {
  const up = await s.upstream();
  const srv = await s.server(up);
  await sleep(5 * INTERVAL_MS); // a few points in the buffer before the page loads
  const page = await openPage(browser, s, srv.base);
  await waitState(page, 'live');
  let h = await waitFor(async () => {
    const x = await hooks(page);
    return x.sse.ids.length >= 1 && x;
  }, { what: 'a first event' });
  await waitFor(() => page.fills.length === 1, { what: 'the fill from /api/v1/prices' });
  assert.ok(page.fills[0].length >= 3, 'the page filled from /api/v1/prices');
  // The stream resumed right after the fill: no overlap, no hole.
  assert.match(h.sse.urls[0], /^stream\?lastEventId=\d+$/);
  assert.equal(h.sse.urls[0].split('=')[1], page.fills[0].at(-1));
  assertChartIsWhatArrived(h, page.fills);

  for (let i = 0; i < 5; i += 1) {
    const before = h;
    h = await waitFor(async () => {
      const x = await hooks(page);
      return x.sse.ids.length > before.sse.ids.length && x;
    }, { what: `event ${i + 2}` });
    assert.ok(h.count > before.count, 'the chart grew');
    assert.equal(h.count - before.count, h.sse.ids.length - before.sse.ids.length);
    assertChartIsWhatArrived(h, page.fills);
  }

  const all = await quiesce(up, srv);
  h = await waitPageAt(page, all.at(-1).id);
  assert.deepEqual(h.ids, ids(all), 'the chart has every buffered update, once');
  assert.equal(h.segments, 1 + timeBreaks(all), 'breaks only where time says so');
  assert.equal(h.gaps, 0);
  page.check();
});

e2e('a restart: reconnecting, then live; every event exactly once, the gap shown as a break', async (s) => {
  const up = await s.upstream();
  const srv1 = await s.server(up);
  const page = await openPage(browser, s, srv1.base);
  await waitState(page, 'live');
  await waitFor(async () => (await hooks(page)).count >= 5, { what: '5 points' });
  const list1 = await quiesce(up, srv1);
  const run1 = ids(list1);
  let h = await waitPageAt(page, run1.at(-1));
  assert.deepEqual(h.ids, run1);

  s.outage = true;
  await srv1.stop();
  h = await waitState(page, 'reconnecting');
  assert.match(h.stateText, /^Reconnecting/);
  await sleep(1500); // down for a while: the browser's retries fail

  await up.resume();
  const srv2 = await s.server(up, { port: srv1.port });
  await waitState(page, 'live', 20000);
  s.outage = false;
  await waitFor(async () => (await hooks(page)).count >= run1.length + 5,
    { what: 'new points after the restart' });

  const list2 = await quiesce(up, srv2);
  const run2 = ids(list2);
  h = await waitPageAt(page, run2.at(-1));
  assert.deepEqual(h.ids, [...run1, ...run2], 'every event of both runs, exactly once');
  assertIncreasing(h.sse.ids, 'stream');
  // The new process did not hold what came before it: the server said so.
  assert.equal(h.sse.gaps.length, 1);
  assert.equal(h.sse.gaps[0].requested, run1.at(-1));
  assert.equal(h.gaps, 1);
  assert.ok(h.noticeVisible, 'the gap notice is shown');
  assert.match(await page.textContent('#notice-text'), /missing/);
  assert.equal(h.segments, 2 + timeBreaks(list1) + timeBreaks(list2), 'the line breaks at the gap');
  assert.equal(h.paths, h.segments);
  if (process.env.BTCSTREAM_E2E_DEBUG) process.stderr.write(`EventSource URLs: ${h.sse.urls}\n`);
  await screenshot(page, 'restart-gap');
  page.check();
});

e2e('a stale upstream shows "stale", and "live" again when prices return', async (s) => {
  const up = await s.upstream();
  const srv = await s.server(up);
  const page = await openPage(browser, s, srv.base);
  await waitState(page, 'live');
  // No false alarm while updates flow: "stale" only once more than three
  // intervals passed since the last update was fetched, as a poll that timed
  // out on a loaded machine can make so (ids are retrieval times, unix ms).
  for (let i = 0; i < 10; i += 1) {
    const x = await hooks(page);
    if (x.state !== 'live') {
      assert.equal(x.state, 'stale');
      assert.ok(Date.now() - Number(x.sse.ids.at(-1)) >= 3 * INTERVAL_MS,
        'stale while updates flow');
    }
    await sleep(200);
  }
  const info = await getJSON(`${srv.base}api/v1/info`);
  assert.equal(info.interval_ms, INTERVAL_MS);

  await up.pause();
  const h = await waitState(page, 'stale', 5000);
  // Ids are the retrieval times in unix ms (same clock): "stale" came no
  // sooner than 3 intervals after the last update was fetched.
  const lastFetched = Number(h.sse.ids.at(-1));
  assert.ok(Date.now() - lastFetched >= 3 * INTERVAL_MS, 'stale only after 3 intervals');
  assert.match(h.stateText, /^Stale/);
  await screenshot(page, 'stale');

  await up.resume();
  await waitState(page, 'live', 5000);
  page.check();
});

e2e('a 503 at --max-clients is followed by recovery once a slot frees, nothing lost or doubled', async (s) => {
  const up = await s.upstream();
  const srv = await s.server(up, { flags: ['--max-clients', '1'] });
  const hog = await holdStream(srv.base);
  s.onClose(() => hog.release());
  const refused = [];

  s.outage = true;
  const page = await openPage(browser, s, srv.base);
  page.on('response', (res) => {
    if (new URL(res.url()).pathname === '/stream' && res.status() === 503) refused.push(res.url());
  });
  let h = await waitState(page, 'reconnecting');
  h = await waitFor(async () => {
    const x = await hooks(page);
    return x.sse.urls.length >= 2 && x;
  }, { what: 'the page to create a new EventSource after the 503' });
  assert.ok(refused.length >= 1, 'the server answered 503');
  // Not sooner than the server's Retry-After (--retry, 3 s by default,
  // less its 20 % jitter): a page must not undercut it at the client limit.
  const waited = h.sse.opened[1] - h.sse.errorsAt.find((t) => t > h.sse.opened[0]);
  assert.ok(waited >= 2400, `the page tried again after ${Math.round(waited)} ms`);
  assert.match((await hooks(page)).stateText, /^Reconnecting( in \d+ s)?…$/);

  hog.release();
  await waitState(page, 'live', 40000);
  s.outage = false;
  h = await hooks(page);
  assert.match(h.sse.urls.at(-1), /^stream\?lastEventId=\d+$/);
  if (process.env.BTCSTREAM_E2E_DEBUG) process.stderr.write(`EventSource URLs: ${h.sse.urls}\n`);
  await waitFor(async () => (await hooks(page)).sse.ids.length >= 5, { what: 'live events' });

  const list = await quiesce(up, srv);
  const all = ids(list);
  h = await waitPageAt(page, all.at(-1));
  assert.deepEqual(h.ids, all, 'every update exactly once');
  assert.equal(h.sse.gaps.length, 0);
  assert.equal(h.segments, 1 + timeBreaks(list), 'breaks only where time says so');
  page.check();
});

e2e('the window slides: points older than history_ttl leave the chart', async (s) => {
  const up = await s.upstream();
  const srv = await s.server(up, { flags: ['--history-ttl', '3s'] });
  const page = await openPage(browser, s, srv.base);
  await waitState(page, 'live');
  assert.equal(await page.textContent('#chart-title'), 'Last 3 s');
  const start = await waitFor(async () => {
    const x = await hooks(page);
    return x.count >= 3 && x;
  }, { what: 'points' });
  await sleep(4500);
  const h = await hooks(page);
  assert.ok(BigInt(h.ids[0]) > BigInt(start.ids.at(-1)), 'the first points were dropped');
  assert.ok(h.count <= 3000 / INTERVAL_MS + 2, `at most a window's worth (${h.count})`);
  assert.ok(h.count >= 5);
  assertIncreasing(h.ids, 'chart');
  page.check();
});

e2e('prices a few ulp apart draw as a flat line with distinct grid labels', async (s) => {
  const up = await s.upstream();
  const srv = await s.server(up);
  const page = await openPage(browser, s, srv.base);
  // A chart of its own on the page, fed directly: the fake upstream rounds
  // its prices to 8 decimals, and these differ in the last bit only.
  const drawn = page.evaluate(async () => {
    const { PriceChart } = await import(new URL('chart.js', document.baseURI).href);
    const box = document.createElement('div');
    box.className = 'chart';
    document.querySelector('main').append(box);
    const chart = new PriceChart(box, { intervalMs: 1000 });
    const t = Date.now();
    chart.add({ id: t - 2000, t: t - 2000, price: 97123.45 });
    chart.add({ id: t - 1000, t: t - 1000, price: 97123.45000000001 });
    chart.add({ id: t, t, price: 97123.45 });
    chart.render();
    const path = chart.svg.querySelector('.lines path').getAttribute('d');
    return {
      labels: [...chart.svg.querySelectorAll('.axis text[text-anchor="end"]')].map((n) => n.textContent),
      ys: [...path.matchAll(/[ML][\d.]+,([\d.]+)/g)].map((m) => m[1]),
    };
  });
  // Before the fix the grid loop never ended: the page hung in render().
  const r = await Promise.race([drawn, sleep(5000).then(() => null)]);
  assert.ok(r, 'the chart was drawn within 5 s');
  assert.ok(r.labels.length >= 2, `grid labels: ${r.labels}`);
  assert.equal(new Set(r.labels).size, r.labels.length, `distinct grid labels: ${r.labels}`);
  assert.equal(r.ys.length, 3);
  assert.equal(new Set(r.ys).size, 1, `a flat line: ${r.ys}`);
  page.check();
});

e2e('hover, keyboard, colour scheme, reduced motion; screenshots', async (s) => {
  const up = await s.upstream({ price: 97250, step: 0 });
  const srv = await s.server(up);
  // A lively walk for the picture: every interval the walk restarts where a
  // curve is, with a small step so that every tick moves.
  let n = 0;
  const walk = setInterval(() => {
    n += 1;
    const p = 97250 + 60 * Math.sin(n / 6) + 25 * Math.sin(n / 2.3) + 0.5 * n;
    up.setPrice(p.toFixed(2), 0.73).catch(() => {});
  }, INTERVAL_MS);
  s.onClose(() => clearInterval(walk));

  const page = await openPage(browser, s, srv.base);
  await page.emulateMedia({ colorScheme: 'light', reducedMotion: 'no-preference' });
  await waitState(page, 'live');
  await waitFor(async () => (await hooks(page)).count >= 30, { timeout: 20000, what: '30 points' });
  clearInterval(walk);

  // The highlight runs, unless the viewer asked for less motion.
  await waitFor(() => page.evaluate(() => {
    const el = document.getElementById('price');
    return /flash-/.test(el.className) && getComputedStyle(el).animationName !== 'none';
  }), { what: 'the highlight animation' });

  // Hover: a crosshair and a tooltip with the local time and the price.
  const box = await page.locator('#chart svg').boundingBox();
  await page.mouse.move(box.x + box.width * 0.62, box.y + box.height / 2);
  const tip = page.locator('.chart-tip');
  await tip.waitFor({ state: 'visible', timeout: 5000 });
  assert.match(await tip.textContent(), /^\d\d:\d\d:\d\d (AM|PM)\$97,\d{3}\.\d{2}$/);
  await page.emulateMedia({ colorScheme: 'light', reducedMotion: 'reduce' }); // no flash in the picture
  await sleep(300);
  const shot = await screenshot(page, 'ui');
  if (process.env.BTCSTREAM_E2E_UPDATE_DOCS === '1') {
    mkdirSync(path.join(SOURCE_ROOT, 'docs', 'img'), { recursive: true });
    copyFileSync(shot, path.join(SOURCE_ROOT, 'docs', 'img', 'ui.png'));
  }

  // Keyboard: focus the chart, step back one point.
  await page.mouse.move(0, 0);
  await tip.waitFor({ state: 'hidden', timeout: 5000 });
  await page.focus('#chart svg');
  await page.keyboard.press('End');
  const lastText = await tip.textContent();
  await page.keyboard.press('ArrowLeft');
  assert.notEqual(await tip.textContent(), lastText);
  await page.keyboard.press('Escape');
  await tip.waitFor({ state: 'hidden', timeout: 5000 });

  const bg = () => page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  const light = await bg();
  await page.evaluate(() => document.activeElement?.blur());
  await page.emulateMedia({ colorScheme: 'dark', reducedMotion: 'reduce' });
  assert.notEqual(await bg(), light, 'dark scheme');
  assert.equal(await page.evaluate(() => getComputedStyle(document.getElementById('price')).animationName),
    'none', 'no highlight animation with reduced motion');
  await screenshot(page, 'ui-dark');

  await page.setViewportSize({ width: 390, height: 844 });
  await page.emulateMedia({ colorScheme: 'light' });
  await waitFor(() => page.evaluate(() => document.documentElement.scrollWidth <= 390),
    { timeout: 5000, what: 'no horizontal scrolling on a phone' });
  await screenshot(page, 'ui-phone');
  page.check();
});
