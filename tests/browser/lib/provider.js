// The test OpenID Connect provider (tests/oidc/server.js, npm oidc-provider) as a child process
// on 127.0.0.1, for the console's sign-in through an identity provider. Its dependencies come
// from `(cd tests/oidc && npm ci)`.

import { spawn } from 'node:child_process';
import { accessSync, createWriteStream, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';

import { LOG_DIR, REPO } from './server.js';

const SCRIPT = path.join(REPO, 'tests', 'oidc', 'server.js');
const START_DEADLINE_MS = 30_000;
const STOP_GRACE_MS = 5_000;

/** Providers still running, killed if the test process exits without stopping them. */
const running = new Set();
process.on('exit', () => {
  for (const p of running) p.killNow();
});

/**
 * A port that was free a moment ago on 127.0.0.1 (the OS picked it; the listener is closed
 * again). Another process may take it before it is used: whoever binds it must cope.
 */
export function reservePort() {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

/**
 * Starts the provider with `{ port, clients, accounts, ... }` (tests/oidc/server.js's config)
 * and waits for its `ready URL` line. Resolves to { issuer, log(), stop() }; rejects if it
 * exits first (e.g. the port was taken) or is not ready in time. `name` names its log file
 * (target/browser-logs/NAME.log).
 */
export async function startProvider(config, { name = 'provider' } = {}) {
  try {
    accessSync(path.join(REPO, 'tests', 'oidc', 'node_modules', 'oidc-provider'));
  } catch {
    throw new Error('the test identity provider has no dependencies: run (cd tests/oidc && npm ci)');
  }
  // The config holds client secrets: a private directory, removed on stop.
  const dir = mkdtempSync(path.join(os.tmpdir(), 'chimatic-oidc-'));
  const configPath = path.join(dir, 'config.json');
  writeFileSync(configPath, JSON.stringify(config), { mode: 0o600 });
  mkdirSync(LOG_DIR, { recursive: true });
  const logFile = createWriteStream(path.join(LOG_DIR, `${name}.log`));
  const child = spawn(process.execPath, [SCRIPT, configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (c) => {
    stderr += c;
    logFile.write(c);
  });
  let exited = false;
  child.on('exit', () => (exited = true));

  const provider = {
    issuer: '',
    /** What the provider wrote to stderr so far. */
    log: () => stderr,
    killNow() {
      if (!exited) child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
    /** Stops the provider (SIGTERM, then SIGKILL after a grace period) and removes its config. */
    async stop() {
      running.delete(provider);
      if (!exited) {
        const gone = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
        await gone;
        clearTimeout(timer);
      }
      await new Promise((resolve) => logFile.end(resolve));
      rmSync(dir, { recursive: true, force: true });
    },
  };
  running.add(provider);

  try {
    provider.issuer = await new Promise((resolve, reject) => {
      const lines = createInterface({ input: child.stdout });
      const timer = setTimeout(() => finish(new Error(`the provider was not ready within ${START_DEADLINE_MS} ms: ${stderr}`)), START_DEADLINE_MS);
      const onExit = (code, signal) => finish(new Error(`the provider exited (${signal ?? code}) before it was ready: ${stderr}`));
      const onError = (e) => finish(e);
      const onLine = (line) => {
        const m = line.match(/^ready (http:\/\/127\.0\.0\.1:\d+)$/);
        finish(m ? null : new Error(`the provider's first line is not "ready URL": ${line}`), m?.[1]);
      };
      function finish(error, issuer) {
        clearTimeout(timer);
        lines.off('line', onLine);
        child.off('exit', onExit);
        child.off('error', onError);
        if (error) reject(error);
        else resolve(issuer);
      }
      lines.once('line', onLine);
      child.once('exit', onExit);
      child.once('error', onError);
    });
  } catch (e) {
    await provider.stop();
    throw e;
  }
  return provider;
}
