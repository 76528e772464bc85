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
