// End-to-end: how the page's feed (web/stream.js) copes with what a server
// or a network can do to it: updates it cannot show, ids that go back after
// a restart, a connection that dies silently, refusals at the client limit.

import assert from 'node:assert/strict';

import {
  assertIncreasing, browserTests, getJSON, hooks, ids, INTERVAL_MS, openPage, quiesce,
  timeBreaks, waitFor, waitPageAt, waitState,
} from './harness.mjs';

const e2e = browserTests();

/** Waits until the service's buffer holds at least `n` updates; returns them. */
function buffered(srv, n) {
  return waitFor(async () => {
    const list = await getJSON(`${srv.base}api/v1/prices`);
    return list.length >= n && list;
  }, { what: `${n} buffered updates` });
}

e2e('updates whose timestamp does not parse are dropped and counted; the rest flows', async (s, browser) => {
  const up = await s.upstream();
  const srv = await s.server(up);
  await buffered(srv, 6);
  let fill = null;
  let sent = null; // the ids of the broken events on the first /stream
  const page = await browser.context.newPage(); // routes before openPage's goto
  s.onClose(() => page.close());
  await page.route(/\/api\/v1\/prices$/, async (route) => {
    const res = await route.fetch();
    fill = await res.json();
    fill[2].timestamp = 'not a time';
    delete fill[3].timestamp;
    await route.fulfill({ response: res, json: fill });
  });
  await page.route(/\/stream(\?|$)/, async (route) => {
    if (sent) return route.fallback();
    const last = BigInt(fill.at(-1).id);
    sent = [String(last + 1n), String(last + 2n)];
    // Then the stream ends, and the browser resumes from the last id on the
    // server (one second on: it holds newer updates by then).
    return route.fulfill({
      headers: { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' },
      body: `retry: 1000\n\nid: ${sent[0]}\ndata: {"price":97000.5}\n\n`
        + `id: ${sent[1]}\ndata: {"timestamp":"","price":97000.6}\n\n`,
    });
  });
  const shown = await openPage(browser, s, srv.base, page);
  await waitState(shown, 'live');
  await waitFor(async () => (await hooks(shown)).sse.ids.length >= 5, { what: 'live updates' });

  const list = await quiesce(up, srv);
  const h = await waitPageAt(shown, list.at(-1).id);
  const bad = [fill[2].id, fill[3].id, ...sent].map(String);
  assert.equal(await shown.evaluate(() => document.body.dataset.rejected), '4');
  for (const id of bad) assert.ok(!h.ids.includes(id), `the chart has the broken update ${id}`);
  assertIncreasing(h.ids, 'chart');
  const good = ids(fill).filter((id) => !bad.includes(id));
  assert.deepEqual(h.ids, [...good, ...ids(list).filter((id) => BigInt(id) > BigInt(sent[1]))]);
  assert.equal(h.updated, list.at(-1).timestamp);
  shown.check();
});

e2e('ids that go back after a gap (a restart with the clock behind) are shown, after a break', async (s, browser) => {
  const up = await s.upstream();
  const srv = await s.server(up);
  await buffered(srv, 8);
  // The fill as a server whose clock ran a minute ahead for its last three
  // polls would have sent it: resuming from there, this server (clock right)
  // knows no such id, says so with a gap, then streams smaller ids.
  let fill = null;
  const page = await browser.context.newPage();
  s.onClose(() => page.close());
  await page.route(/\/api\/v1\/prices$/, async (route) => {
    const res = await route.fetch();
    fill = (await res.json()).map((u, i, all) => (i < all.length - 3 ? u : {
      id: String(BigInt(u.id) + 60000n),
      timestamp: new Date(Date.parse(u.timestamp) + 60000).toISOString(),
      price: u.price,
    }));
    await route.fulfill({ response: res, json: fill });
  });
  const shown = await openPage(browser, s, srv.base, page);
  await waitState(shown, 'live');
  const ahead = fill.slice(-3);
  const kept = fill.slice(0, -3);
  let h = await waitFor(async () => {
    const x = await hooks(shown);
    return x.sse.gaps.length === 1 && x.sse.ids.length >= 5 && x.priceId === x.sse.ids.at(-1) && x;
  }, { what: 'a gap, then live updates shown' });
  assert.equal(h.state, 'live');
  assert.equal(h.sse.gaps[0].requested, ahead.at(-1).id);
  assert.ok(h.sse.gaps[0].oldest === null || BigInt(h.sse.gaps[0].oldest) < BigInt(ahead.at(-1).id));
  assert.ok(BigInt(h.sse.ids[0]) < BigInt(ahead[0].id), 'the stream went back');

  const list = await quiesce(up, srv);
  h = await waitPageAt(shown, list.at(-1).id);
  const live = list.filter((u) => h.sse.ids.includes(String(u.id)));
  assert.deepEqual(h.sse.ids, ids(live), 'the stream sent what the server holds since');
  // What came from the clock ahead is gone; the line breaks before the new ids.
  assert.deepEqual(h.ids, [...ids(kept), ...ids(live)]);
  assert.equal(h.segments, 2 + timeBreaks(kept) + timeBreaks(live));
  assert.equal(h.gaps, 1);
  assert.ok(h.noticeVisible);
  assert.equal(await shown.evaluate(() => document.body.dataset.duplicates), '0');
  shown.check();
});

e2e('a stream that dies silently goes stale, and a new one resumes from the last id', async (s, browser) => {
  const HEARTBEAT_MS = 1000;
  const up = await s.upstream();
  const srv = await s.server(up, { flags: ['--heartbeat', `${HEARTBEAT_MS}ms`] });
  const net = await s.proxy(srv);
  const page = await openPage(browser, s, net.base);
  await waitState(page, 'live');
  let h = await waitFor(async () => {
    const x = await hooks(page);
    return x.sse.ids.length >= 3 && x;
  }, { what: 'live updates' });

  assert.equal(net.freezeStreams(), 1);
  const stale = await waitState(page, 'stale', 5000);
  const frozenAt = stale.sse.ids.at(-1); // nothing comes on the dead one after this
  h = await waitFor(async () => {
    const x = await hooks(page);
    return x.sse.urls.length > stale.sse.urls.length && x;
  }, { timeout: 3 * INTERVAL_MS + 2 * 1.2 * HEARTBEAT_MS + 5000, what: 'a new stream' });
  assert.equal(h.sse.urls.length, stale.sse.urls.length + 1);
  assert.equal(h.sse.urls.at(-1), `stream?lastEventId=${frozenAt}`);
  const waited = h.sse.opened.at(-1) - stale.sse.lastAt;
  assert.ok(waited >= 3 * INTERVAL_MS + 1.6 * HEARTBEAT_MS,
    `a new stream ${Math.round(waited)} ms after the last update: about two heartbeats after "stale"`);
  await waitFor(async () => {
    const x = await hooks(page);
    return x.state === 'live' && BigInt(x.priceId) > BigInt(frozenAt) && x;
  }, { what: 'live again, with newer prices' });

  // The updates sent into the dead connection came again on the new one.
  const list = await quiesce(up, srv);
  h = await waitPageAt(page, list.at(-1).id);
  assert.deepEqual(h.ids, ids(list), 'every update exactly once');
  assert.equal(h.segments, 1 + timeBreaks(list));
  page.check();
});
