import { useCallback, useEffect, useRef, useState } from 'react';
import { usePortalClient } from '../context.js';
import type { EndpointDelivery, ReplayAccepted, WebhookEndpoint, WebhookEndpointWithSecret } from '../types.js';

const asError = (e: unknown) => (e instanceof Error ? e : new Error(String(e)));

/** The endpoint without its signing secret: nothing here keeps a secret. */
function withoutSecret(e: WebhookEndpointWithSecret | WebhookEndpoint): WebhookEndpoint {
  const { signing_secret: _secret, ...endpoint } = e as WebhookEndpointWithSecret;
  return endpoint;
}

export interface UseWebhookEndpointsResult {
  /** The subscriber's endpoints, as the server lists them (never with a secret). */
  endpoints: WebhookEndpoint[];
  /** True until the first list arrived (or failed). */
  loading: boolean;
  /** Why the list could not be loaded (e.g. a `ChimaticError` 403 for a token without `portal`). */
  error: Error | null;
  reload: () => Promise<void>;
  /**
   * Adds an endpoint; resolves to it with its `signing_secret`, which the server shows only this
   * once: show it to the user and drop it. Rejects with the server's problem (e.g. 422
   * `forbidden_destination`); the list is unchanged then.
   */
  create: (url: string) => Promise<WebhookEndpointWithSecret>;
  /** A new secret (resolved, shown once); the old one keeps signing for `overlapSeconds` (default 86400). */
  rotateSecret: (id: string, overlapSeconds?: number) => Promise<WebhookEndpointWithSecret>;
  disable: (id: string) => Promise<WebhookEndpoint>;
  enable: (id: string) => Promise<WebhookEndpoint>;
  remove: (id: string) => Promise<void>;
}

/** The signed-in subscriber's webhook endpoints (the provider's token needs the `portal` scope). */
export function useWebhookEndpoints(): UseWebhookEndpointsResult {
  const portal = usePortalClient();
  const [endpoints, setEndpoints] = useState<WebhookEndpoint[]>([]);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<Error | null>(null);
  const generation = useRef(0);

  const reload = useCallback(async () => {
    const gen = generation.current;
    try {
      const list = await portal.listEndpoints();
      if (gen !== generation.current) return;
      setEndpoints(list.data.map(withoutSecret));
      setError(null);
    } catch (e) {
      if (gen === generation.current) setError(asError(e));
    } finally {
      if (gen === generation.current) setLoading(false);
    }
  }, [portal]);

  useEffect(() => {
    generation.current++;
    setLoading(true);
    setEndpoints([]);
    void reload();
    return () => {
      generation.current++;
    };
  }, [reload]);

  const replace = useCallback((updated: WebhookEndpoint) => {
    setEndpoints((list) => {
      const clean = withoutSecret(updated);
      return list.some((e) => e.id === clean.id) ? list.map((e) => (e.id === clean.id ? clean : e)) : [...list, clean];
    });
  }, []);

  const create = useCallback(
    async (url: string) => {
      const created = await portal.createEndpoint(url);
      replace(created);
      return created;
    },
    [portal, replace],
  );
  const rotateSecret = useCallback(
    async (id: string, overlapSeconds?: number) => {
      const rotated = await portal.rotateSecret(id, overlapSeconds);
      replace(rotated);
      return rotated;
    },
    [portal, replace],
  );
  const disable = useCallback(
    async (id: string) => {
      const e = await portal.disableEndpoint(id);
      replace(e);
      return withoutSecret(e);
    },
    [portal, replace],
  );
  const enable = useCallback(
    async (id: string) => {
      const e = await portal.enableEndpoint(id);
      replace(e);
      return withoutSecret(e);
    },
    [portal, replace],
  );
  const remove = useCallback(
    async (id: string) => {
      await portal.deleteEndpoint(id);
      setEndpoints((list) => list.filter((e) => e.id !== id));
    },
    [portal],
  );

  return { endpoints, loading, error, reload, create, rotateSecret, disable, enable, remove };
}

export interface UseEndpointDeliveriesOptions {
  /** Deliveries per page, 1 to 100 (default 20). */
  pageSize?: number;
  /**
   * While a delivery shown is `queued` or `delivering`, reload the first page this often (ms);
   * 0 (the default) never polls.
   */
  pollInterval?: number;
}

export interface UseEndpointDeliveriesResult {
  /** Newest first. */
  deliveries: EndpointDelivery[];
  nextCursor: string | null;
  hasMore: boolean;
  loading: boolean;
  loadingMore: boolean;
  error: Error | null;
  /** Reloads what is loaded (the first page, and older pages loaded since: up to 100). */
  reload: () => Promise<void>;
  /** Appends the next (older) page. */
  loadMore: () => Promise<void>;
  /** Sends a failed delivery again; rejects with 409 `conflict` unless it failed. */
  replay: (messageId: string) => Promise<ReplayAccepted>;
}

const PENDING = new Set(['queued', 'delivering']);

interface DeliveriesState {
  deliveries: EndpointDelivery[];
  nextCursor: string | null;
}

const EMPTY: DeliveriesState = { deliveries: [], nextCursor: null };

/** The recent deliveries of one endpoint (null: none, nothing is loaded). */
export function useEndpointDeliveries(
  endpointId: string | null,
  { pageSize = 20, pollInterval = 0 }: UseEndpointDeliveriesOptions = {},
): UseEndpointDeliveriesResult {
  const portal = usePortalClient();
  const [state, setState] = useState<DeliveriesState>(EMPTY);
  const [loading, setLoading] = useState(endpointId !== null);
  const [loadingMore, setLoadingMore] = useState(false);
  const [error, setError] = useState<Error | null>(null);
  const generation = useRef(0);
  const current = useRef(state);
  current.current = state;

  const reload = useCallback(async () => {
    if (!endpointId) return;
    const gen = generation.current;
    // Everything already loaded is reloaded (up to the server's 100 a page), so statuses on older
    // pages are fresh too.
    const limit = Math.min(100, Math.max(pageSize, current.current.deliveries.length));
    try {
      const page = await portal.listDeliveries(endpointId, { limit });
      if (gen !== generation.current) return;
      setState((s) => {
        // Beyond those 100: keep the older ones already loaded (ids are time-ordered).
        const ids = new Set(page.data.map((d) => d.id));
        const last = page.data[page.data.length - 1]?.id;
        const older = last && page.next_cursor ? s.deliveries.filter((d) => !ids.has(d.id) && d.id < last) : [];
        return {
          deliveries: [...page.data, ...older],
          nextCursor: older.length ? s.nextCursor : (page.next_cursor ?? null),
        };
      });
      setError(null);
    } catch (e) {
      if (gen === generation.current) setError(asError(e));
    } finally {
      if (gen === generation.current) setLoading(false);
    }
  }, [portal, endpointId, pageSize]);

  useEffect(() => {
    generation.current++;
    setState(EMPTY);
    setError(null);
    setLoading(endpointId !== null);
    void reload();
    return () => {
      generation.current++;
    };
  }, [reload, endpointId]);

  // Poll while something shown is still on its way.
  const pending = state.deliveries.some((d) => PENDING.has(d.status));
  useEffect(() => {
    if (!pending || pollInterval <= 0) return;
    const timer = setTimeout(() => void reload(), pollInterval);
    return () => clearTimeout(timer);
  }, [pending, pollInterval, reload, state, error]);

  const loadMore = useCallback(async () => {
    const cursor = current.current.nextCursor;
    if (!endpointId || !cursor || loadingMore) return;
    const gen = generation.current;
    setLoadingMore(true);
    try {
      const page = await portal.listDeliveries(endpointId, { limit: pageSize, before: cursor });
      if (gen !== generation.current) return;
      setState((s) => {
        const ids = new Set(s.deliveries.map((d) => d.id));
        return {
          deliveries: [...s.deliveries, ...page.data.filter((d) => !ids.has(d.id))],
          nextCursor: page.next_cursor ?? null,
        };
      });
      setError(null);
    } catch (e) {
      if (gen === generation.current) setError(asError(e));
    } finally {
      if (gen === generation.current) setLoadingMore(false);
    }
  }, [portal, endpointId, pageSize, loadingMore]);

  const replay = useCallback(
    async (messageId: string) => {
      if (!endpointId) throw new Error('no endpoint');
      const accepted = await portal.replayDelivery(endpointId, messageId);
      setState((s) => ({
        ...s,
        deliveries: s.deliveries.map((d) => (d.id === accepted.id ? { ...d, status: accepted.status } : d)),
      }));
      return accepted;
    },
    [portal, endpointId],
  );

  return {
    deliveries: state.deliveries,
    nextCursor: state.nextCursor,
    hasMore: state.nextCursor !== null,
    loading,
    loadingMore,
    error,
    reload,
    loadMore,
    replay,
  };
}
