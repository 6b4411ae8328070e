// One real chimatic server per test file (copied from sdks/node/test/lib, trimmed): the binary
// from CHIMATIC_BIN (default: the debug build of this checkout, ../../target/debug/chimatic from
// sdks/react), on a port the OS picks,
// in a fresh directory holding its embedded stores. Deliveries to 127.0.0.1 are allowed and the
// retry schedule is short, so a failing receiver makes a notification `failed` within seconds.
import { spawn } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** sdks/react. */
export const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
/** The server binary. */
export const BIN = path.resolve(
  process.env.CHIMATIC_BIN || path.join(PACKAGE_ROOT, '..', '..', 'target', 'debug', 'chimatic'),
);

const START_DEADLINE_MS = 60_000;
const CLI_DEADLINE_MS = 60_000;
const STOP_GRACE_MS = 10_000;

const running = new Set();
process.on('exit', () => {
  for (const s of running) s.killNow();
});

/** The caller's environment without any CHIMATIC_* or RUST_LOG setting, plus the test's. */
function childEnv(extra = {}) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('CHIMATIC_') && k !== 'RUST_LOG') env[k] = v;
  }
  return {
    ...env,
    CHIMATIC_ALLOW_PRIVATE_DESTINATIONS: '1',
    CHIMATIC_RETRY_SCHEDULE: '200ms,400ms,800ms',
    RUST_LOG: 'info',
    NO_COLOR: '1',
    ...extra,
  };
}

/** Runs `chimatic ARGS` in `dir`; resolves to its last stdout line, parsed as JSON. */
function runCli(dir, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(BIN, args, { cwd: dir, env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c) => (stderr += c));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`chimatic ${args.join(' ')} did not finish within ${CLI_DEADLINE_MS} ms: ${stderr}`));
    }, CLI_DEADLINE_MS);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    // 'close', not 'exit': only then has all of its output been read.
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code !== 0) {
        reject(new Error(`chimatic ${args.slice(0, 2).join(' ')} exited ${code}: ${stderr.trim()}`));
        return;
      }
      try {
        resolve(JSON.parse(stdout.trim().split('\n').pop()));
      } catch {
        reject(new Error(`chimatic ${args.slice(0, 2).join(' ')} printed no JSON: ${stdout}`));
      }
    });
  });
}

/**
 * Starts `chimatic serve --listen 127.0.0.1:0 --data-dir DIR` in a fresh DIR and resolves once
 * it logged `listening on http://127.0.0.1:PORT`. `inboxOrigins`: the browser origins allowed to
 * call the subscriber-token endpoints (CHIMATIC_INBOX_ORIGINS).
 */
export async function startServer({ inboxOrigins = [] } = {}) {
  try {
    accessSync(BIN, constants.X_OK);
  } catch {
    throw new Error(`the chimatic binary is not at ${BIN}: build it (cargo build -p chimatic) or set CHIMATIC_BIN`);
  }
  const dir = mkdtempSync(path.join(os.tmpdir(), 'chimatic-sdk-react-'));
  const child = spawn(BIN, ['serve', '--listen', '127.0.0.1:0', '--data-dir', dir], {
    cwd: dir,
    env: childEnv(inboxOrigins.length ? { CHIMATIC_INBOX_ORIGINS: inboxOrigins.join(',') } : {}),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  let exited = false;
  child.on('exit', () => (exited = true));
  child.stdout.setEncoding('utf8').on('data', (c) => (log += c));

  const server = {
    dir,
    url: '',
    log: () => log,
    killNow() {
      if (!exited) child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
    async stop() {
      running.delete(server);
      if (!exited) {
        const gone = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
        await gone;
        clearTimeout(timer);
      }
      rmSync(dir, { recursive: true, force: true });
    },
    /** `chimatic workspace create`: { apiKey, workspaceId } (the owner key, shown once). */
    async createWorkspace(name = 'sdk-test') {
      const out = await runCli(dir, ['workspace', 'create', '--name', name, '--data-dir', dir]);
      return { apiKey: out.api_key, workspaceId: out.workspace_id };
    },
    /** Calls the API with `apiKey`; resolves to the parsed JSON, throws on a non-2xx answer. */
    async api(apiKey, method, path, body) {
      const res = await fetch(server.url + path, {
        method,
        headers: { authorization: `Bearer ${apiKey}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
      return text ? JSON.parse(text) : undefined;
    },
  };
  running.add(server);

  try {
    server.url = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no "listening on" line within ${START_DEADLINE_MS} ms; the server's log:\n${log}`));
      }, START_DEADLINE_MS);
      const onData = (chunk) => {
        log += chunk;
        const m = log.match(/listening on (http:\/\/127\.0\.0\.1:\d+)/);
        if (m) {
          done();
          resolve(m[1]);
        }
      };
      const onExit = (code, signal) => {
        done();
        reject(new Error(`the server exited (${signal ?? code}) before listening; its log:\n${log}`));
      };
      const onError = (e) => {
        done();
        reject(e);
      };
      const done = () => {
        clearTimeout(timer);
        child.stderr.off('data', onData);
        child.off('exit', onExit);
        child.off('error', onError);
        child.stderr.on('data', (c) => (log += c));
      };
      child.stderr.setEncoding('utf8').on('data', onData);
      child.once('exit', onExit);
      child.once('error', onError);
    });
  } catch (e) {
    await server.stop();
    throw e;
  }
  return server;
}

/** Polls `probe` until it returns a truthy value (bounded); resolves to that value. */
export async function waitFor(probe, { timeoutMs = 20_000, intervalMs = 50, what = 'the condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const value = await probe();
      if (value) return value;
      last = value;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`${what} did not hold within ${timeoutMs} ms (last: ${last})`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
