// Pagination over more than one page: the iterators follow `next_cursor` (as `after`, or the
// audit log's `cursor`) until the last page, and `list` returns one page.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startServer } from './lib/server.js';

let server;
let chimatic;
let requests;
const SUBSCRIBERS = 120;

before(async () => {
  server = await startServer();
  const { apiKey } = await server.createWorkspace('pagination');
  requests = [];
  // A fetch that records every URL, to count the pages the iterators ask for.
  const recording = (input, init) => {
    requests.push(new URL(String(input)));
    return fetch(input, init);
  };
  chimatic = server.client(apiKey, { fetch: recording });
  const ids = [];
  for (let i = 0; i < SUBSCRIBERS; i += 20) {
    const chunk = await Promise.all(
      Array.from({ length: 20 }, (_, j) =>
        chimatic.subscribers.identify({ external_id: `user-${String(i + j).padStart(3, '0')}` }),
      ),
    );
    ids.push(...chunk.map((s) => s.id));
  }
  assert.equal(new Set(ids).size, SUBSCRIBERS);
});

after(() => server?.stop());

test(`iterate() yields all ${SUBSCRIBERS} subscribers over three pages of 50`, async () => {
  requests.length = 0;
  const seen = [];
  for await (const s of chimatic.subscribers.iterate({ limit: 50 })) seen.push(s.id);
  assert.equal(seen.length, SUBSCRIBERS);
  assert.equal(new Set(seen).size, SUBSCRIBERS, 'no subscriber twice');
  const pages = requests.filter((u) => u.pathname === '/v1/subscribers');
  assert.equal(pages.length, 3);
  assert.equal(pages[0].searchParams.get('after'), null);
  assert.equal(pages[0].searchParams.get('limit'), '50');
  assert.match(pages[1].searchParams.get('after'), /^sub_/);
  assert.equal(pages[2].searchParams.get('limit'), '50');
});

test('list() returns one page with its cursor; the last page has none', async () => {
  const first = await chimatic.subscribers.list({ limit: 100 });
  assert.equal(first.data.length, 100);
  assert.match(first.next_cursor, /^sub_/);
  const second = await chimatic.subscribers.list({ limit: 100, after: first.next_cursor });
  assert.equal(second.data.length, SUBSCRIBERS - 100);
  assert.equal(second.next_cursor ?? null, null);
});

test('breaking out of the loop stops fetching', async () => {
  requests.length = 0;
  let n = 0;
  for await (const _ of chimatic.subscribers.iterate({ limit: 10 })) {
    if (++n === 15) break;
  }
  assert.equal(requests.filter((u) => u.pathname === '/v1/subscribers').length, 2);
});

test('channels and suppressions page by `after` too', async () => {
  const created = [];
  for (let i = 0; i < 5; i++) {
    created.push((await chimatic.channels.create({ type: 'webhook', url: `http://127.0.0.1:9/h${i}` })).id);
  }
  const channels = [];
  for await (const c of chimatic.channels.iterate({ limit: 2 })) channels.push(c.id);
  assert.deepEqual(channels.sort(), created.sort());

  for (let i = 0; i < 3; i++) {
    await chimatic.suppressions.create({ type: 'email', address: `bounce${i}@example.com` });
  }
  const suppressions = [];
  for await (const s of chimatic.suppressions.iterate({ limit: 2 })) suppressions.push(s);
  assert.equal(suppressions.length, 3);
  assert.ok(suppressions.every((s) => s.reason === 'manual' && s.type === 'email'));
});

test('the audit log pages by its own `cursor`, newest first', async () => {
  const firstPage = await chimatic.audit.list({ limit: 2 });
  assert.equal(firstPage.data.length, 2);
  assert.ok(firstPage.next_cursor, 'a next cursor');
  requests.length = 0;
  const entries = [];
  for await (const e of chimatic.audit.iterate({ limit: 2 })) entries.push(e);
  const pages = requests.filter((u) => u.pathname === '/v1/audit');
  assert.ok(pages.length >= 3, `pages: ${pages.length}`);
  assert.ok(pages.slice(1).every((u) => u.searchParams.get('cursor')));
  assert.ok(entries.length > 4, `entries: ${entries.length}`);
  const times = entries.map((e) => e.at_ms);
  assert.deepEqual(times, [...times].sort((a, b) => b - a), 'newest first');
  assert.ok(entries.some((e) => e.action.startsWith('channel')), entries.map((e) => e.action).join(','));
});
