// Events through a workflow: subscribers with an in-app channel, a workflow with an in-app step,
// events to subscribers and to a topic, the rendered messages in their inboxes (through the API
// key and through a subscriber token), preferences, preview, and the subscriber's lifecycle.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Chimatic } from '../dist/index.js';
import { startServer, waitFor } from './lib/server.js';

let server;
let chimatic;
let alice;
let bob;
let workflow;

before(async () => {
  server = await startServer();
  const { apiKey } = await server.createWorkspace('events');
  chimatic = server.client(apiKey);
  alice = await chimatic.subscribers.identify({ external_id: 'user-alice', attributes: { name: 'Alice' } });
  bob = await chimatic.subscribers.identify({ external_id: 'user-bob', attributes: { name: 'Bob' } });
  await chimatic.subscribers.channels.add(alice.id, { type: 'inapp' });
  await chimatic.subscribers.channels.add(bob.id, { type: 'inapp' });
  workflow = await chimatic.workflows.create({
    key: 'order.shipped',
    category: 'orders',
    steps: [{ channel: 'inapp', title: 'Order {{ data.order }}', text: 'Hi {{ subscriber.name }}, {{ data.order }} shipped.' }],
  });
});

after(() => server?.stop());

test('identify creates a subscriber, and again replaces its attributes', async () => {
  assert.match(alice.id, /^sub_/);
  const again = await chimatic.subscribers.identify({ external_id: 'user-alice', attributes: { name: 'Alice' } });
  assert.equal(again.id, alice.id);
  const got = await chimatic.subscribers.get(alice.id);
  assert.deepEqual(Object.keys(got.attributes_masked), ['name']);
  const channels = await chimatic.subscribers.channels.list(alice.id);
  assert.deepEqual(channels.data.map((c) => c.type), ['inapp']);
});

test('an event renders the workflow into the subscriber inbox', async () => {
  const sent = await chimatic.events.send({ name: 'order.shipped', to: ['user-alice'], data: { order: 'o-1042' } });
  assert.match(sent.event_id, /^evt_/);
  assert.equal(sent.notifications.length, 1);
  assert.deepEqual(sent.skipped, []);
  assert.equal(sent.idempotent_replayed, false);

  const inbox = await waitFor(async () => {
    const page = await chimatic.subscribers.inbox(alice.id);
    return page.data.length > 0 && page;
  }, { what: 'a message in the inbox' });
  assert.equal(inbox.unread_count, 1);
  const [message] = inbox.data;
  assert.equal(message.id, sent.notifications[0]);
  assert.equal(message.title, 'Order o-1042');
  assert.equal(message.text, 'Hi Alice, o-1042 shipped.');

  const view = await waitFor(async () => {
    const n = await chimatic.notifications.get(message.id);
    return n.status === 'delivered' && n;
  });
  assert.equal(view.type, 'inapp');
  assert.equal(view.subscriber_id, alice.id);
});

test('re-sending an event with its idempotency key sends nothing again', async () => {
  const body = { name: 'order.shipped', to: ['user-bob'], data: { order: 'o-7' }, idempotency_key: 'evt-o-7' };
  const first = await chimatic.events.send(body);
  const second = await chimatic.events.send(body);
  assert.equal(second.event_id, first.event_id);
  assert.equal(second.idempotent_replayed, true);
  const inbox = await waitFor(async () => {
    const page = await chimatic.subscribers.inbox(bob.id);
    return page.data.length > 0 && page;
  });
  assert.equal(inbox.data.filter((m) => m.text.includes('o-7')).length, 1);
});

test('unknown recipients are reported as skipped', async () => {
  const sent = await chimatic.events.send({ name: 'order.shipped', to: ['user-alice', 'nobody'], data: { order: 'o-9' } });
  assert.equal(sent.notifications.length, 1);
  assert.deepEqual(sent.skipped.map((s) => [s.index, s.reason]), [[1, 'unknown_subscriber']]);
});

test('an event to a topic reaches every member through the fan-out', async () => {
  const topic = await chimatic.topics.create({ key: 'project.42.watchers' });
  const added = await chimatic.topics.addMembers(topic.id, [alice.id, bob.id]);
  assert.equal(added.changed, 2);
  assert.equal((await chimatic.topics.get(topic.id)).subscriber_count, 2);
  assert.ok((await chimatic.topics.list()).data.some((t) => t.id === topic.id));
  const members = [];
  for await (const id of chimatic.topics.iterateMembers(topic.id, { limit: 1 })) members.push(id);
  assert.deepEqual(members.sort(), [alice.id, bob.id].sort());

  const sent = await chimatic.events.send({ name: 'order.shipped', to: [{ topic: topic.key }], data: { order: 'o-topic' } });
  assert.deepEqual(sent.fanouts, [topic.key]);
  for (const sub of [alice, bob]) {
    await waitFor(async () => {
      const page = await chimatic.subscribers.inbox(sub.id);
      return page.data.some((m) => m.text.includes('o-topic'));
    }, { what: `the topic's message in ${sub.id}'s inbox` });
  }
  const removed = await chimatic.topics.removeMembers(topic.id, [bob.id]);
  assert.equal(removed.changed, 1);
});

test('preferences: an opted-out category is skipped, not sent', async () => {
  await chimatic.subscribers.preferences.set(bob.id, { categories: { orders: false } });
  const prefs = await chimatic.subscribers.preferences.get(bob.id);
  assert.deepEqual(prefs.categories, { orders: false });
  const sent = await chimatic.events.send({ name: 'order.shipped', to: ['user-bob'], data: { order: 'o-out' } });
  const n = await waitFor(async () => {
    const id = sent.notifications[0] ?? null;
    return id && (await chimatic.notifications.get(id));
  });
  assert.equal(n.status, 'skipped');
  await chimatic.subscribers.preferences.set(bob.id, {});
});

test('a subscriber token reads and marks only its own inbox', async () => {
  const { token, expires_at } = await chimatic.subscribers.issueToken(alice.id, { ttl_seconds: 600 });
  assert.match(token, /^sbt_/);
  assert.ok(Date.parse(expires_at) > Date.now());
  const inbox = new Chimatic({ apiKey: token, baseUrl: server.url }).inbox;
  const messages = [];
  for await (const m of inbox.iterate({ limit: 1 })) messages.push(m);
  assert.ok(messages.length >= 2, `messages: ${messages.length}`);
  const page = await inbox.list();
  assert.ok(page.unread_count >= 2);
  const marked = await inbox.mark(messages[0].id, { read: true });
  assert.ok(marked.read_at, JSON.stringify(marked));
  const after = await inbox.list();
  assert.equal(after.unread_count, page.unread_count - 1);
  const { marked: allRead } = await inbox.readAll();
  assert.equal(allRead, after.unread_count);
  assert.equal((await inbox.list()).unread_count, 0);
  // The subscriber edits their own opt-outs; the API key sees the same.
  assert.deepEqual((await inbox.setPreferences({ categories: { marketing: false } })).categories, { marketing: false });
  assert.deepEqual((await inbox.preferences()).categories, { marketing: false });
  assert.deepEqual((await chimatic.subscribers.preferences.get(alice.id)).categories, { marketing: false });
  await inbox.setPreferences({});
  const archived = await chimatic.subscribers.markInbox(alice.id, messages[1].id, { archived: true });
  assert.ok(archived.archived_at);
  const visible = await chimatic.subscribers.inbox(alice.id);
  assert.ok(!visible.data.some((m) => m.id === messages[1].id));
  const all = await chimatic.subscribers.inbox(alice.id, { archived: true });
  assert.ok(all.data.some((m) => m.id === messages[1].id));
});

test('workflows: list, get, preview, replace, delete', async () => {
  assert.deepEqual((await chimatic.workflows.list()).data.map((w) => w.key), ['order.shipped']);
  assert.equal((await chimatic.workflows.get(workflow.id)).key, 'order.shipped');
  const preview = await chimatic.workflows.preview(workflow.id, { data: { order: 'o-p' }, subscriber: { name: 'Sam' } });
  assert.deepEqual(preview.steps.map((s) => [s.channel, s.title, s.text]), [['inapp', 'Order o-p', 'Hi Sam, o-p shipped.']]);
  const replaced = await chimatic.workflows.replace(workflow.id, {
    category: 'orders',
    steps: [{ channel: 'inapp', title: 'Shipped', text: '{{ data.order }} is on its way' }],
  });
  assert.equal(replaced.steps[0].text, '{{ data.order }} is on its way');
  const temp = await chimatic.workflows.create({ key: 'temp.flow', steps: [{ channel: 'inapp', text: 'x' }] });
  assert.equal(await chimatic.workflows.delete(temp.id), undefined);
  await assert.rejects(chimatic.workflows.get(temp.id), { code: 'not_found', status: 404 });
});

test('update and erase a subscriber', async () => {
  const carol = await chimatic.subscribers.identify({ external_id: 'user-carol' });
  const ch = await chimatic.subscribers.channels.add(carol.id, { type: 'email', address: 'carol@example.com' });
  assert.match(ch.address_masked, /…/);
  const updated = await chimatic.subscribers.update(carol.id, { attributes: { plan: 'pro' } });
  assert.deepEqual(Object.keys(updated.attributes_masked), ['plan']);
  assert.equal(await chimatic.subscribers.channels.remove(carol.id, ch.id), undefined);
  assert.deepEqual((await chimatic.subscribers.channels.list(carol.id)).data, []);
  const receipt = await chimatic.subscribers.erase(carol.id);
  assert.equal(receipt.subscriber_id, carol.id);
  assert.equal(receipt.key_destroyed, true);
  await assert.rejects(chimatic.subscribers.get(carol.id), { code: 'not_found' });
});
