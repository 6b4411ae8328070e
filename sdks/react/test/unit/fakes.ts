// A fake Chimatic inbox behind fetch, and an EventSource the test drives by hand.
import type { EventSourceLike } from '../../src/client';
import type { InboxMessage, Preferences } from '../../src/types';
import { FakePortal } from './portalFakes';

export interface FakeCall {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: unknown;
}

let seq = 0;
/** A message with a time-ordered id (like the server's UUIDv7s). */
export function message(title: string, extra: Partial<InboxMessage> = {}): InboxMessage {
  seq += 1;
  return {
    id: `msg_${String(seq).padStart(32, '0')}`,
    title,
    text: `${title} text`,
    read_at: null,
    archived_at: null,
    created_at: new Date(Date.UTC(2026, 0, 1, 0, 0, seq)).toISOString(),
    ...extra,
  };
}

export class FakeServer {
  /** Oldest first, like insertion order. */
  messages: InboxMessage[] = [];
  preferences: Preferences = {};
  calls: FakeCall[] = [];
  token = 'sbt_test';
  portal = new FakePortal();

  unread() {
    return this.messages.filter((m) => !m.read_at && !m.archived_at).length;
  }

  fetch = async (input: RequestInfo | URL, init: RequestInit = {}): Promise<Response> => {
    const url = new URL(String(input));
    const method = init.method ?? 'GET';
    const headers = init.headers as Record<string, string>;
    const body = init.body ? JSON.parse(String(init.body)) : undefined;
    this.calls.push({ method, url: String(input), headers, body });
    const json = (status: number, value: unknown) =>
      new Response(JSON.stringify(value), {
        status,
        headers: { 'content-type': status < 300 ? 'application/json' : 'application/problem+json' },
      });
    if (headers.authorization !== `Bearer ${this.token}`) {
      return json(401, { status: 401, code: 'unauthorized', title: 'Unauthorized', detail: 'bad token' });
    }
    const path = url.pathname;
    if (path.startsWith('/v1/portal/')) return this.portal.handle(method, url, body, json);
    if (method === 'GET' && path === '/v1/inbox') {
      const limit = Number(url.searchParams.get('limit') ?? 20);
      const before = url.searchParams.get('before');
      const newestFirst = this.messages.filter((m) => !m.archived_at).reverse();
      const from = before ? newestFirst.findIndex((m) => m.id === before) + 1 : 0;
      const data = newestFirst.slice(from, from + limit);
      const more = from + limit < newestFirst.length;
      return json(200, { data, unread_count: this.unread(), next_cursor: more ? data[data.length - 1].id : null });
    }
    if (method === 'POST' && path === '/v1/inbox/read-all') {
      const marked = this.unread();
      for (const m of this.messages) if (!m.read_at) m.read_at = new Date().toISOString();
      return json(200, { marked });
    }
    if (path === '/v1/inbox/preferences') {
      if (method === 'PUT') this.preferences = body as Preferences;
      return json(200, this.preferences);
    }
    const one = path.match(/^\/v1\/inbox\/(msg_\w+)$/);
    if (method === 'PATCH' && one) {
      const m = this.messages.find((x) => x.id === one[1]);
      if (!m) return json(404, { status: 404, code: 'not_found' });
      const now = new Date().toISOString();
      if (body.read !== undefined) m.read_at = body.read ? (m.read_at ?? now) : null;
      if (body.archived !== undefined) m.archived_at = body.archived ? (m.archived_at ?? now) : null;
      return json(200, { ...m });
    }
    return json(404, { status: 404, code: 'not_found' });
  };

  /** Adds a message on the "server" and pushes it down every open stream, like the real one. */
  deliver(m: InboxMessage) {
    this.messages.push(m);
    for (const s of FakeEventSource.open) {
      s.emit('message', JSON.stringify(m));
      s.emit('unread', String(this.unread()));
    }
  }
}

export class FakeEventSource implements EventSourceLike {
  static open = new Set<FakeEventSource>();
  static all: FakeEventSource[] = [];
  onerror: ((event: Event) => void) | null = null;
  onopen: ((event: Event) => void) | null = null;
  closed = false;
  readyState = 0;
  private listeners = new Map<string, Set<(e: MessageEvent) => void>>();

  constructor(readonly url: string) {
    FakeEventSource.open.add(this);
    FakeEventSource.all.push(this);
  }

  addEventListener(type: string, listener: (e: MessageEvent) => void) {
    if (!this.listeners.has(type)) this.listeners.set(type, new Set());
    this.listeners.get(type)!.add(listener);
  }

  emit(type: string, data: string) {
    if (this.closed) return;
    for (const l of this.listeners.get(type) ?? []) l(new MessageEvent(type, { data }));
  }

  connect(count: number) {
    this.readyState = 1;
    this.onopen?.(new Event('open'));
    this.emit('unread', String(count));
  }

  /** The server refused the stream: the browser closes it and stops retrying. */
  refuse() {
    this.readyState = 2;
    this.onerror?.(new Event('error'));
  }

  close() {
    this.closed = true;
    this.readyState = 2;
    FakeEventSource.open.delete(this);
  }

  static reset() {
    FakeEventSource.open.clear();
    FakeEventSource.all = [];
  }
}
