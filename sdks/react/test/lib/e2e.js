// What the e2e test files share when they run in one process (test/e2e/all.e2e.js): the example
// page built once and served on 127.0.0.1, one chimatic server (CORS for that page) and one
// Chromium. Each file takes it in `before` and gives it back in `after`; the last one out closes
// it. A file run on its own gets its own.
import path from 'node:path';
import { build } from 'vite';
import { launchBrowser } from './browser.js';
import { PACKAGE_ROOT, startServer } from './server.js';
import { serveStatic } from './static.js';

let shared = null;
let users = 0;

async function start() {
  const made = {};
  try {
    await build({ configFile: path.join(PACKAGE_ROOT, 'example', 'vite.config.js'), logLevel: 'warn' });
    made.site = await serveStatic(path.join(PACKAGE_ROOT, 'example', 'dist'));
    [made.server, made.browser] = await Promise.all([startServer({ inboxOrigins: [made.site.origin] }), launchBrowser()]);
    return made;
  } catch (e) {
    await close(made);
    throw e;
  }
}

async function close({ site, server, browser }) {
  await browser?.close();
  await server?.stop();
  await site?.close();
}

/** Resolves to { site, server, browser }. */
export function acquire() {
  users += 1;
  shared ??= start();
  return shared;
}

export async function release() {
  users -= 1;
  if (users > 0 || !shared) return;
  const pending = shared;
  shared = null;
  const made = await pending.catch(() => null);
  if (made) await close(made);
}
