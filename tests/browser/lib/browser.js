// Debian's Chromium (headless), driven by playwright-core: one browser per test file, a fresh
// context (its own cookies and cache, like another person's browser) per test, and every
// response the browser receives recorded so a test can search them all.

import { accessSync, constants, mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';

import { REPO } from './server.js';

/** The browser: CHIMATIC_CHROMIUM, or Debian's package (apt-get install chromium). */
export const CHROMIUM = process.env.CHIMATIC_CHROMIUM || '/usr/bin/chromium';
/** Where screenshot(page, name) writes NAME.png. */
export const SCREENSHOTS = path.join(REPO, 'target', 'screenshots');

// No connection leaves the machine: background networking, updates, sync and QUIC are off.
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-quic',
  '--no-first-run',
];

/** Content types whose bodies are kept as text. */
const TEXT_LIKE = /^(text\/|application\/([\w.+-]*\+)?(json|xml|javascript|x-www-form-urlencoded)\b|image\/svg\+xml)/i;

/**
 * Launches Chromium (Playwright gives it a new, empty user-data dir). Returns
 * { browser, newContext(options), close() }.
 */
export async function launchBrowser() {
  try {
    accessSync(CHROMIUM, constants.X_OK);
  } catch {
    throw new Error(
      `Chromium is not at ${CHROMIUM}: install it (Debian: apt-get install chromium) or set CHIMATIC_CHROMIUM`,
    );
  }
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS });
  return {
    browser,
    newContext: (options) => newContext(browser, options),
    close: () => browser.close(),
  };
}

/**
 * A new browser context whose responses are all recorded. The returned context is Playwright's
 * BrowserContext with four additions:
 *   - `page()`: a new page whose every response is recorded (open pages with this, not with
 *     newPage()), with the HTTP cache off;
 *   - `recorded()`: resolves, once every response in flight is recorded, to the responses so
 *     far, each { url, method, status, headers: [{ name, value }], contentType, body,
 *     bodyError }; `body` is the text for text-like content types (and for none), else null;
 *   - `problems()`: page errors, console errors, failed requests, and responses the browser
 *     saw that were not recorded;
 *   - `stopRedirect(test)`: the next redirect whose absolute target URL satisfies `test(url)` is
 *     recorded but not followed (the navigation ends with net::ERR_ABORTED, as when a person
 *     closes the tab); resolves to that target URL, e.g. to open it in another context.
 *
 * Each response is held in Chromium (DevTools Fetch domain, response stage) until its headers
 * and body are read, then passed on unchanged: nothing reaches the page unrecorded, and no body
 * is lost to a page that moves on. Cookies, redirects and everything else stay Chromium's own.
 */
export async function newContext(browser, options = {}) {
  const context = await browser.newContext({ viewport: { width: 1200, height: 800 }, ...options });
  const responses = [];
  const pending = new Set();
  const problems = [];
  const recordedPages = new WeakSet();
  /** Redirects not to follow (stopRedirect): [{ test, resolve }]. */
  const stops = [];
  const track = (promise) => {
    pending.add(promise);
    promise.finally(() => pending.delete(promise));
  };

  async function record(cdp, ev) {
    const headers = (ev.responseHeaders ?? []).map(({ name, value }) => ({ name, value }));
    const entry = {
      url: ev.request.url,
      method: ev.request.method,
      status: ev.responseStatusCode ?? 0,
      headers,
      contentType: headers.find((h) => h.name.toLowerCase() === 'content-type')?.value ?? '',
      body: null,
      bodyError: null,
    };
    responses.push(entry);
    const redirect = entry.status >= 300 && entry.status < 400;
    const location = redirect ? headers.find((h) => h.name.toLowerCase() === 'location')?.value : undefined;
    const target = location ? new URL(location, ev.request.url).href : null;
    const stop = target ? stops.find((s) => s.test(target)) : undefined;
    if (stop) {
      stops.splice(stops.indexOf(stop), 1);
      await cdp.send('Fetch.failRequest', { requestId: ev.requestId, errorReason: 'Aborted' });
      stop.resolve(target);
      return;
    }
    if (ev.responseErrorReason) {
      entry.bodyError = null; // no response, nothing received
    } else if (!redirect) {
      try {
        const { body, base64Encoded } = await cdp.send('Fetch.getResponseBody', { requestId: ev.requestId });
        const bytes = Buffer.from(body, base64Encoded ? 'base64' : 'utf8');
        if (entry.contentType === '' || TEXT_LIKE.test(entry.contentType)) entry.body = bytes.toString('utf8');
      } catch (e) {
        entry.bodyError = String(e.message ?? e);
      }
    }
    try {
      await cdp.send('Fetch.continueRequest', { requestId: ev.requestId });
    } catch (e) {
      // The browser gave up on the request meanwhile (a favicon when the page moved on).
      if (!/Invalid InterceptionId/i.test(String(e.message))) throw e;
    }
  }

  // Cross-check: every response Playwright saw has a recorded twin.
  const seen = [];
  context.on('response', (resp) => seen.push(`${resp.request().method()} ${resp.url()} ${resp.status()}`));
  context.on('requestfailed', (req) => {
    const reason = req.failure()?.errorText ?? '';
    // A request the page abandoned by moving on (e.g. a favicon) is not a failure of the page.
    if (reason !== 'net::ERR_ABORTED') problems.push(`request failed: ${req.method()} ${req.url()}: ${reason}`);
  });
  context.on('page', (page) => {
    setImmediate(() => {
      if (!recordedPages.has(page)) problems.push(`a page was opened without recording (use ctx.page()): ${page.url()}`);
    });
  });

  context.page = async () => {
    const page = await context.newPage();
    recordedPages.add(page);
    const cdp = await context.newCDPSession(page);
    cdp.on('Fetch.requestPaused', (ev) => track(record(cdp, ev).catch((e) => problems.push(`recording ${ev.request.url}: ${e.message}`))));
    await cdp.send('Network.enable');
    await cdp.send('Network.setCacheDisabled', { cacheDisabled: true });
    await cdp.send('Fetch.enable', { patterns: [{ urlPattern: '*', requestStage: 'Response' }] });
    page.on('pageerror', (e) => problems.push(`page error on ${page.url()}: ${e.message}`));
    // The console asks before destructive changes: a person says yes; the tests read what it asked.
    page.dialogs = [];
    page.on('dialog', (d) => {
      page.dialogs.push(d.message());
      d.accept().catch((e) => problems.push(`dialog on ${page.url()}: ${e.message}`));
    });
    page.on('console', (m) => {
      // A page answered with an error status is logged as a failed load; tests check statuses.
      if (m.type() === 'error' && !/^Failed to load resource: the server responded with a status of/.test(m.text()))
        problems.push(`console error on ${page.url()}: ${m.text()}`);
    });
    return page;
  };

  // Playwright's page.route() sees only the first request of a redirect chain; the recording
  // sees every hop, so it is where a redirect can be held back.
  context.stopRedirect = (test) => new Promise((resolve) => stops.push({ test, resolve }));

  context.recorded = async () => {
    while (pending.size) await Promise.all([...pending]);
    return responses;
  };

  context.problems = () => {
    const left = responses.map((r) => `${r.method} ${r.url} ${r.status}`);
    const missing = [];
    for (const s of seen) {
      const i = left.indexOf(s);
      if (i === -1) missing.push(s);
      else left.splice(i, 1);
    }
    return [...problems, ...missing.map((m) => `a response reached the browser unrecorded: ${m}`)];
  };
  return context;
}

/** A full-page PNG at target/screenshots/NAME.png; returns its path. */
export async function screenshot(page, name) {
  mkdirSync(SCREENSHOTS, { recursive: true });
  const file = path.join(SCREENSHOTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}
