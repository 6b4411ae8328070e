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
// TEMPORARY: written from the server's contract until sdks/openapi.json documents the portal.

/** One of the subscriber's webhook endpoints (`GET /v1/portal/endpoints`). */
export interface WebhookEndpoint {
  /** `sch_…`. */
  id: string;
  /** The URL with most of it hidden, e.g. `https://hoo…`. */
  url_masked: string;
  status: 'active' | 'disabled';
  disabled_at: string | null;
  /** `endpoint`: its own signing secret; `workspace`: the provider's. */
  signed_with: 'endpoint' | 'workspace';
  secret_rotated_at: string | null;
  /** While the previous secret still signs too (after a rotation with overlap). */
  previous_secret_expires_at: string | null;
  created_at: string;
}

/** An endpoint just created or rotated, with its signing secret (`whsec_…`), shown once. */
export type WebhookEndpointWithSecret = WebhookEndpoint & { signing_secret: string };

export interface WebhookEndpointList {
  data: WebhookEndpoint[];
}

/** `POST /v1/portal/endpoints`. */
export interface CreateWebhookEndpoint {
  url: string;
}

/** `POST /v1/portal/endpoints/{id}/rotate-secret`: how long the old secret keeps signing (0 to 604800, default 86400). */
export interface RotateWebhookSecret {
  overlap_seconds?: number;
}

/** One delivery attempt. */
export type DeliveryAttempt = Pick<
  Schemas['AttemptView'],
  'attempt' | 'started_at' | 'succeeded' | 'status_code' | 'latency_ms' | 'error_class'
>;

/** One message delivered (or not yet, or never) to an endpoint. */
export interface EndpointDelivery {
  /** `msg_…`. */
  id: string;
  status: Schemas['NotificationStatus'];
  attempt_count: number;
  created_at: string;
  updated_at: string;
  next_attempt_at: string | null;
  attempts: DeliveryAttempt[];
}

/** A page of an endpoint's deliveries, newest first. */
export interface EndpointDeliveryPage {
  data: EndpointDelivery[];
  next_cursor: string | null;
}

/** `POST …/deliveries/{message_id}/replay`. */
export interface ReplayAccepted {
  id: string;
  status: Schemas['NotificationStatus'];
}
