// A fake of the webhook portal (`/v1/portal/…`), behind FakeServer's fetch.
import type { EndpointDelivery, WebhookEndpoint } from '../../src/types';

type Json = (status: number, value: unknown) => Response;

interface StoredEndpoint extends WebhookEndpoint {
  url: string;
  secret: string;
  previous: string | null;
}

let seq = 0;
const hex = (n: number) => String(n).padStart(32, '0');

/** A delivery with a time-ordered id (like the server's UUIDv7s). */
export function delivery(status: EndpointDelivery['status'], extra: Partial<EndpointDelivery> = {}): EndpointDelivery {
  seq += 1;
  const at = new Date(Date.UTC(2026, 0, 1, 0, 0, seq)).toISOString();
  const failed = status === 'failed';
  return {
    id: `msg_${hex(seq)}`,
    status,
    attempt_count: failed ? 3 : 1,
    created_at: at,
    updated_at: at,
    next_attempt_at: null,
    attempts:
      status === 'queued'
        ? []
        : [
            {
              attempt: failed ? 3 : 1,
              started_at: at,
              succeeded: status === 'delivered',
              status_code: failed ? 500 : 200,
              latency_ms: 12,
              error_class: failed ? 'http_status' : null,
            },
          ],
    ...extra,
  };
}

export class FakePortal {
  endpoints: StoredEndpoint[] = [];
  /** Per endpoint, oldest first. */
  deliveries = new Map<string, EndpointDelivery[]>();
  /** False: the token lacks the `portal` scope (403 on every call). */
  scoped = true;
  allowPrivate = false;
  secrets = 0;

  add(url: string, extra: Partial<WebhookEndpoint> = {}): StoredEndpoint {
    seq += 1;
    const e: StoredEndpoint = {
      id: `sch_${hex(seq)}`,
      url,
      url_masked: `${url.slice(0, 11)}…`,
      status: 'active',
      disabled_at: null,
      signed_with: 'endpoint',
      secret_rotated_at: null,
      previous_secret_expires_at: null,
      created_at: new Date(Date.UTC(2026, 0, 1, 0, 0, seq)).toISOString(),
      secret: this.newSecret(),
      previous: null,
      ...extra,
    };
    this.endpoints.push(e);
    return e;
  }

  newSecret() {
    this.secrets += 1;
    return `whsec_c2VjcmV0LW51bWJlci0${this.secrets}`;
  }

  view(e: StoredEndpoint): WebhookEndpoint {
    const { url: _u, secret: _s, previous: _p, ...v } = e;
    return { ...v };
  }

  handle(method: string, url: URL, body: Record<string, unknown> | undefined, json: Json): Response {
    if (!this.scoped) {
      return json(403, {
        type: 'about:blank',
        title: 'Forbidden',
        status: 403,
        code: 'insufficient_scope',
        detail: 'this subscriber token does not carry the `portal` scope',
      });
    }
    const path = url.pathname;
    const notFound = () => json(404, { status: 404, code: 'not_found', title: 'Not Found', detail: 'no such endpoint' });
    if (path === '/v1/portal/endpoints') {
      if (method === 'GET') return json(200, { data: this.endpoints.map((e) => this.view(e)) });
      if (method === 'POST') {
        const target = String(body?.url ?? '');
        let parsed: URL | null = null;
        try {
          parsed = new URL(target);
        } catch {
          parsed = null;
        }
        if (!parsed || !/^https?:$/.test(parsed.protocol)) {
          return json(422, { status: 422, code: 'invalid_url', title: 'Unprocessable', detail: 'url must be an http or https URL' });
        }
        if (!this.allowPrivate && /^(127\.|10\.|192\.168\.|localhost$)/.test(parsed.hostname)) {
          return json(422, {
            status: 422,
            code: 'forbidden_destination',
            title: 'Unprocessable',
            detail: `${parsed.hostname} is a private or loopback address`,
          });
        }
        const e = this.add(target);
        return json(201, { ...this.view(e), signing_secret: e.secret });
      }
    }
    const m = path.match(/^\/v1\/portal\/endpoints\/(sch_\w+)(?:\/(.*))?$/);
    if (!m) return notFound();
    const e = this.endpoints.find((x) => x.id === m[1]);
    if (!e) return notFound();
    const rest = m[2] ?? '';
    const now = new Date().toISOString();
    if (method === 'DELETE' && rest === '') {
      this.endpoints = this.endpoints.filter((x) => x !== e);
      return new Response(null, { status: 204 });
    }
    if (method === 'POST' && rest === 'rotate-secret') {
      if (e.signed_with === 'workspace') {
        return json(409, { status: 409, code: 'conflict', title: 'Conflict', detail: 'signed with the workspace secret' });
      }
      const overlap = body?.overlap_seconds === undefined ? 86400 : Number(body.overlap_seconds);
      if (!(overlap >= 0 && overlap <= 604800)) {
        return json(422, { status: 422, code: 'invalid_request', title: 'Unprocessable', detail: '`overlap_seconds` must be 0 to 604800' });
      }
      e.previous = overlap > 0 ? e.secret : null;
      e.secret = this.newSecret();
      e.secret_rotated_at = now;
      e.previous_secret_expires_at = overlap > 0 ? new Date(Date.now() + overlap * 1000).toISOString() : null;
      return json(200, { ...this.view(e), signing_secret: e.secret });
    }
    if (method === 'POST' && (rest === 'disable' || rest === 'enable')) {
      e.status = rest === 'disable' ? 'disabled' : 'active';
      e.disabled_at = rest === 'disable' ? now : null;
      return json(200, this.view(e));
    }
    const list = this.deliveries.get(e.id) ?? [];
    if (method === 'GET' && rest === 'deliveries') {
      const limit = Number(url.searchParams.get('limit') ?? 20);
      const before = url.searchParams.get('before');
      const newestFirst = [...list].reverse();
      const from = before ? newestFirst.findIndex((d) => d.id === before) + 1 : 0;
      const data = newestFirst.slice(from, from + limit);
      const more = from + limit < newestFirst.length;
      return json(200, { data, next_cursor: more ? data[data.length - 1].id : null });
    }
    const r = rest.match(/^deliveries\/(msg_\w+)\/replay$/);
    if (method === 'POST' && r) {
      const d = list.find((x) => x.id === r[1]);
      if (!d) return notFound();
      if (d.status !== 'failed') {
        return json(409, { status: 409, code: 'conflict', title: 'Conflict', detail: 'only a failed delivery can be replayed' });
      }
      d.status = 'queued';
      return json(202, { id: d.id, status: 'queued' });
    }
    return notFound();
  }
}
