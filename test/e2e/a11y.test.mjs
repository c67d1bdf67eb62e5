// End-to-end: what the page gives screen readers. Live regions are checked
// through the harness's announcer log (what changed in a live region that
// was already exposed), not through a screen reader.

import assert from 'node:assert/strict';

import {
  announced, browserTests, getJSON, holdStream, hooks, openPage, waitFor, waitState,
} from './harness.mjs';

const e2e = browserTests();

e2e('the connection state is announced once per change, without the countdown', async (s, browser) => {
  const up = await s.upstream();
  const srv = await s.server(up, { flags: ['--max-clients', '1'] });
  const hog = await holdStream(srv.base);
  s.onClose(() => hog.release());
  s.outage = true;
  const page = await openPage(browser, s, srv.base);
  // The countdown is shown, and ticks.
  const shown = new Set();
  await waitFor(async () => {
    const text = (await hooks(page)).stateText;
    if (/^Reconnecting in \d+ s…$/.test(text)) shown.add(text);
    return shown.size >= 2;
  }, { what: 'the countdown to tick' });
  hog.release();
  await waitState(page, 'live', 40000);
  s.outage = false;

  const said = (await announced(page)).filter((a) => /Connecting|Reconnecting|Live|Stale/.test(a.text));
  const texts = said.map((a) => a.text);
  assert.ok(texts.includes('Reconnecting'), `announced: ${JSON.stringify(texts)}`);
  assert.equal(texts.at(-1), 'Live');
  for (const text of texts) assert.doesNotMatch(text, /\d/, 'no countdown in the live region');
  for (let i = 1; i < texts.length; i += 1) assert.notEqual(texts[i], texts[i - 1], 'once per change');
  page.check();
});

e2e('the price is announced once after the fill, not on every update', async (s, browser) => {
  const up = await s.upstream({ price: 97000, step: 0.37 });
  const srv = await s.server(up);
  const fill = await waitFor(async () => {
    const list = await getJSON(`${srv.base}api/v1/prices`);
    return list.length >= 5 && list;
  }, { what: 'a fill of 5 updates' });
  const page = await openPage(browser, s, srv.base);
  const prices = (a) => a.filter((x) => /\$9\d,\d{3}\.\d\d/.test(x.text));
  const first = await waitFor(async () => prices(await announced(page))[0], { what: 'a price announced' });
  const h = await hooks(page);
  const value = Number(first.text.match(/\$([\d,]+\.\d\d)/)[1].replace(/,/g, ''));
  assert.ok(value >= fill.at(-1).price, `${first.text}: the latest price, not the fill's first`);
  // Several updates later: still that one announcement (the page says the
  // price at most once a minute).
  await waitFor(async () => (await hooks(page)).sse.ids.length >= h.sse.ids.length + 6,
    { what: '6 more updates' });
  const said = prices(await announced(page));
  assert.deepEqual(said.map((a) => a.text), [first.text]);
  assert.equal(await page.getAttribute('#price', 'aria-live'), null, 'the visible price is not live');
  page.check();
});

e2e('the gap notice is announced: its live region is there before its text', async (s, browser) => {
  const up = await s.upstream();
  const srv = await s.server(up);
  await waitFor(async () => (await getJSON(`${srv.base}api/v1/prices`)).length >= 3,
    { what: '3 buffered updates' });
  // A fill from ids this server never had (a minute ahead): it says gap.
  const page = await browser.context.newPage();
  s.onClose(() => page.close());
  await page.route(/\/api\/v1\/prices$/, async (route) => {
    const res = await route.fetch();
    const ahead = (await res.json()).map((u) => ({ ...u, id: String(BigInt(u.id) + 60000n) }));
    await route.fulfill({ response: res, json: ahead });
  });
  await openPage(browser, s, srv.base, page);
  await waitFor(async () => (await hooks(page)).noticeVisible, { what: 'the gap notice' });
  const said = await waitFor(async () => (await announced(page)).find((a) => /missing/.test(a.text)),
    { timeout: 5000, what: 'the notice announced' });
  assert.equal(said.text, (await page.textContent('#notice-text')).trim());
  assert.doesNotMatch(said.text, /Dismiss/);
  await page.click('#notice-close');
  assert.equal((await hooks(page)).noticeVisible, false);
  page.check();
});

e2e('reading the chart with the keyboard: each point is said, as the tooltip shows it', async (s, browser) => {
  const up = await s.upstream({ price: 97000, step: 0.37 });
  const srv = await s.server(up);
  const page = await openPage(browser, s, srv.base);
  await waitFor(async () => (await hooks(page)).count >= 5, { what: '5 points' });
  await up.pause(); // the points stay put under the keys
  const tip = async () => page.evaluate(() => {
    const el = document.querySelector('.chart-tip');
    return { time: el.querySelector('time').textContent, price: el.querySelector('strong').textContent };
  });
  const sayings = async () => (await announced(page)).filter((a) => /\d:\d\d:\d\d/.test(a.text));

  await page.focus('#chart svg');
  await page.keyboard.press('End');
  const end = await tip();
  let said = await waitFor(async () => (await sayings()).at(-1), { timeout: 5000, what: 'the point said' });
  assert.ok(said.text.includes(end.time) && said.text.includes(end.price), `${said.text} for ${JSON.stringify(end)}`);

  await page.keyboard.press('ArrowLeft');
  const left = await tip();
  assert.notDeepEqual(left, end);
  said = await waitFor(async () => {
    const all = await sayings();
    return all.length >= 2 && all.at(-1);
  }, { timeout: 5000, what: 'the next point said' });
  assert.ok(said.text.includes(left.time) && said.text.includes(left.price), `${said.text} for ${JSON.stringify(left)}`);

  // The pointer moves the tooltip too, but says nothing.
  const before = (await sayings()).length;
  const box = await page.locator('#chart svg').boundingBox();
  await page.mouse.move(box.x + box.width * 0.5, box.y + box.height / 2);
  await page.mouse.move(box.x + box.width * 0.9, box.y + box.height / 2);
  assert.equal((await sayings()).length, before);
  page.check();
});
