import { useId, useRef, useState } from 'react';
import type { WebhookEndpoint } from '../types.js';
import { useEndpointDeliveries } from './hooks.js';
import { errorText, type WebhookPortalLabels } from './labels.js';

export interface DeliveriesProps {
  endpoint: WebhookEndpoint;
  labels: WebhookPortalLabels;
  formatTime: (iso: string) => string;
  pageSize?: number;
  pollInterval?: number;
}

/** The recent deliveries of one endpoint: a table, "Load more", "Refresh", and "Replay" for failed ones. */
export function Deliveries({ endpoint, labels, formatTime, pageSize, pollInterval }: DeliveriesProps) {
  const id = useId();
  const headingRef = useRef<HTMLHeadingElement>(null);
  const list = useEndpointDeliveries(endpoint.id, { pageSize, pollInterval });
  const [status, setStatus] = useState('');
  const [actionError, setActionError] = useState<string | null>(null);
  const [busy, setBusy] = useState<string | null>(null);

  const replay = async (messageId: string) => {
    if (busy) return;
    setBusy(messageId);
    setActionError(null);
    setStatus('');
    try {
      await list.replay(messageId);
      setStatus(labels.replayed);
      // The button is gone with the failed status: keep the focus in this panel.
      headingRef.current?.focus();
    } catch (e) {
      setActionError(errorText(e));
    } finally {
      setBusy(null);
    }
  };

  return (
    <section className="chm-deliveries" aria-labelledby={`${id}-h`} data-chm-endpoint={endpoint.id}>
      <div className="chm-section-header">
        <h3 ref={headingRef} id={`${id}-h`} className="chm-subheading" tabIndex={-1}>
          {labels.deliveriesHeading(endpoint.url_masked)}
        </h3>
        <button type="button" className="chm-button chm-refresh" onClick={() => void list.reload()}>
          {labels.refresh}
        </button>
      </div>
      {(list.error || actionError) && (
        <p className="chm-error" role="alert">
          {actionError ?? errorText(list.error)}
        </p>
      )}
      {list.loading ? (
        <p className="chm-empty">{labels.deliveriesLoading}</p>
      ) : list.deliveries.length === 0 ? (
        !list.error && <p className="chm-empty">{labels.noDeliveries}</p>
      ) : (
        <table className="chm-table" aria-labelledby={`${id}-h`}>
          <thead>
            <tr>
              <th scope="col">{labels.columnDelivery}</th>
              <th scope="col">{labels.columnStatus}</th>
              <th scope="col">{labels.columnAttempts}</th>
              <th scope="col">{labels.columnLastResult}</th>
              <th scope="col">{labels.columnUpdated}</th>
              <th scope="col">
                <span className="chm-sr-only">{labels.columnActions}</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {list.deliveries.map((d) => {
              const created = formatTime(d.created_at);
              return (
                <tr key={d.id} data-chm-id={d.id} data-chm-status={d.status} className={`chm-delivery chm-delivery-${d.status}`}>
                  <th scope="row">
                    <time dateTime={d.created_at}>{created}</time>
                    <code className="chm-id">{d.id}</code>
                  </th>
                  <td>
                    <span className={`chm-pill chm-pill-${d.status}`}>{labels.deliveryStatus(d.status)}</span>
                    {d.next_attempt_at && (d.status === 'queued' || d.status === 'delivering') && (
                      <span className="chm-time"> {labels.nextAttempt(formatTime(d.next_attempt_at))}</span>
                    )}
                  </td>
                  <td className="chm-attempts">{d.attempt_count}</td>
                  <td className="chm-last-result">{labels.lastResult(d)}</td>
                  <td>
                    <time className="chm-time" dateTime={d.updated_at}>
                      {formatTime(d.updated_at)}
                    </time>
                  </td>
                  <td>
                    {d.status === 'failed' && (
                      <button
                        type="button"
                        className="chm-button chm-replay"
                        aria-label={labels.replayLabel(d, created)}
                        aria-disabled={busy === d.id}
                        onClick={() => void replay(d.id)}
                      >
                        {labels.replay}
                      </button>
                    )}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
      {list.hasMore && (
        <button
          type="button"
          className="chm-button chm-load-more"
          aria-disabled={list.loadingMore}
          onClick={() => void list.loadMore()}
        >
          {labels.loadMore}
        </button>
      )}
      <p className="chm-status" role="status" aria-live="polite">
        {status}
      </p>
    </section>
  );
}
