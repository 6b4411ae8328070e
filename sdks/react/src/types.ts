// The shapes of the subscriber-token endpoints, written from sdks/openapi.json
// (components.schemas Inbox, InboxMessage, InboxRead, MarkInboxMessage, Preferences).

/** One in-app message (`InboxMessage`). */
export interface InboxMessage {
  /** Notification id (`msg_…`). */
  id: string;
  title?: string | null;
  text: string;
  read_at?: string | null;
  archived_at?: string | null;
  created_at: string;
}

/** A page of the inbox (`Inbox`), newest first. */
export interface InboxPage {
  data: InboxMessage[];
  /** Messages neither read nor archived. */
  unread_count: number;
  next_cursor?: string | null;
}

/** `POST /v1/inbox/read-all`. */
export interface InboxRead {
  marked: number;
}

/** `PATCH /v1/inbox/{message_id}`. */
export interface MarkInboxMessage {
  read?: boolean | null;
  archived?: boolean | null;
}

/** The channel types a subscriber can opt out of. */
export type ChannelType = 'email' | 'sms' | 'slack' | 'webhook' | 'inapp';
export const CHANNEL_TYPES: readonly ChannelType[] = ['email', 'sms', 'slack', 'webhook', 'inapp'];

/** A subscriber's opt-outs: anything not listed is allowed. */
export interface Preferences {
  channels?: Partial<Record<ChannelType, boolean>>;
  categories?: Record<string, boolean>;
}

/** An RFC 9457 problem answered by the server. */
export interface Problem {
  type?: string;
  title?: string;
  status?: number;
  detail?: string;
  code?: string;
}
