// One chimatic server per test file: the real binary, on a port the OS picks, in a fresh
// directory that holds its embedded stores (SQLite files and a generated development key under
// ./chimatic-data). The CLI helpers run in the same directory, so they reach the same stores.

import { spawn } from 'node:child_process';
import { accessSync, constants, mkdirSync, mkdtempSync, rmSync, createWriteStream } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository's root (tests/browser/lib → ../../..). */
export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
/** The server binary: CHIMATIC_BIN, or the debug build. */
export const BIN = process.env.CHIMATIC_BIN || path.join(REPO, 'target', 'debug', 'chimatic');
/** Where each file's server log is kept after the run (overwritten by the next run). */
export const LOG_DIR = path.join(REPO, 'target', 'browser-logs');

const START_DEADLINE_MS = 60_000;
const CLI_DEADLINE_MS = 60_000;
const STOP_GRACE_MS = 10_000;

/** Servers still running, killed if the test process exits without stopping them. */
const running = new Set();
process.on('exit', () => {
  for (const s of running) s.killNow();
});

function requireBinary() {
  try {
    accessSync(BIN, constants.X_OK);
  } catch {
    throw new Error(
      `the chimatic binary is not at ${BIN}: build it (cargo build -p chimatic) or set CHIMATIC_BIN`,
    );
  }
}

/**
 * The environment of the server and the CLI: the caller's, without any CHIMATIC_* setting (so
 * the embedded default is what runs, whatever the shell exported), plus `extra`.
 */
function childEnv(extra = {}) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('CHIMATIC_') && k !== 'RUST_LOG') env[k] = v;
  }
  return { ...env, RUST_LOG: 'info', NO_COLOR: '1', ...extra };
}

/** Waits for `predicate(text)` to hold on a growing log, or fails at the deadline or exit. */
function waitForLog(child, log, predicate, deadlineMs, what) {
  return new Promise((resolve, reject) => {
    const check = () => {
      const found = predicate(log.text);
      if (found) {
        done();
        resolve(found);
      }
    };
    const onExit = (code, signal) => {
      done();
      reject(new Error(`the server exited (${signal ?? code}) before ${what}; its log:\n${log.text}`));
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`no ${what} within ${deadlineMs} ms; the server's log:\n${log.text}`));
    }, deadlineMs);
    const done = () => {
      clearTimeout(timer);
      log.off(check);
      child.off('exit', onExit);
    };
    log.on(check);
    child.once('exit', onExit);
    check();
  });
}

/** A log that accumulates a stream's text and tells listeners when it grows. */
function growingLog(stream, file) {
  const listeners = new Set();
  const log = {
    text: '',
    on: (f) => listeners.add(f),
    off: (f) => listeners.delete(f),
  };
  stream.setEncoding('utf8');
  stream.on('data', (chunk) => {
    log.text += chunk;
    file?.write(chunk);
    for (const f of [...listeners]) f();
  });
  return log;
}

/** Runs `chimatic ARGS` in `cwd`, with `input` on stdin; resolves to its parsed JSON stdout. */
function runCli(cwd, env, args, input) {
  return new Promise((resolve, reject) => {
    const child = spawn(BIN, args, { cwd, env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c) => (stderr += c));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`chimatic ${args[0]} ${args[1]} did not finish within ${CLI_DEADLINE_MS} ms: ${stderr}`));
    }, CLI_DEADLINE_MS);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('exit', (code) => {
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
    child.stdin.end(input ?? '');
  });
}

/**
 * Starts `chimatic serve` on 127.0.0.1:0 in a fresh temporary directory and waits until it
 * listens and is ready. `name` names its log file (target/browser-logs/NAME.log). `listen`
 * (e.g. `127.0.0.1:PORT`, from provider.js's reservePort()) fixes the address when it must be
 * known before the server starts, as in an OAuth redirect URI; if the port is taken meanwhile
 * the server exits and this rejects, and the caller picks another.
 *
 * The console's public URL is left to its default, the bound address (http://127.0.0.1:PORT),
 * which is the URL the browser is sent to: console changes must come from that origin.
 */
export async function startServer({ name = 'server', env = {}, args = [], listen = '127.0.0.1:0' } = {}) {
  requireBinary();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'chimatic-browser-'));
  mkdirSync(LOG_DIR, { recursive: true });
  const logFile = createWriteStream(path.join(LOG_DIR, `${name}.log`));
  const serverEnv = childEnv(env);
  const child = spawn(BIN, ['serve', '--listen', listen, '--allow-private-destinations', ...args], {
    cwd: dir,
    env: serverEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const log = growingLog(child.stderr, logFile);
  growingLog(child.stdout, logFile);
  let exited = child.exitCode !== null;
  child.on('exit', () => (exited = true));
  const spawnError = new Promise((_, reject) => child.once('error', reject));

  const server = {
    dir,
    url: '',
    /** The server's log so far (stderr). */
    log: () => log.text,
    killNow() {
      if (!exited) child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },

    /** Stops the server (SIGTERM, then SIGKILL after a grace period) and removes its directory. */
    async stop() {
      running.delete(server);
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

    /** `chimatic workspace create --name NAME`: { id, key, region } (the owner key, shown once). */
    async createWorkspace(workspaceName) {
      const out = await runCli(dir, childEnv(env), ['workspace', 'create', '--name', workspaceName]);
      return { id: out.workspace_id, key: out.api_key, region: out.region, name: workspaceName };
    },

    /**
     * `chimatic user create` with the password on stdin: { userId, workspaceId, role }.
     * `workspace` is an id or what createWorkspace returned.
     */
    async createUser({ email, workspace, role = 'owner', password }) {
      const ws = typeof workspace === 'string' ? workspace : workspace.id;
      const out = await runCli(
        dir,
        childEnv(env),
        ['user', 'create', '--email', email, '--workspace', ws, '--role', role],
        `${password}\n`,
      );
      return { userId: out.user_id, workspaceId: out.workspace_id, role: out.role };
    },

    /**
     * The HTTP API: `api('/v1/channels', { method, body, key })` with `Authorization: Bearer KEY`.
     * Resolves to { status, headers, text, json } (json null unless the body is JSON).
     */
    async api(apiPath, { method = 'GET', body, key, headers = {} } = {}) {
      const h = { ...headers };
      if (key) h.authorization = `Bearer ${key}`;
      if (body !== undefined) h['content-type'] = 'application/json';
      const resp = await fetch(new URL(apiPath, server.url), {
        method,
        headers: h,
        body: body === undefined ? undefined : JSON.stringify(body),
        redirect: 'manual',
      });
      const text = await resp.text();
      let json = null;
      try {
        json = text ? JSON.parse(text) : null;
      } catch {
        json = null;
      }
      return { status: resp.status, headers: resp.headers, text, json };
    },
  };
  running.add(server);

  try {
    const url = await Promise.race([
      waitForLog(child, log, (t) => t.match(/listening on (http:\/\/127\.0\.0\.1:\d+)/)?.[1], START_DEADLINE_MS, 'the "listening on" line'),
      spawnError,
    ]);
    server.url = url;
    await waitReady(server, child);
  } catch (e) {
    await server.stop();
    throw e;
  }
  return server;
}

/** Waits (bounded) for GET /readyz to answer 200. */
async function waitReady(server, child) {
  const deadline = Date.now() + START_DEADLINE_MS;
  let last = '';
  while (Date.now() < deadline) {
    if (child.exitCode !== null) break;
    try {
      const r = await server.api('/readyz');
      if (r.status === 200) return;
      last = `${r.status} ${r.text}`;
    } catch (e) {
      last = String(e);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`GET /readyz did not answer 200 (last: ${last}); the server's log:\n${server.log()}`);
}
