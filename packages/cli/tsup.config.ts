import { defineConfig } from 'tsup'

export default defineConfig({
  // `bin` keeps its shebang (tsup preserves it and marks the file executable)
  entry: { index: 'src/index.ts', bin: 'src/bin.ts' },
  format: ['esm', 'cjs'],
  dts: { entry: { index: 'src/index.ts' } },
  clean: true,
  sourcemap: true,
  target: 'node20',
  external: ['@tollgate/core'],
})
