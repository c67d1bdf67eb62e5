// End-to-end: what the page gives screen readers. Live regions are checked
// through the harness's announcer log (what changed in a live region that
// was already exposed), not through a screen reader.

import assert from 'node:assert/strict';

import {
  announced, browserTests, holdStream, hooks, openPage, waitFor, waitState,
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
