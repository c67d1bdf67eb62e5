// A hand-written SVG line chart of the history window.
//
// Points arrive in id order. A point starts a new segment (a visible break)
// after a gap the server reported, or when more than three intervals passed
// without an update; the line is never drawn across missing data. Points
// older than the window are dropped as it slides.
//
// Test hooks on the <svg>: data-count, data-ids (comma list, oldest first),
// data-segments.

import { formatAxisPrice, formatPrice, formatTime, formatTimeShort } from './format.js';

const NS = 'http://www.w3.org/2000/svg';
const PAD = { top: 12, right: 12, bottom: 26, left: 72 };
const GAP_INTERVALS = 3;
const MIN_PRICE_SPAN = 0.01; // one cent: the axis labels show no less
const TIME_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200]
  .map((s) => s * 1000);

function el(name, attrs = {}, parent = null) {
  const node = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (parent) parent.appendChild(node);
  return node;
}

/** A "nice" step (1, 2 or 5 × 10^k) for about `count` ticks over `range`. */
function niceStep(range, count) {
  const raw = range / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const f = raw / mag;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
}

/**
 * The price axis for `prices`: their range plus a margin. A range under a
 * cent, which the labels could not tell apart (or prices a few ulp apart, whose
 * grid step would not move a double), is drawn as a flat line in the middle.
 */
export function priceDomain(prices) {
  let lo = Infinity;
  let hi = -Infinity;
  for (const p of prices) {
    if (p < lo) lo = p;
    if (p > hi) hi = p;
  }
  if (!prices.length) return { lo: 0, hi: 1 };
  if (!(hi - lo >= MIN_PRICE_SPAN)) {
    const mid = (lo + hi) / 2;
    const d = Math.max(Math.abs(mid) * 0.0001, 0.5);
    lo = mid - d;
    hi = mid + d;
  }
  const pad = (hi - lo) * 0.08;
  return { lo: lo - pad, hi: hi + pad };
}

/** Grid values: the multiples of a nice step in [lo, hi], counted, never summed. */
export function priceTicks(lo, hi, count) {
  const step = niceStep(hi - lo, count);
  const first = Math.ceil(lo / step);
  const n = Math.min(Math.floor(hi / step) - first, 3 * count); // ≤ count + 1 in practice
  const values = [];
  for (let i = 0; i <= n; i += 1) values.push((first + i) * step);
  return { step, values };
}

export class PriceChart {
  constructor(container, { windowMs = 3600000, intervalMs = 5000 } = {}) {
    this.container = container;
    this.windowMs = windowMs;
    this.intervalMs = intervalMs;
    this.points = []; // {id, t, price, brk}
    this.breakNext = false;
    this.endAnchor = null; // {t, at}: server time of the newest point, and when it came
    this.hover = null; // index into points, or null
    this.frame = 0;

    this.svg = el('svg', {
      class: 'chart-svg', role: 'img', tabindex: '0', 'data-count': '0', 'data-ids': '',
      'data-segments': '0',
    });
    this.title = el('title', {}, this.svg);
    this.title.textContent = 'Price chart';
    this.gGrid = el('g', { class: 'grid' }, this.svg);
    this.gArea = el('g', { class: 'areas' }, this.svg);
    this.gLine = el('g', { class: 'lines' }, this.svg);
    this.gAxis = el('g', { class: 'axis' }, this.svg);
    this.cross = el('g', { class: 'crosshair', visibility: 'hidden' }, this.svg);
    this.crossV = el('line', {}, this.cross);
    this.crossH = el('line', {}, this.cross);
    this.crossDot = el('circle', { r: '4' }, this.cross);
    this.empty = el('text', { class: 'empty', 'text-anchor': 'middle' }, this.svg);
    this.empty.textContent = 'Waiting for prices…';
    container.appendChild(this.svg);

    this.tip = document.createElement('div');
    this.tip.className = 'chart-tip';
    this.tip.hidden = true;
    container.appendChild(this.tip);
    // What the arrow keys reach, for screen readers (the tooltip is drawn
    // only); the pointer's moves are not said.
    this.reading = document.createElement('p');
    this.reading.className = 'visually-hidden';
    this.reading.setAttribute('role', 'status');
    container.appendChild(this.reading);

    this.svg.addEventListener('pointermove', (e) => this.onPointer(e));
    this.svg.addEventListener('pointerdown', (e) => this.onPointer(e));
    this.svg.addEventListener('pointerleave', () => this.setHover(null));
    this.svg.addEventListener('blur', () => this.setHover(null));
    this.svg.addEventListener('keydown', (e) => this.onKey(e));
    new ResizeObserver(() => this.render()).observe(container);
  }

  setWindow(ms) {
    if (ms > 0 && ms !== this.windowMs) {
      this.windowMs = ms;
      this.schedule();
    }
  }

  setInterval(ms) {
    if (ms > 0) this.intervalMs = ms;
  }

  /** The next point starts a new segment (the server reported a gap). */
  markGap() {
    if (this.points.length) this.breakNext = true;
  }

  /**
   * Ids went back (a server restarted with its clock behind): the points
   * from `id` on are dropped, and the next point starts a new segment.
   */
  rewind(id) {
    const n = this.points.findIndex((p) => p.id >= id);
    if (n >= 0) {
      this.points.length = n;
      if (this.hover !== null && this.hover >= n) this.hover = null;
      this.updateHooks();
      this.schedule();
    }
    this.markGap();
  }

  add({ id, t, price }) {
    const last = this.points[this.points.length - 1];
    if (last && id <= last.id) return; // exactly once, in order
    const brk = this.breakNext
      || (last !== undefined && t - last.t > GAP_INTERVALS * this.intervalMs);
    this.breakNext = false;
    this.points.push({ id, t, price, brk });
    this.endAnchor = { t, at: performance.now() };
    this.trim();
    this.updateHooks();
    this.schedule();
  }

  /** The right edge: the newest point's server time, moved on by the local clock. */
  end() {
    if (!this.endAnchor) return 0;
    return this.endAnchor.t + (performance.now() - this.endAnchor.at);
  }

  trim() {
    const from = this.end() - this.windowMs;
    let n = 0;
    while (n < this.points.length && this.points[n].t < from) n += 1;
    if (n > 0) {
      this.points.splice(0, n);
      if (this.points.length) this.points[0].brk = false;
      if (this.hover !== null) this.hover = this.hover >= n ? this.hover - n : null;
      this.updateHooks();
    }
  }

  /** Slides the window without new data (called on a timer). */
  tick() {
    if (!this.points.length) return;
    this.trim();
    this.schedule();
  }

  segments() {
    const segs = [];
    for (const p of this.points) {
      if (!segs.length || p.brk) segs.push([]);
      segs[segs.length - 1].push(p);
    }
    return segs;
  }

  updateHooks() {
    const ds = this.svg.dataset;
    ds.count = String(this.points.length);
    ds.ids = this.points.map((p) => p.id).join(',');
    ds.segments = String(this.points.reduce((n, p, i) => n + (i === 0 || p.brk ? 1 : 0), 0));
  }

  schedule() {
    if (!this.frame) this.frame = requestAnimationFrame(() => { this.frame = 0; this.render(); });
  }

  scales() {
    const w = this.width;
    const h = this.height;
    const end = this.end();
    const oldest = this.points.length ? this.points[0].t : end;
    // The window, but no wider than the data (plus a little) while it fills.
    const start = Math.max(end - this.windowMs, Math.min(oldest, end - 10 * this.intervalMs));
    const { lo, hi } = priceDomain(this.points.map((p) => p.price));
    const x = (t) => PAD.left + ((t - start) / Math.max(1, end - start)) * (w - PAD.left - PAD.right);
    const y = (p) => PAD.top + ((hi - p) / (hi - lo)) * (h - PAD.top - PAD.bottom);
    return { x, y, start, end, lo, hi };
  }

  render() {
    const w = this.container.clientWidth;
    const h = this.container.clientHeight;
    if (!w || !h) return;
    this.width = w;
    this.height = h;
    this.svg.setAttribute('viewBox', `0 0 ${w} ${h}`);
    this.gGrid.replaceChildren();
    this.gAxis.replaceChildren();
    this.gArea.replaceChildren();
    this.gLine.replaceChildren();
    this.empty.setAttribute('x', w / 2);
    this.empty.setAttribute('y', h / 2);
    this.empty.setAttribute('visibility', this.points.length ? 'hidden' : 'visible');
    if (!this.points.length) {
      this.setHover(null);
      return;
    }
    const s = this.scales();
    this.scale = s;
    const newest = this.points[this.points.length - 1];
    this.title.textContent = `Price chart, ${this.points.length} points: latest ${
      formatPrice(newest.price)} at ${formatTime(newest.t)}`;
    const bottom = h - PAD.bottom;

    // Price grid and labels.
    const ticks = priceTicks(s.lo, s.hi, Math.max(2, Math.floor((h - PAD.top - PAD.bottom) / 60)));
    for (const v of ticks.values) {
      const yy = Math.round(s.y(v)) + 0.5;
      el('line', { x1: PAD.left, x2: w - PAD.right, y1: yy, y2: yy }, this.gGrid);
      const label = el('text', { x: PAD.left - 8, y: yy, 'text-anchor': 'end', 'dominant-baseline': 'middle' }, this.gAxis);
      label.textContent = formatAxisPrice(v, ticks.step);
    }
    // Time ticks, aligned to the local clock.
    const span = s.end - s.start;
    const want = Math.max(2, Math.floor((w - PAD.left - PAD.right) / 110));
    const tstep = TIME_STEPS.find((st) => span / st <= want) ?? TIME_STEPS[TIME_STEPS.length - 1];
    const offset = -new Date(s.end).getTimezoneOffset() * 60000;
    const fmt = tstep < 60000 ? formatTime : formatTimeShort;
    for (let t = Math.ceil((s.start + offset) / tstep) * tstep - offset; t <= s.end; t += tstep) {
      const xx = Math.round(s.x(t)) + 0.5;
      el('line', { x1: xx, x2: xx, y1: PAD.top, y2: bottom, class: 'v' }, this.gGrid);
      const label = el('text', { x: xx, y: h - 8, 'text-anchor': 'middle' }, this.gAxis);
      label.textContent = fmt(t);
    }
    el('line', { x1: PAD.left, x2: w - PAD.right, y1: bottom + 0.5, y2: bottom + 0.5, class: 'base' }, this.gAxis);

    // One path per segment: the line, and the area under it.
    for (const seg of this.segments()) {
      const pts = seg.map((p) => `${s.x(p.t).toFixed(1)},${s.y(p.price).toFixed(1)}`);
      if (seg.length === 1) {
        el('circle', { cx: s.x(seg[0].t), cy: s.y(seg[0].price), r: 2.5, class: 'lone' }, this.gLine);
        continue;
      }
      el('path', { d: `M${pts.join('L')}` }, this.gLine);
      const x0 = s.x(seg[0].t).toFixed(1);
      const x1 = s.x(seg[seg.length - 1].t).toFixed(1);
      el('path', { d: `M${x0},${bottom}L${pts.join('L')}L${x1},${bottom}Z` }, this.gArea);
    }
    this.drawHover();
  }

  onPointer(e) {
    if (!this.points.length || !this.scale) return;
    const rect = this.svg.getBoundingClientRect();
    const px = e.clientX - rect.left;
    const { start, end } = this.scale;
    const t = start + ((px - PAD.left) / Math.max(1, this.width - PAD.left - PAD.right)) * (end - start);
    this.setHover(this.nearest(t));
  }

  nearest(t) {
    const pts = this.points;
    let lo = 0;
    let hi = pts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (pts[mid].t < t) lo = mid + 1;
      else hi = mid;
    }
    if (lo > 0 && t - pts[lo - 1].t < pts[lo].t - t) lo -= 1;
    return lo;
  }

  onKey(e) {
    const n = this.points.length;
    if (!n) return;
    const cur = this.hover ?? n - 1;
    const moves = { ArrowLeft: cur - 1, ArrowRight: cur + 1, Home: 0, End: n - 1 };
    if (e.key in moves) {
      e.preventDefault();
      this.setHover(Math.max(0, Math.min(n - 1, moves[e.key])));
      const p = this.points[this.hover];
      this.reading.textContent = `${formatTime(p.t)}, ${formatPrice(p.price)}`;
    } else if (e.key === 'Escape') {
      this.setHover(null);
      this.reading.textContent = '';
    }
  }

  setHover(i) {
    this.hover = i;
    this.drawHover();
  }

  drawHover() {
    const p = this.hover === null ? null : this.points[this.hover];
    if (!p || !this.scale) {
      this.cross.setAttribute('visibility', 'hidden');
      this.tip.hidden = true;
      return;
    }
    const xx = this.scale.x(p.t);
    const yy = this.scale.y(p.price);
    this.crossV.setAttribute('x1', xx);
    this.crossV.setAttribute('x2', xx);
    this.crossV.setAttribute('y1', PAD.top);
    this.crossV.setAttribute('y2', this.height - PAD.bottom);
    this.crossH.setAttribute('x1', PAD.left);
    this.crossH.setAttribute('x2', this.width - PAD.right);
    this.crossH.setAttribute('y1', yy);
    this.crossH.setAttribute('y2', yy);
    this.crossDot.setAttribute('cx', xx);
    this.crossDot.setAttribute('cy', yy);
    this.cross.setAttribute('visibility', 'visible');
    this.tip.textContent = '';
    const time = document.createElement('time');
    time.dateTime = new Date(p.t).toISOString();
    time.textContent = formatTime(p.t);
    const price = document.createElement('strong');
    price.textContent = formatPrice(p.price);
    this.tip.append(time, price);
    this.tip.hidden = false;
    // Keep the tooltip inside the chart: left of the crosshair near the right edge.
    const tw = this.tip.offsetWidth;
    const left = xx + 12 + tw > this.width ? xx - 12 - tw : xx + 12;
    this.tip.style.transform = `translate(${Math.max(0, left)}px, ${Math.max(0, yy - 48)}px)`;
  }
}
