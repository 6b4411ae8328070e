import { createRequester, type ClientOptions } from '../client.js';
import type {
  EndpointDeliveryPage,
  ReplayAccepted,
  WebhookEndpoint,
  WebhookEndpointList,
  WebhookEndpointWithSecret,
} from '../types.js';

export interface DeliveryListOptions {
  /** 1 to 100 (server default 20). */
  limit?: number;
  /** The `next_cursor` of the previous page. */
  before?: string;
}

/** The webhook portal of one subscriber: `/v1/portal/…` (the token needs the `portal` scope). */
export interface PortalClient {
  listEndpoints(): Promise<WebhookEndpointList>;
  /** The answer carries the signing secret: show it once, do not keep it. */
  createEndpoint(url: string): Promise<WebhookEndpointWithSecret>;
  /** `overlapSeconds`: how long the previous secret keeps signing too (server default 86400). */
  rotateSecret(id: string, overlapSeconds?: number): Promise<WebhookEndpointWithSecret>;
  disableEndpoint(id: string): Promise<WebhookEndpoint>;
  enableEndpoint(id: string): Promise<WebhookEndpoint>;
  deleteEndpoint(id: string): Promise<void>;
  listDeliveries(id: string, options?: DeliveryListOptions): Promise<EndpointDeliveryPage>;
  replayDelivery(id: string, messageId: string): Promise<ReplayAccepted>;
}

export function createPortalClient(options: Pick<ClientOptions, 'baseUrl' | 'token' | 'fetch'>): PortalClient {
  const request = createRequester(options);
  const endpoint = (id: string) => `/v1/portal/endpoints/${encodeURIComponent(id)}`;
  return {
    listEndpoints: () => request<WebhookEndpointList>('GET', '/v1/portal/endpoints'),
    createEndpoint: (url) => request<WebhookEndpointWithSecret>('POST', '/v1/portal/endpoints', { url }),
    rotateSecret: (id, overlapSeconds) =>
      request<WebhookEndpointWithSecret>(
        'POST',
        `${endpoint(id)}/rotate-secret`,
        overlapSeconds === undefined ? {} : { overlap_seconds: overlapSeconds },
      ),
    disableEndpoint: (id) => request<WebhookEndpoint>('POST', `${endpoint(id)}/disable`),
    enableEndpoint: (id) => request<WebhookEndpoint>('POST', `${endpoint(id)}/enable`),
    deleteEndpoint: (id) => request<void>('DELETE', endpoint(id)),
    listDeliveries(id, { limit, before } = {}) {
      const q = new URLSearchParams();
      if (limit !== undefined) q.set('limit', String(limit));
      if (before) q.set('before', before);
      const qs = q.toString();
      return request<EndpointDeliveryPage>('GET', `${endpoint(id)}/deliveries${qs ? `?${qs}` : ''}`);
    },
    replayDelivery: (id, messageId) =>
      request<ReplayAccepted>('POST', `${endpoint(id)}/deliveries/${encodeURIComponent(messageId)}/replay`),
  };
}
