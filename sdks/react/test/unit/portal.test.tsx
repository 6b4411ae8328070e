import { act, cleanup, fireEvent, render, screen, waitFor, within } from '@testing-library/react';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ChimaticProvider, WebhookPortal } from '../../src';
import { FakeEventSource, FakeServer } from './fakes';
import { delivery } from './portalFakes';

let server: FakeServer;

function renderPortal(props: React.ComponentProps<typeof WebhookPortal> = {}) {
  return render(
    <ChimaticProvider baseUrl="http://chimatic.test" token="sbt_test" fetch={server.fetch} EventSource={FakeEventSource}>
      <WebhookPortal {...props} />
    </ChimaticProvider>,
  );
}

beforeEach(() => {
  server = new FakeServer();
  FakeEventSource.reset();
});
afterEach(() => {
  cleanup();
  vi.restoreAllMocks();
});

const row = (name: RegExp | string) => screen.getByRole('rowheader', { name }).closest('tr') as HTMLElement;
const urlField = () => screen.getByRole('textbox', { name: 'Endpoint URL' });
const portalCalls = () => server.calls.filter((c) => c.url.includes('/v1/portal/'));

async function addEndpoint(url: string) {
  fireEvent.change(urlField(), { target: { value: url } });
  fireEvent.click(screen.getByRole('button', { name: 'Add endpoint' }));
}

describe('<WebhookPortal/>', () => {
  it('lists the endpoints in a table: masked URL, status, which secret signs', async () => {
    server.portal.add('https://hooks.example.com/a');
    server.portal.add('https://other.example.com/b', { status: 'disabled', disabled_at: '2026-01-02T00:00:00Z', signed_with: 'workspace' });
    renderPortal();
    const table = await screen.findByRole('table', { name: 'Webhook endpoints' });
    expect(within(table).getAllByRole('columnheader').map((h) => h.textContent)).toEqual(['URL', 'Status', 'Signing secret', 'Actions']);
    expect(within(table).getAllByRole('rowheader').map((h) => h.textContent)).toEqual(['https://hoo…', 'https://oth…']);
    const [a, b] = [row('https://hoo…'), row('https://oth…')];
    expect(a.textContent).toContain('Active');
    expect(a.textContent).toContain('Its own');
    expect(within(a).getByRole('button', { name: 'Disable: https://hoo…' })).toBeTruthy();
    expect(within(a).getByRole('button', { name: 'Rotate secret: https://hoo…' })).toBeTruthy();
    expect(b.textContent).toContain('Disabled');
    expect(b.textContent).toContain('Shared');
    expect(within(b).getByRole('button', { name: 'Enable: https://oth…' })).toBeTruthy();
    // The provider's secret cannot be rotated from here (the server answers 409).
    expect(within(b).queryByRole('button', { name: /Rotate/ })).toBeNull();
    expect(portalCalls()[0].headers.authorization).toBe('Bearer sbt_test');
    expect(portalCalls()[0].url).toBe('http://chimatic.test/v1/portal/endpoints');
  });

  it('adds an endpoint and shows its secret once, in a dialog that takes the focus; dismissed, it is gone', async () => {
    server.portal.allowPrivate = true;
    const logged = (['log', 'info', 'warn', 'error', 'debug'] as const).map((m) => vi.spyOn(console, m));
    const { container } = renderPortal();
    await screen.findByText('No endpoints yet.');
    await addEndpoint('http://127.0.0.1:9999/hook');
    const dialog = await screen.findByRole('dialog', { name: /^Signing secret of http:\/\/127/ });
    expect(document.activeElement).toBe(dialog);
    const secret = server.portal.endpoints[0].secret;
    expect(within(dialog).getByRole('textbox', { name: 'Signing secret' })).toHaveProperty('value', secret);
    expect(dialog.textContent).toContain('shown only this once');
    expect(portalCalls().at(-1)).toMatchObject({ method: 'POST', body: { url: 'http://127.0.0.1:9999/hook' } });
    expect(urlField()).toHaveProperty('value', '');
    expect(row('http://127.…')).toBeTruthy();
    expect(screen.getAllByRole('status').some((s) => s.textContent === 'Endpoint added.')).toBe(true);

    fireEvent.click(within(dialog).getByRole('button', { name: 'I have saved it' }));
    expect(screen.queryByRole('dialog')).toBeNull();
    expect(container.innerHTML).not.toContain(secret);
    expect(document.activeElement).toBe(urlField());
    for (const spy of logged) for (const call of spy.mock.calls) expect(JSON.stringify(call)).not.toContain(secret);
  });

  it('copies the secret; Escape dismisses it', async () => {
    const writeText = vi.fn(async () => {});
    Object.defineProperty(navigator, 'clipboard', { value: { writeText }, configurable: true });
    renderPortal();
    await screen.findByText('No endpoints yet.');
    await addEndpoint('https://hooks.example.com/x');
    const dialog = await screen.findByRole('dialog');
    fireEvent.click(within(dialog).getByRole('button', { name: 'Copy' }));
    await within(dialog).findByText('Copied to the clipboard.');
    expect(writeText).toHaveBeenCalledWith(server.portal.endpoints[0].secret);
    fireEvent.keyDown(dialog, { key: 'Escape' });
    expect(screen.queryByRole('dialog')).toBeNull();
    Reflect.deleteProperty(navigator, 'clipboard');
  });

  it('shows the server’s refusal of a URL inline, on the field', async () => {
    renderPortal();
    await screen.findByText('No endpoints yet.');
    await addEndpoint('http://10.0.0.5/hook');
    const alert = await screen.findByRole('alert');
    expect(alert.textContent).toBe('10.0.0.5 is a private or loopback address');
    expect(urlField().getAttribute('aria-invalid')).toBe('true');
    expect(urlField().getAttribute('aria-describedby')).toContain(alert.id);
    expect(urlField()).toHaveProperty('value', 'http://10.0.0.5/hook');
    expect(screen.queryByRole('dialog')).toBeNull();
    expect(server.portal.endpoints).toHaveLength(0);
    fireEvent.change(urlField(), { target: { value: 'https://ok.example.com' } });
    expect(screen.queryByRole('alert')).toBeNull();
  });

  it('rotates the secret with a chosen overlap (24 hours by default) and shows the new one', async () => {
    const e = server.portal.add('https://hooks.example.com/a');
    const old = e.secret;
    renderPortal();
    fireEvent.click(await screen.findByRole('button', { name: 'Rotate secret: https://hoo…' }));
    const dialog = screen.getByRole('dialog', { name: 'Rotate the signing secret of https://hoo…' });
    const group = within(dialog).getByRole('group', { name: 'Keep the old secret valid for' });
    expect(within(group).getAllByRole('radio').map((r) => r.parentElement?.textContent)).toEqual(['No overlap', '1 hour', '24 hours', '7 days']);
    const day = within(group).getByRole('radio', { name: '24 hours' });
    await waitFor(() => expect(document.activeElement).toBe(day));
    expect(day).toHaveProperty('checked', true);

    // Escape cancels, focus back on the row's button.
    fireEvent.keyDown(day, { key: 'Escape' });
    expect(screen.queryByRole('dialog')).toBeNull();
    await waitFor(() => expect(document.activeElement).toBe(screen.getByRole('button', { name: 'Rotate secret: https://hoo…' })));

    fireEvent.click(screen.getByRole('button', { name: 'Rotate secret: https://hoo…' }));
    fireEvent.click(screen.getByRole('radio', { name: '1 hour' }));
    fireEvent.click(screen.getByRole('button', { name: 'Rotate' }));
    const shown = await screen.findByRole('dialog', { name: 'Signing secret of https://hoo…' });
    expect(portalCalls().at(-1)).toMatchObject({ method: 'POST', body: { overlap_seconds: 3600 } });
    expect(portalCalls().at(-1)?.url).toBe(`http://chimatic.test/v1/portal/endpoints/${e.id}/rotate-secret`);
    expect(within(shown).getByRole('textbox')).toHaveProperty('value', e.secret);
    expect(e.secret).not.toBe(old);
    expect(row('https://hoo…').textContent).toContain('previous one also valid until');
    fireEvent.click(within(shown).getByRole('button', { name: 'I have saved it' }));
    await waitFor(() => expect(document.activeElement).toBe(screen.getByRole('button', { name: 'Rotate secret: https://hoo…' })));
    expect(document.body.innerHTML).not.toContain(e.secret);
  });

  it('disables and enables an endpoint, keeping the focus on the button', async () => {
    const e = server.portal.add('https://hooks.example.com/a');
    renderPortal();
    const button = await screen.findByRole('button', { name: 'Disable: https://hoo…' });
    button.focus();
    fireEvent.click(button);
    await screen.findByRole('button', { name: 'Enable: https://hoo…' });
    expect(e.status).toBe('disabled');
    expect(row('https://hoo…').textContent).toContain('Disabled');
    expect(document.activeElement).toBe(button);
    fireEvent.click(button);
    await screen.findByRole('button', { name: 'Disable: https://hoo…' });
    expect(e.status).toBe('active');
    expect(screen.getAllByRole('status').some((s) => s.textContent === 'Endpoint enabled.')).toBe(true);
  });

  it('deletes only after a confirmation that takes the focus (Cancel first)', async () => {
    server.portal.add('https://hooks.example.com/a');
    renderPortal();
    fireEvent.click(await screen.findByRole('button', { name: 'Delete: https://hoo…' }));
    const confirm = screen.getByRole('alertdialog', { name: 'Delete https://hoo…?' });
    await waitFor(() => expect(document.activeElement).toBe(within(confirm).getByRole('button', { name: 'Cancel' })));
    fireEvent.click(within(confirm).getByRole('button', { name: 'Cancel' }));
    expect(screen.queryByRole('alertdialog')).toBeNull();
    await waitFor(() => expect(document.activeElement).toBe(screen.getByRole('button', { name: 'Delete: https://hoo…' })));
    expect(server.portal.endpoints).toHaveLength(1);

    fireEvent.click(screen.getByRole('button', { name: 'Delete: https://hoo…' }));
    fireEvent.click(screen.getByRole('button', { name: 'Delete endpoint' }));
    await screen.findByText('No endpoints yet.');
    expect(server.portal.endpoints).toHaveLength(0);
    expect(portalCalls().at(-1)?.method).toBe('DELETE');
    expect(document.activeElement).toBe(screen.getByRole('heading', { name: 'Webhook endpoints' }));
  });

  it('shows an endpoint’s deliveries: status, attempts, last result; load more; replay a failed one', async () => {
    const e = server.portal.add('https://hooks.example.com/a');
    const list = [delivery('failed')];
    for (let i = 0; i < 3; i++) list.push(delivery('delivered'));
    server.portal.deliveries.set(e.id, list);
    renderPortal({ deliveriesPageSize: 3, deliveriesPollInterval: 20 });
    const toggle = await screen.findByRole('button', { name: 'Deliveries: https://hoo…' });
    expect(toggle.getAttribute('aria-expanded')).toBe('false');
    fireEvent.click(toggle);
    expect(toggle.getAttribute('aria-expanded')).toBe('true');
    const region = screen.getByRole('region', { name: 'Recent deliveries to https://hoo…' });
    expect(region.closest('td')?.id).toBe(toggle.getAttribute('aria-controls'));
    const table = await within(region).findByRole('table');
    expect(within(table).getAllByRole('row')).toHaveLength(4);
    expect(within(table).getAllByRole('columnheader').map((h) => h.textContent)).toEqual(['Sent', 'Status', 'Attempts', 'Last result', 'Updated', 'Actions']);
    expect(within(region).queryByRole('button', { name: /^Replay/ })).toBeNull();

    fireEvent.click(within(region).getByRole('button', { name: 'Load more' }));
    await waitFor(() => expect(within(table).getAllByRole('row')).toHaveLength(5));
    expect(portalCalls().at(-1)?.url).toBe(`http://chimatic.test/v1/portal/endpoints/${e.id}/deliveries?limit=3&before=${list[1].id}`);
    expect(within(region).queryByRole('button', { name: 'Load more' })).toBeNull();
    const failed = table.querySelector(`tr[data-chm-id="${list[0].id}"]`) as HTMLElement;
    expect(failed.textContent).toContain('Failed');
    expect(within(failed).getAllByRole('cell')[1].textContent).toBe('3');
    expect(failed.textContent).toContain('HTTP 500');

    fireEvent.click(within(failed).getByRole('button', { name: /^Replay the delivery of / }));
    await within(region).findByText('Replay queued.');
    expect(portalCalls().at(-1)).toMatchObject({ method: 'POST', url: `http://chimatic.test/v1/portal/endpoints/${e.id}/deliveries/${list[0].id}/replay` });
    expect(failed.textContent).toContain('Queued');
    expect(document.activeElement).toBe(within(region).getByRole('heading'));
    // It is polled while queued: the server delivers it, the row says so.
    act(() => Object.assign(list[0], { status: 'delivered', attempt_count: 4 }));
    await waitFor(() => expect(failed.textContent).toContain('Delivered'));
    // Older pages stay loaded across the poll.
    expect(within(table).getAllByRole('row')).toHaveLength(5);
  });

  it('shows a replay the server refuses', async () => {
    const e = server.portal.add('https://hooks.example.com/a');
    const d = delivery('failed');
    server.portal.deliveries.set(e.id, [d]);
    renderPortal({ deliveriesPollInterval: 0 });
    fireEvent.click(await screen.findByRole('button', { name: 'Deliveries: https://hoo…' }));
    const replay = await screen.findByRole('button', { name: /^Replay/ });
    d.status = 'delivered';
    fireEvent.click(replay);
    expect((await screen.findByRole('alert')).textContent).toBe('only a failed delivery can be replayed');
  });

  it('surfaces a token without the portal scope as an error', async () => {
    server.portal.scoped = false;
    renderPortal();
    expect((await screen.findByRole('alert')).textContent).toBe('this subscriber token does not carry the `portal` scope');
    expect(screen.queryByRole('table')).toBeNull();
    expect(screen.queryByText('No endpoints yet.')).toBeNull();
  });

  it('takes translated labels', async () => {
    server.portal.add('https://hooks.example.com/a');
    renderPortal({ labels: { heading: 'Webhook-Endpunkte', disable: 'Deaktivieren', status: { active: 'Aktiv', disabled: 'Aus' } } });
    await screen.findByRole('table', { name: 'Webhook-Endpunkte' });
    expect(screen.getByRole('button', { name: 'Deaktivieren: https://hoo…' })).toBeTruthy();
    expect(row('https://hoo…').textContent).toContain('Aktiv');
  });
});
