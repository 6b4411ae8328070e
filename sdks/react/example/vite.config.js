import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const pkg = (p) => fileURLToPath(new URL(`../${p}`, import.meta.url));

// The example uses the built package (run `npm run build` first), as an application would.
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: './',
  oxc: { jsx: { runtime: 'automatic' } },
  resolve: {
    alias: [
      { find: '@chimatic/react/style.css', replacement: pkg('dist/style.css') },
      { find: /^@chimatic\/react$/, replacement: pkg('dist/index.js') },
    ],
  },
  build: { outDir: 'dist', emptyOutDir: true },
});
