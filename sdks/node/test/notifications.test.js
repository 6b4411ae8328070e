// Webhook notifications end to end: a channel pointing at a local receiver, a notification, its
// delivery with a Standard Webhooks signature that verifyWebhook accepts (and rejects once the
// body, the signature or the timestamp is tampered with), idempotency, batches and replay.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Webhook } from 'standardwebhooks';
import { ChimaticError, verifyWebhook, WebhookVerificationError } from '../dist/index.js';
import { startReceiver, startServer, waitFor } from './lib/server.js';

let server;
let receiver;
let chimatic;
let channel;

before(async () => {
  [server, receiver] = await Promise.all([startServer(), startReceiver()]);
  const { apiKey } = await server.createWorkspace('notifications');
  chimatic = server.client(apiKey);
  channel = await chimatic.channels.create({ type: 'webhook', url: `${receiver.url}/hook` });
});

after(async () => {
  await Promise.all([server?.stop(), receiver?.close()]);
});

describe('a webhook notification', () => {
  let accepted;
  let delivery;

  before(async () => {
    accepted = await chimatic.notifications.create({
      channel_id: channel.id,
      payload: { order: 'o-1042', status: 'shipped', items: [1, 2] },
    });
    delivery = await receiver.next((r) => r.headers['webhook-id'] === accepted.id);
  });

  test('is accepted, queued and delivered to the channel', async () => {
    assert.match(accepted.id, /^msg_[0-9a-f]{32}$/);
    assert.equal(accepted.status, 'queued');
    assert.equal(delivery.method, 'POST');
    assert.equal(delivery.path, '/hook');
    assert.deepEqual(JSON.parse(delivery.body), { order: 'o-1042', status: 'shipped', items: [1, 2] });
    const view = await waitFor(async () => {
      const n = await chimatic.notifications.get(accepted.id);
      return n.status === 'delivered' && n;
    }, { what: 'delivered status' });
    assert.equal(view.channel_id, channel.id);
    assert.equal(view.attempt_count, 1);
    assert.equal(view.attempts[0].succeeded, true);
    assert.equal(view.attempts[0].status_code, 200);
  });

  test('carries a signature verifyWebhook accepts, returning the payload', () => {
    assert.match(channel.signing_secret, /^whsec_/);
    const payload = verifyWebhook(channel.signing_secret, delivery.body, delivery.headers);
    assert.deepEqual(payload, { order: 'o-1042', status: 'shipped', items: [1, 2] });
    // The same with the bytes and a Fetch Headers object.
    const headers = new Headers(Object.entries(delivery.headers));
    assert.deepEqual(verifyWebhook(channel.signing_secret, Buffer.from(delivery.body), headers), payload);
  });

  test('fails verification with a tampered body, signature, secret or missing header', () => {
    const secret = channel.signing_secret;
    assert.throws(
      () => verifyWebhook(secret, delivery.body.replace('o-1042', 'o-1043'), delivery.headers),
      WebhookVerificationError,
    );
    const badSig = { ...delivery.headers, 'webhook-signature': 'v1,' + Buffer.alloc(32).toString('base64') };
    assert.throws(() => verifyWebhook(secret, delivery.body, badSig), WebhookVerificationError);
    const otherId = { ...delivery.headers, 'webhook-id': 'msg_other' };
    assert.throws(() => verifyWebhook(secret, delivery.body, otherId), WebhookVerificationError);
    const otherSecret = 'whsec_' + Buffer.alloc(32, 7).toString('base64');
    assert.throws(() => verifyWebhook(otherSecret, delivery.body, delivery.headers), WebhookVerificationError);
    const { 'webhook-signature': _, ...noSig } = delivery.headers;
    assert.throws(() => verifyWebhook(secret, delivery.body, noSig), WebhookVerificationError);
  });

  test('fails verification when the timestamp is old, even with a valid signature for it', () => {
    const secret = channel.signing_secret;
    const old = new Date(Date.now() - 10 * 60 * 1000);
    const signature = new Webhook(secret).sign(accepted.id, old, delivery.body);
    const headers = {
      'webhook-id': accepted.id,
      'webhook-timestamp': String(Math.floor(old.getTime() / 1000)),
      'webhook-signature': signature,
    };
    assert.throws(() => verifyWebhook(secret, delivery.body, headers), /too old/);
    // The server's own timestamp moved back: the signature no longer matches either.
    const moved = { ...delivery.headers, 'webhook-timestamp': String(Number(delivery.headers['webhook-timestamp']) - 1) };
    assert.throws(() => verifyWebhook(secret, delivery.body, moved), WebhookVerificationError);
  });
});

test('the same idempotency key twice gives the same notification, delivered once', async () => {
  const body = { channel_id: channel.id, payload: { n: 'idem' }, idempotency_key: 'order-7-shipped' };
  const first = await chimatic.notifications.create(body);
  const second = await chimatic.notifications.create({ ...body });
  assert.equal(second.id, first.id);
  await receiver.next((r) => r.headers['webhook-id'] === first.id);
  const view = await waitFor(async () => {
    const n = await chimatic.notifications.get(first.id);
    return n.status === 'delivered' && n;
  });
  assert.equal(view.attempt_count, 1);
  assert.equal(receiver.received.filter((r) => r.headers['webhook-id'] === first.id).length, 1);
});

test('without a key, each call is a new notification (the client makes a fresh key per call)', async () => {
  const body = { channel_id: channel.id, payload: { n: 'fresh' } };
  const a = await chimatic.notifications.create(body);
  const b = await chimatic.notifications.create(body);
  assert.notEqual(a.id, b.id);
  assert.equal(body.idempotency_key, undefined, "the caller's object is not changed");
});

test('a batch is accepted whole, with per-item ids and idempotency', async () => {
  const batch = await chimatic.notifications.createBatch({
    items: [
      { channel_id: channel.id, payload: { i: 0 }, idempotency_key: 'batch-item-0' },
      { channel_id: channel.id, payload: { i: 1 } },
    ],
  });
  assert.equal(batch.data.length, 2);
  assert.notEqual(batch.data[0].id, batch.data[1].id);
  assert.deepEqual(batch.data.map((d) => d.idempotent_replayed), [false, false]);
  const again = await chimatic.notifications.createBatch({
    items: [{ channel_id: channel.id, payload: { i: 0 }, idempotency_key: 'batch-item-0' }],
  });
  assert.equal(again.data[0].id, batch.data[0].id);
  assert.equal(again.data[0].idempotent_replayed, true);
});

test('an invalid batch item: 422 invalid_batch_items with per-item errors, nothing stored', async () => {
  const err = await chimatic.notifications
    .createBatch({
      items: [
        { channel_id: channel.id, payload: {} },
        { channel_id: 'ch_0192f0c1a2b37c4d8e9f0a1b2c3d4e5f', payload: {} },
        { channel_id: channel.id, payload: {}, idempotency_key: 'x'.repeat(300) },
      ],
    })
    .catch((e) => e);
  assert.ok(err instanceof ChimaticError, String(err));
  assert.equal(err.status, 422);
  assert.equal(err.code, 'invalid_batch_items');
  assert.deepEqual(
    err.errors.map((e) => [e.index, e.code]),
    [
      [1, 'not_found'],
      [2, 'invalid_idempotency_key'],
    ],
  );
});

test('a notification whose receiver keeps failing ends failed, and replay delivers it', async () => {
  const failing = await startReceiver({ status: () => 500 });
  try {
    const ch = await chimatic.channels.create({ type: 'webhook', url: `${failing.url}/down` });
    const n = await chimatic.notifications.create({ channel_id: ch.id, payload: { try: 'again' } });
    const failed = await waitFor(async () => {
      const v = await chimatic.notifications.get(n.id);
      return v.status === 'failed' && v;
    }, { what: 'failed status' });
    assert.ok(failed.attempt_count >= 2, `attempts: ${failed.attempt_count}`);
    assert.ok(failed.attempts.every((a) => !a.succeeded && a.status_code === 500));

    failing.status = () => 200;
    const replayed = await chimatic.notifications.replay(n.id);
    assert.equal(replayed.id, n.id);
    const delivered = await waitFor(async () => {
      const v = await chimatic.notifications.get(n.id);
      return v.status === 'delivered' && v;
    }, { what: 'delivered after replay' });
    assert.equal(delivered.attempts.at(-1).succeeded, true);
    const last = failing.received.at(-1);
    assert.deepEqual(verifyWebhook(ch.signing_secret, last.body, last.headers), { try: 'again' });
  } finally {
    await failing.close();
  }
});
