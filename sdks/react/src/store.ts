import type { InboxClient } from './client.js';
import type { InboxMessage } from './types.js';

export interface InboxState {
  /** Newest first; archived messages are left out. */
  messages: InboxMessage[];
  unreadCount: number;
  /** The cursor of the next (older) page, or null at the end. */
  nextCursor: string | null;
  /** True until the first page arrived. */
  loading: boolean;
  loadingMore: boolean;
  /** Whether the live stream is connected. */
  live: boolean;
  error: Error | null;
}

const INITIAL: InboxState = {
  messages: [],
  unreadCount: 0,
  nextCursor: null,
  loading: true,
  loadingMore: false,
  live: false,
  error: null,
};

const asError = (e: unknown) => (e instanceof Error ? e : new Error(String(e)));

/**
 * The inbox of one subscriber, shared by every hook and component under one provider: one
 * first page, one SSE connection (opened with the first listener, closed with the last).
 */
export class InboxStore {
  private state: InboxState = INITIAL;
  private readonly listeners = new Set<() => void>();
  private closeStream: (() => void) | null = null;
  private stopTimer: ReturnType<typeof setTimeout> | null = null;
  private generation = 0;
  /** Called with each message that arrived live. */
  readonly arrivals = new Set<(m: InboxMessage) => void>();

  constructor(
    readonly client: InboxClient,
    private readonly pageSize = 20,
  ) {}

  getSnapshot = (): InboxState => this.state;

  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    if (this.stopTimer) {
      clearTimeout(this.stopTimer);
      this.stopTimer = null;
    }
    if (!this.closeStream) this.start();
    return () => {
      this.listeners.delete(listener);
      // Deferred, so a remount (React StrictMode) keeps the connection.
      if (this.listeners.size === 0 && !this.stopTimer) {
        this.stopTimer = setTimeout(() => {
          this.stopTimer = null;
          if (this.listeners.size === 0) this.stop();
        }, 0);
      }
    };
  };

  private set(patch: Partial<InboxState> | ((s: InboxState) => Partial<InboxState>)) {
    const p = typeof patch === 'function' ? patch(this.state) : patch;
    this.state = { ...this.state, ...p };
    for (const l of [...this.listeners]) l();
  }

  private start() {
    const gen = ++this.generation;
    this.closeStream = this.client.stream({
      onOpen: (reconnect) => {
        if (gen !== this.generation) return;
        this.set({ live: true });
        // Messages may have arrived while the stream was down.
        if (reconnect) void this.refresh();
      },
      onError: (_e, closed) => {
        if (gen !== this.generation) return;
        this.set({ live: false });
        // The browser will not retry: a request shows why (e.g. 401 for an expired token).
        if (closed) void this.refresh();
      },
      onUnread: (count) => gen === this.generation && this.set({ unreadCount: count }),
      onMessage: (m) => {
        if (gen !== this.generation) return;
        if (this.state.messages.some((x) => x.id === m.id)) return;
        this.set((s) => ({ messages: [m, ...s.messages] }));
        for (const a of [...this.arrivals]) a(m);
      },
    });
    void this.refresh();
  }

  private stop() {
    this.generation++;
    this.closeStream?.();
    this.closeStream = null;
    this.set({ live: false });
  }

  /** Reloads the first page (and the unread count). */
  refresh = async (): Promise<void> => {
    const gen = this.generation;
    try {
      const page = await this.client.list({ limit: this.pageSize });
      if (gen !== this.generation) return;
      this.set((s) => {
        // Keep messages from a stream event that raced the page (ids are time-ordered).
        const first = page.data[0]?.id ?? '';
        const newer = s.messages.filter((m) => m.id > first && !page.data.some((p) => p.id === m.id));
        return {
          messages: [...newer, ...page.data],
          unreadCount: page.unread_count,
          nextCursor: page.next_cursor ?? null,
          loading: false,
          error: null,
        };
      });
    } catch (e) {
      if (gen === this.generation) this.set({ loading: false, error: asError(e) });
    }
  };

  /** Appends the next (older) page. */
  loadMore = async (): Promise<void> => {
    const cursor = this.state.nextCursor;
    if (!cursor || this.state.loadingMore) return;
    this.set({ loadingMore: true });
    try {
      const page = await this.client.list({ limit: this.pageSize, before: cursor });
      this.set((s) => {
        const ids = new Set(s.messages.map((m) => m.id));
        return {
          messages: [...s.messages, ...page.data.filter((m) => !ids.has(m.id))],
          nextCursor: page.next_cursor ?? null,
          unreadCount: page.unread_count,
          loadingMore: false,
        };
      });
    } catch (e) {
      this.set({ loadingMore: false, error: asError(e) });
      throw e;
    }
  };

  private replace(updated: InboxMessage) {
    this.set((s) => {
      const before = s.messages.find((m) => m.id === updated.id);
      const wasUnread = before ? !before.read_at && !before.archived_at : false;
      const isUnread = !updated.read_at && !updated.archived_at;
      const messages = updated.archived_at
        ? s.messages.filter((m) => m.id !== updated.id)
        : s.messages.map((m) => (m.id === updated.id ? updated : m));
      const delta = before ? Number(isUnread) - Number(wasUnread) : 0;
      return { messages, unreadCount: Math.max(0, s.unreadCount + delta) };
    });
  }

  markRead = async (id: string, read = true): Promise<void> => {
    try {
      this.replace(await this.client.mark(id, { read }));
    } catch (e) {
      this.set({ error: asError(e) });
      throw e;
    }
  };

  archive = async (id: string): Promise<void> => {
    try {
      this.replace(await this.client.mark(id, { archived: true }));
    } catch (e) {
      this.set({ error: asError(e) });
      throw e;
    }
  };

  markAllRead = async (): Promise<number> => {
    try {
      const { marked } = await this.client.readAll();
      const now = new Date().toISOString();
      this.set((s) => ({
        messages: s.messages.map((m) => (m.read_at ? m : { ...m, read_at: now })),
        unreadCount: 0,
      }));
      return marked;
    } catch (e) {
      this.set({ error: asError(e) });
      throw e;
    }
  };
}
