/**
 * `@tollgate/core/testing`: helpers for testing code that uses Tollgate, and for testing stores.
 *
 * - {@link fakeClock}: a clock that only moves when told to, for the engine and the memory store.
 * - {@link describeStoreConformance}: the vitest suite every store adapter must pass
 *   (needs `vitest` and `fast-check` installed).
 * - {@link checkRateLimitHeaders}, {@link parseSfList}: check rate-limit and retry headers
 *   against the IETF draft-11 grammar, for framework adapters' tests.
 * - {@link replaceAt}: an input with one node replaced, for properties over hostile input.
 * - {@link unhandledRejections}: the promise rejections nobody handled while a piece of a test ran.
 *
 * Under `require()` (CommonJS: Jest, mocha) this entry loads without vitest and fast-check:
 * everything works but `describeStoreConformance` and `checkRateLimitHeaders`, which need vitest
 * and throw an error saying to import this entry from an ES module.
 */

export { type ConformanceOptions, describeStoreConformance } from './conformance/index.js'
export { type FakeClock, fakeClock } from './fake-clock.js'
export {
  checkRateLimitHeaders,
  type HeaderSource,
  type Member,
  type ParamValue,
  parseSfList,
} from './headers.js'
export { replaceAt } from './replace.js'
export { unhandledRejections } from './unhandled.js'
