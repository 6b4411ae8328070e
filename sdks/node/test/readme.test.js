// The README's quick start, run exactly as written (its first ```js block) against a real server:
// it sends a notification to a webhook channel and exports a receiver that verifies the webhook.
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, test } from 'node:test';
import { PACKAGE_ROOT, startReceiver, startServer } from './lib/server.js';

let server;
let receiver;
// Inside the package, so that `@chimatic/node` resolves to this package (self-reference).
const file = path.join(PACKAGE_ROOT, 'test', `.quickstart-${process.pid}.mjs`);

/** The first ```js block after the "## Quick start" heading. */
export function quickStart() {
  const readme = readFileSync(path.join(PACKAGE_ROOT, 'README.md'), 'utf8');
  const section = readme.split(/^## Quick start$/m)[1];
  assert.ok(section, 'README.md has a "## Quick start" section');
  const block = section.match(/^```js\n([\s\S]*?)^```$/m);
  assert.ok(block, 'the quick start has a ```js block');
  return block[1];
}

before(async () => {
  [server, receiver] = await Promise.all([startServer(), startReceiver()]);
});

after(async () => {
  rmSync(file, { force: true });
  await Promise.all([server?.stop(), receiver?.close()]);
});

test("the README's quick start runs as written", async () => {
  const code = quickStart();
  assert.ok(code.split('\n').filter((l) => l.trim() && !l.trim().startsWith('//')).length <= 6, 'about five lines');
  const { apiKey } = await server.createWorkspace('readme');
  const channel = await server.client(apiKey).channels.create({ type: 'webhook', url: `${receiver.url}/hook` });
  Object.assign(process.env, {
    CHIMATIC_API_KEY: apiKey,
    CHIMATIC_URL: server.url,
    CHANNEL_ID: channel.id,
    CHANNEL_SECRET: channel.signing_secret,
  });
  writeFileSync(file, code);
  const quick = await import(pathToFileURL(file).href);

  assert.match(quick.sent.id, /^msg_/);
  const webhook = await receiver.next((r) => r.headers['webhook-id'] === quick.sent.id);
  assert.deepEqual(quick.receive(webhook.body, webhook.headers), { order: 'o-1042' });
  assert.throws(() => quick.receive(webhook.body.replace('1042', '1043'), webhook.headers), /signature/);
});

test("every other js block of the README at least parses", async () => {
  const { execFileSync } = await import('node:child_process');
  const readme = readFileSync(path.join(PACKAGE_ROOT, 'README.md'), 'utf8');
  const blocks = [...readme.matchAll(/^```js\n([\s\S]*?)^```$/gm)].map((m) => m[1]);
  assert.ok(blocks.length >= 4, `blocks: ${blocks.length}`);
  for (const [i, block] of blocks.entries()) {
    const f = path.join(PACKAGE_ROOT, 'test', `.quickstart-${process.pid}-${i}.mjs`);
    writeFileSync(f, block);
    try {
      execFileSync(process.execPath, ['--check', f], { stdio: 'pipe' });
    } catch (e) {
      assert.fail(`README js block ${i} does not parse: ${e.stderr}`);
    } finally {
      rmSync(f, { force: true });
    }
  }
});
