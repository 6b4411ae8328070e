// The client: one namespace per resource of the API, each method one operation of the OpenAPI
// document (its id in the comment). Every request and response type is the generated one.
import {
  type ChimaticOptions,
  randomIdempotencyKey,
  type RequestOptions,
  Transport,
} from './core.js';
import type {
  OperationId,
  QueryParams,
  RequestBody,
  ResponseBody,
  Schemas,
} from './types.js';

type Body<O extends OperationId> = RequestBody<O>;
type Res<O extends OperationId> = Promise<ResponseBody<O>>;
type Query<O extends OperationId> = QueryParams<O>;
type Id = string;

/** A list's query without its cursor, which the iterator keeps. */
type IterQuery<O extends OperationId, Cursor extends string> = Omit<Query<O>, Cursor>;

/** Yields every item of every page, fetching the next page when the current one is used up. */
async function* paginate<T>(
  fetchPage: (cursor: string | undefined) => Promise<{ data: T[]; next_cursor?: string | null }>,
): AsyncGenerator<T, void, undefined> {
  let cursor: string | undefined;
  for (;;) {
    const page = await fetchPage(cursor);
    yield* page.data;
    const next = page.next_cursor ?? undefined;
    if (next === undefined || next === cursor || page.data.length === 0) return;
    cursor = next;
  }
}

/** Adds an idempotency key to a body that has none, so a retry cannot send twice. */
function withKey<B extends { idempotency_key?: string | null }>(body: B): B {
  return body.idempotency_key == null ? { ...body, idempotency_key: randomIdempotencyKey() } : body;
}

const SAFE = { retrySafe: true } as const;

export class Notifications {
  constructor(private readonly t: Transport) {}

  /**
   * Queues a notification to a channel (`notifications_create`); answered once it is durable.
   * Without an `idempotency_key` one is generated, so retries never queue it twice.
   */
  create(body: Body<'notifications_create'>, options?: RequestOptions): Res<'notifications_create'> {
    return this.t.request('post', '/v1/notifications', { body: withKey(body) }, options, SAFE);
  }

  /**
   * Queues 1 to 1000 notifications, all or nothing (`notifications_create_batch`). Items without
   * an `idempotency_key` get one. A `422 invalid_batch_items` lists the bad items in `errors`.
   */
  createBatch(
    body: Body<'notifications_create_batch'>,
    options?: RequestOptions,
  ): Res<'notifications_create_batch'> {
    const items = body.items.map(withKey);
    return this.t.request('post', '/v1/notifications/batch', { body: { ...body, items } }, options, SAFE);
  }

  /** A notification's status, masked payload and every attempt (`notifications_get`). */
  get(id: Id, options?: RequestOptions): Res<'notifications_get'> {
    return this.t.request('get', '/v1/notifications/{id}', { path: { id } }, options);
  }

  /** Re-queues a `failed` notification with a fresh schedule (`notifications_replay`). */
  replay(id: Id, options?: RequestOptions): Res<'notifications_replay'> {
    return this.t.request('post', '/v1/notifications/{id}/replay', { path: { id } }, options);
  }
}

export class Events {
  constructor(private readonly t: Transport) {}

  /**
   * Sends an event: the workflow whose key is its `name` renders it for every recipient
   * (`events_send`). Without an `idempotency_key` one is generated, so retries never send twice.
   */
  send(body: Body<'events_send'>, options?: RequestOptions): Res<'events_send'> {
    return this.t.request('post', '/v1/events', { body: withKey(body) }, options, SAFE);
  }
}

export class Channels {
  constructor(private readonly t: Transport) {}

  /** Creates a webhook channel; its `signing_secret` is in this answer only (`channels_create`). */
  create(body: Body<'channels_create'>, options?: RequestOptions): Res<'channels_create'> {
    return this.t.request('post', '/v1/channels', { body }, options);
  }

  /** One page of channels (`channels_list`); pass `next_cursor` as `after` for the next. */
  list(query?: Query<'channels_list'>, options?: RequestOptions): Res<'channels_list'> {
    return this.t.request('get', '/v1/channels', { query }, options);
  }

  /** Every channel, page after page. */
  iterate(
    query?: IterQuery<'channels_list', 'after'>,
    options?: RequestOptions,
  ): AsyncGenerator<Schemas['ChannelView'], void, undefined> {
    return paginate((after) => this.list({ ...query, after }, options));
  }

  get(id: Id, options?: RequestOptions): Res<'channels_get'> {
    return this.t.request('get', '/v1/channels/{id}', { path: { id } }, options);
  }

  /** Takes a channel out of use at once; its queued notifications are cancelled. */
  deactivate(id: Id, options?: RequestOptions): Res<'channels_deactivate'> {
    return this.t.request('post', '/v1/channels/{id}/deactivate', { path: { id } }, options);
  }

  /** Puts a deactivated channel back in use (before its `purge_at`). */
  reactivate(id: Id, options?: RequestOptions): Res<'channels_reactivate'> {
    return this.t.request('post', '/v1/channels/{id}/reactivate', { path: { id } }, options);
  }
}

export class SubscriberChannels {
  constructor(private readonly t: Transport) {}

  /** Adds a way to reach the subscriber (`subscribers_add_channel`). */
  add(
    subscriberId: Id,
    body: Body<'subscribers_add_channel'>,
    options?: RequestOptions,
  ): Res<'subscribers_add_channel'> {
    return this.t.request('post', '/v1/subscribers/{id}/channels', { path: { id: subscriberId }, body }, options);
  }

  list(subscriberId: Id, options?: RequestOptions): Res<'subscribers_list_channels'> {
    return this.t.request('get', '/v1/subscribers/{id}/channels', { path: { id: subscriberId } }, options);
  }

  remove(subscriberId: Id, channelId: Id, options?: RequestOptions): Res<'subscribers_remove_channel'> {
    return this.t.request(
      'delete',
      '/v1/subscribers/{id}/channels/{channel_id}',
      { path: { id: subscriberId, channel_id: channelId } },
      options,
    );
  }
}

export class SubscriberPreferences {
  constructor(private readonly t: Transport) {}

  get(subscriberId: Id, options?: RequestOptions): Res<'subscribers_preferences'> {
    return this.t.request('get', '/v1/subscribers/{id}/preferences', { path: { id: subscriberId } }, options);
  }

  /** Replaces the subscriber's opt-outs (`subscribers_set_preferences`). */
  set(
    subscriberId: Id,
    body: Body<'subscribers_set_preferences'>,
    options?: RequestOptions,
  ): Res<'subscribers_set_preferences'> {
    return this.t.request(
      'put',
      '/v1/subscribers/{id}/preferences',
      { path: { id: subscriberId }, body },
      options,
    );
  }
}

export class Subscribers {
  readonly channels: SubscriberChannels;
  readonly preferences: SubscriberPreferences;

  constructor(private readonly t: Transport) {
    this.channels = new SubscriberChannels(t);
    this.preferences = new SubscriberPreferences(t);
  }

  /**
   * Creates a subscriber by your `external_id`, or replaces the attributes of the one that has it
   * (`subscribers_identify`). Safe to retry.
   */
  identify(body: Body<'subscribers_identify'>, options?: RequestOptions): Res<'subscribers_identify'> {
    return this.t.request('post', '/v1/subscribers', { body }, options, SAFE);
  }

  get(id: Id, options?: RequestOptions): Res<'subscribers_get'> {
    return this.t.request('get', '/v1/subscribers/{id}', { path: { id } }, options);
  }

  /** Replaces the subscriber's attributes (`subscribers_update`). Safe to retry. */
  update(id: Id, body: Body<'subscribers_update'>, options?: RequestOptions): Res<'subscribers_update'> {
    return this.t.request('patch', '/v1/subscribers/{id}', { path: { id }, body }, options, SAFE);
  }

  /** GDPR erasure: the subscriber and everything of it, for good (`subscribers_erase`). */
  erase(id: Id, options?: RequestOptions): Res<'subscribers_erase'> {
    return this.t.request('delete', '/v1/subscribers/{id}', { path: { id } }, options);
  }

  /** One page of subscribers (`subscribers_list`); pass `next_cursor` as `after` for the next. */
  list(query?: Query<'subscribers_list'>, options?: RequestOptions): Res<'subscribers_list'> {
    return this.t.request('get', '/v1/subscribers', { query }, options);
  }

  /** Every subscriber, page after page (`limit` sets the page size). */
  iterate(
    query?: IterQuery<'subscribers_list', 'after'>,
    options?: RequestOptions,
  ): AsyncGenerator<Schemas['SubscriberView'], void, undefined> {
    return paginate((after) => this.list({ ...query, after }, options));
  }

  /** One page of the subscriber's in-app inbox, newest first (`subscribers_inbox`). */
  inbox(
    id: Id,
    query?: Omit<Query<'subscribers_inbox'>, 'token'>,
    options?: RequestOptions,
  ): Res<'subscribers_inbox'> {
    return this.t.request('get', '/v1/subscribers/{id}/inbox', { path: { id }, query }, options);
  }

  /** Every message of the subscriber's inbox, newest first. */
  iterateInbox(
    id: Id,
    query?: Omit<Query<'subscribers_inbox'>, 'token' | 'before'>,
    options?: RequestOptions,
  ): AsyncGenerator<Schemas['InboxMessage'], void, undefined> {
    return paginate((before) => this.inbox(id, { ...query, before }, options));
  }

  /** Marks an inbox message read or archived (`subscribers_mark_inbox`). Safe to retry. */
  markInbox(
    id: Id,
    messageId: Id,
    body: Body<'subscribers_mark_inbox'>,
    options?: RequestOptions,
  ): Res<'subscribers_mark_inbox'> {
    return this.t.request(
      'patch',
      '/v1/subscribers/{id}/inbox/{message_id}',
      { path: { id, message_id: messageId }, body },
      options,
      SAFE,
    );
  }

  /**
   * A subscriber token (`sbt_…`) for your front end (`subscribers_issue_token`): `scopes`
   * `['inbox']` (the default) and/or `['portal']` (the subscriber's webhook endpoints).
   */
  issueToken(
    id: Id,
    body: Body<'subscribers_issue_token'> = {},
    options?: RequestOptions,
  ): Res<'subscribers_issue_token'> {
    return this.t.request('post', '/v1/subscribers/{id}/token', { path: { id }, body }, options);
  }
}

export class Topics {
  constructor(private readonly t: Transport) {}

  create(body: Body<'topics_create'>, options?: RequestOptions): Res<'topics_create'> {
    return this.t.request('post', '/v1/topics', { body }, options);
  }

  list(options?: RequestOptions): Res<'topics_list'> {
    return this.t.request('get', '/v1/topics', {}, options);
  }

  get(id: Id, options?: RequestOptions): Res<'topics_get'> {
    return this.t.request('get', '/v1/topics/{id}', { path: { id } }, options);
  }

  /** Adds subscribers (`sub_…`, up to 1000) to the topic (`topics_add`). Safe to retry. */
  addMembers(
    id: Id,
    subscriberIds: Schemas['TopicMembers']['subscriber_ids'],
    options?: RequestOptions,
  ): Res<'topics_add'> {
    const body: Body<'topics_add'> = { subscriber_ids: subscriberIds };
    return this.t.request('post', '/v1/topics/{id}/subscribers', { path: { id }, body }, options, SAFE);
  }

  /** Removes subscribers from the topic (`topics_remove`). Safe to retry. */
  removeMembers(
    id: Id,
    subscriberIds: Schemas['TopicMembers']['subscriber_ids'],
    options?: RequestOptions,
  ): Res<'topics_remove'> {
    const body: Body<'topics_remove'> = { subscriber_ids: subscriberIds };
    return this.t.request(
      'post',
      '/v1/topics/{id}/subscribers/remove',
      { path: { id }, body },
      options,
      SAFE,
    );
  }

  /** One page of the topic's member ids (`topics_members`). */
  members(id: Id, query?: Query<'topics_members'>, options?: RequestOptions): Res<'topics_members'> {
    return this.t.request('get', '/v1/topics/{id}/subscribers', { path: { id }, query }, options);
  }

  /** Every member id of the topic, page after page. */
  iterateMembers(
    id: Id,
    query?: IterQuery<'topics_members', 'after'>,
    options?: RequestOptions,
  ): AsyncGenerator<Schemas['SubscriberId'], void, undefined> {
    return paginate((after) => this.members(id, { ...query, after }, options));
  }
}

export class Workflows {
  constructor(private readonly t: Transport) {}

  create(body: Body<'workflows_create'>, options?: RequestOptions): Res<'workflows_create'> {
    return this.t.request('post', '/v1/workflows', { body }, options);
  }

  list(options?: RequestOptions): Res<'workflows_list'> {
    return this.t.request('get', '/v1/workflows', {}, options);
  }

  get(id: Id, options?: RequestOptions): Res<'workflows_get'> {
    return this.t.request('get', '/v1/workflows/{id}', { path: { id } }, options);
  }

  /** Replaces the workflow's steps and category (`workflows_replace`). */
  replace(id: Id, body: Body<'workflows_replace'>, options?: RequestOptions): Res<'workflows_replace'> {
    return this.t.request('put', '/v1/workflows/{id}', { path: { id }, body }, options);
  }

  delete(id: Id, options?: RequestOptions): Res<'workflows_delete'> {
    return this.t.request('delete', '/v1/workflows/{id}', { path: { id } }, options);
  }

  /** Renders every step with sample data; stored subscribers are never used (`workflows_preview`). */
  preview(id: Id, body: Body<'workflows_preview'> = {}, options?: RequestOptions): Res<'workflows_preview'> {
    return this.t.request('post', '/v1/workflows/{id}/preview', { path: { id }, body }, options, SAFE);
  }
}

export class IntegrationOAuth {
  constructor(private readonly t: Transport) {}

  /** Starts connecting a Slack or Google account; returns the authorization URL. */
  start(
    provider: Schemas['OAuthProvider'],
    body: Body<'integrations_oauth_start'>,
    options?: RequestOptions,
  ): Res<'integrations_oauth_start'> {
    return this.t.request('post', '/v1/integrations/oauth/{provider}/start', { path: { provider }, body }, options);
  }

  /** Finishes it with the `code` and `state` the provider sent to the redirect URI. */
  finish(
    provider: Schemas['OAuthProvider'],
    body: Body<'integrations_oauth_finish'>,
    options?: RequestOptions,
  ): Res<'integrations_oauth_finish'> {
    return this.t.request('post', '/v1/integrations/oauth/{provider}/finish', { path: { provider }, body }, options);
  }
}

export class Integrations {
  readonly oauth: IntegrationOAuth;

  constructor(private readonly t: Transport) {
    this.oauth = new IntegrationOAuth(t);
  }

  /** Creates an integration; its credentials go to the vault only (`integrations_create`). */
  create(body: Body<'integrations_create'>, options?: RequestOptions): Res<'integrations_create'> {
    return this.t.request('post', '/v1/integrations', { body }, options);
  }

  list(options?: RequestOptions): Res<'integrations_list'> {
    return this.t.request('get', '/v1/integrations', {}, options);
  }

  get(id: Id, options?: RequestOptions): Res<'integrations_get'> {
    return this.t.request('get', '/v1/integrations/{id}', { path: { id } }, options);
  }

  /** Changes the name, settings or credentials, each replaced whole (`integrations_update`). */
  update(id: Id, body: Body<'integrations_update'>, options?: RequestOptions): Res<'integrations_update'> {
    return this.t.request('patch', '/v1/integrations/{id}', { path: { id }, body }, options, SAFE);
  }

  delete(id: Id, options?: RequestOptions): Res<'integrations_delete'> {
    return this.t.request('delete', '/v1/integrations/{id}', { path: { id } }, options);
  }

  /** Runs the health check now, without user data (`integrations_check`). */
  check(id: Id, options?: RequestOptions): Res<'integrations_check'> {
    return this.t.request('post', '/v1/integrations/{id}/check', { path: { id } }, options);
  }

  /** One page of the provider webhooks received for it, newest first. */
  inbound(
    id: Id,
    query?: Query<'integrations_inbound_history'>,
    options?: RequestOptions,
  ): Res<'integrations_inbound_history'> {
    return this.t.request('get', '/v1/integrations/{id}/inbound', { path: { id }, query }, options);
  }

  iterateInbound(
    id: Id,
    query?: IterQuery<'integrations_inbound_history', 'before'>,
    options?: RequestOptions,
  ): AsyncGenerator<Schemas['InboundEventView'], void, undefined> {
    return paginate((before) => this.inbound(id, { ...query, before }, options));
  }
}

export class Suppressions {
  constructor(private readonly t: Transport) {}

  create(body: Body<'suppressions_create'>, options?: RequestOptions): Res<'suppressions_create'> {
    return this.t.request('post', '/v1/suppressions', { body }, options);
  }

  list(query?: Query<'suppressions_list'>, options?: RequestOptions): Res<'suppressions_list'> {
    return this.t.request('get', '/v1/suppressions', { query }, options);
  }

  iterate(
    query?: IterQuery<'suppressions_list', 'after'>,
    options?: RequestOptions,
  ): AsyncGenerator<Schemas['SuppressionView'], void, undefined> {
    return paginate((after) => this.list({ ...query, after }, options));
  }

  delete(id: Id, options?: RequestOptions): Res<'suppressions_delete'> {
    return this.t.request('delete', '/v1/suppressions/{id}', { path: { id } }, options);
  }
}

export class Audit {
  constructor(private readonly t: Transport) {}

  /** One page of the audit log, newest first (`audit_list`); pass `next_cursor` as `cursor`. */
  list(query?: Query<'audit_list'>, options?: RequestOptions): Res<'audit_list'> {
    return this.t.request('get', '/v1/audit', { query }, options);
  }

  /** Every matching entry, newest first, page after page. */
  iterate(
    query?: IterQuery<'audit_list', 'cursor'>,
    options?: RequestOptions,
  ): AsyncGenerator<Schemas['ExportedEntry'], void, undefined> {
    return paginate((cursor) => this.list({ ...query, cursor }, options));
  }

  /**
   * The whole log as text (`audit_export`): JSON Lines (default, verifiable with
   * `chimatic audit verify --file`) or CSV.
   */
  async export(query?: Query<'audit_export'>, options?: RequestOptions): Promise<string> {
    return (await this.t.send('get', '/v1/audit/export', { query }, options ?? {}, { parseAs: 'text' })) as string;
  }

  /** The same, as a stream of bytes, for logs too large to hold in memory. */
  async exportStream(
    query?: Query<'audit_export'>,
    options?: RequestOptions,
  ): Promise<ReadableStream<Uint8Array>> {
    return (await this.t.send('get', '/v1/audit/export', { query }, options ?? {}, {
      parseAs: 'stream',
    })) as ReadableStream<Uint8Array>;
  }

  /** The Ed25519 key that signs the chain heads, to pin when verifying an export. */
  publicKey(options?: RequestOptions): Res<'audit_public_key'> {
    return this.t.request('get', '/v1/audit/public-key', {}, options);
  }
}

export class ApiKeys {
  constructor(private readonly t: Transport) {}

  /** Creates a key with the given scopes; the key is in this answer only (`api_keys_create`). */
  create(body: Body<'api_keys_create'>, options?: RequestOptions): Res<'api_keys_create'> {
    return this.t.request('post', '/v1/api-keys', { body }, options);
  }

  list(options?: RequestOptions): Res<'api_keys_list'> {
    return this.t.request('get', '/v1/api-keys', {}, options);
  }

  /** Revokes a key, effective on the next request (`api_keys_revoke`). */
  revoke(id: Id, options?: RequestOptions): Res<'api_keys_revoke'> {
    return this.t.request('delete', '/v1/api-keys/{id}', { path: { id } }, options);
  }
}

export class Workspace {
  constructor(private readonly t: Transport) {}

  /** The caller's workspace (`workspace_get`). */
  get(options?: RequestOptions): Res<'workspace_get'> {
    return this.t.request('get', '/v1/workspace', {}, options);
  }

  /** Delivery analytics per UTC day (`workspace_stats`, `?days=1..90`). */
  stats(query?: Query<'workspace_stats'>, options?: RequestOptions): Res<'workspace_stats'> {
    return this.t.request('get', '/v1/stats', { query }, options);
  }

  /** Deletes the workspace and everything of it, for good (owner key only; `workspace_delete`). */
  delete(body: Body<'workspace_delete'>, options?: RequestOptions): Res<'workspace_delete'> {
    return this.t.request('delete', '/v1/workspace', { body }, options);
  }

  /** Rotates the workspace's data keys (`workspace_rotate_dek`). */
  rotateDek(options?: RequestOptions): Res<'workspace_rotate_dek'> {
    return this.t.request('post', '/v1/workspace/rotate-dek', {}, options);
  }

  /** Brings the workspace's own KMS key (`workspace_use_kms`). */
  useKms(body: Body<'workspace_use_kms'>, options?: RequestOptions): Res<'workspace_use_kms'> {
    return this.t.request('put', '/v1/workspace/kms', { body }, options);
  }
}

/** The inbox of one subscriber, for a client whose `apiKey` is a subscriber token (`sbt_…`). */
export class Inbox {
  constructor(private readonly t: Transport) {}

  list(query?: Omit<Query<'inbox_list'>, 'token'>, options?: RequestOptions): Res<'inbox_list'> {
    return this.t.request('get', '/v1/inbox', { query }, options);
  }

  iterate(
    query?: Omit<Query<'inbox_list'>, 'token' | 'before'>,
    options?: RequestOptions,
  ): AsyncGenerator<Schemas['InboxMessage'], void, undefined> {
    return paginate((before) => this.list({ ...query, before }, options));
  }

  /** Marks a message read or archived (`inbox_mark`). Safe to retry. */
  mark(messageId: Id, body: Body<'inbox_mark'>, options?: RequestOptions): Res<'inbox_mark'> {
    return this.t.request('patch', '/v1/inbox/{message_id}', { path: { message_id: messageId }, body }, options, SAFE);
  }

  /** Marks every unread message read (`inbox_read_all`). Safe to retry. */
  readAll(options?: RequestOptions): Res<'inbox_read_all'> {
    return this.t.request('post', '/v1/inbox/read-all', {}, options, SAFE);
  }

  /** The subscriber's own opt-outs (`inbox_preferences`). */
  preferences(options?: RequestOptions): Res<'inbox_preferences'> {
    return this.t.request('get', '/v1/inbox/preferences', {}, options);
  }

  /** Replaces the subscriber's own opt-outs (`inbox_set_preferences`). */
  setPreferences(body: Body<'inbox_set_preferences'>, options?: RequestOptions): Res<'inbox_set_preferences'> {
    return this.t.request('put', '/v1/inbox/preferences', { body }, options);
  }
}

/**
 * The webhook endpoints of one subscriber, for a client whose `apiKey` is a subscriber token
 * with the `portal` scope.
 */
export class Portal {
  constructor(private readonly t: Transport) {}

  list(options?: RequestOptions): Res<'portal_list'> {
    return this.t.request('get', '/v1/portal/endpoints', {}, options);
  }

  /** Adds an endpoint; its `signing_secret` is in this answer only (`portal_create`). */
  create(body: Body<'portal_create'>, options?: RequestOptions): Res<'portal_create'> {
    return this.t.request('post', '/v1/portal/endpoints', { body }, options);
  }

  /** Safe to retry. */
  delete(id: Id, options?: RequestOptions): Res<'portal_delete'> {
    return this.t.request('delete', '/v1/portal/endpoints/{id}', { path: { id } }, options, SAFE);
  }

  /** A new signing secret; the old one keeps signing for `overlap_seconds` (`portal_rotate_secret`). */
  rotateSecret(id: Id, body: Body<'portal_rotate_secret'> = {}, options?: RequestOptions): Res<'portal_rotate_secret'> {
    return this.t.request('post', '/v1/portal/endpoints/{id}/rotate-secret', { path: { id }, body }, options);
  }

  /** Safe to retry. */
  disable(id: Id, options?: RequestOptions): Res<'portal_disable'> {
    return this.t.request('post', '/v1/portal/endpoints/{id}/disable', { path: { id } }, options, SAFE);
  }

  /** Safe to retry. */
  enable(id: Id, options?: RequestOptions): Res<'portal_enable'> {
    return this.t.request('post', '/v1/portal/endpoints/{id}/enable', { path: { id } }, options, SAFE);
  }

  /** An endpoint's recent deliveries with their attempts, newest first (`portal_deliveries`). */
  deliveries(id: Id, query?: Query<'portal_deliveries'>, options?: RequestOptions): Res<'portal_deliveries'> {
    return this.t.request('get', '/v1/portal/endpoints/{id}/deliveries', { path: { id }, query }, options);
  }

  iterateDeliveries(
    id: Id,
    query?: Omit<Query<'portal_deliveries'>, 'before'>,
    options?: RequestOptions,
  ): AsyncGenerator<Schemas['EndpointDelivery'], void, undefined> {
    return paginate((before) => this.deliveries(id, { ...query, before }, options));
  }

  /** Sends a failed delivery of the endpoint again (`portal_replay`). */
  replay(id: Id, messageId: Id, options?: RequestOptions): Res<'portal_replay'> {
    return this.t.request(
      'post',
      '/v1/portal/endpoints/{id}/deliveries/{message_id}/replay',
      { path: { id, message_id: messageId } },
      options,
    );
  }
}

/**
 * The Chimatic API client.
 *
 * ```ts
 * const chimatic = new Chimatic({ apiKey: process.env.CHIMATIC_API_KEY!, baseUrl: 'https://chimatic.example.com' });
 * await chimatic.events.send({ name: 'order.shipped', to: ['user-42'], data: { order: 'o-1042' } });
 * ```
 */
export class Chimatic {
  readonly notifications: Notifications;
  readonly events: Events;
  readonly channels: Channels;
  readonly subscribers: Subscribers;
  readonly topics: Topics;
  readonly workflows: Workflows;
  readonly integrations: Integrations;
  readonly suppressions: Suppressions;
  readonly audit: Audit;
  readonly apiKeys: ApiKeys;
  readonly workspace: Workspace;
  /** Only for a client made with a subscriber token (`sbt_…`) as its `apiKey`. */
  readonly inbox: Inbox;
  /** Only for a client made with a subscriber token with the `portal` scope. */
  readonly portal: Portal;
  /**
   * Any operation by its path and method, typed from the OpenAPI document, e.g.
   * `chimatic.request('get', '/v1/channels/{id}', { path: { id } })`.
   */
  readonly request: Transport['request'];
  readonly #transport: Transport;

  constructor(options: ChimaticOptions) {
    const t = new Transport(options);
    this.#transport = t;
    this.request = t.request.bind(t);
    this.notifications = new Notifications(t);
    this.events = new Events(t);
    this.channels = new Channels(t);
    this.subscribers = new Subscribers(t);
    this.topics = new Topics(t);
    this.workflows = new Workflows(t);
    this.integrations = new Integrations(t);
    this.suppressions = new Suppressions(t);
    this.audit = new Audit(t);
    this.apiKeys = new ApiKeys(t);
    this.workspace = new Workspace(t);
    this.inbox = new Inbox(t);
    this.portal = new Portal(t);
  }

  /** The server's base URL this client talks to. */
  get baseUrl(): string {
    return this.#transport.baseUrl;
  }
}
