import type { InboxMessage, InboxPage, InboxRead, MarkInboxMessage, Preferences, Problem } from './types.js';

/** A non-2xx answer of the server (problem+json when it sent one). */
export class ChimaticError extends Error {
  readonly status: number;
  readonly code: string | undefined;
  readonly problem: Problem | undefined;
  constructor(status: number, problem: Problem | undefined, request: string) {
    super(`${request}: ${status}${problem?.code ? ` ${problem.code}` : ''}${problem?.detail ? `: ${problem.detail}` : ''}`);
    this.name = 'ChimaticError';
    this.status = status;
    this.code = problem?.code;
    this.problem = problem;
  }
}

/** What the EventSource constructor must offer (the browser's, or a fake in tests). */
export interface EventSourceLike {
  addEventListener(type: string, listener: (event: MessageEvent) => void): void;
  close(): void;
  onerror: ((event: Event) => void) | null;
  onopen: ((event: Event) => void) | null;
  /** 2 (CLOSED) once the browser stopped reconnecting. */
  readonly readyState?: number;
}
export type EventSourceConstructor = new (url: string) => EventSourceLike;

export interface ClientOptions {
  /** The server, e.g. `https://chimatic.example.com` (no trailing `/v1`). */
  baseUrl: string;
  /** A subscriber token (`sbt_…`) your back end issued with `POST /v1/subscribers/{id}/token`. */
  token: string;
  fetch?: typeof fetch;
  EventSource?: EventSourceConstructor;
}

export interface ListOptions {
  limit?: number;
  before?: string;
  archived?: boolean;
}

export interface StreamHandlers {
  onUnread?: (count: number) => void;
  onMessage?: (message: InboxMessage) => void;
  /** Called when the stream (re)connects; `reconnect` is false the first time. */
  onOpen?: (reconnect: boolean) => void;
  /** `closed`: the browser gave up (the server refused the stream, e.g. an expired token). */
  onError?: (event: Event, closed: boolean) => void;
}

/** The subscriber-token API of one subscriber: `/v1/inbox…`. */
export interface InboxClient {
  list(options?: ListOptions): Promise<InboxPage>;
  mark(id: string, body: MarkInboxMessage): Promise<InboxMessage>;
  readAll(): Promise<InboxRead>;
  getPreferences(): Promise<Preferences>;
  setPreferences(preferences: Preferences): Promise<Preferences>;
  /** Opens the Server-Sent Events stream; returns a function that closes it. */
  stream(handlers: StreamHandlers): () => void;
}

/** Sends one JSON request with the subscriber token; resolves to the parsed body (undefined for 204). */
export type Requester = <T>(method: string, path: string, body?: unknown) => Promise<T>;

/** The authorised JSON requests of one token: `Authorization: Bearer sbt_…`, problem+json errors. */
export function createRequester(options: Pick<ClientOptions, 'baseUrl' | 'token' | 'fetch'>): Requester {
  const base = options.baseUrl.replace(/\/+$/, '');
  const doFetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
  return async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { authorization: `Bearer ${options.token}`, accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await doFetch(base + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (!res.ok) {
      let problem: Problem | undefined;
      try {
        problem = (await res.json()) as Problem;
      } catch {
        problem = undefined;
      }
      throw new ChimaticError(res.status, problem, `${method} ${path.split('?')[0]}`);
    }
    if (res.status === 204) return undefined as T;
    const text = await res.text();
    return (text ? JSON.parse(text) : undefined) as T;
  };
}

export function createInboxClient(options: ClientOptions): InboxClient {
  const base = options.baseUrl.replace(/\/+$/, '');
  const request = createRequester(options);

  return {
    list({ limit, before, archived } = {}) {
      const q = new URLSearchParams();
      if (limit !== undefined) q.set('limit', String(limit));
      if (before) q.set('before', before);
      if (archived !== undefined) q.set('archived', String(archived));
      const qs = q.toString();
      return request<InboxPage>('GET', `/v1/inbox${qs ? `?${qs}` : ''}`);
    },
    mark: (id, body) => request<InboxMessage>('PATCH', `/v1/inbox/${encodeURIComponent(id)}`, body),
    readAll: () => request<InboxRead>('POST', '/v1/inbox/read-all'),
    getPreferences: () => request<Preferences>('GET', '/v1/inbox/preferences'),
    setPreferences: (p) => request<Preferences>('PUT', '/v1/inbox/preferences', p),
    stream(handlers) {
      const ES = options.EventSource ?? (globalThis as { EventSource?: EventSourceConstructor }).EventSource;
      if (!ES) return () => {};
      // EventSource cannot send headers: the token goes in the query.
      const source = new ES(`${base}/v1/inbox/stream?token=${encodeURIComponent(options.token)}`);
      let opened = false;
      source.onopen = () => {
        handlers.onOpen?.(opened);
        opened = true;
      };
      source.onerror = (e) => handlers.onError?.(e, source.readyState === 2);
      source.addEventListener('unread', (e) => {
        const n = Number(e.data);
        if (Number.isFinite(n)) handlers.onUnread?.(n);
      });
      source.addEventListener('message', (e) => {
        try {
          handlers.onMessage?.(JSON.parse(e.data) as InboxMessage);
        } catch {
          /* not a message: ignored */
        }
      });
      return () => source.close();
    },
  };
}
