// End to end, in headless Chromium against a real server: the README's quick start, as written —
// its ```jsx blocks with a <ChimaticProvider>, the inbox and preferences one and the webhook
// portal one, extracted at test time and built into one page (test/lib/readme.js) — with a real
// subscriber token (scopes `inbox` and `portal`): the bell shows the subscriber's unread message
// and takes a new one live, the preferences form has the README's categories, and the portal lists
// the subscriber's endpoint. Nothing but the page and the server is contacted.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { acquire, release } from '../lib/e2e.js';
import { buildReadmePage } from '../lib/readme.js';
import { PACKAGE_ROOT } from '../lib/server.js';

let site;
let server;
let browser;
let apiKey;
let token;
let endpoint;

const api = (method, p, body) => server.api(apiKey, method, p, body);

async function ship(order) {
  const sent = await api('POST', '/v1/events', { name: 'order.shipped', to: ['user-readme'], data: { order } });
  assert.equal(sent.notifications.length, 1);
}

before(async () => {
  ({ site, server, browser } = await acquire());
  // Served with the example page, from the origin the server lets call the inbox and the portal.
  const built = buildReadmePage(server.url, path.join(PACKAGE_ROOT, 'example', 'dist', 'readme'));
  ({ apiKey } = await server.createWorkspace('react-readme'));
  await api('POST', '/v1/workflows', {
    key: 'order.shipped',
    category: 'orders',
    steps: [{ channel: 'inapp', title: 'Order {{ data.order }} shipped', text: 'It is on its way.' }],
  });
  const subscriber = await api('POST', '/v1/subscribers', { external_id: 'user-readme', attributes: { name: 'Ann' } });
  await api('POST', `/v1/subscribers/${subscriber.id}/channels`, { type: 'inapp' });
  ({ token } = await api('POST', `/v1/subscribers/${subscriber.id}/token`, { ttl_seconds: 3600, scopes: ['inbox', 'portal'] }));
  // An endpoint the subscriber added before, through the portal's API.
  const res = await fetch(`${server.url}/v1/portal/endpoints`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ url: 'http://127.0.0.1:9/readme-hook' }),
  });
  assert.equal(res.status, 201, await res.clone().text());
  endpoint = await res.json();
  await ship('r-1');
  await built;
});

after(release);

test("the README's quick start renders with live data: bell, preferences, webhook portal", async () => {
  const page = await browser.context.newPage();
  // Anything going wrong in the page (a snippet that throws, a request the server refuses) fails
  // the test at once, with what it was.
  const problems = [];
  let failed;
  const failure = new Promise((_, reject) => (failed = reject));
  failure.catch(() => {});
  const problem = (what) => {
    problems.push(what);
    failed(new Error(`the README's snippet in the page: ${what}`));
  };
  const until = (pending) => Promise.race([pending, failure]);
  page.on('pageerror', (e) => problem(`pageerror: ${e.message}`));
  page.on('console', (m) => m.type() === 'error' && problem(`console: ${m.text()}`));
  page.on('requestfailed', (r) => {
    if (!r.url().includes('/v1/inbox/stream')) problem(`requestfailed: ${r.url()} ${r.failure()?.errorText}`);
  });
  page.on('response', (r) => r.status() >= 400 && problem(`${r.status()} ${r.request().method()} ${r.url()}`));
  const origins = new Set();
  page.on('request', (r) => r.url().startsWith('http') && origins.add(new URL(r.url()).origin));
  await page.goto(`${site.origin}/readme/index.html?${new URLSearchParams({ token })}`);

  // The quick start: the bell with the unread message, the preferences form with the README's
  // categories besides the channel types.
  const quick = page.locator('[data-readme-block="0"]');
  await until(quick.locator('button.chm-bell[aria-label="Notifications, 1 unread"]').waitFor());
  const form = quick.getByRole('form', { name: 'Notification preferences' });
  await until(form.getByRole('switch', { name: 'orders' }).waitFor());
  for (const name of ['orders', 'marketing', 'Email', 'SMS', 'In-app']) {
    assert.equal(await form.getByRole('switch', { name }).isChecked(), true, `the switch ${name}`);
  }

  // Live: an event sent now reaches the open page over the stream.
  await ship('r-2');
  const bell = quick.locator('button.chm-bell[aria-label="Notifications, 2 unread"]');
  await until(bell.waitFor({ timeout: 15_000 }));
  await bell.click();
  const dialog = quick.getByRole('dialog', { name: 'Notifications' });
  await dialog.getByText('Order r-2 shipped').waitFor();
  await dialog.getByText('Order r-1 shipped').waitFor();

  // The webhook portal: the subscriber's endpoint, masked.
  const portal = page.locator('[data-readme-block="1"]').getByRole('region', { name: 'Webhook endpoints' });
  const row = portal.locator(`tr.chm-endpoint[data-chm-id="${endpoint.id}"]`);
  await until(row.waitFor());
  assert.match(await row.textContent(), /http:\/\/127…/);
  assert.match(await row.textContent(), /Active/);

  assert.deepEqual([...origins].sort(), [server.url, site.origin].sort(), 'only the page and the test server (not notify.example.com)');
  assert.deepEqual(problems, []);
  await page.close();
});
