import { ChimaticError } from '../client.js';
import type { EndpointDelivery, WebhookEndpoint } from '../types.js';

/** Every text of `<WebhookPortal/>`: pass some or all of them (translations). */
export interface WebhookPortalLabels {
  heading: string;
  loading: string;
  empty: string;
  columnUrl: string;
  columnStatus: string;
  columnSigning: string;
  columnActions: string;
  status: Record<WebhookEndpoint['status'], string>;
  signedWith: Record<WebhookEndpoint['signed_with'], string>;
  previousSecretUntil: (time: string) => string;
  addHeading: string;
  urlField: string;
  urlHint: string;
  add: string;
  adding: string;
  added: string;
  secretHeading: (url: string) => string;
  secretNote: string;
  secretField: string;
  copy: string;
  copied: string;
  copyFailed: string;
  dismissSecret: string;
  rotate: string;
  rotateHeading: (url: string) => string;
  overlap: string;
  overlapChoice: (seconds: number) => string;
  confirmRotate: string;
  rotating: string;
  cancel: string;
  disable: string;
  enable: string;
  disabled: string;
  enabled: string;
  remove: string;
  removeHeading: (url: string) => string;
  removeNote: string;
  confirmRemove: string;
  removing: string;
  removed: string;
  /** Names an endpoint's button for assistive technology, e.g. "Disable https://hoo…". */
  action: (action: string, url: string) => string;
  deliveries: string;
  deliveriesHeading: (url: string) => string;
  deliveriesLoading: string;
  noDeliveries: string;
  refresh: string;
  loadMore: string;
  columnDelivery: string;
  columnAttempts: string;
  columnLastResult: string;
  columnUpdated: string;
  deliveryStatus: (status: EndpointDelivery['status']) => string;
  lastResult: (delivery: EndpointDelivery) => string;
  nextAttempt: (time: string) => string;
  replay: string;
  replayLabel: (delivery: EndpointDelivery, time: string) => string;
  replayed: string;
}

const DELIVERY_STATUS: Record<string, string> = {
  queued: 'Queued',
  delivering: 'Delivering',
  delivered: 'Delivered',
  failed: 'Failed',
  skipped: 'Skipped',
  suppressed: 'Suppressed',
  cancelled: 'Cancelled',
};

const duration = (seconds: number) =>
  seconds === 0
    ? 'No overlap'
    : seconds % 86400 === 0
      ? `${seconds / 86400 === 1 ? '24 hours' : `${seconds / 86400} days`}`
      : seconds % 3600 === 0
        ? `${seconds / 3600} hour${seconds === 3600 ? '' : 's'}`
        : `${seconds} seconds`;

export const DEFAULT_PORTAL_LABELS: WebhookPortalLabels = {
  heading: 'Webhook endpoints',
  loading: 'Loading endpoints…',
  empty: 'No endpoints yet.',
  columnUrl: 'URL',
  columnStatus: 'Status',
  columnSigning: 'Signing secret',
  columnActions: 'Actions',
  status: { active: 'Active', disabled: 'Disabled' },
  signedWith: { endpoint: 'Its own', workspace: 'Shared (provider’s)' },
  previousSecretUntil: (t) => `previous one also valid until ${t}`,
  addHeading: 'Add an endpoint',
  urlField: 'Endpoint URL',
  urlHint: 'An https:// address that accepts POST requests.',
  add: 'Add endpoint',
  adding: 'Adding…',
  added: 'Endpoint added.',
  secretHeading: (url) => `Signing secret of ${url}`,
  secretNote: 'Copy it now: it is shown only this once. Verify the signature of every webhook with it.',
  secretField: 'Signing secret',
  copy: 'Copy',
  copied: 'Copied to the clipboard.',
  copyFailed: 'Could not copy: select the secret and copy it.',
  dismissSecret: 'I have saved it',
  rotate: 'Rotate secret',
  rotateHeading: (url) => `Rotate the signing secret of ${url}`,
  overlap: 'Keep the old secret valid for',
  overlapChoice: duration,
  confirmRotate: 'Rotate',
  rotating: 'Rotating…',
  cancel: 'Cancel',
  disable: 'Disable',
  enable: 'Enable',
  disabled: 'Endpoint disabled.',
  enabled: 'Endpoint enabled.',
  remove: 'Delete',
  removeHeading: (url) => `Delete ${url}?`,
  removeNote: 'Webhooks stop reaching it. This cannot be undone.',
  confirmRemove: 'Delete endpoint',
  removing: 'Deleting…',
  removed: 'Endpoint deleted.',
  action: (action, url) => `${action}: ${url}`,
  deliveries: 'Deliveries',
  deliveriesHeading: (url) => `Recent deliveries to ${url}`,
  deliveriesLoading: 'Loading deliveries…',
  noDeliveries: 'No deliveries yet.',
  refresh: 'Refresh',
  loadMore: 'Load more',
  columnDelivery: 'Sent',
  columnAttempts: 'Attempts',
  columnLastResult: 'Last result',
  columnUpdated: 'Updated',
  deliveryStatus: (s) => DELIVERY_STATUS[s] ?? s,
  lastResult: (d) => {
    const last = d.attempts[d.attempts.length - 1];
    if (!last) return '—';
    if (last.status_code != null) return `HTTP ${last.status_code}`;
    return last.error_class ?? (last.succeeded ? 'OK' : 'Error');
  },
  nextAttempt: (t) => `next attempt ${t}`,
  replay: 'Replay',
  replayLabel: (_d, t) => `Replay the delivery of ${t}`,
  replayed: 'Replay queued.',
};

/** What to show for a failure: the server's `detail` when it sent a problem. */
export function errorText(e: unknown): string {
  if (e instanceof ChimaticError && e.problem?.detail) return e.problem.detail;
  return e instanceof Error ? e.message : String(e);
}

export const defaultFormatTime = (iso: string) => {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
};
