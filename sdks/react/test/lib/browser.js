// Debian's Chromium (headless) through playwright-core, launched as tests/browser/lib/browser.js
// does: no connection leaves the machine, and a fresh user-data dir per launch.
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.CHIMATIC_CHROMIUM || '/usr/bin/chromium';

const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-quic',
  '--no-first-run',
];

/** Resolves to { context, close() }: a persistent context in a fresh user-data dir. */
export async function launchBrowser() {
  try {
    accessSync(CHROMIUM, constants.X_OK);
  } catch {
    throw new Error(`Chromium is not at ${CHROMIUM}: install it (apt-get install chromium) or set CHIMATIC_CHROMIUM`);
  }
  const userDataDir = mkdtempSync(path.join(os.tmpdir(), 'chimatic-sdk-react-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
    viewport: { width: 1200, height: 800 },
  });
  return {
    context,
    async close() {
      await context.close();
      rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}
