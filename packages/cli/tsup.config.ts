import { defineConfig } from 'tsup'

export default defineConfig({
  // `bin` keeps its shebang (tsup preserves it and marks the file executable);
  // `simulate-worker` is the worker thread `simulateFile` shards a replay across.
  entry: { index: 'src/index.ts', bin: 'src/bin.ts', 'simulate-worker': 'src/simulate/worker.ts' },
  format: ['esm', 'cjs'],
  dts: { entry: { index: 'src/index.ts' } },
  shims: true,
  clean: true,
  sourcemap: true,
  target: 'node20',
  external: ['@tollgate/core'],
})
