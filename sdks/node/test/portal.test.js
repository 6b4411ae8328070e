// The webhook portal through a subscriber token with the `portal` scope: an endpoint added with
// its own secret, which verifies what an event delivers there; rotation with an overlap signs
// with both secrets; the endpoint's deliveries; an inbox-only token is refused.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { ChimaticError, verifyWebhook } from '../dist/index.js';
import { startReceiver, startServer, waitFor } from './lib/server.js';

let server;
let receiver;
let chimatic;
let subscriber;

before(async () => {
  server = await startServer();
  receiver = await startReceiver();
  const { apiKey } = await server.createWorkspace('portal');
  chimatic = server.client(apiKey);
  const hooks = await chimatic.integrations.create({ kind: 'webhook', name: 'hooks' });
  await chimatic.workflows.create({
    key: 'invoice.paid',
    steps: [{ channel: 'webhook', integration_id: hooks.id, text: 'Invoice {{ data.n }} paid' }],
  });
  subscriber = await chimatic.subscribers.identify({ external_id: 'portal-user' });
});

after(async () => {
  await receiver?.close();
  server?.stop();
});

test('a portal token manages its endpoints and their secrets', async () => {
  const inboxOnly = await chimatic.subscribers.issueToken(subscriber.id);
  await assert.rejects(server.client(inboxOnly.token).portal.list(), (e) => e instanceof ChimaticError && e.status === 403);
  const { token } = await chimatic.subscribers.issueToken(subscriber.id, { scopes: ['portal'] });
  const portal = server.client(token).portal;

  const added = await portal.create({ url: `${receiver.url}/portal` });
  assert.match(added.signing_secret, /^whsec_/);
  assert.deepEqual((await portal.list()).data.map((e) => e.id), [added.id]);

  const first = await chimatic.events.send({ name: 'invoice.paid', to: ['portal-user'], data: { n: 1 } });
  let got = await receiver.next((r) => r.headers['webhook-id'] === first.notifications[0]);
  assert.equal(verifyWebhook(added.signing_secret, got.body, got.headers).text, 'Invoice 1 paid');

  const rotated = await portal.rotateSecret(added.id, { overlap_seconds: 600 });
  assert.ok(rotated.previous_secret_expires_at);
  const second = await chimatic.events.send({ name: 'invoice.paid', to: ['portal-user'], data: { n: 2 } });
  got = await receiver.next((r) => r.headers['webhook-id'] === second.notifications[0]);
  for (const secret of [added.signing_secret, rotated.signing_secret]) {
    assert.equal(verifyWebhook(secret, got.body, got.headers).text, 'Invoice 2 paid');
  }

  const page = await waitFor(async () => {
    const p = await portal.deliveries(added.id);
    return p.data.length === 2 && p.data.every((d) => d.status === 'delivered') && p;
  }, { what: 'both deliveries delivered' });
  assert.deepEqual(page.data.map((d) => d.id), [second.notifications[0], first.notifications[0]]);
  const iterated = [];
  for await (const d of portal.iterateDeliveries(added.id, { limit: 1 })) iterated.push(d.id);
  assert.deepEqual(iterated, page.data.map((d) => d.id));
  assert.equal((await portal.disable(added.id)).status, 'disabled');
  assert.equal((await portal.enable(added.id)).status, 'active');
  await portal.delete(added.id);
  assert.deepEqual((await portal.list()).data, []);
});
