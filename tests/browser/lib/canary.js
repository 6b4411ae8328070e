// Canaries: distinct strings planted in sensitive fields, which must never come back to a
// browser — not in a body, not in a header (Set-Cookie, Location, …), not in a URL.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';

/** A fresh canary token: letters, digits and dashes only, so no escaping can hide it. */
export function canaryToken(label) {
  return `cnry-${label}-${randomBytes(6).toString('hex')}`;
}

/** `canaries` as [{ name, value }]: from such a list, from { name: value } or from strings. */
function normalize(canaries) {
  if (!Array.isArray(canaries)) return Object.entries(canaries).map(([name, value]) => ({ name, value }));
  return canaries.map((c) => (typeof c === 'string' ? { name: c, value: c } : c));
}

function decodeUrl(text) {
  try {
    return decodeURIComponent(text.replace(/\+/g, ' '));
  } catch {
    return text;
  }
}

/** Undoes HTML character references, so an escaped canary is still found. */
function decodeHtml(text) {
  return text
    .replace(/&#x([0-9a-f]+);/gi, (_, h) => String.fromCodePoint(parseInt(h, 16)))
    .replace(/&#(\d+);/g, (_, d) => String.fromCodePoint(parseInt(d, 10)))
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

/** Every place of one response where a canary could be: [{ where, texts }], raw and decoded. */
function places(r) {
  const out = [{ where: 'URL', texts: [r.url, decodeUrl(r.url)] }];
  for (const h of r.headers) out.push({ where: `header ${h.name}`, texts: [h.value, decodeUrl(h.value)] });
  if (r.body != null) out.push({ where: 'body', texts: [r.body, decodeHtml(r.body)] });
  return out;
}

/**
 * Fails if any canary appears in any recorded response (see browser.js: { url, method, status,
 * headers, body }), naming the canary, where it was and the URL of the response.
 * Also fails if nothing was recorded, or if a text body could not be read (it would go unchecked).
 */
export function assertNoCanary(recorded, canaries) {
  const list = normalize(canaries);
  assert.ok(list.length > 0, 'no canaries to look for');
  for (const c of list) assert.ok(c.value && c.value.length >= 8, `canary ${c.name} is too short to search for`);
  assert.ok(recorded.length > 0, 'no responses were recorded');
  const unread = recorded.filter((r) => r.bodyError);
  assert.deepEqual(
    unread.map((r) => `${r.method} ${r.url}: ${r.bodyError}`),
    [],
    'responses whose body could not be read, so could not be searched',
  );
  const found = [];
  for (const r of recorded) {
    for (const p of places(r)) {
      for (const c of list) {
        if (p.texts.some((t) => t.includes(c.value))) found.push(`canary "${c.name}" (${c.value}) in the ${p.where} of ${r.method} ${r.url} (${r.status})`);
      }
    }
  }
  assert.deepEqual(found, [], `canaries reached the browser:\n${found.join('\n')}`);
}
