// The HTTP core: one request, with timeouts, retries and typed errors. It uses the global
// `fetch` (or the one given), so it runs in Node 20+, Deno, Bun and browsers alike.
import {
  ChimaticConnectionError,
  ChimaticError,
  ChimaticTimeoutError,
  type Problem,
} from './errors.js';
import type {
  HttpMethod,
  OperationAt,
  PathParams,
  PathsWith,
  QueryParams,
  RequestBody,
  ResponseBody,
} from './types.js';

export interface ChimaticOptions {
  /** An API key (`chm_…`), or a subscriber token (`sbt_…`) for the `inbox` namespace only. */
  apiKey: string;
  /** The server's base URL, e.g. `https://chimatic.example.com` (default `http://localhost:8080`). */
  baseUrl?: string;
  /** A `fetch` implementation (default: the global one). */
  fetch?: typeof fetch;
  /**
   * How often a failed request is tried again (default 2): on `429`, `5xx`, a connection error
   * or a timeout, and only when it is safe to send twice (see the README).
   */
  maxRetries?: number;
  /** Time for each attempt, until the response's body is read, in ms (default 30 000; 0: none). */
  timeoutMs?: number;
  /** The first retry's delay before jitter, in ms (default 500); each next one doubles. */
  retryBaseDelayMs?: number;
  /** The longest backoff between two attempts, in ms (default 8 000). */
  retryMaxDelayMs?: number;
  /**
   * The longest `Retry-After` honoured, in ms (default 60 000): a server asking for a longer
   * wait gets its error thrown at once instead.
   */
  maxRetryAfterMs?: number;
  /** Headers sent with every request. */
  headers?: Record<string, string>;
}

/** Per-call settings; each overrides the client's. */
export interface RequestOptions {
  /** Aborts the request (and any wait before a retry). */
  signal?: AbortSignal;
  timeoutMs?: number;
  maxRetries?: number;
  headers?: Record<string, string>;
}

/** What a request sends: path parameters, query parameters and the JSON body. */
export interface RequestParts<O> {
  path?: PathParams<O>;
  query?: QueryParams<O>;
  body?: RequestBody<O>;
}

/** How the transport treats one request. */
export interface RequestBehaviour {
  /**
   * Whether sending it twice is harmless, so it may be retried. Default: true for GET, PUT and
   * DELETE, false for POST and PATCH.
   */
  retrySafe?: boolean;
  /** How the success body is returned (default `json`). */
  parseAs?: 'json' | 'text' | 'stream';
}

const DEFAULT_BASE_URL = 'http://localhost:8080';

export class Transport {
  readonly baseUrl: string;
  readonly #apiKey: string;
  readonly #fetch: typeof fetch;
  readonly #maxRetries: number;
  readonly #timeoutMs: number;
  readonly #baseDelay: number;
  readonly #maxDelay: number;
  readonly #maxRetryAfter: number;
  readonly #headers: Record<string, string>;

  constructor(options: ChimaticOptions) {
    if (!options || typeof options.apiKey !== 'string' || options.apiKey === '') {
      throw new TypeError('Chimatic: `apiKey` is required');
    }
    const f = options.fetch ?? globalThis.fetch;
    if (typeof f !== 'function') {
      throw new TypeError('Chimatic: no global `fetch`; pass `fetch` in the options');
    }
    this.#apiKey = options.apiKey;
    // A bare global fetch must be called with `this` unset or the global (browsers insist).
    this.#fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.baseUrl = (options.baseUrl ?? DEFAULT_BASE_URL).replace(/\/+$/, '');
    this.#maxRetries = nonNegative(options.maxRetries, 2, 'maxRetries');
    this.#timeoutMs = nonNegative(options.timeoutMs, 30_000, 'timeoutMs');
    this.#baseDelay = nonNegative(options.retryBaseDelayMs, 500, 'retryBaseDelayMs');
    this.#maxDelay = nonNegative(options.retryMaxDelayMs, 8_000, 'retryMaxDelayMs');
    this.#maxRetryAfter = nonNegative(options.maxRetryAfterMs, 60_000, 'maxRetryAfterMs');
    this.#headers = { ...options.headers };
  }

  /**
   * Sends one API request, typed by its path and method in the OpenAPI document, and returns its
   * parsed success body. Throws `ChimaticError` for a non-2xx answer, `ChimaticConnectionError`
   * (or `ChimaticTimeoutError`) when no answer came.
   */
  request<M extends HttpMethod, P extends PathsWith<M>>(
    method: M,
    path: P,
    parts?: RequestParts<OperationAt<P, M>>,
    options?: RequestOptions,
    behaviour?: RequestBehaviour,
  ): Promise<ResponseBody<OperationAt<P, M>>> {
    return this.send(method, path, parts ?? {}, options ?? {}, behaviour ?? {}) as Promise<
      ResponseBody<OperationAt<P, M>>
    >;
  }

  /** `request` without the types, for the namespaces' special cases. */
  async send(
    method: HttpMethod,
    pathTemplate: string,
    parts: { path?: object; query?: object; body?: unknown },
    options: RequestOptions,
    behaviour: RequestBehaviour,
  ): Promise<unknown> {
    const url = this.url(pathTemplate, parts.path, parts.query);
    const what = `${method.toUpperCase()} ${pathTemplate}`;
    const body = parts.body === undefined ? undefined : JSON.stringify(parts.body);
    const headers: Record<string, string> = {
      accept: 'application/json, application/problem+json',
      ...this.#headers,
      ...options.headers,
      authorization: `Bearer ${this.#apiKey}`,
    };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const retrySafe = behaviour.retrySafe ?? (method === 'get' || method === 'put' || method === 'delete');
    const maxRetries = retrySafe ? nonNegative(options.maxRetries, this.#maxRetries, 'maxRetries') : 0;
    const timeoutMs = nonNegative(options.timeoutMs, this.#timeoutMs, 'timeoutMs');
    const fetchFn = this.#fetch;

    for (let attempt = 0; ; attempt++) {
      const deadline = attemptSignal(options.signal, timeoutMs, what);
      let response: Response;
      let text: string;
      try {
        response = await fetchFn(url, {
          method: method.toUpperCase(),
          headers,
          body,
          signal: deadline.signal,
        });
        if (response.ok && behaviour.parseAs === 'stream') {
          deadline.clear();
          return response.body;
        }
        text = await response.text();
      } catch (cause) {
        deadline.clear();
        if (options.signal?.aborted) throw options.signal.reason ?? cause;
        const error = deadline.timedOut()
          ? new ChimaticTimeoutError(`${what}: no answer within ${timeoutMs} ms`, { cause })
          : new ChimaticConnectionError(`${what}: ${describe(cause)}`, { cause });
        if (attempt < maxRetries) {
          await sleep(this.backoff(attempt), options.signal);
          continue;
        }
        throw error;
      }
      deadline.clear();

      if (response.ok) {
        if (behaviour.parseAs === 'text') return text;
        if (response.status === 204 || text === '') return undefined;
        try {
          return JSON.parse(text);
        } catch (cause) {
          throw new ChimaticConnectionError(`${what}: the ${response.status} answer is not JSON`, {
            cause,
          });
        }
      }

      const error = new ChimaticError({
        status: response.status,
        headers: response.headers,
        problem: parseProblem(text, response.headers.get('content-type')),
        body: text,
        request: what,
      });
      if (attempt < maxRetries && isRetryableStatus(response.status)) {
        const delay =
          error.retryAfter !== undefined ? error.retryAfter * 1000 : this.backoff(attempt);
        if (delay <= this.#maxRetryAfter) {
          await sleep(delay, options.signal);
          continue;
        }
      }
      throw error;
    }
  }

  /** Exponential backoff with jitter: half the step fixed, half random ("equal jitter"). */
  backoff(attempt: number): number {
    const step = Math.min(this.#maxDelay, this.#baseDelay * 2 ** attempt);
    return step / 2 + Math.random() * (step / 2);
  }

  url(pathTemplate: string, path?: object, query?: object): string {
    const params = (path ?? {}) as Record<string, unknown>;
    const filled = pathTemplate.replace(/\{([^}]+)\}/g, (_, name: string) => {
      const value = params[name];
      if (value === undefined || value === null || value === '') {
        throw new TypeError(`Chimatic: the path parameter \`${name}\` is required`);
      }
      return encodeURIComponent(String(value));
    });
    const search = new URLSearchParams();
    for (const [name, value] of Object.entries((query ?? {}) as Record<string, unknown>)) {
      if (value === undefined || value === null) continue;
      if (Array.isArray(value)) for (const v of value) search.append(name, String(v));
      else search.append(name, String(value));
    }
    const qs = search.toString();
    return `${this.baseUrl}${filled}${qs ? `?${qs}` : ''}`;
  }
}

/** 429 (rate limited) and 5xx (the server or a proxy failed, or is not ready). */
export function isRetryableStatus(status: number): boolean {
  return status === 429 || status >= 500;
}

function parseProblem(text: string, contentType: string | null): Problem | undefined {
  if (!contentType || !/json/i.test(contentType)) return undefined;
  try {
    const value: unknown = JSON.parse(text);
    if (value && typeof value === 'object' && typeof (value as Problem).code === 'string') {
      return value as Problem;
    }
  } catch {
    // not JSON after all: reported with the body's start as the detail
  }
  return undefined;
}

/** An abort signal for one attempt: the caller's signal, or the attempt's timeout. */
function attemptSignal(outer: AbortSignal | undefined, timeoutMs: number, what: string) {
  const controller = new AbortController();
  let timedOut = false;
  const timer =
    timeoutMs > 0
      ? setTimeout(() => {
          timedOut = true;
          controller.abort(new ChimaticTimeoutError(`${what}: no answer within ${timeoutMs} ms`));
        }, timeoutMs)
      : undefined;
  const onAbort = () => controller.abort(outer?.reason);
  if (outer?.aborted) onAbort();
  else outer?.addEventListener('abort', onAbort, { once: true });
  return {
    signal: controller.signal,
    timedOut: () => timedOut,
    clear() {
      if (timer !== undefined) clearTimeout(timer);
      outer?.removeEventListener('abort', onAbort);
    },
  };
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function describe(cause: unknown): string {
  if (cause instanceof Error) {
    const inner = (cause as { cause?: unknown }).cause;
    return inner instanceof Error ? `${cause.message} (${inner.message})` : cause.message;
  }
  return String(cause);
}

function nonNegative(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new TypeError(`Chimatic: \`${name}\` must be a non-negative number`);
  }
  return value;
}

/** A random idempotency key (a UUID), from the platform's CSPRNG. */
export function randomIdempotencyKey(): string {
  const c = globalThis.crypto;
  if (typeof c?.randomUUID === 'function') return c.randomUUID();
  const b = c.getRandomValues(new Uint8Array(16));
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
