import { defineConfig } from 'vite';

// Library mode: one ES module, React left to the application (peer dependency); the styles are copied
// to dist/style.css by the build script (no CSS import in the module or its types).
export default defineConfig({
  oxc: { jsx: { runtime: 'automatic' } },
  build: {
    lib: {
      entry: 'src/index.ts',
      formats: ['es'],
      fileName: 'index',
    },
    sourcemap: true,
    rollupOptions: {
      external: ['react', 'react-dom', 'react/jsx-runtime', 'react/jsx-dev-runtime', /^react\//],
    },
  },
  test: {
    environment: 'jsdom',
    // One jsdom for all files (each cleans up after its tests): twice as fast on a small machine.
    pool: 'threads',
    isolate: false,
    include: ['test/unit/**/*.test.{ts,tsx}'],
  },
});
