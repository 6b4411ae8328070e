#!/usr/bin/env node
// Generates src/generated/openapi.ts from ../openapi.json (the document the server serves at
// /v1/openapi.json) with openapi-typescript. Re-run it after every change of the document:
//
//   npm run generate                      writes src/generated/openapi.ts
//   node scripts/generate.mjs --out FILE  writes FILE instead (the drift test uses this)
//   node scripts/generate.mjs --spec FILE reads another copy of the document
//
// The output is types only (no runtime code), so it compiles to an empty module plus its
// declarations. Never edit the generated file by hand.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import openapiTS, { astToString, COMMENT_HEADER } from 'openapi-typescript';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const SPEC = path.resolve(root, '..', 'openapi.json');
export const OUTPUT = path.join(root, 'src', 'generated', 'openapi.ts');

/** The generated TypeScript source for the OpenAPI document at `spec`. */
export async function generate(spec = SPEC) {
  const document = JSON.parse(readFileSync(spec, 'utf8'));
  const ast = await openapiTS(document, {
    // `{"type": "object"}` without properties (payloads, attributes, settings, event data)
    // means "any JSON object": Record<string, unknown>, not Record<string, never>.
    emptyObjectsUnknown: true,
    // Never fetch anything: the document is self-contained.
    silent: true,
  });
  return (
    COMMENT_HEADER +
    '// Source: sdks/openapi.json. Regenerate with `npm run generate` (scripts/generate.mjs).\n\n' +
    astToString(ast)
  );
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const arg = (name) => {
    const i = process.argv.indexOf(name);
    return i >= 0 ? path.resolve(process.argv[i + 1]) : undefined;
  };
  const out = arg('--out') ?? OUTPUT;
  const spec = arg('--spec') ?? SPEC;
  const source = await generate(spec);
  mkdirSync(path.dirname(out), { recursive: true });
  writeFileSync(out, source);
  console.error(`generated ${path.relative(process.cwd(), out) || out} from ${path.relative(process.cwd(), spec)}`);
}
