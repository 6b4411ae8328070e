import { useCallback, useEffect, useRef, useState, useSyncExternalStore } from 'react';
import { useChimatic } from './context.js';
import type { InboxState } from './store.js';
import type { ChannelType, InboxMessage, Preferences } from './types.js';

export interface UseInboxResult extends InboxState {
  markRead: (id: string, read?: boolean) => Promise<void>;
  markAllRead: () => Promise<number>;
  archive: (id: string) => Promise<void>;
  loadMore: () => Promise<void>;
  refresh: () => Promise<void>;
  hasMore: boolean;
}

export interface UseInboxOptions {
  /** Called with each message that arrives live (from the SSE stream). */
  onMessage?: (message: InboxMessage) => void;
}

/** The subscriber's inbox, kept up to date from the server's event stream. */
export function useInbox(options: UseInboxOptions = {}): UseInboxResult {
  const { store } = useChimatic();
  const state = useSyncExternalStore(store.subscribe, store.getSnapshot, store.getSnapshot);
  const onMessage = useRef(options.onMessage);
  onMessage.current = options.onMessage;
  useEffect(() => {
    const listener = (m: InboxMessage) => onMessage.current?.(m);
    store.arrivals.add(listener);
    return () => {
      store.arrivals.delete(listener);
    };
  }, [store]);
  return {
    ...state,
    hasMore: state.nextCursor !== null,
    markRead: store.markRead,
    markAllRead: store.markAllRead,
    archive: store.archive,
    loadMore: store.loadMore,
    refresh: store.refresh,
  };
}

/** Just the unread count (live). */
export function useUnreadCount(): number {
  const { store } = useChimatic();
  return useSyncExternalStore(
    store.subscribe,
    () => store.getSnapshot().unreadCount,
    () => store.getSnapshot().unreadCount,
  );
}

export interface UsePreferencesResult {
  /** The saved preferences (null until loaded). */
  preferences: Preferences | null;
  loading: boolean;
  saving: boolean;
  error: Error | null;
  /** Replaces the subscriber's preferences; resolves to what the server saved. */
  save: (preferences: Preferences) => Promise<Preferences>;
  /** Sets one channel's opt-in (true) or opt-out (false) and saves. */
  setChannel: (channel: ChannelType, enabled: boolean) => Promise<Preferences>;
  /** Sets one category's opt-in (true) or opt-out (false) and saves. */
  setCategory: (category: string, enabled: boolean) => Promise<Preferences>;
  reload: () => Promise<void>;
}

/** The subscriber's own channel and category opt-outs: read and write. */
export function usePreferences(): UsePreferencesResult {
  const { client } = useChimatic();
  const [preferences, setPreferences] = useState<Preferences | null>(null);
  const [loading, setLoading] = useState(true);
  const [saving, setSaving] = useState(false);
  const [error, setError] = useState<Error | null>(null);
  const current = useRef<Preferences | null>(null);
  current.current = preferences;

  const reload = useCallback(async () => {
    setLoading(true);
    try {
      const p = await client.getPreferences();
      setPreferences(p);
      setError(null);
    } catch (e) {
      setError(e instanceof Error ? e : new Error(String(e)));
    } finally {
      setLoading(false);
    }
  }, [client]);

  useEffect(() => {
    void reload();
  }, [reload]);

  const save = useCallback(
    async (p: Preferences) => {
      setSaving(true);
      try {
        const saved = await client.setPreferences(p);
        setPreferences(saved);
        current.current = saved;
        setError(null);
        return saved;
      } catch (e) {
        setError(e instanceof Error ? e : new Error(String(e)));
        throw e;
      } finally {
        setSaving(false);
      }
    },
    [client],
  );

  const setChannel = useCallback(
    (channel: ChannelType, enabled: boolean) => {
      const p = current.current ?? {};
      return save({ ...p, channels: { ...p.channels, [channel]: enabled } });
    },
    [save],
  );
  const setCategory = useCallback(
    (category: string, enabled: boolean) => {
      const p = current.current ?? {};
      return save({ ...p, categories: { ...p.categories, [category]: enabled } });
    },
    [save],
  );

  return { preferences, loading, saving, error, save, setChannel, setCategory, reload };
}
