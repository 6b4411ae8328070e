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

let child;
let dir;
let issuer;

before(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'chimatic-oidc-'));
  const configPath = path.join(dir, 'config.json');
  writeFileSync(configPath, JSON.stringify({
    port: 0,
    clients: [{ client_id: CLIENT_ID, client_secret: CLIENT_SECRET, redirect_uris: [REDIRECT_URI],
      scope: 'openid email profile offline_access' }],
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

function basic() {
  return `Basic ${Buffer.from(`${encodeURIComponent(CLIENT_ID)}:${encodeURIComponent(CLIENT_SECRET)}`).toString('base64')}`;
}

async function tokenRequest(params) {
  const res = await fetch(`${issuer}/token`, {
    method: 'POST',
    headers: { authorization: basic(), 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(params),
  });
  return { status: res.status, body: await res.json() };
}

// authorize -> /interaction/:uid (form) -> POST login -> /auth/:uid -> redirect_uri?code&state
async function signIn({ scope = 'openid email profile offline_access', prompt = 'consent' } = {}) {
  const jar = cookieJar();
  const { verifier, challenge } = pkcePair();
  const state = randomBytes(12).toString('base64url');
  const nonce = randomBytes(12).toString('base64url');
  const auth = new URL(`${issuer}/auth`);
  auth.search = new URLSearchParams({
    client_id: CLIENT_ID, response_type: 'code', redirect_uri: REDIRECT_URI, scope, state, nonce,
    code_challenge: challenge, code_challenge_method: 'S256', ...(prompt ? { prompt } : {}),
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
  assert.equal(`${callback.origin}${callback.pathname}`, REDIRECT_URI);
  assert.equal(callback.searchParams.get('state'), state);
  assert.equal(callback.searchParams.get('iss'), issuer);
  const code = callback.searchParams.get('code');
  assert.ok(code);
  return { code, verifier, nonce, jar };
}

function redeem(code, verifier) {
  return tokenRequest({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI,
    ...(verifier === undefined ? {} : { code_verifier: verifier }) });
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
