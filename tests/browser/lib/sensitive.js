// What the console shows, and what it must never show: the one list of console pages and the
// one list of sensitive fields that get a canary. A new page is one line in PAGES; a new kind
// of sensitive field is one entry in plantCanaries.

import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';

import { canaryToken } from './canary.js';

/**
 * Every console page, as a signed-in member (or, with `signedIn: false`, anyone) reaches it
 * by GET. `status` is what the page answers with.
 */
export const PAGES = [
  { name: 'sign-in', path: '/console/sign-in', signedIn: false, status: 200 },
  { name: 'join-unknown', path: '/console/join?token=0', signedIn: false, status: 410 },
  { name: 'reset-unknown', path: '/console/reset-password?token=0', signedIn: false, status: 410 },
  { name: 'overview', path: '/console/', signedIn: true, status: 200 },
  { name: 'notifications', path: '/console/notifications', signedIn: true, status: 200 },
  { name: 'notification', path: '/console/notifications/{notification}', signedIn: true, status: 200 },
  { name: 'subscribers', path: '/console/subscribers', signedIn: true, status: 200 },
  { name: 'subscriber', path: '/console/subscribers/{subscriber}', signedIn: true, status: 200 },
  { name: 'topics', path: '/console/topics', signedIn: true, status: 200 },
  { name: 'workflows', path: '/console/workflows', signedIn: true, status: 200 },
  { name: 'workflow', path: '/console/workflows/{workflow}', signedIn: true, status: 200 },
  { name: 'integrations', path: '/console/integrations', signedIn: true, status: 200 },
  { name: 'integration', path: '/console/integrations/{integration}', signedIn: true, status: 200 },
  { name: 'suppressions', path: '/console/suppressions', signedIn: true, status: 200 },
  { name: 'api-keys', path: '/console/api-keys', signedIn: true, status: 200 },
  { name: 'members', path: '/console/members', signedIn: true, status: 200 },
  { name: 'audit-log', path: '/console/audit', signedIn: true, status: 200 },
  { name: 'settings', path: '/console/settings', signedIn: true, status: 200 },
  { name: 'account', path: '/console/account', signedIn: true, status: 200 },
  { name: 'not-found', path: '/console/no-such-page', signedIn: true, status: 404 },
];

/** A page's path with the planted records' ids filled in (`{notification}`, …). */
export function pagePath(page, ids) {
  return page.path.replace(/\{(\w+)\}/g, (_, name) => {
    assert.ok(ids[name], `no planted ${name} for ${page.path}`);
    return ids[name];
  });
}

/** A phone number in E.164 (North American 555 numbers); its canary is every digit of it. */
function phone() {
  const n = `1415555${String(randomInt(0, 10_000)).padStart(4, '0')}`;
  return { e164: `+${n}`, canary: n };
}

/** A Standard Webhooks secret whose base64 has only letters and digits (no escaping). */
function whsec() {
  for (;;) {
    const b64 = randomBytes(30).toString('base64');
    if (/^[A-Za-z0-9]+$/.test(b64)) return `whsec_${b64}`;
  }
}

async function ok(server, key, method, path, body, expected) {
  const r = await server.api(path, { method, body, key });
  assert.ok(
    expected.includes(r.status),
    `${method} ${path}: expected ${expected.join(' or ')}, got ${r.status}: ${r.text}`,
  );
  return r.json;
}

/**
 * Plants a distinct canary in every kind of sensitive field the API has, through the API with
 * an admin key. Outbound URLs point at `receiver` (a local HTTP server, e.g.
 * http://127.0.0.1:PORT), so any delivery or health check stays on this machine.
 * Returns { canaries: [{ name, value }], ids }: each value must never reach a browser; `ids`
 * names a planted record of each kind a detail page shows.
 */
export async function plantCanaries(server, key, receiver) {
  const c = [];
  const add = (name, value) => {
    c.push({ name, value });
    return value;
  };
  const post = (path, body, expected = [200, 201, 202]) => ok(server, key, 'POST', path, body, expected);

  // A webhook channel: its URL (path and query) and its signing secret (shown once).
  const hookPath = add('webhook channel URL path', canaryToken('hook-path'));
  const hookQuery = add('webhook channel URL query', canaryToken('hook-query'));
  const channel = await post('/v1/channels', { type: 'webhook', url: `${receiver}/${hookPath}?t=${hookQuery}` });
  add('webhook channel signing secret', channel.signing_secret);

  // A notification on it: a payload value, and its idempotency key.
  const payload = add('notification payload value', canaryToken('payload'));
  const ids = {};
  ids.notification = (await post('/v1/notifications', {
    channel_id: channel.id,
    payload: { note: payload },
    idempotency_key: add('notification idempotency key', canaryToken('idem')),
  })).id;

  // A subscriber: external id, an attribute, and a channel of every kind.
  const externalId = add('subscriber external id', canaryToken('external-id'));
  const sub = await post('/v1/subscribers', {
    external_id: externalId,
    attributes: { name: add('subscriber attribute', canaryToken('attr')) },
  });
  ids.subscriber = sub.id;
  const sms = phone();
  add('subscriber SMS number', sms.canary);
  for (const body of [
    { type: 'email', address: `${add('subscriber email local part', canaryToken('email'))}@example.com` },
    { type: 'sms', phone: sms.e164 },
    { type: 'slack', webhook_url: `${receiver}/${add('subscriber slack webhook path', canaryToken('slack-hook'))}` },
    { type: 'webhook', url: `${receiver}/${add('subscriber webhook path', canaryToken('sub-hook'))}` },
    { type: 'inapp' },
  ]) {
    await post(`/v1/subscribers/${sub.id}/channels`, body);
  }
  add('subscriber token', (await post(`/v1/subscribers/${sub.id}/token`, {})).token);

  // Integrations: settings and credentials of every kind, and a webhook integration's secret.
  const port = new URL(receiver).port;
  ids.integration = (await post('/v1/integrations', {
    kind: 'smtp',
    name: 'mail',
    settings: {
      host: '127.0.0.1',
      port: Number(port),
      security: 'starttls',
      from: `${add('smtp from local part', canaryToken('smtp-from'))}@example.com`,
    },
    credentials: {
      username: add('smtp username', canaryToken('smtp-user')),
      password: add('smtp password', canaryToken('smtp-password')),
      inbound_signing_secret: add('smtp inbound signing secret', whsec()),
    },
  })).id;
  const smsFrom = phone();
  add('sms integration from number', smsFrom.canary);
  await post('/v1/integrations', {
    kind: 'sms',
    name: 'texts',
    settings: {
      base_url: `${receiver}/${add('sms integration base URL path', canaryToken('sms-base'))}`,
      account_id: add('sms integration account id', `AC${randomBytes(8).toString('hex')}`), // letters and digits only
      from: smsFrom.e164,
    },
    credentials: { auth_token: add('sms integration auth token', canaryToken('sms-token')) },
  });
  await post('/v1/integrations', {
    kind: 'slack',
    name: 'chat',
    settings: { api_base: `${receiver}/${add('slack integration API base path', canaryToken('slack-base'))}` },
    credentials: { bot_token: add('slack bot token', `xoxb-${canaryToken('bot')}`) },
  });
  const hooks = await post('/v1/integrations', { kind: 'webhook', name: 'hooks' });
  add('webhook integration signing secret', hooks.signing_secret);

  // An event through a workflow into the subscriber's in-app inbox: event data, rendered.
  ids.workflow = (await post('/v1/workflows', {
    key: 'canary.note',
    steps: [{ channel: 'inapp', title: 'Note', text: 'Note: {{ data.note }}' }],
  })).id;
  const eventData = add('event data value', canaryToken('event-data'));
  const event = await post('/v1/events', { name: 'canary.note', to: [externalId], data: { note: eventData } });
  assert.equal(event.notifications?.length, 1, `the event reached no inbox: ${JSON.stringify(event)}`);

  // A suppression list entry.
  await post('/v1/suppressions', {
    type: 'email',
    address: `${add('suppressed email local part', canaryToken('suppressed'))}@example.com`,
  });

  // An API key made through the API (shown once).
  const apiKey = await post('/v1/api-keys', { name: 'planted', scopes: ['channels:read'] });
  add('API key created through the API', apiKey.key);

  for (const { name, value } of c) assert.ok(value, `no value for canary ${name}`);
  return { canaries: c, ids };
}
