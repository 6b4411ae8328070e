// The first day with Chimatic, in headless Chromium: an owner made by the CLI signs in, turns
// on two-factor with an authenticator app and signs in again with a code, invites a teammate as
// a viewer (who joins in a second browser and can look but not change), creates and revokes an
// API key, watches a notification go through on the overview chart and in its detail, and
// exports the audit log in which all of this appears. No planted value reaches either browser.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { after, before, test } from 'node:test';

import * as OTPAuth from 'otpauth';

import { launchBrowser, screenshot } from './lib/browser.js';
import { assertNoCanary, canaryToken } from './lib/canary.js';
import { startReceiver } from './lib/receiver.js';
import { startServer } from './lib/server.js';

let server;
let browser;
let receiver;
let workspace;
let canaries;
const password = () => `Pw-${randomBytes(12).toString('base64url')}-7`;
const owner = { email: `${canaryToken('olivia')}@example.com`, password: password() };
const viewer = { email: `${canaryToken('victor')}@example.com`, password: password() };

before(async () => {
  receiver = await startReceiver();
  server = await startServer({ name: 'team' });
  browser = await launchBrowser();
  workspace = await server.createWorkspace('Team Day One');
  await server.createUser({ email: owner.email, workspace, role: 'owner', password: owner.password });
  canaries = [
    { name: 'owner email', value: owner.email.split('@')[0] },
    { name: 'owner password', value: owner.password },
    { name: 'viewer email', value: viewer.email.split('@')[0] },
    { name: 'viewer password', value: viewer.password },
    { name: 'workspace owner API key', value: workspace.key },
  ];
});

after(async () => {
  await browser?.close();
  await server?.stop();
  await receiver?.close();
});

const url = (path) => new URL(path, server.url).href;

async function signInWithPassword(page, who) {
  await page.goto(url('/console/sign-in'));
  await page.getByLabel('Email').fill(who.email);
  await page.getByLabel('Password').fill(who.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

/** The code an authenticator app shows `ahead` steps from now. */
function code(totp, ahead = 0) {
  return totp.generate({ timestamp: Date.now() + ahead * 30_000 });
}

/** Reloads `path` until `ready()` holds (the overview's counts are written every 2 s). */
async function waitForPage(page, path, ready, deadlineMs = 20_000) {
  const until = Date.now() + deadlineMs;
  for (;;) {
    await page.goto(url(path));
    if (await ready()) return;
    assert.ok(Date.now() < until, `${path} never got ready`);
    await page.waitForTimeout(500);
  }
}

test('the first day: 2FA, a viewer teammate, an API key, a delivered notification, the audit export', async () => {
  const ctx = await browser.newContext({ acceptDownloads: true });
  const teammate = await browser.newContext();
  let totp;
  let recovery;
  try {
    const page = await ctx.page();
    ctx.setDefaultTimeout(10_000);
    teammate.setDefaultTimeout(10_000);

    // Sign in, then turn on two-factor from the account page.
    await signInWithPassword(page, owner);
    await page.waitForURL(url('/console/'));
    await page.getByRole('link', { name: /· owner/ }).click();
    await page.getByRole('link', { name: 'Set up an authenticator app' }).click();
    await page.locator('figure.qr svg').waitFor();
    const key = (await page.locator('#manual-key').textContent()).replaceAll(' ', '');
    totp = new OTPAuth.TOTP({ secret: OTPAuth.Secret.fromBase32(key), digits: 6, period: 30, algorithm: 'SHA1' });
    canaries.push({ name: 'TOTP key', value: key });
    await screenshot(page, 'two-factor-enrol');
    await page.getByLabel('Code from the app').fill(code(totp));
    await page.getByRole('button', { name: 'Turn on' }).click();
    await page.getByRole('heading', { name: 'Two-factor authentication is on' }).waitFor();
    recovery = await page.locator('#recovery-codes code').allTextContents();
    assert.equal(recovery.length, 10);
    await screenshot(page, 'recovery-codes');

    // Out and in again: the password, then a code (the next step's: the enrolment's is spent).
    await page.goto(url('/console/account'));
    await page.getByRole('button', { name: 'Sign out' }).first().click();
    await page.waitForURL(url('/console/sign-in'));
    await signInWithPassword(page, owner);
    await page.getByRole('heading', { name: 'Two-factor authentication' }).waitFor();
    await screenshot(page, 'sign-in-code');
    await page.getByLabel('Code').fill(code(totp, 1));
    await page.getByRole('button', { name: 'Verify' }).click();
    await page.waitForURL(url('/console/'));

    // Invite a viewer: the link is shown once, to copy.
    await page.getByRole('link', { name: 'Members' }).click();
    await page.getByLabel('Email').fill(viewer.email);
    await page.getByLabel('Role').last().selectOption('viewer');
    await page.getByRole('button', { name: 'Create invitation link' }).click();
    const link = (await page.locator('#shown-link').textContent()).trim();
    assert.ok(link.startsWith(url('/console/join?token=')), link);
    await screenshot(page, 'invitation');

    // The teammate joins in their own browser, and can look but not change.
    const tp = await teammate.page();
    await tp.goto(link);
    await tp.getByLabel('Your email').fill(viewer.email);
    await tp.getByLabel('Choose a password').fill(viewer.password);
    await tp.getByLabel('The password again').fill(viewer.password);
    await tp.getByRole('button', { name: 'Create account and join' }).click();
    await tp.waitForURL(url('/console/'));
    assert.match(await tp.locator('header').textContent(), /· viewer/);
    await tp.getByRole('link', { name: 'Members' }).click();
    assert.equal(await tp.getByRole('button', { name: 'Create invitation link' }).count(), 0);
    assert.equal(await tp.getByRole('button', { name: 'Change role' }).count(), 0);
    assert.equal(await tp.getByRole('link', { name: 'API keys' }).count(), 0);
    assert.equal((await tp.goto(url('/console/settings'))).status(), 403);
    assert.equal((await tp.goto(url('/console/api-keys'))).status(), 403);
    await tp.goto(link);
    assert.equal((await tp.goto(link)).status(), 410, 'the link worked once');
    await page.goto(url('/console/members'));
    assert.ok((await page.locator('table').first().textContent()).includes('viewer'));

    // An API key: created (shown once), revoked.
    await page.getByRole('link', { name: 'API keys' }).click();
    await page.getByLabel('Name').fill('day one');
    await page.getByRole('button', { name: 'Create' }).click();
    const apiKey = (await page.getByRole('status').locator('code').textContent()).trim();
    assert.equal((await server.api('/v1/channels', { key: apiKey })).status, 403, 'send access only');
    await page.goto(url('/console/api-keys'));
    await page.getByRole('row').filter({ hasText: 'day one' }).getByRole('button', { name: 'Revoke' }).click();
    await page.waitForURL(url('/console/api-keys'));
    assert.equal((await server.api('/v1/notifications/msg_0192f0c1a2b37c4d8e9f0a1b2c3d4e5f', { key: apiKey })).status, 401);

    // A notification goes through: on the overview's chart, and in its detail with its attempt.
    const secretNote = canaryToken('note');
    const hookPath = canaryToken('hook');
    canaries.push({ name: 'payload', value: secretNote }, { name: 'webhook path', value: hookPath });
    const channel = await server.api('/v1/channels', {
      method: 'POST',
      key: workspace.key,
      body: { type: 'webhook', url: `${receiver.url}/${hookPath}` },
    });
    assert.equal(channel.status, 201, channel.text);
    canaries.push({ name: 'signing secret', value: channel.json.signing_secret });
    const sent = await server.api('/v1/notifications', {
      method: 'POST',
      key: workspace.key,
      body: { channel_id: channel.json.id, payload: { note: secretNote } },
    });
    assert.equal(sent.status, 202, sent.text);
    const id = sent.json.id;
    await waitForPage(page, '/console/', async () => (await page.locator('svg.chart rect.delivered').count()) > 0);
    await screenshot(page, 'overview-delivered');
    await page.getByRole('link', { name: 'Notifications' }).click();
    await page.getByRole('link', { name: id }).click();
    await page.waitForURL(url(`/console/notifications/${id}`));
    assert.equal((await page.locator('#notification-status').textContent()).trim(), 'delivered');
    assert.match(await page.locator('#attempts').textContent(), /#1 delivered[\s\S]*HTTP 204/);
    await screenshot(page, 'notification-delivered');
    assert.equal(receiver.requests.filter((r) => r.url === `/${hookPath}`).length, 1);

    // The audit log, exported from the page: everything above is in it, as the people did it.
    await page.getByRole('link', { name: 'Audit log' }).click();
    await screenshot(page, 'audit-log');
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('button', { name: 'Export JSON Lines' }).click(),
    ]);
    const lines = (await readFile(await download.path(), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    const entries = lines.filter((l) => l.action);
    const actions = new Set(entries.map((e) => e.action));
    for (const a of [
      'user.created',
      'console.sign_in',
      'console.sign_out',
      'user.two_factor_enrolled',
      'member.invited',
      'member.joined',
      'api_key.created',
      'api_key.revoked',
      'notification.delivery_attempted',
      'audit.exported',
    ]) {
      assert.ok(actions.has(a), `${a} is not in the export: ${[...actions].join(', ')}`);
    }
    assert.ok(entries.filter((e) => e.actor.kind === 'user').length >= 6, 'people act as themselves');
    const text = JSON.stringify(lines);
    for (const c of canaries) assert.ok(!text.includes(c.value), `${c.name} is in the export`);
    await page.getByRole('button', { name: 'Verify the chains' }).click();
    assert.equal(await page.locator('#verification .ok').count(), 2, await page.locator('main').textContent());

    for (const c of [ctx, teammate]) {
      assertNoCanary(await c.recorded(), canaries);
      assert.deepEqual(c.problems(), []);
    }
  } finally {
    await ctx.close();
    await teammate.close();
  }
});
