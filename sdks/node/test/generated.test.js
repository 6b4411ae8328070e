// The committed generated types must be exactly what the generator makes of sdks/openapi.json.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { PACKAGE_ROOT } from './lib/server.js';

test('src/generated/schema.ts is up to date with ../openapi.json', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'chimatic-sdk-node-gen-'));
  try {
    const out = path.join(dir, 'schema.ts');
    execFileSync(process.execPath, [path.join(PACKAGE_ROOT, 'scripts', 'generate.mjs'), '--out', out], {
      cwd: PACKAGE_ROOT,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const fresh = readFileSync(out, 'utf8');
    const committed = readFileSync(path.join(PACKAGE_ROOT, 'src', 'generated', 'schema.ts'), 'utf8');
    assert.ok(
      fresh === committed,
      'src/generated/schema.ts differs from what ../openapi.json generates: run npm run generate',
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
