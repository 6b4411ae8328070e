// Retries against a tiny local fake server whose answers each test scripts: 429 and 5xx and
// connection errors are retried with backoff (honouring Retry-After), only for requests that are
// safe to send twice, and an idempotency key stays the same across the retries.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { after, before, beforeEach, test } from 'node:test';
import {
  Chimatic,
  ChimaticConnectionError,
  ChimaticError,
  ChimaticTimeoutError,
  parseRetryAfter,
} from '../dist/index.js';

/** Each request takes the next scripted answer (or 200 `{}` once the script runs out). */
let script = [];
const seen = [];
let fake;
let baseUrl;

function problem(status, code, headers = {}) {
  return (req, res) => {
    res.writeHead(status, { 'content-type': 'application/problem+json', ...headers });
    res.end(JSON.stringify({ type: 'about:blank', title: 'x', status, detail: `scripted ${code}`, code }));
  };
}
function json(status, body) {
  return (req, res) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
}
const hangUp = (req, res) => res.socket.destroy();
const stall = (ms) => (req, res) => setTimeout(() => json(200, { late: true })(req, res), ms);

before(async () => {
  fake = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString();
      seen.push({ at: performance.now(), method: req.method, url: req.url, headers: req.headers, body: body ? JSON.parse(body) : undefined });
      (script.shift() ?? json(200, {}))(req, res);
    });
  });
  await new Promise((resolve) => fake.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${fake.address().port}`;
});

after(() => new Promise((resolve) => {
  fake.closeAllConnections();
  fake.close(resolve);
}));

beforeEach(() => {
  script = [];
  seen.length = 0;
});

const client = (options = {}) =>
  new Chimatic({ apiKey: 'chm_test', baseUrl, retryBaseDelayMs: 10, retryMaxDelayMs: 40, ...options });

test('a GET is retried after 503 and 500, then succeeds', async () => {
  script = [problem(503, 'unavailable'), problem(500, 'internal'), json(200, { id: 'ws_1', name: 'w' })];
  const ws = await client().workspace.get();
  assert.deepEqual(ws, { id: 'ws_1', name: 'w' });
  assert.equal(seen.length, 3);
  assert.ok(seen.every((r) => r.headers.authorization === 'Bearer chm_test'));
});

test('429 is retried after its Retry-After, not after the (longer) backoff', async () => {
  script = [problem(429, 'rate_limited', { 'retry-after': '1' }), json(200, { data: [] })];
  const page = await client({ retryBaseDelayMs: 20_000, retryMaxDelayMs: 20_000 }).channels.list();
  assert.deepEqual(page, { data: [] });
  assert.equal(seen.length, 2);
  const gap = seen[1].at - seen[0].at;
  // Retry-After: 1 s; the backoff would have been 10-20 s. Loose bounds, not a timing test.
  assert.ok(gap >= 900 && gap < 8_000, `waited ${gap} ms`);
});

test('a POST with an idempotency key is retried with the same key; the client made one up', async () => {
  script = [problem(503, 'unavailable'), hangUp, json(202, { id: 'msg_1', status: 'queued' })];
  const accepted = await client().notifications.create({ channel_id: 'ch_1', payload: { a: 1 } });
  assert.deepEqual(accepted, { id: 'msg_1', status: 'queued' });
  assert.equal(seen.length, 3);
  const keys = seen.map((r) => r.body.idempotency_key);
  assert.match(keys[0], /^[0-9a-f-]{36}$/);
  assert.deepEqual(keys, [keys[0], keys[0], keys[0]]);
  assert.deepEqual(seen[0].body.payload, { a: 1 });
});

test("the caller's own idempotency key is kept; events and batch items get one too", async () => {
  script = [problem(502, 'bad_gateway'), json(202, { id: 'msg_1', status: 'queued' })];
  await client().notifications.create({ channel_id: 'ch_1', payload: {}, idempotency_key: 'mine' });
  assert.deepEqual(seen.map((r) => r.body.idempotency_key), ['mine', 'mine']);

  seen.length = 0;
  script = [problem(503, 'unavailable'), json(202, { event_id: 'evt_1' })];
  await client().events.send({ name: 'e', to: ['u'] });
  assert.equal(seen.length, 2);
  assert.equal(seen[0].body.idempotency_key, seen[1].body.idempotency_key);
  assert.ok(seen[0].body.idempotency_key);

  seen.length = 0;
  script = [problem(503, 'unavailable'), json(202, { data: [] })];
  await client().notifications.createBatch({
    items: [{ channel_id: 'ch_1', payload: {} }, { channel_id: 'ch_1', payload: {}, idempotency_key: 'k2' }],
  });
  assert.equal(seen.length, 2);
  const [k1, k2] = seen[0].body.items.map((i) => i.idempotency_key);
  assert.ok(k1 && k1 !== 'k2');
  assert.equal(k2, 'k2');
  assert.deepEqual(seen[1].body, seen[0].body);
});

test('a POST without an idempotency key is not retried', async () => {
  script = [problem(503, 'unavailable'), json(201, { id: 'ch_1' })];
  const e = await client().channels.create({ type: 'webhook', url: 'https://example.com' }).catch((x) => x);
  assert.ok(e instanceof ChimaticError);
  assert.deepEqual([e.status, e.code], [503, 'unavailable']);
  assert.equal(seen.length, 1);

  script = [hangUp];
  const e2 = await client().channels.create({ type: 'webhook', url: 'https://example.com' }).catch((x) => x);
  assert.ok(e2 instanceof ChimaticConnectionError, String(e2));
  assert.equal(seen.length, 2);
});

test('4xx other than 429 is not retried', async () => {
  script = [problem(404, 'not_found'), json(200, {})];
  await assert.rejects(client().channels.get('ch_1'), { status: 404, code: 'not_found' });
  assert.equal(seen.length, 1);
});

test('maxRetries bounds the attempts; the last error is thrown', async () => {
  script = Array.from({ length: 5 }, () => problem(503, 'unavailable'));
  await assert.rejects(client({ maxRetries: 3 }).channels.list(), { status: 503, code: 'unavailable' });
  assert.equal(seen.length, 4);

  seen.length = 0;
  script = [problem(503, 'unavailable'), json(200, { data: [] })];
  await assert.rejects(client({ maxRetries: 0 }).channels.list(), { status: 503 });
  assert.equal(seen.length, 1);

  seen.length = 0;
  script = [problem(503, 'unavailable'), json(200, { data: [] })];
  assert.deepEqual(await client({ maxRetries: 0 }).channels.list(undefined, { maxRetries: 1 }), { data: [] });
});

test('a Retry-After longer than maxRetryAfterMs is not waited for', async () => {
  script = [problem(429, 'rate_limited', { 'retry-after': '3600' }), json(200, {})];
  const e = await client().workspace.get().catch((x) => x);
  assert.deepEqual([e.status, e.code, e.retryAfter], [429, 'rate_limited', 3600]);
  assert.equal(seen.length, 1);
});

test('a timeout is a ChimaticTimeoutError, and is retried for a GET', async () => {
  script = [stall(1_000), json(200, { id: 'ws_1' })];
  assert.deepEqual(await client({ timeoutMs: 150 }).workspace.get(), { id: 'ws_1' });
  assert.equal(seen.length, 2);

  seen.length = 0;
  script = [stall(1_000)];
  const e = await client({ timeoutMs: 100, maxRetries: 0 }).workspace.get().catch((x) => x);
  assert.ok(e instanceof ChimaticTimeoutError, String(e));
  assert.ok(e instanceof ChimaticConnectionError);
});

test("the caller's abort signal stops the request and the wait before a retry", async () => {
  script = [problem(503, 'unavailable', { 'retry-after': '30' })];
  const controller = new AbortController();
  const pending = client().workspace.get({ signal: controller.signal });
  setTimeout(() => controller.abort(new Error('stop')), 100);
  await assert.rejects(pending, /stop/);
  assert.equal(seen.length, 1);
});

test('a non-problem error body still gives a ChimaticError', async () => {
  script = [(req, res) => res.writeHead(418, { 'content-type': 'text/plain' }).end('teapot')];
  const e = await client().workspace.get().catch((x) => x);
  assert.ok(e instanceof ChimaticError);
  assert.deepEqual([e.status, e.code, e.detail, e.problem], [418, 'http_418', 'teapot', undefined]);
});

test('Retry-After timing with a fake fetch: the delay before the retry follows the header', async () => {
  const calls = [];
  const fakeFetch = async (url, init) => {
    calls.push({ at: performance.now(), url, init });
    if (calls.length === 1) {
      return new Response(JSON.stringify({ type: 't', title: 't', status: 429, detail: 'd', code: 'rate_limited' }), {
        status: 429,
        headers: { 'content-type': 'application/problem+json', 'retry-after': '0.3' },
      });
    }
    return new Response(JSON.stringify({ data: [] }), { status: 200, headers: { 'content-type': 'application/json' } });
  };
  const c = new Chimatic({ apiKey: 'k', baseUrl: 'http://chimatic.invalid/', fetch: fakeFetch, retryBaseDelayMs: 20_000, retryMaxDelayMs: 20_000 });
  assert.deepEqual(await c.subscribers.list({ limit: 5, after: 'sub_1' }), { data: [] });
  assert.equal(calls.length, 2);
  assert.equal(calls[0].url, 'http://chimatic.invalid/v1/subscribers?limit=5&after=sub_1');
  const gap = calls[1].at - calls[0].at;
  // Retry-After: 0.3 s; the backoff would have been 10-20 s.
  assert.ok(gap >= 250 && gap < 8_000, `waited ${gap} ms`);
});

test('without Retry-After the backoff grows exponentially, with jitter', async () => {
  const calls = [];
  const fakeFetch = async () => {
    calls.push(performance.now());
    return new Response('{"type":"t","title":"t","status":503,"detail":"d","code":"unavailable"}', {
      status: 503,
      headers: { 'content-type': 'application/problem+json' },
    });
  };
  const c = new Chimatic({ apiKey: 'k', fetch: fakeFetch, maxRetries: 3, retryBaseDelayMs: 100, retryMaxDelayMs: 10_000 });
  await assert.rejects(c.workspace.get(), { status: 503, code: 'unavailable' });
  assert.equal(calls.length, 4);
  const gaps = calls.slice(1).map((t, i) => t - calls[i]);
  // Steps of 100, 200 and 400 ms, each delay between half and all of its step (lower bounds only).
  [100, 200, 400].forEach((step, i) => assert.ok(gaps[i] >= step / 2 - 5, `gaps ${gaps}`));
});

test('parseRetryAfter reads seconds and HTTP dates', () => {
  assert.equal(parseRetryAfter('7'), 7);
  assert.equal(parseRetryAfter(null), undefined);
  assert.equal(parseRetryAfter('soon'), undefined);
  const now = Date.parse('2026-01-01T00:00:00Z');
  assert.equal(parseRetryAfter('Thu, 01 Jan 2026 00:00:30 GMT', now), 30);
});
