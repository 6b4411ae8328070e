// The committed generated types must be exactly what the generator makes of sdks/openapi.json:
// regenerated in memory (nothing written) and compared.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { generate, OUTPUT } from '../scripts/generate.mjs';

test('src/generated/openapi.ts is up to date with ../openapi.json', async () => {
  const fresh = await generate();
  const committed = readFileSync(OUTPUT, 'utf8');
  assert.ok(fresh === committed, 'src/generated/openapi.ts differs from what ../openapi.json generates: run npm run generate');
});
