import { act, cleanup, fireEvent, render, screen, waitFor, within } from '@testing-library/react';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ChimaticProvider, Inbox, Preferences } from '../../src';
import { FakeEventSource, FakeServer, message } from './fakes';

let server: FakeServer;

function renderWith(ui: React.ReactNode) {
  return render(
    <ChimaticProvider baseUrl="http://chimatic.test" token="sbt_test" fetch={server.fetch} EventSource={FakeEventSource}>
      {ui}
    </ChimaticProvider>,
  );
}

beforeEach(() => {
  server = new FakeServer();
  FakeEventSource.reset();
});
afterEach(() => {
  cleanup();
  FakeEventSource.reset();
});

const bell = () => screen.getByRole('button', { name: /^Notifications/ });

describe('<Inbox/>', () => {
  it('shows the unread count on the bell, in its name and its badge', async () => {
    server.messages.push(message('a'), message('b', { read_at: '2026-01-01T00:00:00Z' }), message('c'));
    const { container } = renderWith(<Inbox />);
    await waitFor(() => expect(bell()).toHaveProperty('ariaLabel', 'Notifications, 2 unread'));
    expect(container.querySelector('.chm-badge')?.textContent).toBe('2');
    expect(bell().getAttribute('aria-expanded')).toBe('false');
    expect(bell().getAttribute('aria-haspopup')).toBe('dialog');
  });

  it('opens a labelled dialog with focus inside; Escape closes it and focus returns to the bell', async () => {
    server.messages.push(message('Order shipped'));
    renderWith(<Inbox />);
    await waitFor(() => expect(bell().getAttribute('aria-label')).toContain('1 unread'));
    fireEvent.click(bell());
    const dialog = screen.getByRole('dialog', { name: 'Notifications' });
    expect(bell().getAttribute('aria-expanded')).toBe('true');
    expect(bell().getAttribute('aria-controls')).toBe(dialog.id);
    expect(document.activeElement).toBe(dialog);
    expect(within(dialog).getByRole('listitem').textContent).toContain('Order shipped');
    fireEvent.keyDown(dialog, { key: 'Escape' });
    expect(screen.queryByRole('dialog')).toBeNull();
    expect(document.activeElement).toBe(bell());
  });

  it('Escape still closes it when the focus fell back to the body', async () => {
    renderWith(<Inbox defaultOpen />);
    (document.activeElement as HTMLElement | null)?.blur();
    expect(document.activeElement).toBe(document.body);
    fireEvent.keyDown(document.body, { key: 'Escape' });
    expect(screen.queryByRole('dialog')).toBeNull();
    expect(document.activeElement).toBe(bell());
  });

  it('closes when the focus moves outside (a non-modal popover)', async () => {
    renderWith(
      <>
        <Inbox defaultOpen />
        <input aria-label="search" />
      </>,
    );
    const search = screen.getByRole('textbox', { name: 'search' });
    fireEvent.focusIn(search);
    expect(screen.queryByRole('dialog')).toBeNull();
  });

  it('closes on a click outside', async () => {
    renderWith(
      <>
        <Inbox defaultOpen />
        <p>elsewhere</p>
      </>,
    );
    expect(screen.getByRole('dialog')).toBeTruthy();
    fireEvent.mouseDown(screen.getByText('elsewhere'));
    expect(screen.queryByRole('dialog')).toBeNull();
  });

  it('marks one read, archives one, and marks all read', async () => {
    const [a, b, c] = [message('Alpha'), message('Beta'), message('Gamma')];
    server.messages.push(a, b, c);
    renderWith(<Inbox defaultOpen />);
    await screen.findByText('Gamma');
    fireEvent.click(screen.getByRole('button', { name: 'Mark as read: Gamma' }));
    await waitFor(() => expect(bell().getAttribute('aria-label')).toBe('Notifications, 2 unread'));
    expect(screen.queryByRole('button', { name: 'Mark as read: Gamma' })).toBeNull();

    fireEvent.click(screen.getByRole('button', { name: 'Archive: Beta' }));
    await waitFor(() => expect(screen.queryByText('Beta')).toBeNull());
    expect(bell().getAttribute('aria-label')).toBe('Notifications, 1 unread');

    screen.getByRole('button', { name: 'Mark all as read' }).focus();
    fireEvent.click(screen.getByRole('button', { name: 'Mark all as read' }));
    await waitFor(() => expect(bell().getAttribute('aria-label')).toBe('Notifications'));
    expect(document.querySelector('.chm-badge')).toBeNull();
    const markAll = screen.getByRole('button', { name: 'Mark all as read' });
    expect(markAll.getAttribute('aria-disabled')).toBe('true');
    expect(document.activeElement).toBe(markAll);
    expect(server.unread()).toBe(0);
  });

  it('shows live messages and announces them', async () => {
    renderWith(<Inbox defaultOpen />);
    await screen.findByText('You have no notifications.');
    act(() => server.deliver(message('Live one')));
    expect(screen.getByText('Live one')).toBeTruthy();
    expect(bell().getAttribute('aria-label')).toBe('Notifications, 1 unread');
    expect(screen.getAllByRole('status')[0].textContent).toBe('New notification: Live one');
  });

  it('offers "Load more" while there are older pages', async () => {
    for (let i = 0; i < 25; i++) server.messages.push(message(`m${i}`));
    renderWith(<Inbox defaultOpen />);
    await screen.findByText('m24');
    expect(screen.getAllByRole('listitem')).toHaveLength(20);
    fireEvent.click(screen.getByRole('button', { name: 'Load more' }));
    await screen.findByText('m0');
    expect(screen.getAllByRole('listitem')).toHaveLength(25);
    expect(screen.queryByRole('button', { name: 'Load more' })).toBeNull();
  });

  it('takes translated labels', async () => {
    server.messages.push(message('x'));
    renderWith(<Inbox labels={{ bell: 'Benachrichtigungen', bellUnread: (n) => `Benachrichtigungen, ${n} ungelesen` }} />);
    await screen.findByRole('button', { name: 'Benachrichtigungen, 1 ungelesen' });
  });
});

describe('<Preferences/>', () => {
  it('shows the saved opt-outs and saves a change', async () => {
    server.preferences = { channels: { sms: false } };
    let saved: unknown = null;
    renderWith(<Preferences categories={['orders', 'marketing']} onSaved={(p) => (saved = p)} />);
    const sms = await screen.findByRole('switch', { name: 'SMS' });
    expect(sms).toHaveProperty('checked', false);
    expect(screen.getByRole('switch', { name: 'Email' })).toHaveProperty('checked', true);
    fireEvent.click(screen.getByRole('switch', { name: 'marketing' }));
    fireEvent.click(screen.getByRole('switch', { name: 'Email' }));
    fireEvent.click(screen.getByRole('button', { name: 'Save preferences' }));
    await screen.findByText('Preferences saved.');
    expect(screen.getByRole('switch', { name: 'Email' })).toHaveProperty('checked', false);
    expect(screen.getByRole('switch', { name: 'marketing' })).toHaveProperty('checked', false);
    expect(server.preferences).toEqual({ channels: { sms: false, email: false }, categories: { marketing: false } });
    expect(saved).toEqual(server.preferences);
  });

  it('shows the load error', async () => {
    server.token = 'sbt_changed';
    renderWith(<Preferences />);
    expect((await screen.findByRole('alert')).textContent).toMatch(/401 unauthorized/);
    expect(screen.queryByRole('switch')).toBeNull();
  });

  it('lists categories the subscriber already has a setting for', async () => {
    server.preferences = { categories: { billing: false } };
    renderWith(<Preferences />);
    expect(await screen.findByRole('switch', { name: 'billing' })).toHaveProperty('checked', false);
  });
});
