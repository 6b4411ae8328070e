// End to end, in headless Chromium against a real server: the example page with Inbox,
// Preferences and WebhookPortal for one subscriber (a token with the `inbox` and `portal` scopes).
// Through the UI: an endpoint added (pointing at a receiver on 127.0.0.1), its one-time secret read
// from the page, then gone from it once dismissed; a workflow event reaches the receiver with a
// Standard Webhooks signature that verifies with that secret; after a rotation with an overlap a
// delivery carries two signatures, one by the old secret and one by the new; a disabled endpoint
// gets nothing; a second endpoint answering 500 shows its failed delivery, which, replayed from
// the page once the receiver answers 200, is delivered. A URL the server refuses and an inbox-only
// token show the server's problem `detail` on the page.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Webhook } from 'standardwebhooks';
import { acquire, release } from '../lib/e2e.js';
import { startReceiver } from '../lib/receiver.js';
import { waitFor } from '../lib/server.js';

let site;
let server;
let browser;
let apiKey;
let subscriber;
let token;
let inboxOnly;
let ok;
let flaky;
let flakyStatus = 500;
let page;
const problems = [];
/** Answers of 400 and above the page got: the test expects some (a refused URL, a 403). */
const refusals = [];

const api = (method, p, body) => server.api(apiKey, method, p, body);

before(async () => {
  [{ site, server, browser }, ok, flaky] = await Promise.all([
    acquire(),
    startReceiver(),
    startReceiver({ status: () => flakyStatus }),
  ]);
  ({ apiKey } = await server.createWorkspace('react-portal-e2e'));
  const integration = await api('POST', '/v1/integrations', { kind: 'webhook', name: 'customer-hooks' });
  await api('POST', '/v1/workflows', {
    key: 'invoice.paid',
    steps: [
      { channel: 'webhook', integration_id: integration.id, text: 'Invoice {{ data.invoice }} paid by {{ subscriber.name }}' },
      // And in the inbox, so the event is accepted even while no endpoint takes it.
      { channel: 'inapp', title: 'Invoice {{ data.invoice }} paid', text: 'Thank you, {{ subscriber.name }}.' },
    ],
  });
  subscriber = await api('POST', '/v1/subscribers', { external_id: 'user-grace', attributes: { name: 'Grace' } });
  await api('POST', `/v1/subscribers/${subscriber.id}/channels`, { type: 'inapp' });
  ({ token } = await api('POST', `/v1/subscribers/${subscriber.id}/token`, { ttl_seconds: 3600, scopes: ['inbox', 'portal'] }));
  ({ token: inboxOnly } = await api('POST', `/v1/subscribers/${subscriber.id}/token`, { ttl_seconds: 3600 }));
  assert.match(token, /^sbt_/);

  await browser.context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: site.origin });
  page = await browser.context.newPage();
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => m.type() === 'error' && !/status of 4\d\d/.test(m.text()) && problems.push(`console: ${m.text()}`));
  page.on('requestfailed', (r) => {
    if (!r.url().includes('/v1/inbox/stream')) problems.push(`requestfailed: ${r.url()} ${r.failure()?.errorText}`);
  });
  page.on('response', (r) => r.status() >= 400 && refusals.push(`${r.status()} ${r.request().method()} ${new URL(r.url()).pathname}`));
});

after(async () => {
  await page?.close();
  await Promise.all([ok?.close(), flaky?.close()]);
  await release();
});

/** Sends `invoice.paid` to the subscriber; resolves to the notification ids (webhooks and in-app). */
async function pay(invoice) {
  const sent = await api('POST', '/v1/events', { name: 'invoice.paid', to: ['user-grace'], data: { invoice } });
  return sent.notifications;
}

/** Waits until every notification is done (delivered, failed, cancelled, …); resolves to their views. */
function settled(ids) {
  return waitFor(
    async () => {
      const views = await Promise.all(ids.map((id) => api('GET', `/v1/notifications/${id}`)));
      return views.every((v) => !['queued', 'delivering'].includes(v.status)) && views;
    },
    { what: `notifications ${ids.join(', ')} settled` },
  );
}

/** The secret on show: read, then dismissed from the keyboard; checks it is gone from the page. */
async function takeSecret(portal) {
  const dialog = portal.getByRole('dialog', { name: /^Signing secret of / });
  await dialog.waitFor();
  assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('role')), 'dialog', 'the panel has the focus');
  const secret = await dialog.getByRole('textbox', { name: 'Signing secret' }).inputValue();
  assert.match(secret, /^whsec_/);
  // Copy puts it on the clipboard.
  await dialog.getByRole('button', { name: 'Copy' }).click();
  await dialog.getByText('Copied to the clipboard.').waitFor();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), secret);
  await dialog.focus();
  await page.keyboard.press('Tab');
  await page.keyboard.press('Tab');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'I have saved it');
  await page.keyboard.press('Enter');
  await dialog.waitFor({ state: 'detached' });
  const everything = await page.evaluate(() =>
    [document.documentElement.outerHTML, document.body.innerText, ...[...document.querySelectorAll('input, textarea')].map((i) => i.value)].join('\n'),
  );
  assert.ok(!everything.includes(secret), 'the secret is not in the page once dismissed');
  return secret;
}

const endpointIds = (portal) => portal.locator('tr.chm-endpoint').evaluateAll((rows) => rows.map((r) => r.dataset.chmId));

/** Adds an endpoint through the form; resolves to { id, row, secret }. */
async function addEndpoint(portal, url) {
  const before = await endpointIds(portal);
  const field = portal.getByRole('textbox', { name: 'Endpoint URL' });
  await field.fill(url);
  await field.press('Enter');
  const secret = await takeSecret(portal);
  assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('type')), 'url', 'focus back on the URL field');
  const id = (await endpointIds(portal)).find((x) => !before.includes(x));
  assert.match(id ?? '', /^sch_/);
  return { id, row: portal.locator(`tr.chm-endpoint[data-chm-id="${id}"]`), secret };
}

/** Each signature of the header on its own: which of `secrets` verifies it. */
function signers(delivery, secrets) {
  const signatures = delivery.headers['webhook-signature'].split(' ');
  return signatures.map((sig) =>
    Object.entries(secrets)
      .filter(([, secret]) => {
        try {
          new Webhook(secret).verify(delivery.body, { ...delivery.headers, 'webhook-signature': sig });
          return true;
        } catch {
          return false;
        }
      })
      .map(([name]) => name),
  );
}

test('endpoints through the portal: the one-time secret signs, rotation overlaps, disabled gets nothing, a failure is replayed', async () => {
  const q = new URLSearchParams({ baseUrl: server.url, token, categories: 'billing', poll: '250' });
  await page.goto(`${site.origin}/?${q}`);
  await page.locator('.example-status[data-live="yes"]').waitFor();
  const portal = page.getByRole('region', { name: 'Webhook endpoints' });
  await portal.getByText('No endpoints yet.').waitFor();
  await page.getByRole('form', { name: 'Notification preferences' }).waitFor();

  // A URL the server refuses: its problem detail, on the field.
  const field = portal.getByRole('textbox', { name: 'Endpoint URL' });
  await field.fill('ftp://example.com/hook');
  await field.press('Enter');
  const refused = portal.getByRole('alert');
  await refused.waitFor();
  assert.ok((await refused.textContent()).length > 0);
  assert.equal(await field.getAttribute('aria-invalid'), 'true');
  assert.equal(await portal.getByRole('dialog').count(), 0);

  // Add one: its secret signs the workflow's webhook.
  const a = await addEndpoint(portal, `${ok.url}/portal-a`);
  assert.equal(await refused.count(), 0, 'the refusal is gone');
  assert.match(await a.row.textContent(), /Active/);
  assert.equal(await a.row.locator('[data-chm-signed-with]').getAttribute('data-chm-signed-with'), 'endpoint');
  const channels = await api('GET', `/v1/subscribers/${subscriber.id}/channels`);
  assert.ok(channels.data.some((c) => c.id === a.id && c.type === 'webhook'), 'the endpoint is one of the subscriber channels');

  const first = await pay('i-1');
  assert.equal(first.length, 2, 'one webhook, one in-app message');
  const d1 = await ok.next((r) => r.path === '/portal-a' && first.includes(r.headers['webhook-id']));
  const message = new Webhook(a.secret).verify(d1.body, d1.headers);
  assert.equal(message.text, 'Invoice i-1 paid by Grace');
  assert.deepEqual(signers(d1, { a: a.secret }), [['a']]);

  // Rotate with the default overlap (24 hours): the next delivery is signed by both secrets.
  await a.row.getByRole('button', { name: /^Rotate secret: / }).click();
  const rotate = portal.getByRole('dialog', { name: /^Rotate the signing secret of / });
  const day = rotate.getByRole('radio', { name: '24 hours' });
  assert.equal(await day.isChecked(), true);
  assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('type')), 'radio');
  await rotate.getByRole('button', { name: 'Rotate', exact: true }).click();
  const rotated = await takeSecret(portal);
  assert.notEqual(rotated, a.secret);
  assert.match(await a.row.textContent(), /previous one also valid until/);
  assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('data-chm-action')), 'rotate', 'focus back on Rotate');

  const second = await pay('i-2');
  const d2 = await ok.next((r) => r.path === '/portal-a' && second.includes(r.headers['webhook-id']));
  assert.deepEqual(signers(d2, { old: a.secret, new: rotated }).sort(), [['new'], ['old']]);
  assert.equal(new Webhook(a.secret).verify(d2.body, d2.headers).text, 'Invoice i-2 paid by Grace');
  assert.equal(new Webhook(rotated).verify(d2.body, d2.headers).text, 'Invoice i-2 paid by Grace');

  // Disable it: the next event does not reach it.
  await a.row.getByRole('button', { name: /^Disable: / }).click();
  await a.row.getByRole('button', { name: /^Enable: / }).waitFor();
  assert.match(await a.row.textContent(), /Disabled/);
  const third = await settled(await pay('i-3'));
  assert.deepEqual(third.map((n) => n.type), ['inapp'], 'no notification for the disabled endpoint');
  assert.equal(ok.received.filter((r) => r.path === '/portal-a').length, 2, 'nothing reached the disabled endpoint');

  // A second endpoint, answering 500: its failed delivery in the page; replayed once it answers 200.
  const b = await addEndpoint(portal, `${flaky.url}/portal-b`);
  const failed = (await settled(await pay('i-4'))).find((n) => n.type === 'webhook');
  const fourth = failed.id;
  assert.equal(failed.status, 'failed');
  assert.equal(failed.subscriber_channel_id, b.id);
  assert.ok(flaky.received.length >= 2, 'it was retried');
  assert.equal(ok.received.filter((r) => r.path === '/portal-a').length, 2, 'nor did this one reach the disabled endpoint');

  const toggle = b.row.getByRole('button', { name: /^Deliveries: / });
  await toggle.click();
  assert.equal(await toggle.getAttribute('aria-expanded'), 'true');
  const deliveries = portal.locator(`section.chm-deliveries[data-chm-endpoint="${b.id}"]`);
  const row = deliveries.locator(`tr[data-chm-id="${fourth}"]`);
  await row.and(page.locator('[data-chm-status="failed"]')).waitFor();
  assert.match(await row.textContent(), /Failed/);
  assert.match(await row.locator('.chm-last-result').textContent(), /HTTP 500/);
  assert.equal(Number(await row.locator('.chm-attempts').textContent()), failed.attempt_count);

  flakyStatus = 200;
  await row.getByRole('button', { name: /^Replay the delivery of / }).click();
  await deliveries.getByText('Replay queued.').waitFor();
  const replayed = await flaky.next((r) => r.headers['webhook-id'] === fourth && r.answered === 200);
  assert.equal(new Webhook(b.secret).verify(replayed.body, replayed.headers).text, 'Invoice i-4 paid by Grace');
  await row.and(page.locator('[data-chm-status="delivered"]')).waitFor();
  assert.match(await row.textContent(), /Delivered/);
  assert.equal((await api('GET', `/v1/notifications/${fourth}`)).status, 'delivered');

  // Delete the first one, confirmed first.
  await a.row.getByRole('button', { name: /^Delete: / }).click();
  const confirm = portal.getByRole('alertdialog');
  await confirm.waitFor();
  assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Cancel');
  await confirm.getByRole('button', { name: 'Delete endpoint' }).click();
  await a.row.waitFor({ state: 'detached' });
  const left = await api('GET', `/v1/subscribers/${subscriber.id}/channels`);
  assert.ok(!left.data.some((c) => c.id === a.id), 'deleted on the server');
  assert.deepEqual(await endpointIds(portal), [b.id]);

  assert.deepEqual([...new Set(refusals)], ['422 POST /v1/portal/endpoints']);
  assert.deepEqual(problems, []);
});

test('an inbox-only token: the portal shows the server’s 403; a portal-only token cannot read the inbox', async () => {
  refusals.length = 0;
  const q = new URLSearchParams({ baseUrl: server.url, token: inboxOnly });
  await page.goto(`${site.origin}/?${q}`);
  const portal = page.getByRole('region', { name: 'Webhook endpoints' });
  const alert = portal.getByRole('alert');
  await alert.waitFor();
  const res = await fetch(`${server.url}/v1/portal/endpoints`, { headers: { authorization: `Bearer ${inboxOnly}` } });
  assert.equal(res.status, 403);
  assert.match(res.headers.get('content-type') ?? '', /application\/problem\+json/);
  const problem = await res.json();
  assert.equal(await alert.textContent(), problem.detail);
  assert.equal(await portal.getByRole('table').count(), 0);
  // The inbox still works with it.
  await page.locator('.example-status[data-live="yes"]').waitFor();
  assert.deepEqual([...new Set(refusals)], ['403 GET /v1/portal/endpoints']);

  const { token: portalOnly } = await api('POST', `/v1/subscribers/${subscriber.id}/token`, { ttl_seconds: 3600, scopes: ['portal'] });
  const inbox = await fetch(`${server.url}/v1/inbox`, { headers: { authorization: `Bearer ${portalOnly}` } });
  assert.equal(inbox.status, 403);
  assert.equal((await fetch(`${server.url}/v1/portal/endpoints`, { headers: { authorization: `Bearer ${portalOnly}` } })).status, 200);
  assert.deepEqual(problems, []);
});
