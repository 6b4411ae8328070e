export {
  Chimatic,
  Notifications,
  Events,
  Channels,
  Subscribers,
  SubscriberChannels,
  SubscriberPreferences,
  Topics,
  Workflows,
  Integrations,
  IntegrationOAuth,
  Suppressions,
  Audit,
  ApiKeys,
  Workspace,
  Inbox,
  Portal,
} from './client.js';
export type { ChimaticOptions, RequestOptions, RequestParts, RequestBehaviour } from './core.js';
export { isRetryableStatus, randomIdempotencyKey } from './core.js';
export {
  ChimaticClientError,
  ChimaticError,
  ChimaticConnectionError,
  ChimaticTimeoutError,
  isChimaticError,
  parseRetryAfter,
} from './errors.js';
export type { Problem, ItemError } from './errors.js';
export { verifyWebhook, WebhookVerificationError } from './webhooks.js';
export type { WebhookHeaders } from './webhooks.js';
export type {
  components,
  operations,
  paths,
  Schemas,
  OperationId,
  HttpMethod,
  OperationAt,
  PathsWith,
  RequestBody,
  QueryParams,
  PathParams,
  ResponseBody,
  ErrorCode,
  ErrorCodeOf,
} from './types.js';
