import { useCallback, useEffect, useId, useRef, useState, type ReactNode } from 'react';
import { useInbox } from './hooks.js';
import type { InboxMessage } from './types.js';

export interface InboxLabels {
  bell: string;
  /** The bell's accessible name with `n` unread. */
  bellUnread: (n: number) => string;
  heading: string;
  markAllRead: string;
  markRead: string;
  archive: string;
  empty: string;
  loading: string;
  loadMore: string;
  close: string;
  /** Announced to screen readers when a message arrives live. */
  arrived: (m: InboxMessage) => string;
}

const DEFAULT_LABELS: InboxLabels = {
  bell: 'Notifications',
  bellUnread: (n) => `Notifications, ${n} unread`,
  heading: 'Notifications',
  markAllRead: 'Mark all as read',
  markRead: 'Mark as read',
  archive: 'Archive',
  empty: 'You have no notifications.',
  loading: 'Loading…',
  loadMore: 'Load more',
  close: 'Close',
  arrived: (m) => `New notification: ${m.title ?? m.text}`,
};

export interface InboxProps {
  /** Overrides for the visible and accessible texts (for translations). */
  labels?: Partial<InboxLabels>;
  /** Renders a message's body instead of the title and text. */
  renderMessage?: (message: InboxMessage) => ReactNode;
  /** Formats a message's time (default: the browser's locale). */
  formatTime?: (iso: string) => string;
  /** Open at first render. */
  defaultOpen?: boolean;
  className?: string;
}

const BellIcon = () => (
  <svg className="chm-bell-icon" viewBox="0 0 24 24" width="20" height="20" aria-hidden="true" focusable="false">
    <path
      fill="currentColor"
      d="M12 22a2.5 2.5 0 0 0 2.45-2h-4.9A2.5 2.5 0 0 0 12 22Zm7-6V11a7 7 0 0 0-5.5-6.84V3.5a1.5 1.5 0 0 0-3 0v.66A7 7 0 0 0 5 11v5l-2 2v1h18v-1l-2-2Z"
    />
  </svg>
);

const CheckIcon = () => (
  <svg viewBox="0 0 24 24" width="16" height="16" aria-hidden="true" focusable="false">
    <path fill="none" stroke="currentColor" strokeWidth="2.5" strokeLinecap="round" strokeLinejoin="round" d="m5 12.5 4.5 4.5L19 7.5" />
  </svg>
);

const ArchiveIcon = () => (
  <svg viewBox="0 0 24 24" width="16" height="16" aria-hidden="true" focusable="false">
    <path
      fill="none"
      stroke="currentColor"
      strokeWidth="2"
      strokeLinejoin="round"
      d="M3 4h18v4H3zM5 8v11a1 1 0 0 0 1 1h12a1 1 0 0 0 1-1V8M10 12h4"
    />
  </svg>
);

const defaultFormat = (iso: string) => {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
};

/** A bell with the unread count that opens the subscriber's inbox in a popover. */
export function Inbox({ labels: overrides, renderMessage, formatTime = defaultFormat, defaultOpen = false, className }: InboxProps) {
  const labels = { ...DEFAULT_LABELS, ...overrides };
  const [announcement, setAnnouncement] = useState('');
  const inbox = useInbox({ onMessage: (m) => setAnnouncement(labels.arrived(m)) });
  const [open, setOpen] = useState(defaultOpen);
  const rootRef = useRef<HTMLDivElement>(null);
  const buttonRef = useRef<HTMLButtonElement>(null);
  const panelRef = useRef<HTMLDivElement>(null);
  const id = useId();
  const panelId = `${id}-panel`;
  const headingId = `${id}-heading`;

  const close = useCallback((returnFocus: boolean) => {
    setOpen(false);
    if (returnFocus) buttonRef.current?.focus();
  }, []);

  // Opening moves focus into the popover.
  useEffect(() => {
    if (open) panelRef.current?.focus();
  }, [open]);

  // A click or focus outside closes it.
  useEffect(() => {
    if (!open) return;
    const outside = (e: Event) => {
      if (rootRef.current && e.target instanceof Node && !rootRef.current.contains(e.target)) close(false);
    };
    document.addEventListener('mousedown', outside);
    document.addEventListener('focusin', outside);
    return () => {
      document.removeEventListener('mousedown', outside);
      document.removeEventListener('focusin', outside);
    };
  }, [open, close]);

  // Escape closes it, from anywhere inside (or when focus fell back to the page's body).
  useEffect(() => {
    if (!open) return;
    const onKey = (e: globalThis.KeyboardEvent) => {
      if (e.key !== 'Escape' || e.defaultPrevented) return;
      const active = document.activeElement;
      if (active && active !== document.body && !rootRef.current?.contains(active)) return;
      e.preventDefault();
      close(true);
    };
    document.addEventListener('keydown', onKey);
    return () => document.removeEventListener('keydown', onKey);
  }, [open, close]);

  // When the focused button disappears (mark read, archive), keep focus inside the popover.
  const keepFocus = () => {
    requestAnimationFrame(() => {
      if (open && panelRef.current && !panelRef.current.contains(document.activeElement)) panelRef.current.focus();
    });
  };

  const { unreadCount, messages } = inbox;
  const badge = unreadCount > 99 ? '99+' : String(unreadCount);

  return (
    <div ref={rootRef} className={['chm-inbox', className].filter(Boolean).join(' ')}>
      <button
        ref={buttonRef}
        type="button"
        className="chm-bell"
        aria-label={unreadCount > 0 ? labels.bellUnread(unreadCount) : labels.bell}
        aria-haspopup="dialog"
        aria-expanded={open}
        aria-controls={open ? panelId : undefined}
        onClick={() => (open ? close(false) : setOpen(true))}
      >
        <BellIcon />
        {unreadCount > 0 && (
          <span className="chm-badge" data-chm-unread={unreadCount} aria-hidden="true">
            {badge}
          </span>
        )}
      </button>
      <div className="chm-sr-only" role="status" aria-live="polite">
        {announcement}
      </div>
      {open && (
        <div
          ref={panelRef}
          id={panelId}
          className="chm-popover"
          role="dialog"
          aria-labelledby={headingId}
          tabIndex={-1}
        >
          <div className="chm-popover-header">
            <h2 id={headingId} className="chm-heading">
              {labels.heading}
            </h2>
            <button
              type="button"
              className="chm-button chm-mark-all"
              // aria-disabled, not disabled: a disabled button drops the focus.
              aria-disabled={unreadCount === 0}
              onClick={() => {
                if (unreadCount > 0) void inbox.markAllRead().catch(() => {});
              }}
            >
              {labels.markAllRead}
            </button>
            <button type="button" className="chm-icon-button chm-close" aria-label={labels.close} onClick={() => close(true)}>
              <span aria-hidden="true">×</span>
            </button>
          </div>
          {inbox.error && (
            <p className="chm-error" role="alert">
              {inbox.error.message}
            </p>
          )}
          {inbox.loading ? (
            <p className="chm-empty">{labels.loading}</p>
          ) : messages.length === 0 ? (
            <p className="chm-empty">{labels.empty}</p>
          ) : (
            <ul className="chm-list" aria-labelledby={headingId}>
              {messages.map((m) => {
                const unread = !m.read_at;
                const name = m.title ?? m.text;
                return (
                  <li key={m.id} className={unread ? 'chm-message chm-unread' : 'chm-message'} data-chm-id={m.id}>
                    <div className="chm-message-body">
                      {renderMessage ? (
                        renderMessage(m)
                      ) : (
                        <>
                          {m.title && <p className="chm-title">{m.title}</p>}
                          <p className="chm-text">{m.text}</p>
                        </>
                      )}
                      <time className="chm-time" dateTime={m.created_at}>
                        {formatTime(m.created_at)}
                      </time>
                      {unread && <span className="chm-sr-only"> (unread)</span>}
                    </div>
                    <div className="chm-actions">
                      {unread && (
                        <button
                          type="button"
                          className="chm-icon-button chm-mark-read"
                          aria-label={`${labels.markRead}: ${name}`}
                          title={labels.markRead}
                          onClick={() => {
                            keepFocus();
                            void inbox.markRead(m.id).catch(() => {});
                          }}
                        >
                          <CheckIcon />
                        </button>
                      )}
                      <button
                        type="button"
                        className="chm-icon-button chm-archive"
                        aria-label={`${labels.archive}: ${name}`}
                        title={labels.archive}
                        onClick={() => {
                          keepFocus();
                          void inbox.archive(m.id).catch(() => {});
                        }}
                      >
                        <ArchiveIcon />
                      </button>
                    </div>
                  </li>
                );
              })}
            </ul>
          )}
          {inbox.hasMore && (
            <button
              type="button"
              className="chm-button chm-load-more"
              disabled={inbox.loadingMore}
              onClick={() => void inbox.loadMore().catch(() => {})}
            >
              {labels.loadMore}
            </button>
          )}
        </div>
      )}
    </div>
  );
}
