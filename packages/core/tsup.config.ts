import { resolve } from 'node:path'
import { defineConfig, type Options } from 'tsup'

type Plugin = NonNullable<Options['esbuildPlugins']>[number]

/**
 * Entries whose CommonJS build is made from another file. vitest throws when it is required, so
 * `require('@tollgate/core/testing')` cannot load `src/testing/index.ts`, which imports it for the
 * conformance suite: its CommonJS build is made from `src/testing/require.ts`, which loads neither
 * vitest nor fast-check. The types of both formats come from the entry itself.
 */
export const CJS_SOURCES: Readonly<Record<string, string>> = {
  'src/testing/index.ts': 'src/testing/require.ts',
}

const cjsSources: Plugin = {
  name: 'tollgate-cjs-sources',
  setup(build) {
    if (build.initialOptions.format !== 'cjs') return
    build.onResolve({ filter: /\.ts$/ }, (args) => {
      if (args.kind !== 'entry-point') return undefined
      const entry = Object.keys(CJS_SOURCES).find((path) => resolve(path) === resolve(args.path))
      return entry === undefined ? undefined : { path: resolve(CJS_SOURCES[entry]!) }
    })
  },
}

export default defineConfig({
  entry: { index: 'src/index.ts', 'testing/index': 'src/testing/index.ts' },
  format: ['esm', 'cjs'],
  dts: true,
  clean: true,
  sourcemap: true,
  target: 'node20',
  external: ['vitest', 'fast-check'],
  esbuildPlugins: [cjsSources],
})
