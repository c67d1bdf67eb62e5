// Processes and browser for the end-to-end tests: the fake CoinDesk upstream
// (test/integration/fake_upstream.py, with its control endpoint), the real
// btcstream binary, and headless Chromium through playwright-core. Everything
// a test starts is registered with its Session and stopped by session.close(),
// also when the test fails. Every wait is bounded.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createWriteStream, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const SOURCE_ROOT = process.env.BTCSTREAM_SOURCE_ROOT || path.resolve(HERE, '../..');
export const BIN = process.env.BTCSTREAM_BIN || path.join(SOURCE_ROOT, 'build', 'btcstream');
export const WEB_ROOT = path.join(SOURCE_ROOT, 'web');
export const ARTIFACTS = process.env.BTCSTREAM_E2E_ARTIFACTS
  || path.join(SOURCE_ROOT, 'build', 'e2e-artifacts');
export const CHROMIUM = process.env.BTCSTREAM_CHROMIUM || '/usr/bin/chromium';
export const INTERVAL_MS = 300;

mkdirSync(ARTIFACTS, { recursive: true });

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` until it returns a truthy value; throws after `timeout` ms. */
export async function waitFor(fn, { timeout = 10000, every = 50, what = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeout} ms waiting for ${what} (last: ${
        last instanceof Error ? last.message : JSON.stringify(last)})`);
    }
    await sleep(every);
  }
}

/** One plain HTTP request; resolves {status, headers, body}. */
export function request(url, { method = 'GET', timeout = 5000 } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, timeout }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`timeout: ${method} ${url}`)));
    req.on('error', reject);
    req.end();
  });
}

export async function getJSON(url) {
  const res = await request(url);
  if (res.status !== 200) throw new Error(`${url}: HTTP ${res.status} ${res.body}`);
  return JSON.parse(res.body);
}

/** A child process whose output goes to a log file and is kept for matching. */
class Child {
  constructor(name, cmd, args, env) {
    this.name = name;
    this.output = '';
    this.log = createWriteStream(path.join(ARTIFACTS, `${name}.log`), { flags: 'a' });
    this.log.write(`$ ${cmd} ${args.join(' ')}\n`);
    this.proc = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.exited = new Promise((resolve) => {
      // 'close', not 'exit': only then has the last output chunk been read,
      // so stop() never ends the log before a late write (write after end).
      this.proc.on('close', (code, signal) => resolve({ code, signal }));
      this.proc.on('error', (err) => resolve({ code: null, signal: null, err }));
    });
    this.exitedNow = false;
    this.exited.then((st) => {
      this.exitedNow = true;
      this.status = st.err ? String(st.err) : `exit code ${st.code}, signal ${st.signal}`;
    });
    for (const stream of [this.proc.stdout, this.proc.stderr]) {
      stream.setEncoding('utf8');
      stream.on('data', (chunk) => {
        this.output += chunk;
        this.log.write(chunk);
      });
    }
  }

  async match(re, timeout = 10000) {
    return waitFor(() => {
      if (this.exitedNow) {
        throw new Error(`${this.name} exited early (${this.status}):\n${this.output}`);
      }
      return this.output.match(re);
    }, { timeout, every: 20, what: `${re} from ${this.name}` });
  }

  /** SIGTERM, then SIGKILL after `timeout` ms; resolves the exit status. */
  async stop(timeout = 6000) {
    if (!this.exitedNow) {
      this.proc.kill('SIGTERM');
      const t = setTimeout(() => this.proc.kill('SIGKILL'), timeout);
      await this.exited;
      clearTimeout(t);
    }
    const status = await this.exited;
    await new Promise((r) => this.log.end(r));
    return status;
  }
}

/** The environment without the service's own configuration variables. */
function cleanEnv() {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('BTCSTREAM_') && k !== 'COINDESK_API_KEY') env[k] = v;
  }
  return env;
}

export class Session {
  constructor(name) {
    this.name = name.replace(/[^a-z0-9]+/gi, '-').toLowerCase();
    this.children = [];
    this.closers = [];
    this.serial = 0;
    this.outage = false; // console net errors are expected while true
  }

  child(name, cmd, args, env = cleanEnv()) {
    this.serial += 1;
    const c = new Child(`${this.name}-${this.serial}-${name}`, cmd, args, env);
    this.children.push(c);
    return c;
  }

  /** The fake upstream with its control endpoint (pause, resume, price). */
  async upstream({ price = 97000, step = 0.37 } = {}) {
    const c = this.child('upstream', 'python3', [
      path.join(SOURCE_ROOT, 'test', 'integration', 'fake_upstream.py'),
      '--port', '0', '--control-port', '0', '--price', String(price), '--step', String(step),
    ]);
    const url = (await c.match(/--upstream-url (\S+)/))[1];
    const control = `http://127.0.0.1:${(await c.match(/control on 127\.0\.0\.1:(\d+)/))[1]}`;
    const post = async (p) => {
      const res = await request(control + p, { method: 'POST' });
      if (res.status !== 204) throw new Error(`upstream control ${p}: ${res.status} ${res.body}`);
    };
    return {
      url,
      child: c,
      pause: () => post('/pause'),
      resume: () => post('/resume'),
      setPrice: (value, s = 0) => post(`/price?value=${value}&step=${s}`),
      state: () => getJSON(`${control}/state`),
    };
  }

  /** The btcstream binary; `port` 0 picks one (read from its log). */
  async server(upstream, { port = 0, flags = [] } = {}) {
    const c = this.child('btcstream', BIN, [
      '--listen', `127.0.0.1:${port}`, '--interval', `${INTERVAL_MS}ms`, '--shutdown-grace', '0s',
      '--retry', '1s', '--web-root', WEB_ROOT, '--upstream-url', upstream.url,
      '--log-level', 'debug', ...flags,
    ]);
    const bound = Number((await c.match(/listening on 127\.0\.0\.1:(\d+)/))[1]);
    const base = `http://127.0.0.1:${bound}/`;
    await waitFor(async () => (await request(`${base}healthz`)).status === 200,
      { what: 'healthz 200' });
    return { port: bound, base, child: c, stop: () => c.stop() };
  }

  /**
   * A TCP proxy to `server` whose streams can die silently: freezeStreams()
   * makes every connection that carried a /stream request read and drop what
   * comes from either side, and tell neither side anything (no FIN, no RST),
   * as when a network path goes dead. Other and later connections pass.
   */
  async proxy(server) {
    const pairs = new Set();
    const proxy = net.createServer((client) => {
      const upstream = net.connect(server.port, '127.0.0.1');
      const pair = { client, upstream, stream: false, frozen: false };
      pairs.add(pair);
      client.on('data', (d) => {
        if (pair.frozen) return;
        if (/^GET \/stream[ ?]/m.test(d.toString('latin1'))) pair.stream = true;
        upstream.write(d);
      });
      upstream.on('data', (d) => {
        if (!pair.frozen) client.write(d);
      });
      const end = () => {
        if (pair.frozen) return; // silence, until the session closes
        client.destroy();
        upstream.destroy();
        pairs.delete(pair);
      };
      for (const sock of [client, upstream]) {
        sock.on('error', () => {});
        sock.on('close', end);
      }
    });
    await new Promise((resolve, reject) => {
      proxy.once('error', reject);
      proxy.listen(0, '127.0.0.1', resolve);
    });
    this.onClose(() => {
      proxy.close();
      for (const p of pairs) {
        p.client.destroy();
        p.upstream.destroy();
      }
    });
    const { port } = proxy.address();
    return {
      port,
      base: `http://127.0.0.1:${port}/`,
      /** Freezes the connections that carried /stream; returns how many. */
      freezeStreams() {
        let n = 0;
        for (const p of pairs) {
          if (p.stream && !p.frozen) {
            p.frozen = true;
            n += 1;
          }
        }
        return n;
      },
    };
  }

  onClose(fn) {
    this.closers.push(fn);
  }

  async close() {
    for (const fn of this.closers.reverse()) {
      try {
        await fn();
      } catch { /* keep closing */ }
    }
    await Promise.all(this.children.map((c) => c.stop().catch(() => {})));
  }
}

const LAUNCH_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

/**
 * Chromium with a fresh profile directory (a persistent context on a new
 * temporary --user-data-dir); close() removes the directory.
 */
export async function launchBrowser(options = {}) {
  const dir = mkdtempSync(path.join(tmpdir(), 'btcstream-e2e-profile-'));
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: CHROMIUM,
    headless: true,
    args: LAUNCH_ARGS,
    viewport: { width: 1200, height: 800 },
    locale: 'en-US',
    timezoneId: 'Europe/Berlin',
    timeout: 30000,
    ...options,
  });
  return {
    context,
    async close() {
      await context.close().catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * One browser for a test file, and `e2e(name, body, timeout)` to declare its
 * tests: `body(session, browser)` gets a new Session, always closed after.
 */
export function browserTests() {
  let browser;
  before(async () => { browser = await launchBrowser(); });
  after(async () => { await browser?.close(); });
  return (name, body, timeout = 120000) => test(name, { timeout }, async () => {
    const session = new Session(name);
    try {
      await body(session, browser);
    } finally {
      await session.close();
    }
  });
}

// Recorded in the page before any of its scripts: every EventSource the page
// creates, every message id and gap it receives (independent of the app).
const RECORDER = () => {
  const Native = window.EventSource;
  // opened, errorsAt, lastAt: performance.now() of each creation, of each
  // error, and of the last message.
  const rec = { urls: [], ids: [], gaps: [], errors: 0, opened: [], errorsAt: [] };
  window.__sse = rec;
  window.EventSource = class extends Native {
    constructor(url, init) {
      super(url, init);
      rec.urls.push(String(url));
      rec.opened.push(performance.now());
      this.addEventListener('message', (e) => {
        rec.ids.push(e.lastEventId);
        rec.lastAt = performance.now();
      });
      this.addEventListener('gap', (e) => rec.gaps.push(JSON.parse(e.data)));
      this.addEventListener('error', () => {
        rec.errors += 1;
        rec.errorsAt.push(performance.now());
      });
    }
  };
};

// What screen readers would announce, roughly: the text of each live region
// (aria-live, or role status, alert or log), without aria-hidden or hidden
// parts, whenever it changes while the region was already exposed (laid out
// and not aria-hidden) before the change. A region that is revealed with its
// text already in it is logged as `revealed`: screen readers mostly miss it.
const ANNOUNCER = () => {
  const log = [];
  window.__announced = log;
  const REGION = '[aria-live]:not([aria-live="off"]), [role="status"], [role="alert"], [role="log"]';
  const spoken = (node) => {
    if (node.nodeType === Node.TEXT_NODE) return node.data;
    if (node.nodeType !== Node.ELEMENT_NODE || node.hidden
        || node.getAttribute('aria-hidden') === 'true') return '';
    return [...node.childNodes].map(spoken).join('');
  };
  const exposed = (el) => el.getClientRects().length > 0 && !el.closest('[aria-hidden="true"]');
  let seen = new Map(); // region -> {exposed, text}
  const look = () => {
    const now = new Map();
    for (const el of document.querySelectorAll(REGION)) {
      const cur = { exposed: exposed(el), text: spoken(el).replace(/\s+/g, ' ').trim() };
      const before = seen.get(el);
      if (cur.exposed && cur.text && (!before || before.text !== cur.text || !before.exposed)) {
        log.push({
          region: el.id || el.className, text: cur.text, at: performance.now(),
          revealed: !before?.exposed,
        });
      }
      now.set(el, cur);
    }
    seen = now;
  };
  new MutationObserver(look).observe(document, {
    subtree: true, childList: true, characterData: true, attributes: true,
  });
  document.addEventListener('DOMContentLoaded', () => {
    seen = new Map([...document.querySelectorAll(REGION)].map((el) => [el, {
      exposed: exposed(el), text: spoken(el).replace(/\s+/g, ' ').trim(),
    }]));
  });
};

/** What the page announced (see ANNOUNCER), in order, of `region` if given. */
export async function announced(page, region = null) {
  const log = await page.evaluate(() => window.__announced);
  return log.filter((a) => !a.revealed && (region === null || a.region === region));
}

// Console errors that a deliberate outage causes: failed loads of /stream
// or of an API route (connection refused or reset, the stream cut, a 503).
const OUTAGE_ERROR = /^Failed to load resource: (net::ERR_(CONNECTION_REFUSED|CONNECTION_RESET|CONNECTION_CLOSED|EMPTY_RESPONSE|INCOMPLETE_CHUNKED_ENCODING)|the server responded with a status of 503 \(Service Unavailable\)) http:\/\/127\.0\.0\.1:\d+\/(stream|api\/v1\/\w+)(\?\S*)?$/;

/**
 * Opens the page at `base` in a new tab (or in `page`, a new tab the test
 * set up, e.g. with routes) with the recorder, and collects page errors and
 * console errors. `page.check()` asserts there were none, except the
 * expected ones while `session.outage` was true.
 */
export async function openPage(browser, session, base, tab = null) {
  const page = tab ?? await browser.context.newPage();
  await page.addInitScript(RECORDER);
  await page.addInitScript(ANNOUNCER);
  const problems = [];
  const fills = []; // ids from each /api/v1/prices answer the page got
  page.on('pageerror', (err) => problems.push(`page error: ${err.stack || err}`));
  page.on('console', (msg) => {
    const text = `${msg.text()} ${msg.location()?.url ?? ''}`;
    if (process.env.BTCSTREAM_E2E_DEBUG) {
      process.stderr.write(`[console ${msg.type()}${session.outage ? ', outage' : ''}] ${text}\n`);
    }
    if (msg.type() !== 'error') return;
    if (session.outage && OUTAGE_ERROR.test(text)) return;
    problems.push(`console error${session.outage ? ' (during outage)' : ''}: ${text}`);
  });
  page.on('response', async (res) => {
    if (new URL(res.url()).pathname.endsWith('/api/v1/prices') && res.status() === 200) {
      try {
        fills.push((await res.json()).map((u) => String(u.id)));
      } catch { /* page gone */ }
    }
  });
  session.onClose(() => page.close());
  page.problems = problems;
  page.fills = fills;
  page.check = () => {
    if (problems.length) throw new Error(`page problems:\n${problems.join('\n')}`);
  };
  await page.goto(base, { waitUntil: 'load', timeout: 15000 });
  return page;
}

/** The page's test hooks, in one round trip. */
export function hooks(page) {
  return page.evaluate(() => {
    const svg = document.querySelector('#chart svg');
    const price = document.getElementById('price');
    const notice = document.getElementById('notice');
    return {
      state: document.getElementById('state').dataset.state,
      stateText: document.getElementById('state').textContent.trim(),
      ids: svg.dataset.ids ? svg.dataset.ids.split(',') : [],
      count: Number(svg.dataset.count),
      segments: Number(svg.dataset.segments),
      paths: svg.querySelectorAll('.lines path, .lines circle').length,
      priceId: price.dataset.id ?? null,
      price: price.dataset.price === undefined ? null : Number(price.dataset.price),
      priceText: price.textContent,
      updated: document.getElementById('updated').dateTime,
      gaps: Number(notice.dataset.gaps),
      noticeVisible: !notice.hidden,
      sse: window.__sse,
    };
  });
}

export async function waitState(page, state, timeout = 10000) {
  return waitFor(async () => {
    const h = await hooks(page);
    return h.state === state && h;
  }, { timeout, what: `state "${state}"` });
}

export async function screenshot(page, name) {
  const file = path.join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path: file });
  return file;
}

/** Keeps one /stream slot of `base` busy until release(). */
export function holdStream(base) {
  return new Promise((resolve, reject) => {
    const req = http.get(`${base}stream`, (res) => {
      req.setTimeout(0);
      if (res.statusCode !== 200) {
        res.resume();
        reject(new Error(`holding /stream: HTTP ${res.statusCode}`));
        return;
      }
      res.on('data', () => {});
      res.on('error', () => {});
      resolve({ release: () => req.destroy() });
    });
    req.on('error', (err) => reject(err));
    req.setTimeout(5000, () => req.destroy(new Error('holding /stream: timeout')));
  });
}

// Checks shared by the test files.

export const ids = (list) => list.map((u) => String(u.id));

export function assertIncreasing(list, what) {
  for (let i = 1; i < list.length; i += 1) {
    assert.ok(BigInt(list[i]) > BigInt(list[i - 1]),
      `${what}: id ${list[i]} after ${list[i - 1]} (index ${i})`);
  }
}

/**
 * The breaks the chart must show by time alone in `list` (updates from
 * /api/v1/prices, oldest first): more than three intervals between two of
 * them (chart.js). On a loaded machine a poll can time out and its retry
 * come late, and the page is right to break the line there.
 */
export function timeBreaks(list) {
  let n = 0;
  for (let i = 1; i < list.length; i += 1) {
    if (Date.parse(list[i].timestamp) - Date.parse(list[i - 1].timestamp) > 3 * INTERVAL_MS) n += 1;
  }
  return n;
}

/** Pauses the upstream and waits until the service's latest price stays put. */
export async function quiesce(up, srv) {
  await up.pause();
  let prev = null;
  await waitFor(async () => {
    const cur = (await getJSON(`${srv.base}api/v1/price`)).id;
    const still = cur === prev;
    prev = cur;
    if (!still) await sleep(4 * INTERVAL_MS);
    return still;
  }, { timeout: 10000, what: 'the latest price to stay put' });
  return getJSON(`${srv.base}api/v1/prices`);
}

/** Waits until the page shows the update with this id. */
export function waitPageAt(page, id, timeout = 10000) {
  return waitFor(async () => {
    const h = await hooks(page);
    return h.priceId === String(id) && h;
  }, { timeout, what: `the page to show id ${id}` });
}
