import { Webhook, WebhookVerificationError } from 'standardwebhooks';

export { WebhookVerificationError };

/**
 * The request's headers, as any framework hands them over: a Fetch `Headers`, Node's
 * `IncomingHttpHeaders` (`req.headers`), or a plain object. Names are matched case-insensitively.
 */
export type WebhookHeaders =
  | Headers
  | Record<string, string | string[] | undefined>
  | Iterable<[string, string]>;

/**
 * Verifies a webhook Chimatic sent (Standard Webhooks: `webhook-id`, `webhook-timestamp`,
 * `webhook-signature`, HMAC-SHA256 with the channel's or integration's `whsec_…` secret) and
 * returns its parsed JSON payload.
 *
 * `rawBody` must be the body exactly as received (a string or the bytes), not re-serialized JSON.
 * Throws `WebhookVerificationError` if a header is missing, the signature does not match, or the
 * timestamp is more than five minutes away from now (a replayed or delayed message).
 */
export function verifyWebhook<T = unknown>(
  secret: string,
  rawBody: string | Uint8Array | ArrayBuffer,
  headers: WebhookHeaders,
): T {
  const body = rawBody instanceof ArrayBuffer ? new Uint8Array(rawBody) : rawBody;
  return new Webhook(secret).verify(body, normalizeHeaders(headers)) as T;
}

function normalizeHeaders(headers: WebhookHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  const put = (name: string, value: string | string[] | undefined) => {
    if (value === undefined) return;
    out[name.toLowerCase()] = Array.isArray(value) ? value.join(' ') : value;
  };
  if (typeof Headers !== 'undefined' && headers instanceof Headers) {
    headers.forEach((value, name) => put(name, value));
  } else if (Symbol.iterator in headers) {
    for (const [name, value] of headers as Iterable<[string, string]>) put(name, value);
  } else {
    for (const [name, value] of Object.entries(headers)) put(name, value);
  }
  return out;
}
