// Signing in to the console through an OpenID Connect provider, in headless Chromium: the real
// test provider (tests/oidc, npm oidc-provider) on 127.0.0.1, its own login page, back to the
// console signed in; a flow finished in another browser is refused there and still good in its
// own. The client secret never reaches a browser, not even in the provider's pages.

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

const CLIENT_ID = 'chimatic-console';
const CALLBACK = '/console/sign-in/oidc/callback';
const SESSION_COOKIE = '__Host-chimatic_session';
/** Attempts at the port dance below before giving up. */
const ATTEMPTS = 3;

let server;
let provider;
let browser;
let secretDir;
let workspace;
/** The console's client secret at the provider: only the server and the provider know it. */
const clientSecret = canaryToken('client-secret');
const owner = { email: 'olga.owner@example.com', password: `Pw-${randomBytes(12).toString('base64url')}-5`, masked: 'olg…@…' };
let canaries;

before(async () => {
  secretDir = mkdtempSync(path.join(os.tmpdir(), 'chimatic-sso-'));
  const secretFile = path.join(secretDir, 'oidc-client-secret');
  writeFileSync(secretFile, `${clientSecret}\n`, { mode: 0o600 });
  // The server needs the issuer's URL when it starts, the provider the server's callback URL:
  // the provider's port is picked first and bound last. Someone may take it in between; then
  // both start again on other ports.
  for (let attempt = 1; ; attempt++) {
    const port = await reservePort();
    server = await startServer({
      name: 'sso',
      env: {
        CHIMATIC_OIDC_ISSUER: `http://127.0.0.1:${port}`,
        CHIMATIC_OIDC_CLIENT_ID: CLIENT_ID,
        CHIMATIC_OIDC_CLIENT_SECRET_FILE: secretFile,
        CHIMATIC_OIDC_NAME: 'Test IdP',
      },
    });
    try {
      provider = await startProvider(
        {
          port,
          clients: [{ client_id: CLIENT_ID, client_secret: clientSecret, redirect_uris: [url(CALLBACK)], scope: 'openid email' }],
          accounts: [{ sub: 'olga-1', email: owner.email, email_verified: true }],
        },
        { name: 'sso-provider' },
      );
      assert.equal(provider.issuer, `http://127.0.0.1:${port}`);
      break;
    } catch (e) {
      await server.stop();
      server = undefined;
      if (attempt === ATTEMPTS) throw e;
    }
  }
  browser = await launchBrowser();
  workspace = await server.createWorkspace('Acme Single Sign-On');
  // Made by the CLI with a password; the provider's account has the same verified email.
  await server.createUser({ email: owner.email, workspace, role: 'owner', password: owner.password });
  canaries = [
    { name: 'OIDC client secret', value: clientSecret },
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

/** The provider's login page: on the provider's origin, at /interaction/UID. */
const atProvider = (u) => u.origin === provider.issuer && u.pathname.startsWith('/interaction/');

/** From the console's sign-in page to the provider's login page. */
async function startAtProvider(ctx, page) {
  await page.goto(url('/console/sign-in'));
  const button = page.getByRole('link', { name: 'Sign in with Test IdP' });
  assert.equal(await button.getAttribute('id'), 'sign-in-oidc');
  await button.click();
  // A browser that refuses to go (a Content-Security-Policy, say) says why only in its console.
  await page.waitForURL(atProvider, { timeout: 10_000 }).catch((e) => {
    throw new Error(`the browser did not reach the provider's login page (${page.url()}): ${ctx.problems().join('; ') || e.message}`);
  });
}

async function sessionCookies(ctx) {
  return (await ctx.cookies()).filter((c) => c.name === SESSION_COOKIE);
}

/** Everything the context received is free of canaries, and its pages had no problems. */
async function assertClean(ctx) {
  assertNoCanary(await ctx.recorded(), canaries);
  assert.deepEqual(ctx.problems(), [], 'the pages had errors or failed requests');
}

test('a member signs in with the identity provider through its own pages', async () => {
  const ctx = await browser.newContext();
  try {
    const page = await ctx.page();
    await startAtProvider(ctx, page);
    await page.locator('#email').waitFor();
    await screenshot(page, 'sso-provider');
    await page.locator('#email').fill(owner.email);
    await page.locator('#sign-in').click();
    await page.waitForURL(url('/console/'));

    assert.equal(await page.getByRole('heading', { level: 1 }).textContent(), 'Overview');
    const header = await page.locator('header').textContent();
    assert.ok(header.includes(workspace.name), header);
    assert.ok(header.includes(`${owner.masked} · owner`), header);
    assert.equal((await sessionCookies(ctx)).length, 1, 'no session cookie after signing in');
    await screenshot(page, 'sso-signed-in');

    // The provider's own pages were recorded too, so the search below covers them.
    const recorded = await ctx.recorded();
    assert.ok(
      recorded.some((r) => atProvider(new URL(r.url)) && r.body?.includes('id="sign-in"')),
      'the provider’s login page was not recorded with its body',
    );
    await assertClean(ctx);
  } finally {
    await ctx.close();
  }
});

test('a sign-in that comes back to another browser is refused', async () => {
  const a = await browser.newContext();
  const b = await browser.newContext();
  try {
    const pa = await a.page();
    await startAtProvider(a, pa);
    // The provider sends A back to the callback: keep that URL and stop A there, as if it had
    // been carried to another browser. (The callback is the second hop of a redirect chain,
    // which page.route() does not see; the recording does.)
    const comeBack = a.stopRedirect((u) => u.startsWith(url(CALLBACK)));
    await pa.locator('#email').fill(owner.email);
    await pa.locator('#sign-in').click();
    const captured = await comeBack;
    assert.ok(captured.startsWith(`${url(CALLBACK)}?`), captured);
    assert.match(new URL(captured).searchParams.get('state') ?? '', /.{20,}/);
    assert.deepEqual(await sessionCookies(a), []);

    // B has its own pre-session (it visited the sign-in page), not A's: refused, nobody signed in.
    const pb = await b.page();
    await pb.goto(url('/console/sign-in'));
    const refused = await pb.goto(captured);
    assert.equal(refused.status(), 400);
    assert.match(await pb.getByRole('alert').textContent(), /could not be completed/);
    await pb.getByRole('link', { name: 'Sign in with Test IdP' }).waitFor();
    await screenshot(pb, 'sso-other-browser');
    assert.deepEqual(await sessionCookies(b), []);
    await pb.goto(url('/console/'));
    assert.equal(pb.url(), url('/console/sign-in'));

    // The flow is still A's: the same URL signs A in.
    await pa.goto(captured);
    await pa.waitForURL(url('/console/'));
    assert.ok((await pa.locator('header').textContent()).includes(`${owner.masked} · owner`));
    assert.equal((await sessionCookies(a)).length, 1);

    for (const ctx of [a, b]) await assertClean(ctx);
  } finally {
    await a.close();
    await b.close();
  }
});
