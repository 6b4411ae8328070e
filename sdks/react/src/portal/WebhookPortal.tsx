import { Fragment, useEffect, useId, useRef, useState, type FormEvent, type KeyboardEvent } from 'react';
import type { WebhookEndpoint, WebhookEndpointWithSecret } from '../types.js';
import { Deliveries } from './Deliveries.js';
import { useWebhookEndpoints } from './hooks.js';
import { DEFAULT_PORTAL_LABELS, defaultFormatTime, errorText, type WebhookPortalLabels } from './labels.js';
import { SecretPanel } from './SecretPanel.js';

/** The overlaps offered when rotating a secret: none, 1 hour, 24 hours, 7 days. */
export const OVERLAP_CHOICES: readonly number[] = [0, 3600, 86400, 604800];

export interface WebhookPortalProps {
  labels?: Partial<WebhookPortalLabels>;
  className?: string;
  formatTime?: (iso: string) => string;
  /** Overlaps (seconds, 0 to 604800) offered when rotating a secret (default: none, 1 h, 24 h, 7 days). */
  overlapChoices?: readonly number[];
  /** The overlap chosen at first (default 86400). */
  defaultOverlap?: number;
  /** Deliveries per page (default 20). */
  deliveriesPageSize?: number;
  /** How often (ms) to reload the deliveries shown while one is queued or delivering (default 3000; 0: never). */
  deliveriesPollInterval?: number;
}

type Action = { kind: 'rotate' | 'remove'; id: string } | null;
/** The secret on show, and where the focus goes back to once it is dismissed. */
type ShownSecret = { url: string; value: string; returnTo: string } | null;

const quote = (v: string) => `"${v.replace(/["\\]/g, '\\$&')}"`;
const byId = (id: string) => `[id=${quote(id)}]`;
const sel = (action: string, id: string) => `[data-chm-action=${quote(action)}][data-chm-endpoint=${quote(id)}]`;

/**
 * The signed-in subscriber's webhook endpoints: list, add (the signing secret shown once), rotate
 * the secret with an overlap, disable/enable, delete (confirmed), and each endpoint's recent
 * deliveries with "Replay" for the failed ones. The provider's token needs the `portal` scope.
 */
export function WebhookPortal({
  labels: overrides,
  className,
  formatTime = defaultFormatTime,
  overlapChoices = OVERLAP_CHOICES,
  defaultOverlap = 86400,
  deliveriesPageSize,
  deliveriesPollInterval = 3000,
}: WebhookPortalProps) {
  const labels: WebhookPortalLabels = {
    ...DEFAULT_PORTAL_LABELS,
    ...overrides,
    status: { ...DEFAULT_PORTAL_LABELS.status, ...overrides?.status },
    signedWith: { ...DEFAULT_PORTAL_LABELS.signedWith, ...overrides?.signedWith },
  };
  const portal = useWebhookEndpoints();
  const id = useId();
  const rootRef = useRef<HTMLElement>(null);
  const [url, setUrl] = useState('');
  const [adding, setAdding] = useState(false);
  const [addError, setAddError] = useState<string | null>(null);
  const [secret, setSecret] = useState<ShownSecret>(null);
  const [action, setAction] = useState<Action>(null);
  const [overlap, setOverlap] = useState(defaultOverlap);
  const [actionBusy, setActionBusy] = useState(false);
  const [actionError, setActionError] = useState<string | null>(null);
  const [rowBusy, setRowBusy] = useState<string | null>(null);
  const [rowError, setRowError] = useState<string | null>(null);
  const [open, setOpen] = useState<string[]>([]);
  const [status, setStatus] = useState('');

  // Where the focus goes after the next render (a selector inside the portal).
  const focusNext = useRef<string | null>(null);
  // Kept until a render has it (another update may render first).
  useEffect(() => {
    const target = focusNext.current && rootRef.current?.querySelector<HTMLElement>(focusNext.current);
    if (!target) return;
    focusNext.current = null;
    target.focus();
  });

  const showSecret = (e: WebhookEndpointWithSecret, returnTo: string) =>
    setSecret({ url: e.url_masked, value: e.signing_secret, returnTo });
  const dismissSecret = () => {
    focusNext.current = secret?.returnTo ?? null;
    // Gone from state: nothing keeps the secret once the user dismissed it.
    setSecret(null);
  };

  const onAdd = async (e: FormEvent) => {
    e.preventDefault();
    if (adding) return;
    setAdding(true);
    setAddError(null);
    setStatus('');
    try {
      const created = await portal.create(url.trim());
      setUrl('');
      setStatus(labels.added);
      showSecret(created, byId(`${id}-url`));
    } catch (err) {
      setAddError(errorText(err));
    } finally {
      setAdding(false);
    }
  };

  const begin = (kind: 'rotate' | 'remove', endpointId: string) => {
    setAction({ kind, id: endpointId });
    setActionError(null);
    setOverlap(defaultOverlap);
    focusNext.current = kind === 'rotate' ? '.chm-confirm input[type="radio"]:checked' : '.chm-confirm .chm-cancel';
  };
  const cancel = () => {
    if (action) focusNext.current = sel(action.kind, action.id);
    setAction(null);
    setActionError(null);
  };

  const confirm = async (e?: FormEvent) => {
    e?.preventDefault();
    if (!action || actionBusy) return;
    setActionBusy(true);
    setActionError(null);
    setStatus('');
    try {
      if (action.kind === 'rotate') {
        const rotated = await portal.rotateSecret(action.id, overlap);
        setAction(null);
        showSecret(rotated, sel('rotate', action.id));
      } else {
        await portal.remove(action.id);
        setAction(null);
        setOpen((o) => o.filter((x) => x !== action.id));
        setStatus(labels.removed);
        focusNext.current = byId(`${id}-h`);
      }
    } catch (err) {
      setActionError(errorText(err));
    } finally {
      setActionBusy(false);
    }
  };

  const toggle = async (endpoint: WebhookEndpoint) => {
    if (rowBusy) return;
    setRowBusy(endpoint.id);
    setRowError(null);
    setStatus('');
    try {
      if (endpoint.status === 'active') {
        await portal.disable(endpoint.id);
        setStatus(labels.disabled);
      } else {
        await portal.enable(endpoint.id);
        setStatus(labels.enabled);
      }
    } catch (err) {
      setRowError(errorText(err));
    } finally {
      setRowBusy(null);
    }
  };

  const onPanelKey = (e: KeyboardEvent) => {
    if (e.key === 'Escape') {
      e.preventDefault();
      e.stopPropagation();
      cancel();
    }
  };

  const actionPanel = (endpoint: WebhookEndpoint) => {
    if (action?.kind === 'rotate') {
      return (
        <div className="chm-confirm" role="dialog" aria-labelledby={`${id}-action-h`} onKeyDown={onPanelKey}>
          <form onSubmit={confirm}>
            <h3 id={`${id}-action-h`} className="chm-subheading">
              {labels.rotateHeading(endpoint.url_masked)}
            </h3>
            <fieldset className="chm-fieldset">
              <legend>{labels.overlap}</legend>
              {overlapChoices.map((s) => (
                <label key={s} className="chm-toggle">
                  <input
                    type="radio"
                    name={`${id}-overlap`}
                    value={s}
                    checked={overlap === s}
                    onChange={() => setOverlap(s)}
                  />
                  <span>{labels.overlapChoice(s)}</span>
                </label>
              ))}
            </fieldset>
            {actionError && (
              <p className="chm-error" role="alert">
                {actionError}
              </p>
            )}
            <div className="chm-confirm-buttons">
              <button type="submit" className="chm-button chm-primary chm-confirm-rotate" aria-disabled={actionBusy}>
                {actionBusy ? labels.rotating : labels.confirmRotate}
              </button>
              <button type="button" className="chm-button chm-cancel" onClick={cancel}>
                {labels.cancel}
              </button>
            </div>
          </form>
        </div>
      );
    }
    return (
      <div
        className="chm-confirm"
        role="alertdialog"
        aria-labelledby={`${id}-action-h`}
        aria-describedby={`${id}-action-note`}
        onKeyDown={onPanelKey}
      >
        <h3 id={`${id}-action-h`} className="chm-subheading">
          {labels.removeHeading(endpoint.url_masked)}
        </h3>
        <p id={`${id}-action-note`} className="chm-note">
          {labels.removeNote}
        </p>
        {actionError && (
          <p className="chm-error" role="alert">
            {actionError}
          </p>
        )}
        <div className="chm-confirm-buttons">
          <button
            type="button"
            className="chm-button chm-danger chm-confirm-remove"
            aria-disabled={actionBusy}
            onClick={() => void confirm()}
          >
            {actionBusy ? labels.removing : labels.confirmRemove}
          </button>
          <button type="button" className="chm-button chm-cancel" onClick={cancel}>
            {labels.cancel}
          </button>
        </div>
      </div>
    );
  };

  const { endpoints } = portal;
  const colSpan = 4;

  return (
    <section ref={rootRef} className={['chm-portal', className].filter(Boolean).join(' ')} aria-labelledby={`${id}-h`}>
      <h2 id={`${id}-h`} className="chm-heading" tabIndex={-1}>
        {labels.heading}
      </h2>
      {portal.error && (
        <p className="chm-error" role="alert">
          {errorText(portal.error)}
        </p>
      )}
      {secret && <SecretPanel url={secret.url} secret={secret.value} labels={labels} onDismiss={dismissSecret} />}
      {rowError && (
        <p className="chm-error" role="alert">
          {rowError}
        </p>
      )}
      {portal.loading ? (
        <p className="chm-empty">{labels.loading}</p>
      ) : endpoints.length === 0 ? (
        !portal.error && <p className="chm-empty">{labels.empty}</p>
      ) : (
        <table className="chm-table chm-endpoints" aria-labelledby={`${id}-h`}>
          <thead>
            <tr>
              <th scope="col">{labels.columnUrl}</th>
              <th scope="col">{labels.columnStatus}</th>
              <th scope="col">{labels.columnSigning}</th>
              <th scope="col">{labels.columnActions}</th>
            </tr>
          </thead>
          <tbody>
            {endpoints.map((e) => {
              const expanded = open.includes(e.id);
              const deliveriesId = `${id}-deliveries-${e.id}`;
              const name = (a: string) => labels.action(a, e.url_masked);
              const data = (a: string) => ({ 'data-chm-action': a, 'data-chm-endpoint': e.id });
              return (
                <Fragment key={e.id}>
                  <tr className={`chm-endpoint chm-endpoint-${e.status}`} data-chm-id={e.id} data-chm-status={e.status}>
                    <th scope="row">
                      <span className="chm-url">{e.url_masked}</span>
                    </th>
                    <td>
                      <span className={`chm-pill chm-pill-${e.status}`}>{labels.status[e.status]}</span>
                      {e.disabled_at && (
                        <time className="chm-time" dateTime={e.disabled_at}>
                          {' '}
                          {formatTime(e.disabled_at)}
                        </time>
                      )}
                    </td>
                    <td className="chm-signed-with" data-chm-signed-with={e.signed_with}>
                      {labels.signedWith[e.signed_with]}
                      {e.previous_secret_expires_at && (
                        <span className="chm-time">
                          {' '}
                          ({labels.previousSecretUntil(formatTime(e.previous_secret_expires_at))})
                        </span>
                      )}
                    </td>
                    <td>
                      <div className="chm-row-actions">
                        <button
                          type="button"
                          className="chm-button"
                          aria-label={name(labels.deliveries)}
                          aria-expanded={expanded}
                          aria-controls={expanded ? deliveriesId : undefined}
                          {...data('deliveries')}
                          onClick={() => setOpen((o) => (expanded ? o.filter((x) => x !== e.id) : [...o, e.id]))}
                        >
                          {labels.deliveries}
                        </button>
                        {e.signed_with === 'endpoint' && (
                          <button type="button" className="chm-button" aria-label={name(labels.rotate)} {...data('rotate')} onClick={() => begin('rotate', e.id)}>
                            {labels.rotate}
                          </button>
                        )}
                        <button
                          type="button"
                          className="chm-button"
                          aria-label={name(e.status === 'active' ? labels.disable : labels.enable)}
                          aria-disabled={rowBusy === e.id}
                          {...data('toggle')}
                          onClick={() => void toggle(e)}
                        >
                          {e.status === 'active' ? labels.disable : labels.enable}
                        </button>
                        <button type="button" className="chm-button chm-danger" aria-label={name(labels.remove)} {...data('remove')} onClick={() => begin('remove', e.id)}>
                          {labels.remove}
                        </button>
                      </div>
                    </td>
                  </tr>
                  {action?.id === e.id && (
                    <tr className="chm-action-row">
                      <td colSpan={colSpan}>{actionPanel(e)}</td>
                    </tr>
                  )}
                  {expanded && (
                    <tr className="chm-deliveries-row">
                      <td colSpan={colSpan} id={deliveriesId}>
                        <Deliveries
                          endpoint={e}
                          labels={labels}
                          formatTime={formatTime}
                          pageSize={deliveriesPageSize}
                          pollInterval={deliveriesPollInterval}
                        />
                      </td>
                    </tr>
                  )}
                </Fragment>
              );
            })}
          </tbody>
        </table>
      )}
      <form className="chm-add" aria-labelledby={`${id}-add-h`} onSubmit={onAdd}>
        <h3 id={`${id}-add-h`} className="chm-subheading">
          {labels.addHeading}
        </h3>
        <label htmlFor={`${id}-url`}>{labels.urlField}</label>
        <div className="chm-add-row">
          <input
            id={`${id}-url`}
            className="chm-input"
            type="url"
            required
            inputMode="url"
            autoComplete="off"
            placeholder="https://"
            value={url}
            aria-invalid={addError ? true : undefined}
            aria-describedby={`${id}-url-hint${addError ? ` ${id}-url-error` : ''}`}
            onChange={(ev) => {
              setUrl(ev.target.value);
              setAddError(null);
            }}
          />
          <button type="submit" className="chm-button chm-primary chm-add-button" aria-disabled={adding}>
            {adding ? labels.adding : labels.add}
          </button>
        </div>
        <p id={`${id}-url-hint`} className="chm-note">
          {labels.urlHint}
        </p>
        {addError && (
          <p id={`${id}-url-error`} className="chm-error" role="alert">
            {addError}
          </p>
        )}
      </form>
      <p className="chm-status" role="status" aria-live="polite">
        {status}
      </p>
    </section>
  );
}
