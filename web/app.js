// The page: wires the feed (stream.js) to the quote and the chart (chart.js).

import { PriceChart } from './chart.js';
import {
  direction, formatDelta, formatDuration, formatPercent, formatPrice, formatTime,
  formatUpdated, roundCents, windowLabel,
} from './format.js';
import { PriceFeed } from './stream.js';

const $ = (id) => document.getElementById(id);
const priceEl = $('price');
const priceSaid = $('price-said');
const stateEl = $('state');
const stateLabel = $('state-label');
const stateCountdown = $('state-countdown');
const updatedEl = $('updated');
const changeLast = $('change-last');
const changeWindow = $('change-window');
const notice = $('notice');
const noticeSaid = $('notice-said');

const chart = new PriceChart($('chart'));
const feed = new PriceFeed();

let last = null; // the newest update shown

// What the live region says; "reconnecting" goes on, out of it, as
// " in 3 s…" or "…".
const STATE_TEXT = {
  connecting: 'Connecting…',
  live: 'Live',
  reconnecting: 'Reconnecting',
  stale: 'Stale: no new price',
};

let countdown = 0;
function showState({ state, retryAt }) {
  stateEl.dataset.state = state;
  const text = STATE_TEXT[state] ?? state;
  if (stateLabel.textContent !== text) stateLabel.textContent = text; // said once per change
  clearInterval(countdown);
  const paint = () => {
    const s = Math.ceil((retryAt - Date.now()) / 1000);
    let rest = '';
    if (state === 'reconnecting') rest = retryAt && s > 0 ? ` in ${s} s…` : '…';
    stateCountdown.textContent = rest;
  };
  paint();
  if (retryAt) countdown = setInterval(paint, 1000);
}

function showChange(node, delta, base) {
  // The percentage of the change shown, so that "$0.00" reads "0.00%".
  const shown = roundCents(delta);
  node.dataset.dir = direction(shown);
  node.textContent = base ? `${formatDelta(shown)} (${formatPercent(shown / base)})` : '—';
}

function showWindowChange() {
  const first = chart.points[0];
  if (last && first) showChange(changeWindow, last.price - first.price, first.price);
}

function flash(dir) {
  priceEl.classList.remove('flash-up', 'flash-down', 'flash-flat');
  void priceEl.offsetWidth; // restart the animation
  priceEl.classList.add(`flash-${dir}`);
}

// Screen readers hear the price once a minute at most, and after a burst
// (the fill, a replay) only the latest: a live region that says every update
// queues dozens.
const SAY_PRICE_EVERY_MS = 60000;
const SAY_PRICE_SETTLE_MS = 1000;
let saidAt = -Infinity;
let sayTimer = 0;
function sayPrice() {
  if (sayTimer) return; // the latest price is said when it fires
  const wait = Math.max(SAY_PRICE_SETTLE_MS, saidAt + SAY_PRICE_EVERY_MS - performance.now());
  sayTimer = setTimeout(() => {
    sayTimer = 0;
    saidAt = performance.now();
    priceSaid.textContent = `BTC/USD ${formatPrice(last.price)}`;
  }, wait);
}

function showPrice(u, live) {
  const prev = last;
  last = u;
  priceEl.textContent = formatPrice(u.price);
  priceEl.dataset.id = String(u.id);
  priceEl.dataset.price = String(u.price);
  document.title = `${formatPrice(u.price)} · BTC/USD — btcstream`;
  const when = new Date(u.t);
  updatedEl.dateTime = when.toISOString();
  updatedEl.textContent = formatUpdated(when);
  if (prev) showChange(changeLast, u.price - prev.price, prev.price);
  showWindowChange();
  if (live) flash(prev ? direction(u.price - prev.price) : 'flat');
  sayPrice();
}

feed.addEventListener('state', (e) => showState(e.detail));

feed.addEventListener('info', (e) => {
  const { info } = e.detail;
  chart.setInterval(info.interval_ms);
  chart.setWindow(info.history_ttl_ms);
  const label = windowLabel(info.history_ttl_ms);
  $('chart-title').textContent = label;
  $('change-window-label').textContent = `Over the ${label.toLowerCase()}`;
  $('cadence').textContent = `a new price every ${formatDuration(info.interval_ms)}`;
  $('version').textContent = info.version ? `btcstream ${info.version}` : '';
});

feed.addEventListener('update', (e) => {
  const { update, live, rewound } = e.detail;
  if (rewound) chart.rewind(update.id);
  chart.add(update);
  showPrice(update, live);
  const ds = document.body.dataset;
  ds.received = String(feed.received);
  ds.duplicates = String(feed.duplicates);
});

feed.addEventListener('reject', () => {
  document.body.dataset.rejected = String(feed.rejected);
});

feed.addEventListener('gap', () => {
  chart.markGap();
  const n = Number(notice.dataset.gaps) + 1;
  notice.dataset.gaps = String(n);
  const at = last ? ` after ${formatTime(last.t)}` : '';
  const text = `Some prices${at} are missing: the server restarted, or it `
    + 'no longer holds them. The chart shows a break there.';
  $('notice-text').textContent = text;
  notice.hidden = false;
  noticeSaid.textContent = text; // always there: a region revealed with its text is seldom said
});

$('notice-close').addEventListener('click', () => {
  notice.hidden = true;
  noticeSaid.textContent = '';
});

// Slide the window and refresh "stale" even when nothing arrives.
setInterval(() => { chart.tick(); showWindowChange(); }, 1000);

feed.start();
