// The price feed: the initial fill from /api/v1/prices, then /stream (SSE)
// resumed from the last id, exactly once and in order.
//
// Events (all CustomEvent, data in `detail`):
//   info    {info}                     /api/v1/info (again after each reopen)
//   update  {update, live, rewound}    a new point; `live` false for the fill;
//                                      `rewound`: its id is below the last one
//   gap     {requested, oldest}        the server says points may be missing
//   reject  {update, why}              an update that cannot be shown, dropped
//   state   {state, retryAt}           connecting | live | reconnecting | stale
//
// Reconnects: while the EventSource is CONNECTING the browser retries by
// itself and sends Last-Event-ID. When it gives up for good (any non-200
// answer, e.g. 503 at the client limit or a proxy's 502: readyState CLOSED),
// a new one is created here after a backoff with jitter, resuming with
// `?lastEventId=` (the server reads it when there is no Last-Event-ID header).
// The backoff starts where the server's own hint does (Retry-After and
// `retry:`, 3 s ± 20 %, which a page cannot read): sooner, every page would
// undercut it at the client limit or a restart.
//
// Stale: no price for three intervals. The server's heartbeat comments keep
// a healthy connection open but are invisible here, so a connection that
// died silently (no FIN, no RST) looks the same as a quiet upstream. Once
// stale for about two heartbeats, the EventSource is replaced by a new one
// from the last id; while nothing comes, each further try waits twice as
// long (up to 16 heartbeats), jittered so that pages do not come back as one.
//
// Ids only go back after a gap: a single node restarted without its state
// file and with its clock behind knows no id up to ours, says so with a gap
// and streams smaller ids. The first such id that we have not seen starts
// the feed again from there (`rewound`); one we have seen (a node that lags
// behind the one we came from) is a duplicate, as always.

const BACKOFF_FIRST_MS = 3000; // the server's --retry default
const BACKOFF_MAX_MS = 30000;
const STALE_INTERVALS = 3;
const STALE_REOPEN_HEARTBEATS = 2;
const RECENT_IDS = 4096; // ids kept to tell a duplicate from a rewind (> history_max)

/**
 * How long after going stale a new stream is opened, for the `tries`-th
 * time in a row without a price: 2, 4, 8, 16 heartbeats, ± 20 % by `random`.
 */
export function staleReopenDelay(heartbeatMs, tries, random) {
  const b = STALE_REOPEN_HEARTBEATS * heartbeatMs * 2 ** Math.min(tries, 3);
  return Math.round(b * (0.8 + 0.4 * random));
}

/**
 * The wait before attempt `attempt` (from 0): b = 3 s, 6 s, … 30 s, jittered
 * to 0.8 b … 1.2 b by `random` in [0, 1), as the server jitters its hint.
 */
export function backoffDelay(attempt, random) {
  const b = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** Math.min(attempt, 10));
  return Math.round(b * (0.8 + 0.4 * random));
}

/** Index of the first element of the ascending `list` that is >= `x`. */
function lowerBound(list, x) {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (list[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export class PriceFeed extends EventTarget {
  constructor({ base = '', random = Math.random, now = () => performance.now() } = {}) {
    super();
    this.base = base;
    this.random = random;
    this.now = now;
    this.state = 'connecting';
    this.info = null;
    this.intervalMs = 5000; // until /api/v1/info says otherwise
    this.heartbeatMs = 15000; // likewise
    this.lastId = null; // number: ids are unix ms, exact in a double
    this.recent = []; // the last RECENT_IDS ids accepted, ascending
    this.afterGap = false; // a gap came, and no update since
    this.lastActivity = this.now();
    this.attempt = 0;
    this.es = null;
    this.timer = 0;
    this.received = 0; // stream messages, duplicates included
    this.duplicates = 0;
    this.rejected = 0; // updates dropped as unusable (no id, price or time)
    this.retryAt = 0;
    this.reopenAt = 0; // while stale: when to replace the EventSource
    this.staleReopens = 0; // replaced while stale, since the last price
    this.staleTimer = setInterval(() => this.checkStale(), 250);
    addEventListener('online', () => {
      if (!this.es && this.timer) this.retryNow();
    });
  }

  start() {
    this.bootstrap();
    return this;
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  setState(state, retryAt = 0) {
    if (state === this.state && retryAt === this.retryAt) return;
    this.state = state;
    this.retryAt = retryAt;
    this.emit('state', { state, retryAt });
  }

  async getJSON(path) {
    const res = await fetch(this.base + path, { cache: 'no-store' });
    if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
    return res.json();
  }

  applyInfo(info) {
    this.info = info;
    if (info.interval_ms > 0) this.intervalMs = info.interval_ms;
    if (info.heartbeat_ms > 0) this.heartbeatMs = info.heartbeat_ms;
    this.emit('info', { info });
  }

  async bootstrap() {
    this.timer = 0;
    try {
      this.applyInfo(await this.getJSON('api/v1/info'));
      const list = await this.getJSON('api/v1/prices');
      for (const u of list) this.accept(u, false);
    } catch (err) {
      this.later(() => this.bootstrap());
      return;
    }
    this.open();
  }

  /** Exponential backoff with jitter (backoffDelay). */
  backoff() {
    const delay = backoffDelay(this.attempt, this.random());
    this.attempt += 1;
    return delay;
  }

  later(fn) {
    const delay = this.backoff();
    this.pending = fn;
    this.timer = setTimeout(() => { this.timer = 0; fn(); }, delay);
    this.setState('reconnecting', Date.now() + delay);
  }

  retryNow() {
    clearTimeout(this.timer);
    this.timer = 0;
    this.pending?.();
  }

  open() {
    this.afterGap = false;
    const url = this.base + (this.lastId === null ? 'stream' : `stream?lastEventId=${this.lastId}`);
    const es = new EventSource(url);
    this.es = es;
    es.onopen = () => {
      if (es !== this.es) return;
      this.attempt = 0;
      this.lastActivity = this.now();
      this.setState('live');
      // The server may have restarted with other settings.
      this.getJSON('api/v1/info').then((info) => this.applyInfo(info), () => {});
    };
    es.onmessage = (e) => {
      if (es !== this.es) return;
      this.received += 1;
      let data;
      try {
        data = JSON.parse(e.data);
      } catch {
        this.reject({ id: e.lastEventId }, 'its data is not JSON');
        return;
      }
      this.accept({ id: e.lastEventId, timestamp: data?.timestamp, price: data?.price }, true);
    };
    es.addEventListener('gap', (e) => {
      if (es !== this.es) return;
      let data = {};
      try {
        data = JSON.parse(e.data);
      } catch { /* the notice does not need the details */ }
      this.afterGap = true;
      this.emit('gap', data);
    });
    es.onerror = () => {
      if (es !== this.es) return;
      if (es.readyState === EventSource.CLOSED) {
        // Given up for good (non-200 answer): a new EventSource, later.
        es.close();
        this.es = null;
        this.later(() => this.open());
      } else {
        this.setState('reconnecting'); // the browser retries by itself
      }
    };
  }

  /** Counts and logs an update that cannot be shown; the stream goes on. */
  reject(u, why) {
    this.rejected += 1;
    console.warn(`btcstream: update ${u.id} dropped: ${why}`);
    this.emit('reject', { update: u, why });
  }

  accept(u, live) {
    // A time that does not parse would be NaN: never trimmed from the
    // window, and toISOString() throws.
    const id = Number(u.id);
    const t = Date.parse(u.timestamp);
    if (!Number.isSafeInteger(id)) return this.reject(u, 'no valid id');
    if (!Number.isFinite(u.price)) return this.reject(u, 'no valid price');
    if (!Number.isFinite(t)) return this.reject(u, `timestamp ${JSON.stringify(u.timestamp)} does not parse`);
    let rewound = false;
    if (this.lastId !== null && id <= this.lastId) {
      const at = lowerBound(this.recent, id);
      if (!live || !this.afterGap || this.recent[at] === id) {
        this.duplicates += 1; // ids strictly increase: seen already
        return;
      }
      rewound = true; // see the top of this file
      this.recent.length = at;
    }
    this.afterGap = false;
    this.lastId = id;
    this.recent.push(id);
    if (this.recent.length > 2 * RECENT_IDS) this.recent.splice(0, RECENT_IDS);
    if (live) {
      // Only a point shown is a sign of life: a feed that drops everything
      // must go stale.
      this.lastActivity = this.now();
      this.staleReopens = 0;
      if (this.state === 'stale') this.setState('live');
    }
    this.emit('update', { update: { id, t, price: u.price }, live, rewound });
  }

  checkStale() {
    const now = this.now();
    if (this.state === 'live' && now - this.lastActivity > STALE_INTERVALS * this.intervalMs) {
      this.setState('stale');
      this.reopenAt = now + staleReopenDelay(this.heartbeatMs, this.staleReopens, this.random());
    } else if (this.state === 'stale' && this.es && now >= this.reopenAt) {
      this.staleReopens += 1;
      this.reopen();
    }
  }

  /** Replaces an EventSource that may have died silently, from the last id. */
  reopen() {
    this.es.close();
    this.es = null;
    this.setState('reconnecting');
    this.open();
  }
}
