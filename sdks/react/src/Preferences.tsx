import { useId, useState, type FormEvent } from 'react';
import { usePreferences } from './hooks.js';
import { CHANNEL_TYPES, type ChannelType, type Preferences as PreferencesShape } from './types.js';

export interface PreferencesLabels {
  heading: string;
  channels: string;
  categories: string;
  channel: Record<ChannelType, string>;
  /** A category's display name (default: the name itself). */
  category: (name: string) => string;
  save: string;
  saving: string;
  saved: string;
  loading: string;
}

const DEFAULT_LABELS: PreferencesLabels = {
  heading: 'Notification preferences',
  channels: 'Channels',
  categories: 'Categories',
  channel: { email: 'Email', sms: 'SMS', slack: 'Slack', webhook: 'Webhook', inapp: 'In-app' },
  category: (name) => name,
  save: 'Save preferences',
  saving: 'Saving…',
  saved: 'Preferences saved.',
  loading: 'Loading preferences…',
};

export interface PreferencesProps {
  /** The channel types to offer (default: all five). */
  channels?: readonly ChannelType[];
  /** Workflow categories to offer, besides those the subscriber already has a setting for. */
  categories?: readonly string[];
  labels?: Partial<PreferencesLabels>;
  className?: string;
  /** Called with what the server saved. */
  onSaved?: (preferences: PreferencesShape) => void;
}

/** A form where the subscriber opts in or out of channels and categories. */
export function Preferences({ channels = CHANNEL_TYPES, categories = [], labels: overrides, className, onSaved }: PreferencesProps) {
  const labels = { ...DEFAULT_LABELS, ...overrides, channel: { ...DEFAULT_LABELS.channel, ...overrides?.channel } };
  const prefs = usePreferences();
  // The subscriber's unsaved changes on top of what the server has (null: none).
  const [edits, setEdits] = useState<PreferencesShape | null>(null);
  const draft = edits ?? prefs.preferences;
  const [status, setStatus] = useState('');
  const id = useId();

  const allCategories = [...new Set([...categories, ...Object.keys(draft?.categories ?? {})])].sort();

  const onSubmit = async (e: FormEvent) => {
    e.preventDefault();
    if (!draft) return;
    setStatus('');
    try {
      const saved = await prefs.save(draft);
      setEdits(null);
      setStatus(labels.saved);
      onSaved?.(saved);
    } catch {
      /* shown through prefs.error */
    }
  };

  const toggle = (group: 'channels' | 'categories', name: string, enabled: boolean) => {
    setStatus('');
    setEdits((e) => {
      const d = e ?? prefs.preferences ?? {};
      return { ...d, [group]: { ...d[group], [name]: enabled } };
    });
  };

  return (
    <form className={['chm-preferences', className].filter(Boolean).join(' ')} aria-labelledby={`${id}-h`} onSubmit={onSubmit}>
      <h2 id={`${id}-h`} className="chm-heading">
        {labels.heading}
      </h2>
      {!draft ? (
        prefs.loading && <p className="chm-empty">{labels.loading}</p>
      ) : (
        <>
          <fieldset className="chm-fieldset">
            <legend>{labels.channels}</legend>
            {channels.map((c) => (
              <label key={c} className="chm-toggle">
                <input
                  type="checkbox"
                  role="switch"
                  name={`channel-${c}`}
                  checked={draft?.channels?.[c] !== false}
                  onChange={(e) => toggle('channels', c, e.target.checked)}
                />
                <span>{labels.channel[c]}</span>
              </label>
            ))}
          </fieldset>
          {allCategories.length > 0 && (
            <fieldset className="chm-fieldset">
              <legend>{labels.categories}</legend>
              {allCategories.map((c) => (
                <label key={c} className="chm-toggle">
                  <input
                    type="checkbox"
                    role="switch"
                    name={`category-${c}`}
                    checked={draft?.categories?.[c] !== false}
                    onChange={(e) => toggle('categories', c, e.target.checked)}
                  />
                  <span>{labels.category(c)}</span>
                </label>
              ))}
            </fieldset>
          )}
          <button type="submit" className="chm-button chm-save" disabled={!draft || prefs.saving}>
            {prefs.saving ? labels.saving : labels.save}
          </button>
        </>
      )}
      <p className="chm-status" role="status" aria-live="polite">
        {status}
      </p>
      {prefs.error && (
        <p className="chm-error" role="alert">
          {prefs.error.message}
        </p>
      )}
    </form>
  );
}
