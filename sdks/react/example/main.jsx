// The example page: ?baseUrl=http://127.0.0.1:8080&token=sbt_…[&categories=orders,marketing]
// [&portal=0 to leave out the webhook portal][&poll=MS, how often pending deliveries reload]
// (the server needs CHIMATIC_INBOX_ORIGINS set to this page's origin; the webhook portal needs a
// token with the `portal` scope).
import { StrictMode, useState } from 'react';
import { createRoot } from 'react-dom/client';
import { ChimaticProvider, Inbox, Preferences, WebhookPortal, useInbox } from '@chimatic/react';
import '@chimatic/react/style.css';
import './example.css';

const params = new URLSearchParams(location.search);

function Status() {
  const { live, error } = useInbox();
  return (
    <p className="example-status" data-live={live ? 'yes' : 'no'}>
      {error ? `Error: ${error.message}` : live ? 'Live updates connected' : 'Connecting…'}
    </p>
  );
}

function Setup() {
  const [baseUrl, setBaseUrl] = useState('http://127.0.0.1:8080');
  const [token, setToken] = useState('');
  return (
    <form className="example-setup" onSubmit={(e) => { e.preventDefault(); location.search = new URLSearchParams({ baseUrl, token }).toString(); }}>
      <h1>@chimatic/react example</h1>
      <p>A subscriber token comes from your back end: <code>POST /v1/subscribers/&#123;id&#125;/token</code>.</p>
      <label>Server <input value={baseUrl} onChange={(e) => setBaseUrl(e.target.value)} /></label>
      <label>Subscriber token <input value={token} onChange={(e) => setToken(e.target.value)} placeholder="sbt_…" /></label>
      <button type="submit">Open</button>
    </form>
  );
}

function App() {
  const baseUrl = params.get('baseUrl');
  const token = params.get('token');
  if (!baseUrl || !token) return <Setup />;
  const categories = (params.get('categories') ?? '').split(',').filter(Boolean);
  const portal = params.get('portal') !== '0';
  const poll = params.get('poll') ? Number(params.get('poll')) : undefined;
  return (
    <ChimaticProvider baseUrl={baseUrl} token={token}>
      <header className="example-header">
        <strong>Acme</strong>
        <Inbox />
      </header>
      <main className="example-main">
        <Status />
        <Preferences categories={categories} />
        {portal && <WebhookPortal deliveriesPollInterval={poll} />}
      </main>
    </ChimaticProvider>
  );
}

createRoot(document.getElementById('root')).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
