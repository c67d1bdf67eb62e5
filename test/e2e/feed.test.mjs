// End-to-end: how the page's feed (web/stream.js) copes with what a server
// or a network can do to it: updates it cannot show, ids that go back after
// a restart, a connection that dies silently, refusals at the client limit.

import assert from 'node:assert/strict';

import {
  assertIncreasing, browserTests, getJSON, hooks, ids, INTERVAL_MS, openPage, quiesce,
  waitFor, waitPageAt, waitState,
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
