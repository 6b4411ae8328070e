// The console in headless Chromium: sign-in, the overview, API keys, sign-out, sessions per
// browser, and no planted canary in anything the browser receives. One server and one browser
// for the whole file; a fresh browser context (a new person's browser) per test.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';

import { launchBrowser, screenshot } from './lib/browser.js';
import { assertNoCanary, canaryToken } from './lib/canary.js';
import { startReceiver } from './lib/receiver.js';
import { PAGES, pagePath, plantCanaries } from './lib/sensitive.js';
import { startServer } from './lib/server.js';

const WRONG = 'The email or password is not right.';
const SESSION_COOKIES = ['__Host-chimatic_session', 'chimatic_session'];

let server;
let browser;
let receiver;
let workspace;
let owner;
/** Every planted canary, and the owner's own secrets: none may ever reach a browser. */
let canaries;
/** A planted record of each kind a detail page shows. */
let ids;

/** A password that meets the console's standard (12+ characters, not common). */
const password = () => `Pw-${randomBytes(12).toString('base64url')}-9`;

before(async () => {
  receiver = await startReceiver();
  server = await startServer({ name: 'console' });
  browser = await launchBrowser();
  workspace = await server.createWorkspace('Acme Browser Tests');
  const local = canaryToken('owner');
  owner = { email: `${local}@example.com`, password: password(), masked: `${local.slice(0, 3)}…@…` };
  owner.user = await server.createUser({ email: owner.email, workspace, role: 'owner', password: owner.password });
  const planted = await plantCanaries(server, workspace.key, receiver.url);
  ids = planted.ids;
  canaries = [
    ...planted.canaries,
    { name: 'owner email local part', value: local },
    { name: 'owner password', value: owner.password },
    { name: 'workspace owner API key', value: workspace.key },
  ];
});

after(async () => {
  await browser?.close();
  await server?.stop();
  await receiver?.close();
});

const url = (path) => new URL(path, server.url).href;

/** Runs `body(ctx, page)` in a fresh context, then checks it for canaries and page problems. */
async function inContext(body, { extraCanaries = [] } = {}) {
  const ctx = await browser.newContext();
  try {
    const page = await ctx.page();
    await body(ctx, page);
    assertNoCanary(await ctx.recorded(), [...canaries, ...extraCanaries]);
    assert.deepEqual(ctx.problems(), [], 'the pages had errors or failed requests');
  } finally {
    await ctx.close();
  }
}

/** Signs in through the form, as a person would, and waits for the overview. */
async function signIn(page, user) {
  await page.goto(url('/console/sign-in'));
  await page.getByLabel('Email').fill(user.email);
  await page.getByLabel('Password').fill(user.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(url('/console/'));
}

/** Submits the sign-in form expecting a refusal; returns the POST's response and the alert. */
async function failSignIn(page, email, pw) {
  await page.goto(url('/console/sign-in'));
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(pw);
  const [resp] = await Promise.all([
    page.waitForResponse((r) => r.url() === url('/console/sign-in') && r.request().method() === 'POST'),
    page.getByRole('button', { name: 'Sign in' }).click(),
  ]);
  const alert = (await page.getByRole('alert').textContent()).trim();
  return { status: resp.status(), body: await resp.text(), alert };
}

async function sessionCookies(ctx) {
  return (await ctx.cookies()).filter((c) => SESSION_COOKIES.includes(c.name));
}

test('the CLI bootstraps a workspace and its owner', async () => {
  assert.match(workspace.id, /^ws_[0-9a-f]{32}$/);
  assert.match(workspace.key, /^chm_/);
  assert.match(owner.user.userId, /^usr_[0-9a-f]{32}$/);
  assert.deepEqual([owner.user.workspaceId, owner.user.role], [workspace.id, 'owner']);
  const ws = await server.api('/v1/workspace', { key: workspace.key });
  assert.equal(ws.status, 200, ws.text);
  assert.equal(ws.json.name, workspace.name);
  // The password standard is the CLI's too: one containing the email's local part is refused.
  const local = canaryToken('weak');
  await assert.rejects(
    server.createUser({ email: `${local}@example.com`, workspace, role: 'viewer', password: `${local}-extra-long` }),
    /local part|email/i,
  );
});

test('an owner signs in through the form and lands on the overview', async () => {
  await inContext(async (ctx, page) => {
    // Not signed in: the console sends the browser to the sign-in page.
    await page.goto(url('/console/'));
    assert.equal(page.url(), url('/console/sign-in'));
    await assert.doesNotReject(page.getByRole('heading', { name: 'Sign in to Chimatic' }).waitFor());
    await screenshot(page, 'sign-in');

    await signIn(page, owner);
    assert.equal(await page.getByRole('heading', { level: 1 }).textContent(), 'Overview');
    const header = await page.locator('header').textContent();
    assert.ok(header.includes(workspace.name), header);
    assert.ok(header.includes(`${owner.masked} · owner`), header);
    await page.getByRole('img', { name: 'Delivered and failed notifications per day' }).waitFor();
    await screenshot(page, 'overview');

    // The session cookie: host-only, HttpOnly, Secure (loopback is a secure context), Lax;
    // the pre-session cookie of the form is gone.
    const cookies = await ctx.cookies();
    assert.deepEqual(
      cookies.map((c) => [c.name, c.httpOnly, c.secure, c.sameSite, c.path]),
      [['__Host-chimatic_session', true, true, 'Lax', '/']],
    );
    // Every console response carries the security headers.
    for (const r of (await ctx.recorded()).filter((r) => new URL(r.url).pathname.startsWith('/console/'))) {
      const h = Object.fromEntries(r.headers.map((x) => [x.name.toLowerCase(), x.value]));
      assert.match(h['content-security-policy'] ?? '', /default-src 'self'/, r.url);
      assert.equal(h['x-content-type-options'], 'nosniff', r.url);
      assert.equal(h['x-frame-options'], 'DENY', r.url);
    }
  });
});

test('a wrong password and an unknown email get the same generic answer', async () => {
  await inContext(async (ctx, page) => {
    const wrong = await failSignIn(page, owner.email, password());
    const unknown = await failSignIn(page, `${canaryToken('nobody')}@example.com`, password());
    assert.equal(wrong.alert, WRONG);
    assert.equal(wrong.status, 401);
    // Byte for byte the same page (same pre-session, so the same CSRF token): nothing tells
    // whether the account exists.
    assert.deepEqual(unknown, wrong);
    assert.equal(await page.getByLabel('Password').inputValue(), '', 'the password is not sent back');
    await screenshot(page, 'sign-in-failed');
    assert.deepEqual(await sessionCookies(ctx), []);
    await page.goto(url('/console/'));
    assert.equal(page.url(), url('/console/sign-in'));
  });
});

test('an API key is created from the page, shown once, works, and stops working once revoked', async () => {
  const name = `browser key ${randomBytes(3).toString('hex')}`;
  let key;
  await inContext(async (ctx, page) => {
    await signIn(page, owner);
    await page.getByRole('link', { name: 'API keys' }).click();
    await page.waitForURL(url('/console/api-keys'));
    await page.getByLabel('Name').fill(name);
    await page.getByLabel('Access').selectOption('read');
    await page.getByRole('button', { name: 'Create' }).click();
    const shown = page.getByRole('status');
    await shown.getByRole('heading', { name: `Key “${name}” created` }).waitFor();
    key = (await shown.locator('code').textContent()).trim();
    assert.match(key, /^chm_[A-Za-z0-9_-]{20,}$/);
    // The console's script adds a Copy button that puts exactly the key on the clipboard.
    await ctx.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: new URL(server.url).origin });
    await shown.getByRole('button', { name: 'Copy' }).click();
    await shown.getByRole('button', { name: 'Copied' }).waitFor();
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), key);
    await screenshot(page, 'api-keys');

    // The key works against the API.
    const channels = await server.api('/v1/channels', { key });
    assert.equal(channels.status, 200, channels.text);
    assert.ok(channels.json.data.length >= 1, channels.text);

    // Back on the page: only its last four characters.
    await page.goto(url('/console/api-keys'));
    const html = await page.content();
    assert.ok(!html.includes(key), 'the full key is on the page again');
    const row = page.getByRole('row').filter({ hasText: name });
    assert.equal(await row.count(), 1);
    assert.equal((await row.locator('code').textContent()).trim(), `…${key.slice(-4)}`);
    await assert.doesNotReject(row.getByText('active', { exact: true }).waitFor());

    // The key reached the browser once, in the response to its creation, and nowhere else:
    // assertNoCanary finds it there (which also shows the recording sees page bodies).
    const recorded = await ctx.recorded();
    const created = recorded.filter((r) => r.method === 'POST' && r.url === url('/console/api-keys'));
    assert.equal(created.length, 1);
    assert.throws(
      () => assertNoCanary(recorded, [{ name: 'the new key', value: key }]),
      (e) => e.message.includes('canary "the new key"') && e.message.includes(`POST ${url('/console/api-keys')}`),
    );
    assertNoCanary(recorded.filter((r) => !created.includes(r)), [{ name: 'the new key', value: key }]);

    // Revoked from the page: the API refuses it on its next request.
    await row.getByRole('button', { name: 'Revoke' }).click();
    await page.waitForURL(url('/console/api-keys'));
    assert.deepEqual(page.dialogs, ['Revoke this key? Requests with it fail from now on.'], 'it asked first');
    const revoked = page.getByRole('row').filter({ hasText: name });
    await assert.doesNotReject(revoked.getByText('revoked', { exact: true }).waitFor());
    assert.equal(await revoked.getByRole('button', { name: 'Revoke' }).count(), 0);
    const refused = await server.api('/v1/channels', { key });
    assert.equal(refused.status, 401, refused.text);
  });
});

test('no canary reaches the browser on any console page', async () => {
  await inContext(async (ctx, page) => {
    const visit = async (p) => {
      const path = pagePath(p, ids);
      const resp = await page.goto(url(path));
      assert.equal(resp.status(), p.status, `${path}: ${resp.status()}`);
      assert.equal(page.url(), url(path), `${path} sent the browser elsewhere`);
      await screenshot(page, p.name);
    };
    for (const p of PAGES.filter((p) => !p.signedIn)) await visit(p);
    await signIn(page, owner);
    for (const p of PAGES.filter((p) => p.signedIn)) await visit(p);
    await page.goto(url('/console/'));
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL(url('/console/sign-in'));

    const recorded = await ctx.recorded();
    for (const p of PAGES) {
      assert.ok(
        recorded.some((r) => r.url === url(pagePath(p, ids)) && r.body?.includes('</html>')),
        `the page ${p.path} was not recorded with its body`,
      );
    }
    assert.ok(canaries.length >= 25, `only ${canaries.length} canaries were planted`);
    // (inContext searches everything recorded for every canary.)
  });
});

test('signing out removes the session cookie and /console/ goes back to the sign-in page', async () => {
  let old;
  await inContext(async (ctx, page) => {
    await signIn(page, owner);
    [old] = await sessionCookies(ctx);
    assert.ok(old, 'no session cookie after signing in');
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL(url('/console/sign-in'));
    assert.deepEqual(await sessionCookies(ctx), []);

    await page.goto(url('/console/'));
    assert.equal(page.url(), url('/console/sign-in'));
    const hop = (await ctx.recorded()).findLast((r) => r.method === 'GET' && r.url === url('/console/'));
    const location = hop.headers.find((h) => h.name.toLowerCase() === 'location')?.value;
    assert.deepEqual([hop.status, location], [303, '/console/sign-in']);
  });
  // The old cookie, put back by hand, is worthless: the session ended on the server.
  await inContext(async (ctx, page) => {
    await ctx.addCookies([old]); // as ctx.cookies() gave it: host-only on 127.0.0.1, Secure, HttpOnly
    await page.goto(url('/console/api-keys'));
    assert.equal(page.url(), url('/console/sign-in'));
  }, { extraCanaries: [{ name: 'the ended session cookie', value: old.value }] });
});

test('a second browser context does not share the first one’s session', async () => {
  const local = `viewer-${randomBytes(4).toString('hex')}`;
  const viewer = { email: `${local}@example.com`, password: password() };
  await server.createUser({ email: viewer.email, workspace, role: 'viewer', password: viewer.password });
  const a = await browser.newContext();
  const b = await browser.newContext();
  try {
    const pa = await a.page();
    const pb = await b.page();
    await signIn(pa, owner);
    // B has nothing of A's session.
    assert.deepEqual(await sessionCookies(b), []);
    await pb.goto(url('/console/'));
    assert.equal(pb.url(), url('/console/sign-in'));

    await signIn(pb, viewer);
    const [ca] = await sessionCookies(a);
    const [cb] = await sessionCookies(b);
    assert.notEqual(ca.value, cb.value);
    assert.ok((await pb.locator('header').textContent()).includes(`${local.slice(0, 3)}…@… · viewer`));
    assert.equal(await pb.getByRole('link', { name: 'API keys' }).count(), 0, 'a viewer is offered API keys');
    const forbidden = await pb.goto(url('/console/api-keys'));
    assert.equal(forbidden.status(), 403);

    // A is still the owner, and stays signed in when B signs out.
    await pa.reload();
    assert.ok((await pa.locator('header').textContent()).includes(`${owner.masked} · owner`));
    await pb.goto(url('/console/'));
    await pb.getByRole('button', { name: 'Sign out' }).click();
    await pb.waitForURL(url('/console/sign-in'));
    const still = await pa.goto(url('/console/api-keys'));
    assert.deepEqual([still.status(), pa.url()], [200, url('/console/api-keys')]);

    for (const ctx of [a, b]) {
      assertNoCanary(await ctx.recorded(), [...canaries, { name: 'viewer password', value: viewer.password }]);
      assert.deepEqual(ctx.problems(), []);
    }
  } finally {
    await a.close();
    await b.close();
  }
});

test('the server’s log holds no canary either', async () => {
  const log = server.log();
  assert.match(log, /listening on/);
  const found = canaries.filter((c) => log.includes(c.value)).map((c) => c.name);
  assert.deepEqual(found, [], 'canaries in the server log');
});
