/**
 * The virtual clock simulations and explanations run on. It is `fakeClock` from
 * `@tollgate/core/testing` in all but name: that subpath also exports the store conformance
 * suite, which imports vitest at load time, and a command-line tool must not need vitest.
 */
import type { Clock } from '@tollgate/core'

/** A clock that stands still until moved forward. */
export interface VirtualClock extends Clock {
  /** Move to `to` (ms since the epoch); earlier instants are ignored, time never goes back. */
  advance(to: number): void
}

/** A virtual clock starting at `start` (ms since the epoch). */
export function virtualClock(start: number): VirtualClock {
  let now = start
  return {
    now: () => now,
    advance(to) {
      if (to > now) now = to
    },
  }
}

/**
 * The times simulations and explanations run at: four-digit years. Far beyond them calendar
 * windows leave what a `Date` can hold, and the engine (or the printed times) would fail.
 */
const EARLIEST = Date.UTC(1000, 0, 1)
const LATEST = Date.UTC(10000, 0, 1)

/** Whether `at` (ms since the epoch) is in the years 1000 to 9999. */
export const inFourDigitYears = (at: number): boolean => at >= EARLIEST && at < LATEST
