export { ChimaticProvider, useChimaticClient, type ChimaticProviderProps } from './context.js';
export { useInbox, useUnreadCount, usePreferences } from './hooks.js';
export type { UseInboxOptions, UseInboxResult, UsePreferencesResult } from './hooks.js';
export { Inbox, type InboxProps, type InboxLabels } from './Inbox.js';
export { Preferences, type PreferencesProps, type PreferencesLabels } from './Preferences.js';
export { ChimaticError, createInboxClient } from './client.js';
export type { ClientOptions, InboxClient, ListOptions, StreamHandlers, EventSourceConstructor, EventSourceLike } from './client.js';
export type { InboxState } from './store.js';
export { CHANNEL_TYPES } from './types.js';
export type { ChannelType, InboxMessage, InboxPage, InboxRead, MarkInboxMessage, Preferences as PreferencesData, Problem, Schemas } from './types.js';
export type { components } from './generated/openapi.js';
export { WebhookPortal, OVERLAP_CHOICES, type WebhookPortalProps } from './portal/WebhookPortal.js';
export { DEFAULT_PORTAL_LABELS, type WebhookPortalLabels } from './portal/labels.js';
export { useWebhookEndpoints, useEndpointDeliveries } from './portal/hooks.js';
export type { UseWebhookEndpointsResult, UseEndpointDeliveriesOptions, UseEndpointDeliveriesResult } from './portal/hooks.js';
export { createPortalClient, type PortalClient, type DeliveryListOptions } from './portal/client.js';
export { usePortalClient } from './context.js';
export type {
  WebhookEndpoint,
  WebhookEndpointWithSecret,
  WebhookEndpointList,
  CreateWebhookEndpoint,
  RotateWebhookSecret,
  EndpointDelivery,
  EndpointDeliveryPage,
  DeliveryAttempt,
  ReplayAccepted,
  SubscriberScope,
} from './types.js';
