/**
 * `@tollgate/core/testing` for `require()` (CommonJS test runners such as Jest or mocha). vitest
 * throws when it is required, so this entry loads neither vitest nor fast-check: `fakeClock`,
 * `replaceAt`, `unhandledRejections` and `parseSfList` work as in the ES module entry, and the two
 * helpers built on vitest, `describeStoreConformance` and `checkRateLimitHeaders`, throw an error
 * that says to import the ES module entry. The build makes the CommonJS `./testing` from this file
 * (`tsup.config.ts`); its types are those of `index.ts`, which it matches export for export
 * (`require.test-d.ts`).
 */
import type * as conformance from './conformance/index.js'
import type * as headers from './headers.js'

export type { ConformanceOptions } from './conformance/index.js'
export { type FakeClock, fakeClock } from './fake-clock.js'
export type { HeaderSource } from './headers.js'
export { replaceAt } from './replace.js'
export { type Member, type ParamValue, parseSfList } from './structured-fields.js'
export { unhandledRejections } from './unhandled.js'

const needsVitest = (name: string): never => {
  throw new Error(
    `${name} from @tollgate/core/testing needs vitest, which cannot be loaded with require(): ` +
      `import '@tollgate/core/testing' from an ES module (vitest's test files are ES modules)`,
  )
}

/** The store conformance suite needs vitest: under `require()` it throws, saying so. */
export const describeStoreConformance: typeof conformance.describeStoreConformance = () =>
  needsVitest('describeStoreConformance')

/** The header check needs vitest: under `require()` it throws, saying so. */
export const checkRateLimitHeaders: typeof headers.checkRateLimitHeaders = () =>
  needsVitest('checkRateLimitHeaders')
