// Connecting a Slack workspace and a Google account from the console's integrations page, in
// headless Chromium, through the real test authorization server (tests/oidc, npm oidc-provider:
// PKCE required, exact redirect URIs) and its own login page; a workflow's message through each
// (the provider's stand-ins of the Slack Web API and the Gmail API, which check the bearer
// token); then "Disconnect and delete" on Google, which revokes the grant at the provider. The
// client secrets and the access and refresh tokens never reach the browser.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { launchBrowser, screenshot } from './lib/browser.js';
import { assertNoCanary, canaryToken } from './lib/canary.js';
import { reservePort, startProvider } from './lib/provider.js';
import { startServer } from './lib/server.js';

const CALLBACK = '/console/integrations/connect/callback';
const SLACK = { id: 'chimatic-slack', scope: 'chat:write', title: 'Slack', kind: 'slack' };
const GOOGLE = { id: 'chimatic-google', scope: 'https://www.googleapis.com/auth/gmail.send', title: 'Google', kind: 'gmail' };
const SLACK_CHANNEL = 'C0123456789';
const CUSTOMER_EMAIL = 'ann.customer@example.net';
/** Attempts at the port dance below before giving up. */
const ATTEMPTS = 3;
/** How long a notification may take to be delivered. */
const DELIVERY_DEADLINE_MS = 15_000;

let server;
let provider;
let browser;
let secretDir;
let workspace;
/** The client secrets at the provider: only the server and the provider know them. */
const slackSecret = canaryToken('slack-client-secret');
const googleSecret = canaryToken('google-client-secret');
const owner = { email: 'olga.owner@example.com', password: `Pw-${randomBytes(12).toString('base64url')}-3` };
let canaries;
/** The integrations the first test connects, used by the ones after it. */
const made = {};

before(async () => {
  secretDir = mkdtempSync(path.join(os.tmpdir(), 'chimatic-connections-'));
  const secretFile = (name, value) => {
    const file = path.join(secretDir, name);
    writeFileSync(file, `${value}\n`, { mode: 0o600 });
    return file;
  };
  const slackSecretFile = secretFile('slack-client-secret', slackSecret);
  const googleSecretFile = secretFile('google-client-secret', googleSecret);
  // The server needs the provider's URLs when it starts, the provider the server's callback
  // URL: both ports are picked first, then bound. Someone may take one in between; then both
  // start again on other ports.
  for (let attempt = 1; ; attempt++) {
    const [serverPort, providerPort] = [await reservePort(), await reservePort()];
    if (serverPort === providerPort) continue;
    const issuer = `http://127.0.0.1:${providerPort}`;
    const consoleCallback = `http://127.0.0.1:${serverPort}${CALLBACK}`;
    try {
      server = await startServer({
        name: 'connections',
        listen: `127.0.0.1:${serverPort}`,
        env: {
          CHIMATIC_OAUTH_SLACK_CLIENT_ID: SLACK.id,
          CHIMATIC_OAUTH_SLACK_CLIENT_SECRET_FILE: slackSecretFile,
          CHIMATIC_OAUTH_SLACK_REDIRECT_URIS: consoleCallback,
          CHIMATIC_OAUTH_SLACK_AUTHORIZE_URL: `${issuer}/auth`,
          CHIMATIC_OAUTH_SLACK_TOKEN_URL: `${issuer}/token`,
          CHIMATIC_OAUTH_SLACK_API_BASE: `${issuer}/slack/api`,
          CHIMATIC_OAUTH_GOOGLE_CLIENT_ID: GOOGLE.id,
          CHIMATIC_OAUTH_GOOGLE_CLIENT_SECRET_FILE: googleSecretFile,
          CHIMATIC_OAUTH_GOOGLE_REDIRECT_URIS: consoleCallback,
          CHIMATIC_OAUTH_GOOGLE_AUTHORIZE_URL: `${issuer}/auth`,
          CHIMATIC_OAUTH_GOOGLE_TOKEN_URL: `${issuer}/token`,
          CHIMATIC_OAUTH_GOOGLE_REVOKE_URL: `${issuer}/google/revoke`,
          CHIMATIC_OAUTH_GOOGLE_API_BASE: issuer,
        },
      });
      assert.equal(server.url, `http://127.0.0.1:${serverPort}`);
      const client = (c, secret) => ({ client_id: c.id, client_secret: secret, redirect_uris: [consoleCallback], scope: c.scope });
      provider = await startProvider(
        {
          port: providerPort,
          clients: [client(SLACK, slackSecret), client(GOOGLE, googleSecret)],
          accounts: [{ sub: 'olga-1', email: owner.email, email_verified: true }],
        },
        { name: 'connections-provider' },
      );
      assert.equal(provider.issuer, issuer);
      break;
    } catch (e) {
      await server?.stop();
      server = undefined;
      if (attempt === ATTEMPTS) throw e;
    }
  }
  browser = await launchBrowser();
  workspace = await server.createWorkspace('Acme Connections');
  await server.createUser({ email: owner.email, workspace, role: 'owner', password: owner.password });
  canaries = [
    { name: 'Slack client secret', value: slackSecret },
    { name: 'Google client secret', value: googleSecret },
    { name: 'owner password', value: owner.password },
    { name: 'workspace owner API key', value: workspace.key },
  ];
});

after(async () => {
  await browser?.close();
  await provider?.stop();
  await server?.stop();
  if (secretDir) rmSync(secretDir, { recursive: true, force: true });
});

function url(p) {
  return new URL(p, server.url).href;
}

/** A test control or stand-in of the provider, as JSON. */
async function fromProvider(p) {
  const r = await fetch(new URL(p, provider.issuer));
  assert.equal(r.status, 200, `GET ${p} at the provider answered ${r.status}`);
  return r.json();
}

/**
 * The access and refresh tokens the provider issued (GET /__test/issued-tokens: every value,
 * kept after the token is gone), as canaries: the browser gets codes, never tokens.
 */
async function tokenCanaries() {
  const issued = await fromProvider('/__test/issued-tokens');
  assert.ok(Array.isArray(issued), JSON.stringify(issued));
  return issued.map((t) => ({ name: `${t.client_id} ${t.kind}`, value: t.value }));
}

/**
 * Runs `body(ctx, page)` in a fresh browser context; on failure keeps a screenshot of the page
 * (target/screenshots/connections-NAME-failed.png). Then everything the context received must
 * be free of canaries, and its pages free of problems.
 */
async function inContext(name, body) {
  const ctx = await browser.newContext();
  const consoleMessages = [];
  try {
    const page = await ctx.page();
    page.on('console', (m) => consoleMessages.push(m.text()));
    try {
      await body(ctx, page);
    } catch (e) {
      await screenshot(page, `connections-${name}-failed`).catch(() => {});
      throw e;
    }
    assertNoCanary(await ctx.recorded(), [...canaries, ...(await tokenCanaries())]);
    assert.deepEqual(ctx.problems(), [], 'the pages had errors or failed requests');
    // What the browser kept in its cookies and wrote to its console is covered too.
    const cookies = (await ctx.cookies()).map((c) => `${c.name}=${c.value}`);
    for (const c of canaries) {
      assert.ok(!cookies.some((k) => k.includes(c.value)), `canary "${c.name}" in a cookie`);
      assert.ok(!consoleMessages.some((m) => m.includes(c.value)), `canary "${c.name}" in a console message`);
    }
  } finally {
    await ctx.close();
  }
}

/** Signs in through the console's form, as a person would. */
async function signIn(page) {
  await page.goto(url('/console/sign-in'));
  await page.getByLabel('Email').fill(owner.email);
  await page.getByLabel('Password').fill(owner.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(url('/console/'));
}

/** The value the integration's page shows for `field` (its <dt>), trimmed. */
async function shownField(page, field) {
  const dd = page.locator(`xpath=//dl[contains(@class,"fields")]/dt[normalize-space()="${field}"]/following-sibling::dd[1]`);
  return (await dd.textContent()).trim();
}

const atProvider = (u) => u.origin === provider.issuer && u.pathname.startsWith('/interaction/');
const atIntegration = (u) => u.origin === server.url && /^\/console\/integrations\/int_[^/]+$/.test(u.pathname);

/**
 * From the integrations page through the provider's own login page back to the new
 * integration's page: its id. `fill(page)` fills the provider's form fields besides the name.
 */
async function connect(ctx, page, which, name, fill = async () => {}) {
  await page.goto(url('/console/integrations'));
  await page.locator(`#connect-${which.title.toLowerCase()}-name`).fill(name);
  await fill(page);
  await page.locator(`#connect-${which.title.toLowerCase()}`).click();
  const link = page.locator('a#continue');
  await link.waitFor();
  assert.equal((await link.textContent()).trim(), `Continue to ${which.title}`);
  assert.equal(await link.getAttribute('rel'), 'noreferrer');
  await screenshot(page, `connections-${which.kind}-continue`);

  // The authorization request: this client, the console's callback, PKCE S256, exactly the
  // one scope, a state, no OpenID Connect nonce.
  const authorize = new URL(await link.getAttribute('href'));
  assert.equal(`${authorize.origin}${authorize.pathname}`, `${provider.issuer}/auth`, authorize.href);
  const q = authorize.searchParams;
  assert.equal(q.get('client_id'), which.id);
  assert.equal(q.get('response_type'), 'code');
  assert.equal(q.get('redirect_uri'), url(CALLBACK));
  assert.equal(q.get('code_challenge_method'), 'S256');
  assert.match(q.get('code_challenge') ?? '', /^[A-Za-z0-9_-]{43}$/);
  assert.deepEqual(q.getAll('scope'), [which.scope]);
  assert.deepEqual(q.get('scope').split(' '), [which.scope]);
  assert.match(q.get('state') ?? '', /^[A-Za-z0-9_-]{32,}$/);
  assert.ok(!q.has('nonce'), `a nonce in ${authorize.href}`);

  await link.click();
  await page.waitForURL(atProvider, { timeout: 10_000 }).catch((e) => {
    throw new Error(`the browser did not reach the provider's login page (${page.url()}): ${ctx.problems().join('; ') || e.message}`);
  });
  await page.locator('#email').fill(owner.email);
  await page.locator('#sign-in').click();
  await page.waitForURL(atIntegration, { timeout: 10_000 }).catch((e) => {
    throw new Error(`the browser did not come back to a new integration's page (${page.url()}): ${ctx.problems().join('; ') || e.message}`);
  });
  const id = new URL(page.url()).pathname.split('/').pop();
  assert.equal((await page.getByRole('heading', { level: 1 }).textContent()).trim(), `Integration ${id}`);
  assert.equal(await shownField(page, 'connected_through'), which.title.toLowerCase());
  assert.equal(await shownField(page, 'kind'), which.kind);
  assert.equal(await shownField(page, 'name'), name);
  await page.getByRole('button', { name: 'Check now' }).waitFor();
  await page.getByRole('button', { name: 'Disconnect and delete' }).waitFor();
  await screenshot(page, `connections-${which.kind}-connected`);

  // The browser went the whole way: the provider's login page, then its redirect to the
  // console's callback with a code and the state the console sent.
  const recorded = await ctx.recorded();
  assert.ok(recorded.some((r) => atProvider(new URL(r.url)) && r.body?.includes('id="sign-in"')), 'the provider’s login page was not recorded');
  const back = recorded.find((r) => r.url.startsWith(`${url(CALLBACK)}?`) && new URL(r.url).searchParams.get('state') === q.get('state'));
  assert.ok(back, 'the callback with this flow’s state was not recorded');
  assert.ok(new URL(back.url).searchParams.get('code'), back.url);
  assert.equal(back.status, 303);
  return id;
}

test('a member connects Slack and Google through the provider’s own pages', async () => {
  await inContext('connect', async (ctx, page) => {
    await signIn(page);
    await page.goto(url('/console/integrations'));
    // Nothing is connected yet; a form for each configured provider.
    assert.match(await page.locator('table tbody').textContent(), /None yet\./);
    await screenshot(page, 'connections-integrations');

    made.slack = await connect(ctx, page, SLACK, 'Team Slack');
    made.gmail = await connect(ctx, page, GOOGLE, 'Ops Gmail', async (p) => {
      await p.locator('#connect-google-send-as').fill(owner.email);
    });
    assert.notEqual(made.slack, made.gmail);

    // Both are listed, each linked to its page, with the provider it was connected through.
    await page.goto(url('/console/integrations'));
    const columns = (await page.locator('table thead th').allTextContents()).map((t) => t.trim());
    const [kindAt, throughAt] = [columns.indexOf('Kind'), columns.indexOf('Connected through')];
    assert.ok(kindAt >= 0 && throughAt >= 0, `columns: ${columns}`);
    for (const [id, which] of [[made.slack, SLACK], [made.gmail, GOOGLE]]) {
      const row = page.locator('table tbody tr', { has: page.locator(`a[href="/console/integrations/${id}"]`) });
      assert.equal(await row.count(), 1, `${id} is not listed once`);
      const cells = (await row.locator('td').allTextContents()).map((t) => t.trim());
      assert.deepEqual([cells[kindAt], cells[throughAt]], [which.kind, which.title.toLowerCase()], `the row of ${id}: ${cells}`);
    }
  });

  // The API agrees: connected, tokens set (never shown), the sender's address masked.
  const gmail = await server.api(`/v1/integrations/${made.gmail}`, { key: workspace.key });
  assert.equal(gmail.status, 200, gmail.text);
  assert.equal(gmail.json.kind, 'gmail');
  assert.equal(gmail.json.connected_through, 'google');
  assert.deepEqual(gmail.json.credentials_set, ['access_token', 'refresh_token']);
  const slack = await server.api(`/v1/integrations/${made.slack}`, { key: workspace.key });
  assert.equal(slack.json.kind, 'slack', slack.text);
  assert.equal(slack.json.connected_through, 'slack');
  // An access and a refresh token for each: the canaries searched for in what the browser got.
  const kinds = (await tokenCanaries()).map((t) => t.name).sort();
  assert.deepEqual(kinds, [`${GOOGLE.id} AccessToken`, `${GOOGLE.id} RefreshToken`, `${SLACK.id} AccessToken`, `${SLACK.id} RefreshToken`]);
  // Each code was exchanged once, with its PKCE verifier, by its own client.
  const exchanges = (await fromProvider('/__test/log')).filter((e) => e.endpoint === 'token');
  assert.deepEqual(
    exchanges.map((e) => [e.client_id, e.grant_type, e.had_code_verifier, e.ok]),
    [[SLACK.id, 'authorization_code', true, true], [GOOGLE.id, 'authorization_code', true, true]],
  );
});

/** Polls the notification until it is delivered (fails at once if it failed). */
async function waitDelivered(id) {
  const until = Date.now() + DELIVERY_DEADLINE_MS;
  for (;;) {
    const r = await server.api(`/v1/notifications/${id}`, { key: workspace.key });
    assert.equal(r.status, 200, r.text);
    if (r.json.status === 'delivered') return r.json;
    assert.notEqual(r.json.status, 'failed', `notification ${id} failed: ${r.text}`);
    assert.ok(Date.now() < until, `notification ${id} was not delivered within ${DELIVERY_DEADLINE_MS} ms: ${r.text}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

test('a workflow’s message goes through each connection', async () => {
  assert.ok(made.slack && made.gmail, 'the connections of the first test are missing');
  const key = workspace.key;
  const post = async (p, body, status) => {
    const r = await server.api(p, { method: 'POST', key, body });
    assert.equal(r.status, status, `POST ${p}: ${r.text}`);
    return r.json;
  };
  await post('/v1/workflows', {
    key: 'order.shipped',
    steps: [
      { channel: 'email', integration_id: made.gmail, subject: 'Order {{ data.order }} shipped', text: 'Hi {{ subscriber.name }}' },
      { channel: 'slack', integration_id: made.slack, text: 'Order {{ data.order }} for {{ subscriber.name }}' },
    ],
  }, 201);
  const ann = await post('/v1/subscribers', { external_id: 'ann', attributes: { name: 'Ann' } }, 201);
  await post(`/v1/subscribers/${ann.id}/channels`, { type: 'email', address: CUSTOMER_EMAIL }, 201);
  await post(`/v1/subscribers/${ann.id}/channels`, { type: 'slack', channel_id: SLACK_CHANNEL }, 201);
  const event = await post('/v1/events', { name: 'order.shipped', to: ['ann'], data: { order: 7 } }, 202);
  assert.equal(event.notifications.length, 2, JSON.stringify(event));
  for (const id of event.notifications) await waitDelivered(id);

  const sent = await fromProvider('/__test/messages');
  const slack = sent.filter((m) => m.api === 'slack');
  assert.deepEqual(slack.map(({ channel, text, client_id }) => ({ channel, text, client_id })), [
    { channel: SLACK_CHANNEL, text: 'Order 7 for Ann', client_id: SLACK.id },
  ]);
  const mail = sent.filter((m) => m.api === 'gmail');
  assert.deepEqual(mail.map(({ to, subject_decoded, client_id }) => ({ to, subject_decoded, client_id })), [
    { to: CUSTOMER_EMAIL, subject_decoded: 'Order 7 shipped', client_id: GOOGLE.id },
  ]);
  assert.match(mail[0].raw, /Hi Ann/);
});

test('“Disconnect and delete” revokes Google’s grant at the provider and deletes the integration', async () => {
  assert.ok(made.slack && made.gmail, 'the connections of the first test are missing');
  assert.deepEqual(await fromProvider(`/__test/live-tokens?client_id=${GOOGLE.id}`), { access: 1, refresh: 1 });
  await inContext('disconnect', async (ctx, page) => {
    await signIn(page);
    await page.goto(url(`/console/integrations/${made.gmail}`));
    const button = page.getByRole('button', { name: 'Disconnect and delete' });
    // The form asks before it is sent (data-confirm, see console.js); the person says yes.
    const asks = await button.locator('xpath=ancestor::form[1]').getAttribute('data-confirm');
    assert.match(asks ?? '', /revoked at the provider/);
    await button.click();
    await page.waitForURL(url('/console/integrations'));
    assert.deepEqual(page.dialogs, [asks]);
    await screenshot(page, 'connections-disconnected');

    // Google is gone from the list; Slack is still there.
    const links = await page.locator('table tbody a').evaluateAll((as) => as.map((a) => a.getAttribute('href')));
    assert.deepEqual(links, [`/console/integrations/${made.slack}`]);
    const gone = await page.goto(url(`/console/integrations/${made.gmail}`));
    assert.equal(gone.status(), 404);
  });

  assert.deepEqual(await fromProvider(`/__test/live-tokens?client_id=${GOOGLE.id}`), { access: 0, refresh: 0 });
  const revokes = (await fromProvider('/__test/log')).filter((e) => e.endpoint === 'google.revoke');
  assert.deepEqual(revokes.map((e) => [e.ok, e.client_id]), [[true, GOOGLE.id]]);
  // Slack's grant is untouched.
  assert.deepEqual(await fromProvider(`/__test/live-tokens?client_id=${SLACK.id}`), { access: 1, refresh: 1 });
  const r = await server.api(`/v1/integrations/${made.gmail}`, { key: workspace.key });
  assert.equal(r.status, 404, r.text);

  // Neither secret nor any token is in the server's log.
  for (const c of [...canaries.slice(0, 2), ...(await tokenCanaries())]) {
    assert.ok(!server.log().includes(c.value), `${c.name} is in the server log`);
  }
});
