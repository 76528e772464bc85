/**
 * The store conformance suite: one set of vitest tests that every {@link Store} must pass,
 * so that the memory store, the Redis store and any third-party store behave the same.
 *
 * @example
 * // redis-store.test.ts
 * import { describeStoreConformance } from '@tollgate/core/testing'
 * describeStoreConformance('redisStore', (clock) => redisStore({ client, prefix: `test-${crypto.randomUUID()}`, clock }))
 */
import { describe } from 'vitest'
import type { Store } from '../../store/contract.js'
import type { FakeClock } from '../fake-clock.js'
import { describeAdmin } from './admin.js'
import { describeCompanions } from './companions.js'
import { describeExpiry } from './expiry.js'
import { describeKeys } from './keys.js'
import { describeProperties } from './properties.js'
import { describeRates } from './rates.js'
import { describeReplays } from './replays.js'
import { describeReservations } from './reservations.js'
import { describeScan } from './scan.js'
import { describeFixedWindows } from './windows.js'

/** Options of the store conformance suite. */
export interface ConformanceOptions {
  /**
   * fast-check runs per property.
   * @default 50
   */
  numRuns?: number
}

/**
 * Registers vitest describe/it blocks checking `makeStore` against the store contract.
 * `makeStore` gets a fresh fake clock per test and must return a fresh, empty store that
 * takes its time from that clock. It needs vitest: under `require()` (CommonJS) it throws an
 * error saying to import `@tollgate/core/testing` from an ES module.
 */
export function describeStoreConformance(
  name: string,
  makeStore: (clock: FakeClock) => Store | Promise<Store>,
  options: ConformanceOptions = {},
): void {
  const numRuns = options.numRuns ?? 50
  if (!Number.isSafeInteger(numRuns) || numRuns < 1)
    throw new Error(`numRuns must be a whole number >= 1, got ${numRuns}`)
  const suite = { makeStore, numRuns }
  describe(`store conformance: ${name}`, () => {
    describeReservations(suite)
    describeReplays(suite)
    describeExpiry(suite)
    describeFixedWindows(suite)
    describeRates(suite)
    describeCompanions(suite)
    describeAdmin(suite)
    describeKeys(suite)
    describeScan(suite)
    describeProperties(suite)
  })
}
