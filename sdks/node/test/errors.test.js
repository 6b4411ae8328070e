// Typed errors: every non-2xx answer is a ChimaticError with the problem's status, stable code
// and detail; the codes are those the OpenAPI document lists.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { Chimatic, ChimaticError, isChimaticError } from '../dist/index.js';
import { PACKAGE_ROOT, startServer } from './lib/server.js';

let server;
let owner;

before(async () => {
  server = await startServer();
  const { apiKey } = await server.createWorkspace('errors');
  owner = server.client(apiKey);
});

after(() => server?.stop());

/** The error `promise` rejects with. */
async function failure(promise) {
  try {
    await promise;
  } catch (e) {
    return e;
  }
  assert.fail('expected the request to fail');
}

/** Every problem code the OpenAPI document lists for `operationId`. */
function documentedCodes(operationId) {
  const doc = JSON.parse(readFileSync(path.join(PACKAGE_ROOT, '..', 'openapi.json'), 'utf8'));
  for (const item of Object.values(doc.paths)) {
    for (const op of Object.values(item)) {
      if (op?.operationId !== operationId) continue;
      return Object.values(op.responses).flatMap((r) => {
        const schema = r.content?.['application/problem+json']?.schema;
        return schema?.allOf?.[1]?.properties?.code?.enum ?? [];
      });
    }
  }
  throw new Error(`no operation ${operationId}`);
}

test('404 not_found for an id that is not in the workspace', async () => {
  const e = await failure(owner.channels.get('ch_0192f0c1a2b37c4d8e9f0a1b2c3d4e5f'));
  assert.ok(e instanceof ChimaticError);
  assert.equal(e.name, 'ChimaticError');
  assert.equal(e.status, 404);
  assert.equal(e.code, 'not_found');
  assert.equal(e.title, 'Not Found');
  assert.match(e.type, /^https?:\/\//);
  assert.ok(e.detail.length > 0);
  assert.deepEqual(e.errors, []);
  assert.equal(e.request, 'GET /v1/channels/{id}');
  assert.match(e.message, /404 not_found/);
  assert.equal(e.requestId, e.headers.get('x-request-id') ?? undefined);
  assert.ok(isChimaticError(e, 'not_found'));
  assert.ok(!isChimaticError(e, 'unauthorized'));
  assert.ok(documentedCodes('channels_get').includes(e.code));
});

test('400 invalid_id for a malformed id', async () => {
  const e = await failure(owner.notifications.get('not-an-id'));
  assert.equal(e.status, 400);
  assert.equal(e.code, 'invalid_id');
});

test('422 with its code: invalid_url, invalid_body, unknown_event, invalid_idempotency_key', async () => {
  let e = await failure(owner.channels.create({ type: 'webhook', url: 'ftp://example.com/hook' }));
  assert.equal(e.status, 422);
  assert.equal(e.code, 'invalid_url');
  assert.ok(documentedCodes('channels_create').includes(e.code));

  e = await failure(owner.channels.create({ type: 'webhook' }));
  assert.deepEqual([e.status, e.code], [422, 'invalid_body']);

  e = await failure(owner.events.send({ name: 'no.such.workflow', to: ['someone'] }));
  assert.deepEqual([e.status, e.code], [422, 'unknown_event']);
  assert.ok(documentedCodes('events_send').includes(e.code));

  const ch = await owner.channels.create({ type: 'webhook', url: 'http://127.0.0.1:9/x' });
  e = await failure(owner.notifications.create({ channel_id: ch.id, payload: {}, idempotency_key: '' }));
  assert.deepEqual([e.status, e.code], [422, 'invalid_idempotency_key']);
});

test('401 unauthorized without a key, with an unknown key and with a revoked key', async () => {
  // No Authorization header at all: a fetch that drops it.
  const bare = new Chimatic({
    apiKey: 'unused',
    baseUrl: server.url,
    fetch: (input, init) => {
      const headers = { ...init.headers };
      delete headers.authorization;
      return fetch(input, { ...init, headers });
    },
  });
  let e = await failure(bare.workspace.get());
  assert.deepEqual([e.status, e.code], [401, 'unauthorized']);
  assert.equal(e.headers.get('www-authenticate'), 'Bearer');

  e = await failure(server.client('chm_' + 'A'.repeat(43)).channels.list());
  assert.deepEqual([e.status, e.code], [401, 'unauthorized']);

  const created = await owner.apiKeys.create({ name: 'short-lived', scopes: ['channels:read'] });
  const shortLived = server.client(created.key);
  await shortLived.channels.list();
  assert.equal(await owner.apiKeys.revoke(created.id), undefined);
  e = await failure(shortLived.channels.list());
  assert.deepEqual([e.status, e.code], [401, 'unauthorized']);
  const listed = await owner.apiKeys.list();
  assert.ok(listed.data.find((k) => k.id === created.id)?.revoked_at);
});

test('403 insufficient_scope with a narrow key made through the API', async () => {
  const narrow = await owner.apiKeys.create({ name: 'reader', scopes: ['channels:read'] });
  assert.match(narrow.key, /^chm_/);
  assert.deepEqual(narrow.scopes, ['channels:read']);
  assert.equal(narrow.last4, narrow.key.slice(-4));
  const reader = server.client(narrow.key);
  assert.ok(Array.isArray((await reader.channels.list()).data));
  const e = await failure(reader.channels.create({ type: 'webhook', url: 'http://127.0.0.1:9/x' }));
  assert.deepEqual([e.status, e.code], [403, 'insufficient_scope']);
  assert.ok(documentedCodes('channels_create').includes('insufficient_scope'));
  const e2 = await failure(reader.apiKeys.list());
  assert.deepEqual([e2.status, e2.code], [403, 'insufficient_scope']);
});

test('409 conflict: reactivating a channel that is active', async () => {
  const ch = await owner.channels.create({ type: 'webhook', url: 'http://127.0.0.1:9/y' });
  const e = await failure(owner.channels.reactivate(ch.id));
  assert.equal(e.status, 409);
  assert.ok(documentedCodes('channels_reactivate').includes(e.code), e.code);
});
