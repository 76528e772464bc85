import { defineConfig } from 'tsup'

export default defineConfig({
  entry: { index: 'src/index.ts', webhook: 'src/webhook/index.ts' },
  format: ['esm', 'cjs'],
  dts: true,
  clean: true,
  sourcemap: true,
  target: 'node20',
  external: ['@tollgate/core', 'pg'],
})
