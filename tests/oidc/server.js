// Chimatic's OpenID Connect test authorization server: a real OAuth 2.0 / OpenID
// Connect provider (npm `oidc-provider` 9, the certified implementation) that the
// Rust integration tests and the browser tests start as a child process.
//
//   node tests/oidc/server.js CONFIG_JSON_PATH
//
// Config (JSON file):
//   { "port": 0,                       // 0 = any free port; always binds 127.0.0.1
//     "access_token_ttl": 300,         // optional, seconds, default 300: every client without its own
//     "clients": [{ "client_id": "c", "client_secret": "s",
//                   "redirect_uris": ["http://127.0.0.1:1234/console/sign-in/oidc/callback"],
//                   "scope": "openid email profile offline_access",
//                   "access_token_ttl": 120 }],     // optional, seconds: this client's access tokens
//     "accounts": [{ "sub": "u1", "email": "ann@example.com", "email_verified": true, "name": "Ann" }] }
//   Client entries are oidc-provider client metadata (access_token_ttl is taken out first), with the
//   defaults grant_types ["authorization_code","refresh_token"], response_types ["code"],
//   token_endpoint_auth_method "client_secret_basic" with a client_secret, else "none" (set
//   "client_secret_post" to send client_id/client_secret in the form body, as Google's clients do).
//   A client's "scope" (the scopes it may ask for) may only hold the scopes the provider knows:
//   openid offline_access email profile chat:write https://www.googleapis.com/auth/gmail.send
//   (anything else makes oidc-provider refuse the client as invalid_client_metadata).
//
// Once it accepts connections it prints exactly one line to stdout:
//   ready http://127.0.0.1:PORT
// and that URL is the issuer (discovery at /.well-known/openid-configuration).
// Everything else goes to stderr. It exits on SIGTERM / SIGINT or when its parent dies.
//
// Provider: authorization code flow only (GET /auth, POST /token), PKCE (S256) required for every
// client and every request, exact redirect_uri matching, revocation (POST /token/revocation) enabled,
// RS256 key generated at start-up, id_token carries the scope claims (openid: sub, email: email
// email_verified, profile: name). The authorization response always carries iss (RFC 9207).
// Lifetimes: access token as configured above, refresh token 3600 s, grant 3600 s, code 60 s.
//
// OpenID Connect (scope has openid): id_token in the token response; a refresh token only with
// offline_access, which oidc-provider keeps only with prompt=consent; without offline_access the
// tokens end with the provider's browser session.
//
// Plain OAuth 2.0 (no openid; the stand-ins of Slack's and Google's authorization servers), e.g.
//   GET /auth?client_id&response_type=code&redirect_uri&scope=chat:write&state
//            &code_challenge&code_challenge_method=S256
//   scope=https://www.googleapis.com/auth/gmail.send&access_type=offline&prompt=consent (Google's way)
// goes through the same login form. Unknown query parameters (access_type, include_granted_scopes,
// ...) are ignored; nonce, claims, max_age, acr_values, id_token_hint are refused without openid
// (redirect with error=invalid_request). A scope the provider does not know is silently dropped.
// POST /token (grant_type=authorization_code, code, redirect_uri, code_verifier) answers
//   {"access_token", "expires_in", "refresh_token", "scope": "chat:write", "token_type": "Bearer"}
// without id_token; refresh_token is there whenever the client is allowed the refresh_token grant
// (no offline_access needed) and does not end with the browser session. grant_type=refresh_token
// answers a new access_token (same scope and expires_in) and possibly a new refresh_token (always
// for token_endpoint_auth_method "none"; confidential clients only past 70% of its lifetime): use the
// new one when present, the old one is then spent. Errors are the standard ones, e.g. 400
// {"error":"invalid_grant"} for a revoked, expired or spent refresh token.
//
// A token is "live" while oidc-provider finds it (not expired, not destroyed), it is not spent (a
// rotated refresh token) and its grant still exists for the same client. The stand-in APIs below
// accept any live access token of this provider, whichever client it was issued to; its scopes
// decide.
//
// Stand-in Slack Web API: always HTTP 200 JSON, {"ok": true, ...} or {"ok": false, "error": E}.
// Checks in this order: "Authorization: Bearer TOKEN" header missing or not Bearer -> "not_authed";
// token not live (unknown, expired, revoked) -> "invalid_auth"; then per method:
//   POST /slack/api/chat.postMessage  token lacks chat:write -> "missing_scope"; body not a JSON object
//        (content-type application/json, parameters such as charset allowed) with non-empty string
//        "channel" and "text" (other members ignored) -> "invalid_arguments"; else the message is
//        recorded and {"ok":true,"channel":CHANNEL,"ts":"SECONDS.NNNNNN"} (ts unique) is answered
//   POST /slack/api/auth.test         {"ok":true,"team":"Test","user_id":"U0TEST","bot_id":"B0TEST"}
//   POST /slack/api/auth.revoke       revokes the token's whole grant (all its access and refresh
//                                     tokens and the grant itself) -> {"ok":true,"revoked":true}
//   (bodies of auth.test / auth.revoke are ignored; no scope needed)
//
// Stand-in Gmail API:
//   POST /gmail/v1/users/me/messages/send  body JSON {"raw": BASE64URL} (padding optional), the
//        RFC 2822 message. No live bearer token -> 401 {"error":{"code":401,"status":"UNAUTHENTICATED"}};
//        live without https://www.googleapis.com/auth/gmail.send -> 403
//        {"error":{"code":403,"status":"PERMISSION_DENIED"}}; body not JSON with a valid base64url
//        "raw", or the decoded message without a non-empty To: header or without a Subject: header
//        (names case-insensitive, folded lines unfolded) -> 400
//        {"error":{"code":400,"status":"INVALID_ARGUMENT"}}; else recorded and 200
//        {"id": ID, "threadId": ID, "labelIds": ["SENT"]} with ID 16 lower-case hex digits, unique.
// Stand-in of Google's revocation endpoint (no client authentication):
//   POST /google/revoke  form-urlencoded token=TOKEN (or ?token= in the query), an access or refresh
//        token: live -> its whole grant is revoked, 200 {}; not live -> 400
//        {"error":"invalid_token","error_description":"Token expired or revoked"}; no token -> 400
//        {"error":"invalid_request","error_description":"Bad Request"}.
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
//   GET  /__test/log        in arrival order:
//                           {endpoint:"token", grant_type, client_id, had_code_verifier, ok, error}
//                             (every POST /token, refresh_token grants included; error e.g. "invalid_grant")
//                           {endpoint:"revocation", token_type_hint, ok}  (POST /token/revocation)
//                           {endpoint, ok, error, client_id} for the stand-ins, endpoint one of
//                             "slack.chat.postMessage" "slack.auth.test" "slack.auth.revoke" "gmail.send"
//                             "google.revoke"; error null when ok, else Slack's error string, Google's
//                             status ("UNAUTHENTICATED" ...) or the revoke error ("invalid_token" ...);
//                             client_id of the presented live token, null when there was none
//   POST /__test/reset-log  empties the log
//   GET  /__test/messages   messages the stand-ins accepted, in arrival order:
//                           {"api":"slack","channel","text","client_id"}
//                           {"api":"gmail","to","subject","subject_decoded","raw","client_id"}: to and
//                           subject are the unfolded, trimmed header values as sent (subject may hold
//                           RFC 2047 encoded-words), subject_decoded has them decoded, raw is the
//                           decoded RFC 2822 text; client_id is the token's client
//   POST /__test/reset-messages  empties the messages
//   POST /__test/expire-access   {"client_id": C}: destroys every live access token of C, as if expired
//                                (refresh tokens stay) -> {"expired": N}
//   POST /__test/revoke-grants   {"client_id": C}: destroys every grant of C with all its tokens and
//                                codes (a later refresh fails with invalid_grant) -> {"revoked": N}
//                                (N = grants that were still live)
//   GET  /__test/live-tokens?client_id=C  -> {"access": N, "refresh": M}, C's live tokens
//   GET  /__test/issued-tokens[?client_id=C] -> [{kind: "AccessToken"|"RefreshToken", value, client_id}]
//                                every token value ever issued (also expired, revoked, rotated ones)
//   (expire-access, revoke-grants and live-tokens answer 400 without a client_id)
//
// Implementation notes: tokens live in an in-memory adapter of our own (standins.js) so that they
// can be listed per client. oidc-provider counts every value of its `scopes` option as an "OIDC
// scope" it grants itself, openid or not, so chat:write and gmail.send are simply listed there and
// land in the (opaque) access token's scope; no resource indicator is involved.

import { readFileSync } from 'node:fs';
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { generateKeyPair, exportJWK, SignJWT, decodeJwt, decodeProtectedHeader } from 'jose';
import Provider from 'oidc-provider';
import { TestAdapter, SLACK_SCOPE, GMAIL_SCOPE, createStandins, sendJson, readBody } from './standins.js';

const configPath = process.argv[2];
if (!configPath) {
  console.error('usage: node server.js CONFIG_JSON_PATH');
  process.exit(2);
}
const config = JSON.parse(readFileSync(configPath, 'utf8'));
const accounts = config.accounts ?? [];
const accessTokenTtl = config.access_token_ttl ?? 300;
const clientAccessTokenTtl = new Map((config.clients ?? [])
  .filter((c) => c.access_token_ttl !== undefined).map((c) => [c.client_id, c.access_token_ttl]));

const KID = 'chimatic-test-rs256';
const { privateKey } = await generateKeyPair('RS256', { extractable: true });
const privateJwk = { ...(await exportJWK(privateKey)), kid: KID, alg: 'RS256', use: 'sig' };

let tamper = null; // null | 'nonce' | 'aud' | 'signature' | 'expired'
const TAMPER_MODES = new Set(['nonce', 'aud', 'signature', 'expired']);
const log = [];

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
  adapter: TestAdapter,
  clients: (config.clients ?? []).map(({ access_token_ttl: _ttl, ...c }) => ({
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: c.client_secret ? 'client_secret_basic' : 'none',
    ...c,
  })),
  responseTypes: ['code'],
  pkce: { required: () => true }, // oidc-provider 9 supports S256 only
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  // Every scope listed here is one oidc-provider grants itself (an "OIDC scope"),
  // openid or not: the access token then carries it (no resource indicator needed).
  // A scope not listed is dropped from the request, and refused in client metadata.
  scopes: ['openid', 'offline_access', 'email', 'profile', SLACK_SCOPE, GMAIL_SCOPE],
  conformIdTokenClaims: false, // put the scope claims in the id_token, not only in userinfo
  features: {
    devInteractions: { enabled: false },
    revocation: { enabled: true },
  },
  // OpenID Connect: only with offline_access. Plain OAuth 2.0 (no openid): always,
  // like Google with access_type=offline, and then not tied to the browser session.
  issueRefreshToken: async (ctx, client, code) => client.grantTypeAllowed('refresh_token')
    && (code.scopes.has('offline_access') || !code.scopes.has('openid')),
  expiresWithSession: async (ctx, code) => code.scopes.has('openid') && !code.scopes.has('offline_access'),
  async findAccount(ctx, id) {
    const account = accounts.find((a) => a.sub === id);
    if (!account) return undefined;
    return { accountId: id, async claims() { return { ...account } } };
  },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  jwks: { keys: [privateJwk] },
  ttl: {
    AccessToken: (ctx, token, client) => clientAccessTokenTtl.get(client?.clientId ?? token.clientId) ?? accessTokenTtl,
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
const handleStandin = createStandins({ provider, issuer, log });

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
    log.length = 0;
    return sendJson(res, 200, log);
  }
  if (await handleStandin(req, res)) return undefined;
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

for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => process.exit(0));
// Do not outlive the test process that started us (it may die without killing us).
const parentPid = process.ppid;
setInterval(() => { if (process.ppid !== parentPid) process.exit(0); }, 1000).unref();

process.stdout.write(`ready ${issuer}\n`);
