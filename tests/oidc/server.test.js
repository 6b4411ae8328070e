// Drives tests/oidc/server.js the way the Rust tests will: plain HTTP, a tiny
// cookie jar, redirects followed by hand. Run: node --test tests/oidc/
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createRemoteJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose';

const here = path.dirname(fileURLToPath(import.meta.url));
const CLIENT_ID = 'chimatic-console';
const CLIENT_SECRET = 'test-secret-123';
const REDIRECT_URI = 'http://127.0.0.1:1234/console/sign-in/oidc/callback';
const ACCOUNT = { sub: 'u1', email: 'ann@example.com', email_verified: true, name: 'Ann' };
const CONSOLE = { client_id: CLIENT_ID, client_secret: CLIENT_SECRET, redirect_uri: REDIRECT_URI };
// Stand-ins of Slack's and Google's OAuth 2.0 clients (no openid).
const SLACK = { client_id: 'chimatic-slack', client_secret: 'slack-secret-456',
  redirect_uri: 'http://127.0.0.1:1234/console/integrations/slack/callback' };
const GMAIL = { client_id: 'chimatic-gmail', client_secret: 'gmail-secret-789',
  redirect_uri: 'http://127.0.0.1:1234/console/integrations/gmail/callback', auth: 'post' };
const GMAIL_SCOPE = 'https://www.googleapis.com/auth/gmail.send';
const SHORT = { client_id: 'chimatic-short', client_secret: 'short-secret',
  redirect_uri: 'http://127.0.0.1:1234/console/integrations/short/callback' };

let child;
let dir;
let issuer;

before(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'chimatic-oidc-'));
  const configPath = path.join(dir, 'config.json');
  writeFileSync(configPath, JSON.stringify({
    port: 0,
    clients: [
      { client_id: CLIENT_ID, client_secret: CLIENT_SECRET, redirect_uris: [REDIRECT_URI],
        scope: 'openid email profile offline_access' },
      { client_id: SLACK.client_id, client_secret: SLACK.client_secret, redirect_uris: [SLACK.redirect_uri],
        scope: 'chat:write' },
      { client_id: GMAIL.client_id, client_secret: GMAIL.client_secret, redirect_uris: [GMAIL.redirect_uri],
        scope: GMAIL_SCOPE, token_endpoint_auth_method: 'client_secret_post', access_token_ttl: 120 },
      { client_id: SHORT.client_id, client_secret: SHORT.client_secret, redirect_uris: [SHORT.redirect_uri],
        scope: 'chat:write', access_token_ttl: 1 },
    ],
    accounts: [ACCOUNT],
  }));
  child = spawn(process.execPath, [path.join(here, 'server.js'), configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  issuer = await new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout });
    lines.once('line', (line) => {
      const m = line.match(/^ready (http:\/\/127\.0\.0\.1:\d+)$/);
      if (m) resolve(m[1]); else reject(new Error(`unexpected first line: ${line}`));
    });
    child.once('exit', (code) => reject(new Error(`server exited ${code}: ${stderr}`)));
  });
});

after(() => {
  child?.kill('SIGTERM');
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function cookieJar() {
  const jar = new Map();
  return {
    store(res) {
      for (const c of res.headers.getSetCookie()) {
        const [pair] = c.split(';');
        const i = pair.indexOf('=');
        const name = pair.slice(0, i);
        const value = pair.slice(i + 1);
        if (value === '' || /expires=Thu, 01 Jan 1970/i.test(c)) jar.delete(name); else jar.set(name, value);
      }
    },
    header() { return [...jar].map(([k, v]) => `${k}=${v}`).join('; '); },
  };
}

// One request with the jar; never follows redirects.
async function send(jar, url, init = {}) {
  const res = await fetch(new URL(url, issuer), {
    ...init, redirect: 'manual', headers: { ...(init.headers ?? {}), cookie: jar.header() },
  });
  jar.store(res);
  return res;
}

function pkcePair() {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

function basic(client = CONSOLE) {
  return `Basic ${Buffer.from(`${encodeURIComponent(client.client_id)}:${encodeURIComponent(client.client_secret)}`).toString('base64')}`;
}

// client_secret_basic, or client_secret_post for a client with auth: 'post'.
async function tokenRequest(params, client = CONSOLE) {
  const post = client.auth === 'post';
  const res = await fetch(`${issuer}/token`, {
    method: 'POST',
    headers: { ...(post ? {} : { authorization: basic(client) }), 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ ...params, ...(post ? { client_id: client.client_id, client_secret: client.client_secret } : {}) }),
  });
  return { status: res.status, body: await res.json() };
}

// authorize -> /interaction/:uid (form) -> POST login -> /auth/:uid -> redirect_uri?code&state
// A scope without openid is a plain OAuth 2.0 request: no nonce is sent.
async function signIn({ scope = 'openid email profile offline_access', prompt = 'consent', client = CONSOLE,
  extra = {} } = {}) {
  const jar = cookieJar();
  const { verifier, challenge } = pkcePair();
  const state = randomBytes(12).toString('base64url');
  const openid = scope.split(' ').includes('openid');
  const nonce = openid ? randomBytes(12).toString('base64url') : undefined;
  const auth = new URL(`${issuer}/auth`);
  auth.search = new URLSearchParams({
    client_id: client.client_id, response_type: 'code', redirect_uri: client.redirect_uri, scope, state,
    ...(openid ? { nonce } : {}), code_challenge: challenge, code_challenge_method: 'S256',
    ...(prompt ? { prompt } : {}), ...extra,
  });
  let res = await send(jar, auth);
  assert.equal(res.status, 303);
  const interaction = new URL(res.headers.get('location'), issuer);
  assert.match(interaction.pathname, /^\/interaction\/[^/]+$/);

  res = await send(jar, interaction);
  assert.equal(res.status, 200);
  const html = await res.text();
  assert.match(html, /id="email"/);
  assert.match(html, /id="sign-in"/);
  const action = html.match(/<form method="post" action="([^"]+)"/)[1];
  assert.equal(action, `${interaction.pathname}/login`);

  res = await send(jar, action, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ email: 'nobody@example.com' }) });
  assert.equal(res.status, 401);
  await res.text();

  res = await send(jar, action, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ email: ACCOUNT.email }) });
  assert.equal(res.status, 303);
  const resume = new URL(res.headers.get('location'), issuer);
  assert.match(resume.pathname, /^\/auth\/[^/]+$/);

  res = await send(jar, resume);
  assert.equal(res.status, 303);
  const callback = new URL(res.headers.get('location'));
  assert.equal(`${callback.origin}${callback.pathname}`, client.redirect_uri);
  assert.equal(callback.searchParams.get('state'), state);
  assert.equal(callback.searchParams.get('iss'), issuer);
  const code = callback.searchParams.get('code');
  assert.ok(code);
  return { code, verifier, nonce, jar };
}

function redeem(code, verifier, client = CONSOLE) {
  return tokenRequest({ grant_type: 'authorization_code', code, redirect_uri: client.redirect_uri,
    ...(verifier === undefined ? {} : { code_verifier: verifier }) }, client);
}

async function setTamper(mode) {
  const res = await fetch(`${issuer}/__test/tamper`, { method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ id_token: mode }) });
  assert.equal(res.status, 200);
  await res.json();
}

async function getLog() {
  return (await fetch(`${issuer}/__test/log`)).json();
}

test('discovery issuer is the ready URL, S256 only', async () => {
  const d = await (await fetch(`${issuer}/.well-known/openid-configuration`)).json();
  assert.equal(d.issuer, issuer);
  assert.deepEqual(d.code_challenge_methods_supported, ['S256']);
  assert.deepEqual(d.response_types_supported, ['code']);
  assert.equal(d.token_endpoint, `${issuer}/token`);
  assert.equal(d.revocation_endpoint, `${issuer}/token/revocation`);
});

let refreshToken;

test('code flow with PKCE S256 and nonce, client_secret_basic', async () => {
  await fetch(`${issuer}/__test/reset-log`, { method: 'POST' });
  const { code, verifier, nonce } = await signIn();
  const { status, body } = await redeem(code, verifier);
  assert.equal(status, 200, JSON.stringify(body));
  assert.ok(body.access_token);
  assert.ok(body.refresh_token);
  assert.ok(body.id_token);
  const claims = decodeJwt(body.id_token);
  assert.equal(claims.iss, issuer);
  assert.equal(claims.aud, CLIENT_ID);
  assert.equal(claims.sub, ACCOUNT.sub);
  assert.equal(claims.email, ACCOUNT.email);
  assert.equal(claims.email_verified, true);
  assert.equal(claims.name, ACCOUNT.name);
  assert.equal(claims.nonce, nonce);
  const { payload } = await jwtVerify(body.id_token, createRemoteJWKSet(new URL(`${issuer}/jwks`)), { issuer, audience: CLIENT_ID });
  assert.equal(payload.sub, ACCOUNT.sub);
  refreshToken = body.refresh_token;

  const log = await getLog();
  assert.deepEqual(log, [{ endpoint: 'token', grant_type: 'authorization_code', client_id: CLIENT_ID,
    had_code_verifier: true, ok: true, error: null }]);
});

test('wrong or missing code_verifier is refused with invalid_grant', async () => {
  await fetch(`${issuer}/__test/reset-log`, { method: 'POST' });
  let { code } = await signIn();
  let r = await redeem(code, pkcePair().verifier);
  assert.equal(r.status, 400);
  assert.equal(r.body.error, 'invalid_grant');
  ({ code } = await signIn());
  r = await redeem(code, undefined);
  assert.equal(r.status, 400);
  assert.equal(r.body.error, 'invalid_grant');
  const log = await getLog();
  assert.deepEqual(log.map((e) => [e.had_code_verifier, e.ok, e.error]),
    [[true, false, 'invalid_grant'], [false, false, 'invalid_grant']]);
});

test('authorize without PKCE is refused', async () => {
  const res = await send(cookieJar(), `${issuer}/auth?${new URLSearchParams({ client_id: CLIENT_ID, response_type: 'code',
    redirect_uri: REDIRECT_URI, scope: 'openid', state: 's' })}`);
  assert.equal(res.status, 303);
  const loc = new URL(res.headers.get('location'));
  assert.equal(loc.searchParams.get('error'), 'invalid_request');
});

test('unregistered redirect_uri is refused without redirecting to it', async () => {
  for (const bad of ['http://127.0.0.1:9999/evil', `${REDIRECT_URI}/x`, `${REDIRECT_URI}?x=1`]) {
    const { challenge } = pkcePair();
    const res = await send(cookieJar(), `${issuer}/auth?${new URLSearchParams({ client_id: CLIENT_ID, response_type: 'code',
      redirect_uri: bad, scope: 'openid', state: 's', code_challenge: challenge, code_challenge_method: 'S256' })}`);
    assert.equal(res.status, 400, bad);
    assert.equal(res.headers.get('location'), null);
    assert.match(await res.text(), /redirect_uri/);
  }
});

test('refresh grant and revocation', async () => {
  assert.ok(refreshToken);
  await fetch(`${issuer}/__test/reset-log`, { method: 'POST' });
  const r = await tokenRequest({ grant_type: 'refresh_token', refresh_token: refreshToken });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.ok(r.body.access_token);
  assert.ok(r.body.id_token);
  const newRefresh = r.body.refresh_token ?? refreshToken;

  const res = await fetch(`${issuer}/token/revocation`, {
    method: 'POST', headers: { authorization: basic(), 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token: newRefresh, token_type_hint: 'refresh_token' }),
  });
  assert.equal(res.status, 200);
  await res.text();
  const again = await tokenRequest({ grant_type: 'refresh_token', refresh_token: newRefresh });
  assert.equal(again.status, 400);
  assert.equal(again.body.error, 'invalid_grant');

  assert.deepEqual(await getLog(), [
    { endpoint: 'token', grant_type: 'refresh_token', client_id: CLIENT_ID, had_code_verifier: false, ok: true, error: null },
    { endpoint: 'revocation', token_type_hint: 'refresh_token', ok: true },
    { endpoint: 'token', grant_type: 'refresh_token', client_id: CLIENT_ID, had_code_verifier: false, ok: false, error: 'invalid_grant' },
  ]);
});

test('tamper modes rewrite the id_token', async (t) => {
  const jwks = createRemoteJWKSet(new URL(`${issuer}/jwks`));
  const fresh = async () => {
    const { code, verifier, nonce } = await signIn({ scope: 'openid email', prompt: null });
    const { status, body } = await redeem(code, verifier);
    assert.equal(status, 200, JSON.stringify(body));
    assert.equal(body.refresh_token, undefined);
    return { idToken: body.id_token, nonce };
  };
  t.after(() => setTamper(null));

  await setTamper('nonce');
  let { idToken, nonce } = await fresh();
  let c = decodeJwt(idToken);
  assert.ok(c.nonce && c.nonce !== nonce);
  assert.equal(c.email, ACCOUNT.email);
  await jwtVerify(idToken, jwks, { issuer, audience: CLIENT_ID });

  await setTamper('aud');
  ({ idToken, nonce } = await fresh());
  c = decodeJwt(idToken);
  assert.equal(c.aud, 'someone-else');
  assert.equal(c.nonce, nonce);
  await jwtVerify(idToken, jwks, { issuer, audience: 'someone-else' });

  await setTamper('expired');
  ({ idToken, nonce } = await fresh());
  c = decodeJwt(idToken);
  const now = Math.floor(Date.now() / 1000);
  assert.ok(c.exp <= now - 3500, `exp ${c.exp} now ${now}`);
  assert.ok(c.iat <= now - 3500);
  await assert.rejects(jwtVerify(idToken, jwks, { issuer, audience: CLIENT_ID }), { code: 'ERR_JWT_EXPIRED' });
  await jwtVerify(idToken, jwks, { issuer, audience: CLIENT_ID, currentDate: new Date((c.exp - 1) * 1000) });

  await setTamper('signature');
  ({ idToken, nonce } = await fresh());
  c = decodeJwt(idToken);
  assert.equal(c.nonce, nonce);
  assert.equal(c.aud, CLIENT_ID);
  const realKid = (await (await fetch(`${issuer}/jwks`)).json()).keys[0].kid;
  assert.equal(decodeProtectedHeader(idToken).kid, realKid);
  await assert.rejects(jwtVerify(idToken, jwks, { issuer, audience: CLIENT_ID }),
    { code: 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED' });

  await setTamper(null);
  ({ idToken, nonce } = await fresh());
  const { payload } = await jwtVerify(idToken, jwks, { issuer, audience: CLIENT_ID });
  assert.equal(payload.nonce, nonce);
});

test('unknown tamper mode is a 400', async () => {
  const res = await fetch(`${issuer}/__test/tamper`, { method: 'POST', body: JSON.stringify({ id_token: 'bogus' }) });
  assert.equal(res.status, 400);
  await res.text();
});

// ---------------------------------------------------------------------------
// Plain OAuth 2.0 (Slack / Google stand-ins) and the stand-in APIs.

async function call(pathname, { method = 'POST', token, json, form, headers = {} } = {}) {
  const h = { ...headers };
  if (token !== undefined) h.authorization = `Bearer ${token}`;
  let body;
  if (json !== undefined) {
    h['content-type'] ??= 'application/json; charset=utf-8';
    body = typeof json === 'string' ? json : JSON.stringify(json);
  } else if (form !== undefined) {
    h['content-type'] ??= 'application/x-www-form-urlencoded';
    body = new URLSearchParams(form);
  }
  const res = await fetch(`${issuer}${pathname}`, { method, headers: h, body });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined, type: res.headers.get('content-type') };
}

const control = (pathname, json) => call(`/__test/${pathname}`, { json });
const liveTokens = async (clientId) =>
  (await call(`/__test/live-tokens?${new URLSearchParams({ client_id: clientId })}`, { method: 'GET' })).body;
const messages = async () => (await call('/__test/messages', { method: 'GET' })).body;

function rfc2822({ to, subject, toName = 'To', subjectName = 'Subject', body = 'Hello.' }) {
  const lines = ['From: alerts@chimatic.test'];
  if (to !== undefined) lines.push(`${toName}: ${to}`);
  if (subject !== undefined) lines.push(`${subjectName}: ${subject}`);
  lines.push('Content-Type: text/plain; charset=utf-8', '', body, '');
  return lines.join('\r\n');
}

const gmailSend = (token, raw) => call('/gmail/v1/users/me/messages/send', { token, json: { raw } });
const slackPost = (token, json, headers) => call('/slack/api/chat.postMessage', { token, json, headers });

async function slackTokens() {
  const { code, verifier } = await signIn({ client: SLACK, scope: 'chat:write', prompt: null });
  const r = await redeem(code, verifier, SLACK);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body;
}

async function gmailTokens() {
  const { code, verifier } = await signIn({ client: GMAIL, scope: GMAIL_SCOPE,
    extra: { access_type: 'offline', include_granted_scopes: 'true' } });
  const r = await redeem(code, verifier, GMAIL);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body;
}

test('plain OAuth chat:write flow with PKCE: the access token posts to chat.postMessage', async () => {
  await fetch(`${issuer}/__test/reset-log`, { method: 'POST' });
  await control('reset-messages');
  const { code, verifier } = await signIn({ client: SLACK, scope: 'chat:write', prompt: null });
  const t = await redeem(code, verifier, SLACK);
  assert.equal(t.status, 200, JSON.stringify(t.body));
  assert.equal(t.body.token_type, 'Bearer');
  assert.equal(t.body.scope, 'chat:write');
  assert.equal(t.body.expires_in, 300);
  assert.equal(t.body.id_token, undefined);
  assert.ok(t.body.refresh_token, 'a client allowed refresh_token gets one for plain OAuth');

  const who = await call('/slack/api/auth.test', { token: t.body.access_token });
  assert.equal(who.status, 200);
  assert.deepEqual(who.body, { ok: true, team: 'Test', user_id: 'U0TEST', bot_id: 'B0TEST' });

  const a = await slackPost(t.body.access_token, { channel: 'C0ALERTS', text: 'disk full' });
  assert.equal(a.status, 200);
  assert.match(a.type, /^application\/json/);
  assert.equal(a.body.ok, true);
  assert.equal(a.body.channel, 'C0ALERTS');
  assert.match(a.body.ts, /^\d+\.\d{6}$/);
  const b = await slackPost(t.body.access_token, { channel: '#ops', text: 'back to normal', unfurl_links: false },
    { 'content-type': 'application/json' });
  assert.equal(b.body.ok, true);
  assert.notEqual(a.body.ts, b.body.ts);

  assert.deepEqual(await messages(), [
    { api: 'slack', channel: 'C0ALERTS', text: 'disk full', client_id: SLACK.client_id },
    { api: 'slack', channel: '#ops', text: 'back to normal', client_id: SLACK.client_id },
  ]);
  assert.deepEqual(await getLog(), [
    { endpoint: 'token', grant_type: 'authorization_code', client_id: SLACK.client_id, had_code_verifier: true, ok: true, error: null },
    { endpoint: 'slack.auth.test', ok: true, error: null, client_id: SLACK.client_id },
    { endpoint: 'slack.chat.postMessage', ok: true, error: null, client_id: SLACK.client_id },
    { endpoint: 'slack.chat.postMessage', ok: true, error: null, client_id: SLACK.client_id },
  ]);
});

test('plain OAuth still requires PKCE and the exact redirect_uri', async () => {
  let res = await send(cookieJar(), `${issuer}/auth?${new URLSearchParams({ client_id: SLACK.client_id,
    response_type: 'code', redirect_uri: SLACK.redirect_uri, scope: 'chat:write', state: 's' })}`);
  assert.equal(res.status, 303);
  assert.equal(new URL(res.headers.get('location')).searchParams.get('error'), 'invalid_request');
  res = await send(cookieJar(), `${issuer}/auth?${new URLSearchParams({ client_id: SLACK.client_id,
    response_type: 'code', redirect_uri: `${SLACK.redirect_uri}/x`, scope: 'chat:write', state: 's',
    code_challenge: pkcePair().challenge, code_challenge_method: 'S256' })}`);
  assert.equal(res.status, 400);
  assert.equal(res.headers.get('location'), null);
  await res.text();
});

test('plain OAuth: nonce is refused without openid, unknown scopes are dropped', async () => {
  const res = await send(cookieJar(), `${issuer}/auth?${new URLSearchParams({ client_id: SLACK.client_id,
    response_type: 'code', redirect_uri: SLACK.redirect_uri, scope: 'chat:write', state: 's', nonce: 'n',
    code_challenge: pkcePair().challenge, code_challenge_method: 'S256' })}`);
  assert.equal(res.status, 303);
  const loc = new URL(res.headers.get('location'));
  assert.equal(`${loc.origin}${loc.pathname}`, SLACK.redirect_uri);
  assert.equal(loc.searchParams.get('error'), 'invalid_request');
  assert.equal(loc.searchParams.get('state'), 's');

  const { code, verifier } = await signIn({ client: SLACK, scope: 'channels:read chat:write', prompt: null });
  const t = await redeem(code, verifier, SLACK);
  assert.equal(t.status, 200, JSON.stringify(t.body));
  assert.equal(t.body.scope, 'chat:write');
});

test('Slack stand-in refuses missing, unknown and under-scoped tokens and wrong shapes', async () => {
  await fetch(`${issuer}/__test/reset-log`, { method: 'POST' });
  await control('reset-messages');
  const slack = (await slackTokens()).access_token;
  const { code, verifier } = await signIn({ prompt: null, scope: 'openid email' });
  const consoleToken = (await redeem(code, verifier)).body.access_token;
  assert.ok(consoleToken);
  await fetch(`${issuer}/__test/reset-log`, { method: 'POST' });

  const good = { channel: 'C1', text: 'hi' };
  const cases = [
    [await slackPost(undefined, good), 'not_authed'],
    [await slackPost('', good, { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` }), 'not_authed'],
    [await slackPost('not-a-token', good), 'invalid_auth'],
    [await call('/slack/api/auth.test', { token: 'not-a-token' }), 'invalid_auth'],
    [await call('/slack/api/auth.test'), 'not_authed'],
    [await slackPost(consoleToken, good), 'missing_scope'],
    [await call('/slack/api/chat.postMessage', { token: slack, form: good }), 'invalid_arguments'],
    [await slackPost(slack, '{"channel": "C1", "text": '), 'invalid_arguments'],
    [await slackPost(slack, { text: 'hi' }), 'invalid_arguments'],
    [await slackPost(slack, { channel: 'C1', text: 7 }), 'invalid_arguments'],
    [await slackPost(slack, { channel: 'C1' }), 'invalid_arguments'],
    [await slackPost(slack, ['C1', 'hi']), 'invalid_arguments'],
  ];
  for (const [r, error] of cases) {
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, { ok: false, error });
  }
  assert.deepEqual(await messages(), []);
  const log = await getLog();
  assert.deepEqual(log.map((e) => [e.endpoint, e.ok, e.error, e.client_id]), [
    ['slack.chat.postMessage', false, 'not_authed', null],
    ['slack.chat.postMessage', false, 'not_authed', null],
    ['slack.chat.postMessage', false, 'invalid_auth', null],
    ['slack.auth.test', false, 'invalid_auth', null],
    ['slack.auth.test', false, 'not_authed', null],
    ['slack.chat.postMessage', false, 'missing_scope', CLIENT_ID],
    ...Array(6).fill(['slack.chat.postMessage', false, 'invalid_arguments', SLACK.client_id]),
  ]);
});

test('gmail.send flow with refresh token: send, expire-access -> 401, refresh_token grant -> works again', async () => {
  await control('revoke-grants', { client_id: GMAIL.client_id });
  await control('reset-messages');
  const t = await gmailTokens();
  assert.equal(t.scope, GMAIL_SCOPE);
  assert.equal(t.expires_in, 120);
  assert.equal(t.id_token, undefined);
  assert.ok(t.refresh_token);
  assert.deepEqual(await liveTokens(GMAIL.client_id), { access: 1, refresh: 1 });

  const subject = `=?UTF-8?B?${Buffer.from('Alerte : café').toString('base64')}?=\r\n =?UTF-8?Q?_=E2=98=95_d?=\r\n =?utf-8?q?isk?=`;
  const raw = rfc2822({ to: 'Ops <ops@example.com>', subject });
  const unpadded = Buffer.from(raw).toString('base64url');
  const s = await gmailSend(t.access_token, unpadded);
  assert.equal(s.status, 200, JSON.stringify(s.body));
  assert.match(s.body.id, /^[0-9a-f]{16}$/);
  assert.deepEqual(s.body, { id: s.body.id, threadId: s.body.id, labelIds: ['SENT'] });

  const plain = rfc2822({ to: 'ann@example.com', subject: 'Plain subject', toName: 'to', subjectName: 'SUBJECT' });
  let padded = Buffer.from(plain).toString('base64url');
  while (padded.length % 4) padded += '=';
  const s2 = await gmailSend(t.access_token, padded);
  assert.equal(s2.status, 200, JSON.stringify(s2.body));
  assert.notEqual(s2.body.id, s.body.id);

  assert.deepEqual(await messages(), [
    { api: 'gmail', to: 'Ops <ops@example.com>',
      subject: `=?UTF-8?B?${Buffer.from('Alerte : café').toString('base64')}?= =?UTF-8?Q?_=E2=98=95_d?= =?utf-8?q?isk?=`,
      subject_decoded: 'Alerte : café ☕ disk', raw, client_id: GMAIL.client_id },
    { api: 'gmail', to: 'ann@example.com', subject: 'Plain subject', subject_decoded: 'Plain subject', raw: plain,
      client_id: GMAIL.client_id },
  ]);

  // wrong shapes, scopes and tokens
  const bad400 = { error: { code: 400, status: 'INVALID_ARGUMENT' } };
  for (const body of [
    await gmailSend(t.access_token, Buffer.from(rfc2822({ subject: 'no recipient' })).toString('base64url')),
    await gmailSend(t.access_token, Buffer.from(rfc2822({ to: 'a@example.com' })).toString('base64url')),
    await gmailSend(t.access_token, `${unpadded}!`),
    await gmailSend(t.access_token, undefined),
    await call('/gmail/v1/users/me/messages/send', { token: t.access_token, form: { raw: unpadded } }),
  ]) assert.deepEqual([body.status, body.body], [400, bad400]);
  const slack = (await slackTokens()).access_token;
  const denied = await gmailSend(slack, unpadded);
  assert.deepEqual([denied.status, denied.body], [403, { error: { code: 403, status: 'PERMISSION_DENIED' } }]);
  const unauth = { error: { code: 401, status: 'UNAUTHENTICATED' } };
  for (const r of [await gmailSend(undefined, unpadded), await gmailSend('nope', unpadded)]) {
    assert.deepEqual([r.status, r.body], [401, unauth]);
  }
  assert.equal((await messages()).length, 2);

  // the access token "expires"; the refresh token stays
  await fetch(`${issuer}/__test/reset-log`, { method: 'POST' });
  assert.deepEqual((await control('expire-access', { client_id: GMAIL.client_id })).body, { expired: 1 });
  assert.deepEqual(await liveTokens(GMAIL.client_id), { access: 0, refresh: 1 });
  const expired = await gmailSend(t.access_token, unpadded);
  assert.deepEqual([expired.status, expired.body], [401, unauth]);

  const r = await tokenRequest({ grant_type: 'refresh_token', refresh_token: t.refresh_token }, GMAIL);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.notEqual(r.body.access_token, t.access_token);
  assert.equal(r.body.expires_in, 120);
  assert.equal(r.body.scope, GMAIL_SCOPE);
  const again = await gmailSend(r.body.access_token, unpadded);
  assert.equal(again.status, 200);
  assert.deepEqual(await liveTokens(GMAIL.client_id), { access: 1, refresh: 1 });
  assert.deepEqual(await getLog(), [
    { endpoint: 'gmail.send', ok: false, error: 'UNAUTHENTICATED', client_id: null },
    { endpoint: 'token', grant_type: 'refresh_token', client_id: GMAIL.client_id, had_code_verifier: false, ok: true, error: null },
    { endpoint: 'gmail.send', ok: true, error: null, client_id: GMAIL.client_id },
  ]);
});

test('google.revoke with the access token kills access and refresh tokens of the grant', async () => {
  await control('revoke-grants', { client_id: GMAIL.client_id });
  assert.deepEqual(await liveTokens(GMAIL.client_id), { access: 0, refresh: 0 });
  const t = await gmailTokens();
  assert.deepEqual(await liveTokens(GMAIL.client_id), { access: 1, refresh: 1 });
  await fetch(`${issuer}/__test/reset-log`, { method: 'POST' });

  const rv = await call('/google/revoke', { form: { token: t.access_token } });
  assert.deepEqual([rv.status, rv.body], [200, {}]);
  assert.deepEqual(await liveTokens(GMAIL.client_id), { access: 0, refresh: 0 });
  assert.equal((await gmailSend(t.access_token, 'eA')).status, 401);
  const r = await tokenRequest({ grant_type: 'refresh_token', refresh_token: t.refresh_token }, GMAIL);
  assert.deepEqual([r.status, r.body.error], [400, 'invalid_grant']);
  const gone = { error: 'invalid_token', error_description: 'Token expired or revoked' };
  for (const token of [t.access_token, t.refresh_token, 'never-issued']) {
    const again = await call('/google/revoke', { form: { token } });
    assert.deepEqual([again.status, again.body], [400, gone]);
  }
  assert.deepEqual(await getLog(), [
    { endpoint: 'google.revoke', ok: true, error: null, client_id: GMAIL.client_id },
    { endpoint: 'gmail.send', ok: false, error: 'UNAUTHENTICATED', client_id: null },
    { endpoint: 'token', grant_type: 'refresh_token', client_id: GMAIL.client_id, had_code_verifier: false, ok: false, error: 'invalid_grant' },
    ...Array(3).fill({ endpoint: 'google.revoke', ok: false, error: 'invalid_token', client_id: null }),
  ]);
});

test('google.revoke with the refresh token kills the access token too', async () => {
  await control('revoke-grants', { client_id: GMAIL.client_id });
  const t = await gmailTokens();
  const rv = await call('/google/revoke', { form: { token: t.refresh_token } });
  assert.deepEqual([rv.status, rv.body], [200, {}]);
  assert.deepEqual(await liveTokens(GMAIL.client_id), { access: 0, refresh: 0 });
  assert.equal((await gmailSend(t.access_token, 'eA')).status, 401);
});

test('slack auth.revoke kills the whole grant', async () => {
  await control('revoke-grants', { client_id: SLACK.client_id });
  const t = await slackTokens();
  assert.deepEqual(await liveTokens(SLACK.client_id), { access: 1, refresh: 1 });
  await fetch(`${issuer}/__test/reset-log`, { method: 'POST' });

  const rv = await call('/slack/api/auth.revoke', { token: t.access_token });
  assert.deepEqual([rv.status, rv.body], [200, { ok: true, revoked: true }]);
  assert.deepEqual(await liveTokens(SLACK.client_id), { access: 0, refresh: 0 });
  assert.deepEqual((await slackPost(t.access_token, { channel: 'C1', text: 'hi' })).body, { ok: false, error: 'invalid_auth' });
  const r = await tokenRequest({ grant_type: 'refresh_token', refresh_token: t.refresh_token }, SLACK);
  assert.deepEqual([r.status, r.body.error], [400, 'invalid_grant']);
  assert.deepEqual((await call('/slack/api/auth.revoke', { token: t.access_token })).body, { ok: false, error: 'invalid_auth' });
  assert.deepEqual((await call('/slack/api/auth.revoke')).body, { ok: false, error: 'not_authed' });
  assert.deepEqual((await getLog()).filter((e) => e.endpoint !== 'token'), [
    { endpoint: 'slack.auth.revoke', ok: true, error: null, client_id: SLACK.client_id },
    { endpoint: 'slack.chat.postMessage', ok: false, error: 'invalid_auth', client_id: null },
    { endpoint: 'slack.auth.revoke', ok: false, error: 'invalid_auth', client_id: null },
    { endpoint: 'slack.auth.revoke', ok: false, error: 'not_authed', client_id: null },
  ]);
});

test('issued-tokens lists every token value issued, also after revocation', async () => {
  const t = await slackTokens();
  await call('/slack/api/auth.revoke', { token: t.access_token });
  const issued = await (await fetch(`${issuer}/__test/issued-tokens?client_id=${SLACK.client_id}`)).json();
  const values = issued.map((i) => i.value);
  assert.ok(values.includes(t.access_token) && values.includes(t.refresh_token), JSON.stringify(issued));
  assert.ok(issued.every((i) => i.client_id === SLACK.client_id && ['AccessToken', 'RefreshToken'].includes(i.kind)));
});

test('revoke-grants destroys every grant of the client: refresh then fails', async () => {
  await control('revoke-grants', { client_id: GMAIL.client_id });
  const one = await gmailTokens();
  const two = await gmailTokens();
  const slack = await slackTokens();
  assert.deepEqual(await liveTokens(GMAIL.client_id), { access: 2, refresh: 2 });
  assert.deepEqual((await control('revoke-grants', { client_id: GMAIL.client_id })).body, { revoked: 2 });
  assert.deepEqual(await liveTokens(GMAIL.client_id), { access: 0, refresh: 0 });
  for (const t of [one, two]) {
    const r = await tokenRequest({ grant_type: 'refresh_token', refresh_token: t.refresh_token }, GMAIL);
    assert.deepEqual([r.status, r.body.error], [400, 'invalid_grant']);
    assert.equal((await gmailSend(t.access_token, 'eA')).status, 401);
  }
  // other clients are untouched
  assert.equal((await call('/slack/api/auth.test', { token: slack.access_token })).body.ok, true);
  assert.deepEqual((await control('revoke-grants', { client_id: GMAIL.client_id })).body, { revoked: 0 });
});

test('per-client access_token_ttl shows in expires_in, the global one elsewhere', async () => {
  const { code, verifier } = await signIn({ prompt: null, scope: 'openid' });
  assert.equal((await redeem(code, verifier)).body.expires_in, 300);
  assert.equal((await slackTokens()).expires_in, 300);
  const g = await gmailTokens();
  assert.equal(g.expires_in, 120);
  const r = await tokenRequest({ grant_type: 'refresh_token', refresh_token: g.refresh_token }, GMAIL);
  assert.equal(r.body.expires_in, 120);
});

test('test controls refuse a missing client_id', async () => {
  for (const p of ['expire-access', 'revoke-grants']) {
    assert.equal((await control(p, {})).status, 400);
  }
  assert.equal((await call('/__test/live-tokens', { method: 'GET' })).status, 400);
});

test('an access token past its lifetime is no longer live; its refresh token still works', async () => {
  const { code, verifier } = await signIn({ client: SHORT, scope: 'chat:write', prompt: null });
  const t = await redeem(code, verifier, SHORT);
  assert.equal(t.status, 200, JSON.stringify(t.body));
  assert.equal(t.body.expires_in, 1);
  const deadline = Date.now() + 5000;
  while ((await liveTokens(SHORT.client_id)).access !== 0) {
    assert.ok(Date.now() < deadline, 'access token still live after 5 s');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.deepEqual(await liveTokens(SHORT.client_id), { access: 0, refresh: 1 });
  assert.deepEqual((await slackPost(t.body.access_token, { channel: 'C1', text: 'hi' })).body,
    { ok: false, error: 'invalid_auth' });
  const r = await tokenRequest({ grant_type: 'refresh_token', refresh_token: t.body.refresh_token }, SHORT);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal((await call('/slack/api/auth.test', { token: r.body.access_token })).body.ok, true);
});
