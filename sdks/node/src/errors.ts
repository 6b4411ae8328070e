import type { ErrorCode, Schemas } from './types.js';

/** A problem document (RFC 9457) as Chimatic sends it: `application/problem+json`. */
export type Problem = Schemas['Problem'];
/** One invalid item of a batch request (`errors` of a `422 invalid_batch_items`). */
export type ItemError = Schemas['ItemError'];

/** Any error this client throws. */
export class ChimaticClientError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/**
 * A non-2xx answer from the API. `code` is the problem's stable machine-readable code (one of
 * `ErrorCode` for a current server; a plain string if a newer server sends one this client does
 * not know yet).
 */
export class ChimaticError extends ChimaticClientError {
  /** The HTTP status. */
  readonly status: number;
  /** The problem's stable code, e.g. `not_found`, `invalid_body`, `insufficient_scope`. */
  readonly code: ErrorCode | (string & {});
  /** The problem's human-readable explanation (never an echo of the input). */
  readonly detail: string;
  /** The problem's title (the status's reason phrase). */
  readonly title: string;
  /** A URI naming the problem type. */
  readonly type: string;
  /** Per-item problems of a batch request, in item order. */
  readonly errors: ItemError[];
  /** The request id the server or a proxy in front of it sent (`x-request-id`), if any. */
  readonly requestId: string | undefined;
  /** Seconds the server asked to wait before trying again (`Retry-After`), if it said. */
  readonly retryAfter: number | undefined;
  /** The response's headers. */
  readonly headers: Headers;
  /** The problem document as received (`undefined` if the body was not problem JSON). */
  readonly problem: Problem | undefined;
  /** The request's method and path, e.g. `POST /v1/notifications`. */
  readonly request: string;

  constructor(init: {
    status: number;
    headers: Headers;
    problem: Problem | undefined;
    body: string;
    request: string;
  }) {
    const p = init.problem;
    const code = p?.code ?? `http_${init.status}`;
    const detail = p?.detail ?? (init.body.slice(0, 200) || 'no body');
    super(`${init.request}: ${init.status} ${code}: ${detail}`);
    this.status = init.status;
    this.code = code;
    this.detail = detail;
    this.title = p?.title ?? '';
    this.type = p?.type ?? 'about:blank';
    this.errors = p?.errors ?? [];
    this.headers = init.headers;
    this.requestId =
      init.headers.get('x-request-id') ?? init.headers.get('request-id') ?? undefined;
    this.retryAfter = parseRetryAfter(init.headers.get('retry-after'));
    this.problem = p;
    this.request = init.request;
  }
}

/** The request never got an answer: the connection failed, or it timed out. */
export class ChimaticConnectionError extends ChimaticClientError {}

/** No answer within `timeoutMs`. */
export class ChimaticTimeoutError extends ChimaticConnectionError {}

/** Whether `e` is a `ChimaticError`, optionally with the given code. */
export function isChimaticError<C extends ErrorCode>(
  e: unknown,
  code?: C,
): e is ChimaticError & { code: C } {
  return e instanceof ChimaticError && (code === undefined || e.code === code);
}

/** `Retry-After` in seconds: delay-seconds or an HTTP date; `undefined` if absent or unreadable. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null) return undefined;
  const v = value.trim();
  if (/^\d+(\.\d+)?$/.test(v)) return Number(v);
  const at = Date.parse(v);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, (at - now) / 1000);
}
