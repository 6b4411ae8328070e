// Chimatic's OpenID Connect test authorization server: a real OAuth 2.0 / OpenID
// Connect provider (npm `oidc-provider` 9, the certified implementation) that the
// Rust integration tests and the browser tests start as a child process.
//
//   node tests/oidc/server.js CONFIG_JSON_PATH
//
// Config (JSON file):
//   { "port": 0,                       // 0 = any free port; always binds 127.0.0.1
//     "access_token_ttl": 300,         // optional, seconds
//     "clients": [{ "client_id": "c", "client_secret": "s",
//                   "redirect_uris": ["http://127.0.0.1:1234/console/sign-in/oidc/callback"],
//                   "scope": "openid email profile offline_access" }],  // other client metadata passes through
//     "accounts": [{ "sub": "u1", "email": "ann@example.com", "email_verified": true, "name": "Ann" }] }
//
// Once it accepts connections it prints exactly one line to stdout:
//   ready http://127.0.0.1:PORT
// and that URL is the issuer (discovery at /.well-known/openid-configuration).
// Everything else goes to stderr. It exits on SIGTERM / SIGINT or when its parent dies.
//
// Provider: authorization code flow only, PKCE (S256) required for every client,
// exact redirect_uri matching, refresh tokens for offline_access (which oidc-provider
// keeps only with prompt=consent), revocation enabled, RS256 key generated at start-up,
// id_token carries the scope claims (openid: sub, email: email email_verified, profile: name).
//
// Sign-in without a UI (no consent screen: the grant is given on login):
//   GET  /interaction/:uid          plain HTML form, <input id="email" name="email">, <button id="sign-in">
//   POST /interaction/:uid/login    urlencoded email=...; unknown email -> form again with 401,
//                                   known -> 303 to /auth/:uid, which redirects to redirect_uri?code&state
//
// Test controls:
//   POST /__test/tamper     {"id_token": null|"nonce"|"aud"|"signature"|"expired"}: while set, every
//                           id_token the token endpoint returns is replaced (other nonce; aud
//                           "someone-else"; signed by another key with the same kid; exp/iat an hour ago)
//   GET  /__test/log        [{endpoint:"token", grant_type, client_id, had_code_verifier, ok, error},
//                            {endpoint:"revocation", token_type_hint, ok}, ...] in arrival order
//   POST /__test/reset-log  empties the log

import { readFileSync } from 'node:fs';
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { generateKeyPair, exportJWK, SignJWT, decodeJwt, decodeProtectedHeader } from 'jose';
import Provider from 'oidc-provider';

const configPath = process.argv[2];
if (!configPath) {
  console.error('usage: node server.js CONFIG_JSON_PATH');
  process.exit(2);
}
const config = JSON.parse(readFileSync(configPath, 'utf8'));
const accounts = config.accounts ?? [];
const accessTokenTtl = config.access_token_ttl ?? 300;

const KID = 'chimatic-test-rs256';
const { privateKey } = await generateKeyPair('RS256', { extractable: true });
const privateJwk = { ...(await exportJWK(privateKey)), kid: KID, alg: 'RS256', use: 'sig' };

let tamper = null; // null | 'nonce' | 'aud' | 'signature' | 'expired'
const TAMPER_MODES = new Set(['nonce', 'aud', 'signature', 'expired']);
let log = [];

let handleOidc = (req, res) => { res.statusCode = 503; res.end(); };
const server = http.createServer((req, res) => {
  route(req, res).catch((err) => {
    const status = err.statusCode ?? 500;
    console.error('request failed:', err.message);
    if (!res.headersSent) sendJson(res, status, { error: err.error ?? 'server_error', error_description: String(err.error_description ?? err.message) });
    else res.end();
  });
});
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(config.port ?? 0, '127.0.0.1', resolve);
});
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: (config.clients ?? []).map((c) => ({
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: c.client_secret ? 'client_secret_basic' : 'none',
    ...c,
  })),
  responseTypes: ['code'],
  pkce: { required: () => true }, // oidc-provider 9 supports S256 only
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  scopes: ['openid', 'offline_access', 'email', 'profile'],
  conformIdTokenClaims: false, // put the scope claims in the id_token, not only in userinfo
  features: {
    devInteractions: { enabled: false },
    revocation: { enabled: true },
  },
  issueRefreshToken: async (ctx, client, code) =>
    client.grantTypeAllowed('refresh_token') && code.scopes.has('offline_access'),
  async findAccount(ctx, id) {
    const account = accounts.find((a) => a.sub === id);
    if (!account) return undefined;
    return { accountId: id, async claims() { return { ...account } } };
  },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  jwks: { keys: [privateJwk] },
  ttl: {
    AccessToken: accessTokenTtl,
    AuthorizationCode: 60,
    IdToken: 300,
    RefreshToken: 3600,
    Interaction: 600,
    Session: 3600,
    Grant: 3600,
  },
  renderError(ctx, out, error) {
    ctx.type = 'html';
    ctx.body = `<!doctype html><title>oidc error</title><h1>${esc(out.error)}</h1><p>${esc(out.error_description ?? '')}</p>`;
  },
});
provider.on('server_error', (ctx, err) => console.error('server_error:', err));

const tokenPath = '/token';
const revocationPath = '/token/revocation';

// Runs around every provider endpoint: records token / revocation requests and
// rewrites the id_token of token responses while a tamper mode is set.
provider.use(async (ctx, next) => {
  await next();
  if (ctx.path === tokenPath && ctx.method === 'POST') {
    const params = ctx.oidc?.params ?? ctx.oidc?.body ?? {};
    const ok = ctx.status === 200;
    log.push({
      endpoint: 'token',
      grant_type: params.grant_type ?? null,
      client_id: ctx.oidc?.client?.clientId ?? params.client_id ?? null,
      had_code_verifier: Boolean(params.code_verifier),
      ok,
      error: ok ? null : (ctx.body?.error ?? `http_${ctx.status}`),
    });
    if (ok && tamper && ctx.body && typeof ctx.body === 'object' && ctx.body.id_token) {
      ctx.body = { ...ctx.body, id_token: await tamperIdToken(ctx.body.id_token, tamper) };
    }
  } else if (ctx.path === revocationPath && ctx.method === 'POST') {
    const params = ctx.oidc?.params ?? ctx.oidc?.body ?? {};
    log.push({ endpoint: 'revocation', token_type_hint: params.token_type_hint ?? null, ok: ctx.status === 200 });
  }
});

async function tamperIdToken(jwt, mode) {
  const header = decodeProtectedHeader(jwt);
  const claims = decodeJwt(jwt);
  let key = privateKey;
  if (mode === 'nonce') claims.nonce = `tampered-${randomBytes(8).toString('base64url')}`;
  if (mode === 'aud') claims.aud = 'someone-else';
  if (mode === 'signature') key = (await generateKeyPair('RS256')).privateKey;
  if (mode === 'expired') {
    const now = Math.floor(Date.now() / 1000);
    const lifetime = (claims.exp ?? now) - (claims.iat ?? now);
    claims.exp = now - 3600;
    claims.iat = claims.exp - lifetime;
  }
  return new SignJWT(claims).setProtectedHeader({ ...header, alg: 'RS256', kid: KID }).sign(key);
}

handleOidc = provider.callback();

async function route(req, res) {
  const { pathname } = new URL(req.url, issuer);
  let m;
  if (req.method === 'GET' && (m = pathname.match(/^\/interaction\/([^/]+)$/))) {
    const details = await provider.interactionDetails(req, res);
    return sendHtml(res, 200, loginPage(details.uid));
  }
  if (req.method === 'POST' && (m = pathname.match(/^\/interaction\/([^/]+)\/login$/))) {
    const details = await provider.interactionDetails(req, res);
    const form = new URLSearchParams(await readBody(req));
    const email = (form.get('email') ?? '').trim().toLowerCase();
    const account = accounts.find((a) => String(a.email).toLowerCase() === email);
    if (!account) return sendHtml(res, 401, loginPage(details.uid, 'Unknown account.'));
    const accountId = account.sub;
    const clientId = details.params.client_id;
    const grant = (details.grantId && await provider.Grant.find(details.grantId))
      || new provider.Grant({ accountId, clientId });
    if (details.params.scope) grant.addOIDCScope(details.params.scope);
    const missing = details.prompt?.details ?? {};
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
    const grantId = await grant.save();
    return provider.interactionFinished(req, res, { login: { accountId }, consent: { grantId } },
      { mergeWithLastSubmission: false });
  }
  if (pathname === '/__test/tamper' && req.method === 'POST') {
    const body = JSON.parse((await readBody(req)) || '{}');
    const mode = body.id_token ?? null;
    if (mode !== null && !TAMPER_MODES.has(mode)) return sendJson(res, 400, { error: `unknown tamper mode ${mode}` });
    tamper = mode;
    return sendJson(res, 200, { id_token: tamper });
  }
  if (pathname === '/__test/log' && req.method === 'GET') return sendJson(res, 200, log);
  if (pathname === '/__test/reset-log' && req.method === 'POST') {
    log = [];
    return sendJson(res, 200, log);
  }
  return handleOidc(req, res);
}

function loginPage(uid, error) {
  const u = encodeURIComponent(uid);
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>Test IdP sign-in</title></head>
<body><h1>Test IdP</h1>${error ? `<p id="error">${esc(error)}</p>` : ''}
<form method="post" action="/interaction/${u}/login">
<label for="email">Email</label> <input id="email" name="email" type="email" autofocus>
<button id="sign-in" type="submit">Sign in</button>
</form></body></html>
`;
}

function esc(s) {
  return String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function sendHtml(res, status, html) {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(html);
}

function sendJson(res, status, value) {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(value));
}

async function readBody(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => process.exit(0));
// Do not outlive the test process that started us (it may die without killing us).
const parentPid = process.ppid;
setInterval(() => { if (process.ppid !== parentPid) process.exit(0); }, 1000).unref();

process.stdout.write(`ready ${issuer}\n`);
