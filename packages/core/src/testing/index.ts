/**
 * `@tollgate/core/testing`: helpers for testing code that uses Tollgate, and for testing stores.
 *
 * - {@link fakeClock}: a clock that only moves when told to, for the engine and the memory store.
 * - {@link describeStoreConformance}: the vitest suite every store adapter must pass
 *   (needs `vitest` and `fast-check` installed).
 */

export { type ConformanceOptions, describeStoreConformance } from './conformance/index.js'
export { type FakeClock, fakeClock } from './fake-clock.js'
