// A local HTTP receiver on 127.0.0.1 (as sdks/node/test/lib/server.js has): records every request
// (method, path, headers, raw body) and answers `receiver.status(request)` (200 by default; the
// test may change it). `next(predicate)` waits for a request, without polling.
import { createServer } from 'node:http';

export async function startReceiver({ status = () => 200 } = {}) {
  const received = [];
  const waiters = new Set();
  const server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const request = {
        method: req.method,
        path: req.url,
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      const code = receiver.status(request);
      request.answered = code;
      received.push(request);
      res.writeHead(code, { 'content-type': 'text/plain' }).end(code < 300 ? 'ok' : 'down');
      for (const w of [...waiters]) w(request);
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const receiver = {
    url: `http://127.0.0.1:${server.address().port}`,
    received,
    status,
    /** The first request (already received or coming) that `predicate` accepts. */
    next(predicate = () => true, timeoutMs = 20_000) {
      const found = received.find(predicate);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(onRequest);
          reject(new Error(`no matching request within ${timeoutMs} ms (received ${received.length})`));
        }, timeoutMs);
        const onRequest = (r) => {
          if (!predicate(r)) return;
          clearTimeout(timer);
          waiters.delete(onRequest);
          resolve(r);
        };
        waiters.add(onRequest);
      });
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections?.();
        server.close(resolve);
      }),
  };
  return receiver;
}
