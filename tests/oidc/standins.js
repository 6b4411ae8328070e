// Part of tests/oidc/server.js (its header comment documents the interface): the
// in-memory storage adapter the provider uses, the stand-ins of the Slack Web API,
// the Gmail API and Google's revocation endpoint (which accept only live access
// tokens of this provider), and the token test controls.

export const SLACK_SCOPE = 'chat:write';
export const GMAIL_SCOPE = 'https://www.googleapis.com/auth/gmail.send';

// ---------------------------------------------------------------------------
// Storage adapter: one Map per model ("AccessToken", "RefreshToken", "Grant",
// "Session", ...) from id to { payload, expiresAt }, so that tokens can be listed
// per client. For opaque tokens the id is the token value itself.

const stores = new Map();
// Every access and refresh token value ever issued, with its client: kept after the token
// is gone, so tests can look for them where they must never be (logs, database files).
const issued = [];

function storeOf(model) {
  if (!stores.has(model)) stores.set(model, new Map());
  return stores.get(model);
}

export class TestAdapter {
  constructor(model) {
    this.store = storeOf(model);
  }

  async upsert(id, payload, expiresIn) {
    if ((payload.kind === 'AccessToken' || payload.kind === 'RefreshToken') && !issued.some((t) => t.value === id)) {
      issued.push({ kind: payload.kind, value: id, client_id: payload.clientId ?? null });
    }
    this.store.set(id, { payload, expiresAt: expiresIn ? Date.now() + expiresIn * 1000 : Infinity });
  }

  async find(id) {
    const entry = this.store.get(id);
    if (!entry) return undefined;
    if (entry.expiresAt <= Date.now()) {
      this.store.delete(id);
      return undefined;
    }
    return entry.payload;
  }

  async findByUid(uid) {
    for (const [id, { payload }] of this.store) if (payload.uid === uid) return this.find(id);
    return undefined;
  }

  async findByUserCode(userCode) {
    for (const [id, { payload }] of this.store) if (payload.userCode === userCode) return this.find(id);
    return undefined;
  }

  async consume(id) {
    const entry = this.store.get(id);
    if (entry) entry.payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) {
    this.store.delete(id);
  }

  async revokeByGrantId(grantId) {
    for (const [id, { payload }] of this.store) if (payload.grantId === grantId) this.store.delete(id);
  }
}

// Every token, code and the grant itself.
async function revokeGrant(grantId) {
  for (const [model, store] of stores) {
    if (model === 'Grant') store.delete(grantId);
    else for (const [id, { payload }] of store) if (payload.grantId === grantId) store.delete(id);
  }
}

// A token is live when oidc-provider finds it (not expired), it is not consumed
// (a rotated refresh token) and its grant still exists for the same client.
async function live(provider, token) {
  if (!token || !token.isValid) return undefined;
  const grant = token.grantId && await provider.Grant.find(token.grantId);
  if (!grant || grant.clientId !== token.clientId) return undefined;
  return token;
}

const liveAccessToken = async (provider, value) => live(provider, await provider.AccessToken.find(value));
const liveRefreshToken = async (provider, value) => live(provider, await provider.RefreshToken.find(value));

async function liveTokensOf(provider, model, clientId) {
  const found = [];
  for (const [id, { payload }] of storeOf(model)) {
    if (payload.clientId !== clientId) continue;
    const token = await live(provider, await provider[model].find(id));
    if (token) found.push(token);
  }
  return found;
}

// ---------------------------------------------------------------------------
// HTTP helpers (shared with server.js).

export function sendJson(res, status, value) {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
  res.end(JSON.stringify(value));
}

export async function readBody(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

function isJson(req) {
  return (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase() === 'application/json';
}

// The JSON object of a request body, or undefined.
async function jsonBody(req) {
  const text = await readBody(req);
  if (!isJson(req)) return undefined;
  try {
    const value = JSON.parse(text);
    return value && typeof value === 'object' && !Array.isArray(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

// 'missing' without an "Authorization: Bearer TOKEN" header, else the live access
// token or undefined.
async function bearer(provider, req) {
  const m = (req.headers.authorization ?? '').match(/^Bearer +(\S+) *$/i);
  if (!m) return 'missing';
  return liveAccessToken(provider, m[1]);
}

// ---------------------------------------------------------------------------
// RFC 2822 message parsing for the Gmail stand-in.

function decodeBase64url(s) {
  if (typeof s !== 'string') return undefined;
  const m = s.match(/^([A-Za-z0-9_-]+)(={0,2})$/);
  if (!m || m[1].length % 4 === 1 || (m[2] && s.length % 4 !== 0)) return undefined;
  return Buffer.from(m[1], 'base64url').toString('utf8');
}

// Header fields of the header section, unfolded, names lower-cased, values trimmed.
function parseHeaders(text) {
  const end = text.search(/\r?\n\r?\n/);
  const fields = [];
  for (const line of (end === -1 ? text : text.slice(0, end)).split(/\r?\n/)) {
    if (/^[ \t]/.test(line) && fields.length) fields[fields.length - 1].value += line;
    else {
      const i = line.indexOf(':');
      if (i > 0) fields.push({ name: line.slice(0, i).trim().toLowerCase(), value: line.slice(i + 1) });
    }
  }
  return fields.map((f) => ({ name: f.name, value: f.value.trim() }));
}

const ENCODED_WORD = /=\?([^?\s]+)\?([BbQq])\?([^?\s]*)\?=/g;
const ENCODED_RUN = /=\?[^?\s]+\?[BbQq]\?[^?\s]*\?=(?:\s+=\?[^?\s]+\?[BbQq]\?[^?\s]*\?=)*/g;

// RFC 2047: adjacent encoded-words (whitespace between them dropped) of one
// charset are decoded together, so a character split across words survives.
export function decodeMimeHeader(value) {
  return value.replace(ENCODED_RUN, (run) => {
    let out = '';
    let charset = null;
    let chunks = [];
    const flush = () => {
      if (!chunks.length) return;
      const bytes = Buffer.concat(chunks);
      try { out += new TextDecoder(charset).decode(bytes); } catch { out += bytes.toString('latin1'); }
      chunks = [];
    };
    for (const [, cs, enc, text] of run.matchAll(ENCODED_WORD)) {
      const c = cs.split('*')[0].toLowerCase();
      if (c !== charset) { flush(); charset = c; }
      chunks.push(enc.toUpperCase() === 'B'
        ? Buffer.from(text, 'base64')
        : Buffer.from(text.replace(/_/g, ' ').replace(/=([0-9A-Fa-f]{2})/g, (_, h) => String.fromCharCode(parseInt(h, 16))), 'latin1'));
    }
    flush();
    return out;
  });
}

// ---------------------------------------------------------------------------
// Routes. `handle` answers and returns true for its own paths, else returns false.

export function createStandins({ provider, issuer, log }) {
  const messages = [];
  let counter = 0;
  const record = (endpoint, ok, error, token) =>
    log.push({ endpoint, ok, error: ok ? null : error, client_id: token?.clientId ?? null });

  async function slack(req, res, method) {
    const endpoint = `slack.${method}`;
    const token = await bearer(provider, req);
    const fail = (error, t) => {
      record(endpoint, false, error, t);
      return sendJson(res, 200, { ok: false, error });
    };
    if (token === 'missing') { await readBody(req); return fail('not_authed'); }
    if (!token) { await readBody(req); return fail('invalid_auth'); }
    if (method === 'auth.test') {
      await readBody(req);
      record(endpoint, true, null, token);
      return sendJson(res, 200, { ok: true, team: 'Test', user_id: 'U0TEST', bot_id: 'B0TEST' });
    }
    if (method === 'auth.revoke') {
      await readBody(req);
      await revokeGrant(token.grantId);
      record(endpoint, true, null, token);
      return sendJson(res, 200, { ok: true, revoked: true });
    }
    // chat.postMessage
    if (!token.scopes.has(SLACK_SCOPE)) { await readBody(req); return fail('missing_scope', token); }
    const body = await jsonBody(req);
    const { channel, text } = body ?? {};
    if (typeof channel !== 'string' || !channel || typeof text !== 'string' || !text) return fail('invalid_arguments', token);
    counter += 1;
    const ts = `${Math.floor(Date.now() / 1000)}.${String(counter).padStart(6, '0')}`;
    messages.push({ api: 'slack', channel, text, client_id: token.clientId });
    record(endpoint, true, null, token);
    return sendJson(res, 200, { ok: true, channel, ts });
  }

  async function gmailSend(req, res) {
    const token = await bearer(provider, req);
    const fail = (code, status, t) => {
      record('gmail.send', false, status, t);
      return sendJson(res, code, { error: { code, status } });
    };
    if (!token || token === 'missing') { await readBody(req); return fail(401, 'UNAUTHENTICATED'); }
    if (!token.scopes.has(GMAIL_SCOPE)) { await readBody(req); return fail(403, 'PERMISSION_DENIED', token); }
    const raw = decodeBase64url((await jsonBody(req))?.raw);
    const fields = raw === undefined ? [] : parseHeaders(raw);
    const to = fields.find((f) => f.name === 'to')?.value;
    const subject = fields.find((f) => f.name === 'subject')?.value;
    if (!to || subject === undefined) return fail(400, 'INVALID_ARGUMENT', token);
    counter += 1;
    const id = `18c${counter.toString(16).padStart(13, '0')}`;
    messages.push({ api: 'gmail', to, subject, subject_decoded: decodeMimeHeader(subject), raw, client_id: token.clientId });
    record('gmail.send', true, null, token);
    return sendJson(res, 200, { id, threadId: id, labelIds: ['SENT'] });
  }

  async function googleRevoke(req, res, url) {
    const form = new URLSearchParams(await readBody(req));
    const value = form.get('token') ?? url.searchParams.get('token');
    if (!value) {
      record('google.revoke', false, 'invalid_request', undefined);
      return sendJson(res, 400, { error: 'invalid_request', error_description: 'Bad Request' });
    }
    const token = (await liveAccessToken(provider, value)) ?? (await liveRefreshToken(provider, value));
    if (!token) {
      record('google.revoke', false, 'invalid_token', undefined);
      return sendJson(res, 400, { error: 'invalid_token', error_description: 'Token expired or revoked' });
    }
    await revokeGrant(token.grantId);
    record('google.revoke', true, null, token);
    return sendJson(res, 200, {});
  }

  async function clientIdFromBody(req, res) {
    const clientId = (await jsonBody(req))?.client_id;
    if (typeof clientId === 'string' && clientId) return clientId;
    sendJson(res, 400, { error: 'expected JSON {"client_id": "..."}' });
    return undefined;
  }

  return async function handle(req, res) {
    const url = new URL(req.url, issuer);
    const { pathname } = url;
    const post = req.method === 'POST';
    let m;
    if (post && (m = pathname.match(/^\/slack\/api\/(chat\.postMessage|auth\.test|auth\.revoke)$/))) {
      await slack(req, res, m[1]);
    } else if (post && pathname === '/gmail/v1/users/me/messages/send') {
      await gmailSend(req, res);
    } else if (post && pathname === '/google/revoke') {
      await googleRevoke(req, res, url);
    } else if (req.method === 'GET' && pathname === '/__test/messages') {
      sendJson(res, 200, messages);
    } else if (post && pathname === '/__test/reset-messages') {
      messages.length = 0;
      sendJson(res, 200, messages);
    } else if (req.method === 'GET' && pathname === '/__test/live-tokens') {
      const clientId = url.searchParams.get('client_id');
      if (!clientId) {
        sendJson(res, 400, { error: 'client_id query parameter required' });
        return true;
      }
      sendJson(res, 200, {
        access: (await liveTokensOf(provider, 'AccessToken', clientId)).length,
        refresh: (await liveTokensOf(provider, 'RefreshToken', clientId)).length,
      });
    } else if (req.method === 'GET' && pathname === '/__test/issued-tokens') {
      const clientId = url.searchParams.get('client_id');
      sendJson(res, 200, issued.filter((t) => !clientId || t.client_id === clientId));
    } else if (post && pathname === '/__test/expire-access') {
      const clientId = await clientIdFromBody(req, res);
      if (!clientId) return true;
      const tokens = await liveTokensOf(provider, 'AccessToken', clientId);
      for (const t of tokens) await provider.AccessToken.adapter.destroy(t.jti);
      sendJson(res, 200, { expired: tokens.length });
    } else if (post && pathname === '/__test/revoke-grants') {
      const clientId = await clientIdFromBody(req, res);
      if (!clientId) return true;
      let revoked = 0;
      for (const [id, { payload }] of storeOf('Grant')) {
        if (payload.clientId !== clientId) continue;
        if (await provider.Grant.find(id)) revoked += 1;
        await revokeGrant(id);
      }
      sendJson(res, 200, { revoked });
    } else {
      return false;
    }
    return true;
  };
}
