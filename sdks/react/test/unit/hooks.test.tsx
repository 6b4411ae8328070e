import { act, cleanup, renderHook, waitFor } from '@testing-library/react';
import type { ReactNode } from 'react';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ChimaticProvider, ChimaticError, useInbox, usePreferences, useUnreadCount } from '../../src';
import { FakeEventSource, FakeServer, message } from './fakes';

let server: FakeServer;
let clientToken: string;

function wrapper({ children }: { children: ReactNode }) {
  return (
    <ChimaticProvider
      baseUrl="http://chimatic.test/"
      token={clientToken}
      pageSize={2}
      fetch={server.fetch}
      EventSource={FakeEventSource}
    >
      {children}
    </ChimaticProvider>
  );
}

beforeEach(() => {
  server = new FakeServer();
  clientToken = server.token;
  FakeEventSource.reset();
});
afterEach(() => {
  cleanup();
  FakeEventSource.reset();
});

describe('useInbox', () => {
  it('loads the first page with the token and opens the stream with ?token=', async () => {
    server.messages.push(message('one'), message('two'), message('three'));
    const { result } = renderHook(() => useInbox(), { wrapper });
    expect(result.current.loading).toBe(true);
    await waitFor(() => expect(result.current.loading).toBe(false));
    expect(result.current.messages.map((m) => m.title)).toEqual(['three', 'two']);
    expect(result.current.unreadCount).toBe(3);
    expect(result.current.hasMore).toBe(true);
    expect(server.calls[0].url).toBe('http://chimatic.test/v1/inbox?limit=2');
    expect(server.calls[0].headers.authorization).toBe('Bearer sbt_test');
    expect(FakeEventSource.all.map((s) => s.url)).toEqual(['http://chimatic.test/v1/inbox/stream?token=sbt_test']);
  });

  it('adds messages and the unread count from the stream, without duplicates', async () => {
    const { result } = renderHook(() => useInbox(), { wrapper });
    await waitFor(() => expect(result.current.loading).toBe(false));
    const [source] = FakeEventSource.all;
    act(() => source.connect(0));
    expect(result.current.live).toBe(true);
    const m = message('live');
    act(() => server.deliver(m));
    expect(result.current.messages.map((x) => x.title)).toEqual(['live']);
    expect(result.current.unreadCount).toBe(1);
    act(() => source.emit('message', JSON.stringify(m)));
    expect(result.current.messages).toHaveLength(1);
    act(() => source.emit('message', 'not json'));
    expect(result.current.messages).toHaveLength(1);
  });

  it('calls onMessage for live arrivals', async () => {
    const seen: string[] = [];
    renderHook(() => useInbox({ onMessage: (m) => seen.push(m.id) }), { wrapper });
    await waitFor(() => expect(FakeEventSource.all).toHaveLength(1));
    const m = message('hello');
    act(() => server.deliver(m));
    expect(seen).toEqual([m.id]);
  });

  it('marks one read, archives one, marks all read', async () => {
    const [a, b, c] = [message('a'), message('b'), message('c')];
    server.messages.push(a, b, c);
    const { result } = renderHook(() => useInbox(), { wrapper });
    await waitFor(() => expect(result.current.unreadCount).toBe(3));

    await act(() => result.current.markRead(c.id));
    expect(server.calls.at(-1)).toMatchObject({ method: 'PATCH', body: { read: true } });
    expect(result.current.messages.find((m) => m.id === c.id)?.read_at).toBeTruthy();
    expect(result.current.unreadCount).toBe(2);

    await act(() => result.current.archive(b.id));
    expect(server.calls.at(-1)).toMatchObject({ method: 'PATCH', body: { archived: true } });
    expect(result.current.messages.map((m) => m.id)).toEqual([c.id]);
    expect(result.current.unreadCount).toBe(1);

    let marked = 0;
    await act(async () => {
      marked = await result.current.markAllRead();
    });
    expect(marked).toBe(1);
    expect(result.current.unreadCount).toBe(0);
    expect(result.current.messages.every((m) => m.read_at)).toBe(true);
  });

  it('loads older pages with the cursor until the end', async () => {
    server.messages.push(message('1'), message('2'), message('3'), message('4'), message('5'));
    const { result } = renderHook(() => useInbox(), { wrapper });
    await waitFor(() => expect(result.current.loading).toBe(false));
    await act(() => result.current.loadMore());
    expect(server.calls.at(-1)?.url).toContain(`before=${server.messages[3].id}`);
    await act(() => result.current.loadMore());
    expect(result.current.messages.map((m) => m.title)).toEqual(['5', '4', '3', '2', '1']);
    expect(result.current.hasMore).toBe(false);
  });

  it('reloads after the stream reconnects (messages sent while it was down)', async () => {
    const { result } = renderHook(() => useInbox(), { wrapper });
    await waitFor(() => expect(result.current.loading).toBe(false));
    const [source] = FakeEventSource.all;
    act(() => source.connect(0));
    act(() => source.onerror?.(new Event('error')));
    expect(result.current.live).toBe(false);
    server.messages.push(message('missed'));
    act(() => source.connect(1));
    await waitFor(() => expect(result.current.messages.map((m) => m.title)).toEqual(['missed']));
  });

  it('surfaces a refused token as a ChimaticError', async () => {
    clientToken = 'sbt_revoked';
    const { result } = renderHook(() => useInbox(), { wrapper });
    await waitFor(() => expect(result.current.loading).toBe(false));
    expect(result.current.error).toBeInstanceOf(ChimaticError);
    expect((result.current.error as ChimaticError).status).toBe(401);
    expect((result.current.error as ChimaticError).code).toBe('unauthorized');
  });

  it('shows why when the server refuses the stream (an expired token)', async () => {
    const { result } = renderHook(() => useInbox(), { wrapper });
    await waitFor(() => expect(result.current.loading).toBe(false));
    const [source] = FakeEventSource.all;
    act(() => source.connect(0));
    server.token = 'sbt_next';
    act(() => source.refuse());
    expect(result.current.live).toBe(false);
    await waitFor(() => expect((result.current.error as ChimaticError | null)?.status).toBe(401));
  });

  it('shares one stream between hooks and closes it when the last unmounts', async () => {
    const { result, unmount } = renderHook(() => [useInbox(), useUnreadCount()] as const, { wrapper });
    await waitFor(() => expect(result.current[0].loading).toBe(false));
    act(() => server.deliver(message('x')));
    expect(result.current[1]).toBe(1);
    expect(FakeEventSource.all).toHaveLength(1);
    unmount();
    await new Promise((r) => setTimeout(r, 5));
    expect(FakeEventSource.all[0].closed).toBe(true);
  });

  it('throws a clear error outside a provider', () => {
    expect(() => renderHook(() => useUnreadCount())).toThrow(/ChimaticProvider/);
  });
});

describe('usePreferences', () => {
  it('reads, sets a channel and a category, and saves the whole document', async () => {
    server.preferences = { channels: { sms: false }, categories: {} };
    const { result } = renderHook(() => usePreferences(), { wrapper });
    await waitFor(() => expect(result.current.loading).toBe(false));
    expect(result.current.preferences).toEqual({ channels: { sms: false }, categories: {} });
    await act(() => result.current.setChannel('email', false));
    await act(() => result.current.setCategory('marketing', false));
    expect(server.preferences).toEqual({ channels: { sms: false, email: false }, categories: { marketing: false } });
    expect(server.calls.at(-1)).toMatchObject({ method: 'PUT', url: 'http://chimatic.test/v1/inbox/preferences' });
    expect(result.current.preferences).toEqual(server.preferences);
  });
});
