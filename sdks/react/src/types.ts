// The shapes of the subscriber-token endpoints, looked up in the types generated from
// sdks/openapi.json (src/generated/openapi.ts, `npm run generate`). Nothing here restates a shape
// of the API; only the names are this package's.
import type { components } from './generated/openapi.js';

/** Every named schema of the API, e.g. `Schemas["InboxMessage"]`. */
export type Schemas = components['schemas'];

/** One in-app message (`InboxMessage`). */
export type InboxMessage = Schemas['InboxMessage'];

/** A page of the inbox (`Inbox`), newest first. */
export type InboxPage = Schemas['Inbox'];

/** `POST /v1/inbox/read-all` (`InboxRead`). */
export type InboxRead = Schemas['InboxRead'];

/** `PATCH /v1/inbox/{message_id}` (`MarkInboxMessage`). */
export type MarkInboxMessage = Schemas['MarkInboxMessage'];

/** The channel types a subscriber can opt out of (`ChannelKind`). */
export type ChannelType = Schemas['ChannelKind'];
export const CHANNEL_TYPES: readonly ChannelType[] = ['email', 'sms', 'slack', 'webhook', 'inapp'];

/**
 * A subscriber's opt-outs (`Preferences`): anything not listed is allowed. The document types
 * `channels` as a map whose keys are channel types; the map is narrowed to those keys here.
 */
export type Preferences = Omit<Schemas['Preferences'], 'channels'> & {
  channels?: Partial<Record<ChannelType, boolean>>;
};

/**
 * An RFC 9457 problem answered by the server (`Problem`). Every member is optional here: the
 * body of an error that did not come from Chimatic (a proxy's, say) is read with this type too.
 */
export type Problem = Partial<Schemas['Problem']>;

// ---- The webhook portal (`/v1/portal/…`, a token with the `portal` scope). ----

/** One of the subscriber's webhook endpoints (`Endpoint`, `GET /v1/portal/endpoints`). */
export type WebhookEndpoint = Schemas['Endpoint'];

/** An endpoint just created or rotated, with its signing secret (`whsec_…`), shown once (`EndpointWithSecret`). */
export type WebhookEndpointWithSecret = Schemas['EndpointWithSecret'];

/** `GET /v1/portal/endpoints` (`EndpointList`). */
export type WebhookEndpointList = Schemas['EndpointList'];

/** `POST /v1/portal/endpoints` (`CreateEndpoint`). */
export type CreateWebhookEndpoint = Schemas['CreateEndpoint'];

/** `POST /v1/portal/endpoints/{id}/rotate-secret` (`RotateSecret`): how long the old secret keeps signing. */
export type RotateWebhookSecret = Schemas['RotateSecret'];

/** One delivery attempt (`DeliveryAttempt`). */
export type DeliveryAttempt = Schemas['DeliveryAttempt'];

/** One message delivered (or not yet, or never) to an endpoint (`EndpointDelivery`). */
export type EndpointDelivery = Schemas['EndpointDelivery'];

/** A page of an endpoint's deliveries, newest first (`DeliveryList`). */
export type EndpointDeliveryPage = Schemas['DeliveryList'];

/** `POST …/deliveries/{message_id}/replay` (`NotificationAccepted`). */
export type ReplayAccepted = Schemas['NotificationAccepted'];

/** What a subscriber token opens (`SubscriberScope`): `inbox` and/or `portal`. */
export type SubscriberScope = Schemas['SubscriberScope'];
