import { useEffect, useId, useRef, useState, type KeyboardEvent } from 'react';
import type { WebhookPortalLabels } from './labels.js';

export interface SecretPanelProps {
  /** The masked URL of the endpoint the secret signs for. */
  url: string;
  secret: string;
  labels: WebhookPortalLabels;
  /** Called when the user dismisses the panel: drop the secret. */
  onDismiss: () => void;
}

/** Copies `text`: the Clipboard API, or the selected field and execCommand where it is missing. */
async function copyText(text: string, field: HTMLInputElement | null): Promise<boolean> {
  try {
    if (navigator.clipboard?.writeText) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch {
    /* fall back below */
  }
  if (!field) return false;
  field.focus();
  field.select();
  try {
    return document.execCommand?.('copy') ?? false;
  } catch {
    return false;
  }
}

/**
 * The one-time display of a signing secret: a labelled, non-modal dialog that takes the focus,
 * with the secret in a read-only field, a copy button and a dismiss button (Escape dismisses too).
 */
export function SecretPanel({ url, secret, labels, onDismiss }: SecretPanelProps) {
  const id = useId();
  const panelRef = useRef<HTMLDivElement>(null);
  const fieldRef = useRef<HTMLInputElement>(null);
  const [copyStatus, setCopyStatus] = useState('');

  useEffect(() => {
    panelRef.current?.focus();
  }, []);

  const onKeyDown = (e: KeyboardEvent) => {
    if (e.key === 'Escape') {
      e.preventDefault();
      e.stopPropagation();
      onDismiss();
    }
  };

  return (
    <div
      ref={panelRef}
      className="chm-secret"
      role="dialog"
      aria-labelledby={`${id}-h`}
      aria-describedby={`${id}-note`}
      tabIndex={-1}
      onKeyDown={onKeyDown}
    >
      <h3 id={`${id}-h`} className="chm-subheading">
        {labels.secretHeading(url)}
      </h3>
      <p id={`${id}-note`} className="chm-note">
        {labels.secretNote}
      </p>
      <div className="chm-secret-row">
        <label className="chm-sr-only" htmlFor={`${id}-secret`}>
          {labels.secretField}
        </label>
        <input
          ref={fieldRef}
          id={`${id}-secret`}
          className="chm-input chm-secret-value"
          readOnly
          value={secret}
          spellCheck={false}
          autoComplete="off"
          onFocus={(e) => e.currentTarget.select()}
        />
        <button
          type="button"
          className="chm-button chm-copy"
          onClick={async () => setCopyStatus((await copyText(secret, fieldRef.current)) ? labels.copied : labels.copyFailed)}
        >
          {labels.copy}
        </button>
      </div>
      <p className="chm-status" role="status" aria-live="polite">
        {copyStatus}
      </p>
      <button type="button" className="chm-button chm-primary chm-dismiss" onClick={onDismiss}>
        {labels.dismissSecret}
      </button>
    </div>
  );
}
