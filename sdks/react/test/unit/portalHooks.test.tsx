import { act, cleanup, renderHook, waitFor } from '@testing-library/react';
import type { ReactNode } from 'react';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ChimaticError, ChimaticProvider, useEndpointDeliveries, useInbox, useWebhookEndpoints } from '../../src';
import { FakeEventSource, FakeServer } from './fakes';
import { delivery } from './portalFakes';

let server: FakeServer;

function wrapper({ children }: { children: ReactNode }) {
  return (
    <ChimaticProvider baseUrl="http://chimatic.test/" token="sbt_test" fetch={server.fetch} EventSource={FakeEventSource}>
      {children}
    </ChimaticProvider>
  );
}

beforeEach(() => {
  server = new FakeServer();
  FakeEventSource.reset();
});
afterEach(cleanup);

describe('useWebhookEndpoints', () => {
  it('creates an endpoint: the secret is resolved to the caller, never kept in the list', async () => {
    server.portal.allowPrivate = true;
    const { result } = renderHook(() => useWebhookEndpoints(), { wrapper });
    await waitFor(() => expect(result.current.loading).toBe(false));
    expect(result.current.endpoints).toEqual([]);
    let created: Awaited<ReturnType<typeof result.current.create>> | undefined;
    await act(async () => {
      created = await result.current.create('http://127.0.0.1:1/x');
    });
    expect(created?.signing_secret).toMatch(/^whsec_/);
    expect(result.current.endpoints).toHaveLength(1);
    expect(result.current.endpoints[0]).not.toHaveProperty('signing_secret');
    expect(JSON.stringify(result.current.endpoints)).not.toContain(created!.signing_secret);

    let rotated: typeof created;
    await act(async () => {
      rotated = await result.current.rotateSecret(created!.id, 0);
    });
    expect(rotated?.signing_secret).not.toBe(created?.signing_secret);
    expect(result.current.endpoints[0]).not.toHaveProperty('signing_secret');
    expect(server.calls.at(-1)?.body).toEqual({ overlap_seconds: 0 });
    await act(async () => {
      await result.current.rotateSecret(created!.id);
    });
    expect(server.calls.at(-1)?.body).toEqual({});

    await act(async () => {
      await result.current.disable(created!.id);
    });
    expect(result.current.endpoints[0].status).toBe('disabled');
    await act(async () => {
      await result.current.remove(created!.id);
    });
    expect(result.current.endpoints).toEqual([]);
  });

  it('rejects with the problem and leaves the list alone', async () => {
    const { result } = renderHook(() => useWebhookEndpoints(), { wrapper });
    await waitFor(() => expect(result.current.loading).toBe(false));
    const e = await result.current.create('ftp://example.com').catch((x) => x);
    expect(e).toBeInstanceOf(ChimaticError);
    expect(e.status).toBe(422);
    expect(e.code).toBe('invalid_url');
    const w = server.portal.add('https://hooks.example.com/a', { signed_with: 'workspace' });
    const c = await result.current.rotateSecret(w.id).catch((x) => x);
    expect([c.status, c.code]).toEqual([409, 'conflict']);
    expect(result.current.endpoints).toEqual([]);
    expect(result.current.error).toBeNull();
  });

  it('reports a token without the portal scope as the 403 error; opens no inbox stream', async () => {
    server.portal.scoped = false;
    const { result } = renderHook(() => useWebhookEndpoints(), { wrapper });
    await waitFor(() => expect(result.current.loading).toBe(false));
    expect(result.current.error).toBeInstanceOf(ChimaticError);
    expect((result.current.error as ChimaticError).status).toBe(403);
    expect((result.current.error as ChimaticError).code).toBe('insufficient_scope');
    expect(FakeEventSource.all).toHaveLength(0);
    expect(server.calls.every((c) => c.url.includes('/v1/portal/'))).toBe(true);
  });

  it('shares the provider with the inbox', async () => {
    const { result } = renderHook(() => ({ inbox: useInbox(), portal: useWebhookEndpoints() }), { wrapper });
    await waitFor(() => expect(result.current.portal.loading || result.current.inbox.loading).toBe(false));
    expect(FakeEventSource.all).toHaveLength(1);
  });
});

describe('useEndpointDeliveries', () => {
  it('loads nothing without an endpoint', async () => {
    const { result } = renderHook(() => useEndpointDeliveries(null), { wrapper });
    expect(result.current.loading).toBe(false);
    expect(result.current.deliveries).toEqual([]);
    expect(server.calls).toHaveLength(0);
  });

  it('pages with the cursor, reloads what is loaded, and follows a change of endpoint', async () => {
    const a = server.portal.add('https://a.example.com');
    const b = server.portal.add('https://b.example.com');
    const list = Array.from({ length: 5 }, () => delivery('delivered'));
    server.portal.deliveries.set(a.id, list);
    server.portal.deliveries.set(b.id, [delivery('failed')]);
    const { result, rerender } = renderHook(({ id }) => useEndpointDeliveries(id, { pageSize: 2 }), {
      wrapper,
      initialProps: { id: a.id },
    });
    await waitFor(() => expect(result.current.loading).toBe(false));
    expect(result.current.deliveries.map((d) => d.id)).toEqual([list[4].id, list[3].id]);
    expect(result.current.nextCursor).toBe(list[3].id);
    await act(() => result.current.loadMore());
    expect(result.current.deliveries).toHaveLength(4);
    expect(server.calls.at(-1)?.url).toContain(`before=${list[3].id}`);
    list.push(delivery('queued'));
    await act(() => result.current.reload());
    expect(server.calls.at(-1)?.url).toContain('limit=4');
    // The new one on top, nothing loaded before lost, the cursor still where it was.
    expect(result.current.deliveries.map((d) => d.id)).toEqual([list[5], list[4], list[3], list[2], list[1]].map((d) => d.id));
    expect(result.current.nextCursor).toBe(list[1].id);

    rerender({ id: b.id });
    await waitFor(() => expect(result.current.deliveries.map((d) => d.status)).toEqual(['failed']));
    expect(result.current.hasMore).toBe(false);
  });
});
