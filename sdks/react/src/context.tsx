import { createContext, useContext, useMemo, type ReactNode } from 'react';
import { createInboxClient, type EventSourceConstructor, type InboxClient } from './client.js';
import { createPortalClient, type PortalClient } from './portal/client.js';
import { InboxStore } from './store.js';

interface ChimaticContextValue {
  client: InboxClient;
  store: InboxStore;
  /** The webhook portal's client (a token with the `portal` scope). */
  portal: PortalClient;
}

const ChimaticContext = createContext<ChimaticContextValue | null>(null);

export interface ChimaticProviderProps {
  /** The Chimatic server, e.g. `https://notify.example.com`. */
  baseUrl: string;
  /** The subscriber token (`sbt_…`) your back end issued for the signed-in user. */
  token: string;
  /** Messages per page (default 20). */
  pageSize?: number;
  /** For tests and unusual runtimes: a fetch and an EventSource to use. */
  fetch?: typeof fetch;
  EventSource?: EventSourceConstructor;
  children?: ReactNode;
}

/**
 * Gives the hooks and components below it one subscriber's inbox, preferences and webhook portal.
 * Nothing is requested until a hook or component needs it (the inbox stream opens with the first
 * inbox hook), so a token with only the `portal` scope serves a page with only the portal.
 */
export function ChimaticProvider({ baseUrl, token, pageSize, fetch, EventSource, children }: ChimaticProviderProps) {
  const value = useMemo(() => {
    const client = createInboxClient({ baseUrl, token, fetch, EventSource });
    return { client, store: new InboxStore(client, pageSize), portal: createPortalClient({ baseUrl, token, fetch }) };
  }, [baseUrl, token, pageSize, fetch, EventSource]);
  return <ChimaticContext.Provider value={value}>{children}</ChimaticContext.Provider>;
}

export function useChimatic(): ChimaticContextValue {
  const value = useContext(ChimaticContext);
  if (!value) throw new Error('@chimatic/react: wrap your components in <ChimaticProvider baseUrl token>');
  return value;
}

/** The raw subscriber-token client of the nearest provider. */
export function useChimaticClient(): InboxClient {
  return useChimatic().client;
}

/** The raw webhook-portal client of the nearest provider. */
export function usePortalClient(): PortalClient {
  return useChimatic().portal;
}
