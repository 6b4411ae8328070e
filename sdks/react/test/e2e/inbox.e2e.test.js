// End to end, in headless Chromium against a real server: the example page (built with Vite from
// the built package) open on a subscriber's inbox; an event sent through the API appears live,
// without a reload, through the SSE stream; the badge goes up; "Mark all as read" takes it to 0;
// and the preferences form saves an opt-out that the API then reads back.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { acquire, release } from '../lib/e2e.js';
import { waitFor } from '../lib/server.js';

let site;
let server;
let browser;
let apiKey;
let subscriber;
let token;

const api = (method, p, body) => server.api(apiKey, method, p, body);

before(async () => {
  ({ site, server, browser } = await acquire());
  ({ apiKey } = await server.createWorkspace('react-e2e'));
  await api('POST', '/v1/workflows', {
    key: 'order.shipped',
    category: 'orders',
    steps: [{ channel: 'inapp', title: 'Order {{ data.order }} shipped', text: 'Hi {{ subscriber.name }}, {{ data.order }} is on its way.' }],
  });
  subscriber = await api('POST', '/v1/subscribers', { external_id: 'user-ada', attributes: { name: 'Ada' } });
  await api('POST', `/v1/subscribers/${subscriber.id}/channels`, { type: 'inapp' });
  ({ token } = await api('POST', `/v1/subscribers/${subscriber.id}/token`, { ttl_seconds: 3600 }));
  assert.match(token, /^sbt_/);
});

after(release);

/** Sends the event and waits until the message is in the subscriber's inbox (API side). */
async function ship(order) {
  const sent = await api('POST', '/v1/events', { name: 'order.shipped', to: ['user-ada'], data: { order } });
  assert.equal(sent.notifications.length, 1);
  return sent.notifications[0];
}

test('a message sent through the API appears live; mark all read; preferences saved', async () => {
  await ship('o-1');
  await waitFor(async () => (await api('GET', `/v1/subscribers/${subscriber.id}/inbox`)).unread_count === 1);

  const page = await browser.context.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => m.type() === 'error' && problems.push(`console: ${m.text()}`));
  page.on('requestfailed', (r) => {
    // The stream is cut when the page closes; anything else is a problem.
    if (!r.url().includes('/v1/inbox/stream')) problems.push(`requestfailed: ${r.url()} ${r.failure()?.errorText}`);
  });
  page.on('response', (r) => r.status() >= 400 && problems.push(`${r.status()} ${r.request().method()} ${r.url()}`));
  const requests = [];
  page.on('request', (r) => r.url().startsWith('http') && requests.push(new URL(r.url()).origin));

  // An inbox-only token: the page without the webhook portal (test/e2e/portal.e2e.test.js has it).
  const q = new URLSearchParams({ baseUrl: server.url, token, categories: 'orders', portal: '0' });
  await page.goto(`${site.origin}/?${q}`);

  const bell = page.locator('button.chm-bell');
  await bell.and(page.locator('[aria-label="Notifications, 1 unread"]')).waitFor();
  assert.equal(await page.locator('.chm-badge').textContent(), '1');
  await page.locator('.example-status[data-live="yes"]').waitFor();

  // Open the inbox from the keyboard: a dialog with the first message, focus inside it.
  await bell.focus();
  await page.keyboard.press('Enter');
  const dialog = page.getByRole('dialog', { name: 'Notifications' });
  await dialog.waitFor();
  assert.equal(await bell.getAttribute('aria-expanded'), 'true');
  assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('role')), 'dialog');
  await dialog.getByText('Order o-1 shipped').waitFor();

  // A marker on the window: had the page reloaded, it would be gone.
  await page.evaluate(() => (window.__noReload = true));
  const t0 = Date.now();
  const id2 = await ship('o-2');
  await dialog.getByText('Order o-2 shipped').waitFor({ timeout: 15_000 });
  const liveMs = Date.now() - t0;
  await page.locator('.chm-badge', { hasText: '2' }).waitFor();
  assert.equal(await bell.getAttribute('aria-label'), 'Notifications, 2 unread');
  assert.equal(await page.evaluate(() => window.__noReload), true, 'the page was not reloaded');
  assert.equal(await dialog.locator(`li[data-chm-id="${id2}"]`).count(), 1);
  assert.equal(await dialog.getByRole('listitem').count(), 2);
  assert.equal(await page.getByRole('status').first().textContent(), 'New notification: Order o-2 shipped');
  console.log(`# live message shown ${liveMs} ms after the event was sent`);

  // Mark all as read: the badge goes, the server agrees.
  await dialog.getByRole('button', { name: 'Mark all as read' }).click();
  await bell.and(page.locator('[aria-label="Notifications"]')).waitFor();
  assert.equal(await page.locator('.chm-badge').count(), 0);
  assert.equal((await api('GET', `/v1/subscribers/${subscriber.id}/inbox`)).unread_count, 0);
  assert.equal(await dialog.locator('li.chm-unread').count(), 0);

  // Escape closes the popover and gives focus back to the bell.
  await page.keyboard.press('Escape');
  await dialog.waitFor({ state: 'detached' });
  assert.equal(await page.evaluate(() => document.activeElement?.classList.contains('chm-bell')), true);

  // Preferences: opt out of the "orders" category and of SMS, save, read back through the API.
  const form = page.getByRole('form', { name: 'Notification preferences' });
  const orders = form.getByRole('switch', { name: 'orders' });
  assert.equal(await orders.isChecked(), true);
  await orders.uncheck();
  await form.getByRole('switch', { name: 'SMS' }).uncheck();
  await form.getByRole('button', { name: 'Save preferences' }).click();
  await form.getByText('Preferences saved.').waitFor();
  const prefs = await api('GET', `/v1/subscribers/${subscriber.id}/preferences`);
  assert.equal(prefs.categories?.orders, false);
  assert.equal(prefs.channels?.sms, false);

  // And after a reload the form shows what was saved.
  await page.reload();
  await page.getByRole('switch', { name: 'orders' }).waitFor();
  assert.equal(await page.getByRole('switch', { name: 'orders' }).isChecked(), false);
  assert.equal(await page.getByRole('switch', { name: 'SMS' }).isChecked(), false);
  assert.equal(await page.getByRole('switch', { name: 'Email' }).isChecked(), true);

  // Nothing but the page itself and the Chimatic server was contacted (no CDN, no fonts).
  assert.deepEqual([...new Set(requests)].sort(), [server.url, site.origin].sort());
  assert.deepEqual(problems, []);
  await page.close();
});
