// Compile-time checks of the client's types (run by `npm test` through tsc --noEmit): the
// request and response types are the generated ones, and wrong calls do not compile.
import {
  Chimatic,
  ChimaticError,
  isChimaticError,
  verifyWebhook,
  type ErrorCode,
  type ErrorCodeOf,
  type ResponseBody,
  type Schemas,
} from '../src/index.js';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
function assertType<T extends true>(_: T) {}

declare const c: Chimatic;

async function checks() {
  const accepted = await c.notifications.create({ channel_id: 'ch_x', payload: { any: ['json'] } });
  assertType<Equal<typeof accepted, Schemas['NotificationAccepted']>>(true);
  assertType<Equal<typeof accepted.status, Schemas['NotificationStatus']>>(true);

  // @ts-expect-error: channel_id is required
  await c.notifications.create({ payload: {} });
  // @ts-expect-error: no such field
  await c.notifications.create({ channel_id: 'ch_x', payload: {}, extra: 1 });

  const ev = await c.events.send({ name: 'order.shipped', to: ['user-1', { topic: 'watchers' }] });
  assertType<Equal<typeof ev, Schemas['EventAccepted']>>(true);

  const page = await c.subscribers.list({ limit: 10 });
  assertType<Equal<typeof page, Schemas['SubscriberList']>>(true);
  // @ts-expect-error: limit is a number
  await c.subscribers.list({ limit: 'ten' });
  for await (const s of c.subscribers.iterate({ limit: 100 })) {
    assertType<Equal<typeof s, Schemas['SubscriberView']>>(true);
  }
  // @ts-expect-error: the iterator keeps the cursor itself
  c.subscribers.iterate({ after: 'sub_x' });

  await c.subscribers.channels.add('sub_x', { type: 'email', address: 'a@example.com' });
  // @ts-expect-error: an sms channel has a phone, not an address
  await c.subscribers.channels.add('sub_x', { type: 'sms', address: 'a@example.com' });

  const removed = await c.workflows.delete('wf_x');
  assertType<Equal<typeof removed, void>>(true);

  const raw = await c.request('get', '/v1/channels/{id}', { path: { id: 'ch_x' } });
  assertType<Equal<typeof raw, Schemas['ChannelView']>>(true);
  // @ts-expect-error: no such path
  await c.request('get', '/v1/nothing');
  // @ts-expect-error: no PUT on this path
  await c.request('put', '/v1/channels');

  const text: string = await c.audit.export({ format: 'csv' });
  void text;

  type Stats = ResponseBody<'workspace_stats'>;
  assertType<Equal<Stats, Schemas['DeliveryStatsView']>>(true);

  // The documented codes: a union of literals, per operation and over all of them.
  assertType<Equal<ErrorCodeOf<'notifications_create_batch'> extends ErrorCode ? true : false, true>>(true);
  const code: ErrorCode = 'insufficient_scope';
  // @ts-expect-error: not a documented code
  const wrong: ErrorCode = 'no_such_code';
  void code;
  void wrong;
  const batchCode: ErrorCodeOf<'notifications_create_batch'> = 'invalid_batch_items';
  void batchCode;

  try {
    await c.notifications.get('msg_x');
  } catch (e) {
    if (isChimaticError(e, 'not_found')) {
      assertType<Equal<typeof e.code, 'not_found'>>(true);
    }
    if (e instanceof ChimaticError) {
      const s: number = e.status;
      const items: Schemas['ItemError'][] = e.errors;
      void s;
      void items;
    }
  }

  const payload = verifyWebhook<{ order: string }>('whsec_x', '{}', new Headers());
  const order: string = payload.order;
  void order;
}
void checks;
