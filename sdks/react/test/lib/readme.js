// The README's quick start as a page (test/e2e/readme.e2e.test.js): each ```jsx block of the
// README that renders a <ChimaticProvider> (the inbox and preferences quick start, then the webhook
// portal's), compiled as written, imports included, and rendered on one page, each in its own
// <section data-readme-block="N">. Two things are bound to the test, nothing else is changed: the
// server (the blocks say https://notify.example.com, replaced by the test server's URL) and
// `subscriberToken` (the page's `?token=`). Built with Vite against dist/, as the example page is.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'vite';

const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
/** The server the README's blocks name. */
export const README_SERVER = 'https://notify.example.com';

/** The README's ```jsx blocks that render a <ChimaticProvider>, in order. */
export function readmeBlocks() {
  const readme = readFileSync(path.join(PACKAGE_ROOT, 'README.md'), 'utf8');
  const blocks = [...readme.matchAll(/^```jsx\n([\s\S]*?)^```$/gm)].map((m) => m[1]).filter((b) => b.includes('<ChimaticProvider'));
  assert.ok(blocks.length >= 2, `README.md has ${blocks.length} \`\`\`jsx blocks with a <ChimaticProvider>; the quick start and the webhook portal's were expected`);
  return blocks;
}

const IMPORT = /^import\s(?:[\s\S]*?\sfrom\s)?['"][^'"\n]+['"];?[ \t]*$/gm;

/** A block as a module: its imports, then its JSX as what a component renders. */
export function blockModule(block, serverUrl) {
  assert.ok(block.includes(README_SERVER), `a README block no longer names ${README_SERVER}, the URL the test binds:\n${block}`);
  const imports = block.match(IMPORT) ?? [];
  const jsx = block.replace(IMPORT, '').replaceAll(README_SERVER, serverUrl).trim();
  return [
    ...imports,
    "const subscriberToken = new URLSearchParams(location.search).get('token');",
    'export default function ReadmeBlock() {',
    '  return (',
    jsx,
    '  );',
    '}',
    '',
  ].join('\n');
}

/** Builds the page into `outDir` (index.html there), talking to `serverUrl`. */
export async function buildReadmePage(serverUrl, outDir) {
  const blocks = readmeBlocks();
  // Inside the package, so that `react` resolves from its node_modules.
  const src = path.join(PACKAGE_ROOT, 'test', `.readme-${process.pid}`);
  rmSync(src, { recursive: true, force: true });
  mkdirSync(src);
  try {
    blocks.forEach((block, i) => writeFileSync(path.join(src, `block-${i}.jsx`), blockModule(block, serverUrl)));
    writeFileSync(
      path.join(src, 'main.jsx'),
      [
        "import { createRoot } from 'react-dom/client';",
        ...blocks.map((_, i) => `import Block${i} from './block-${i}.jsx';`),
        `[${blocks.map((_, i) => `Block${i}`).join(', ')}].forEach((Block, i) => {`,
        "  const section = document.createElement('section');",
        '  section.dataset.readmeBlock = String(i);',
        '  document.body.append(section);',
        '  createRoot(section).render(<Block />);',
        '});',
        '',
      ].join('\n'),
    );
    writeFileSync(
      path.join(src, 'index.html'),
      '<!doctype html>\n<html lang="en">\n  <head>\n    <meta charset="utf-8" />\n    <title>README quick start</title>\n' +
        '    <link rel="icon" href="data:," />\n  </head>\n  <body>\n    <script type="module" src="./main.jsx"></script>\n  </body>\n</html>\n',
    );
    const pkg = (p) => path.join(PACKAGE_ROOT, p);
    await build({
      configFile: false,
      root: src,
      base: './',
      logLevel: 'warn',
      oxc: { jsx: { runtime: 'automatic' } },
      resolve: {
        alias: [
          { find: '@chimatic/react/style.css', replacement: pkg('dist/style.css') },
          { find: /^@chimatic\/react$/, replacement: pkg('dist/index.js') },
        ],
      },
      build: { outDir, emptyOutDir: true },
    });
  } finally {
    rmSync(src, { recursive: true, force: true });
  }
}
