/** A clock that only moves when told to: time in tests never comes from a sleep. */
import { spanOf } from '../duration.js'
import { shown } from '../errors.js'

/** A clock tests move by hand: pass it to the store (and the gate) instead of sleeping. */
export interface FakeClock {
  /** The current time, ms since epoch. */
  now(): number
  /** Move forward by milliseconds or a duration such as `'90s'` (0 and `'0s'` leave it where it is). */
  advance(by: number | string): number
  /** Jump to an instant (ms since epoch, or an ISO string). Never backwards. */
  set(to: number | string | Date): number
}

/**
 * A fake clock starting at `start` (default 2026-01-05T00:00:00Z, a Monday).
 *
 * @example
 * const clock = fakeClock('2026-03-08T04:00:00Z')
 * clock.advance('1h')
 */
export function fakeClock(start: number | string | Date = '2026-01-05T00:00:00.000Z'): FakeClock {
  /** Ms since the epoch of `value`, or NaN when it is not an instant a `Date` can hold. */
  const instant = (value: unknown): number => {
    const t =
      typeof value === 'number'
        ? value
        : typeof value === 'string' || value instanceof Date
          ? new Date(value).getTime()
          : Number.NaN
    return Number.isFinite(t) && Math.abs(t) <= MAX_DATE ? t : Number.NaN
  }
  let now = instant(start)
  if (Number.isNaN(now)) throw new Error(`fakeClock: not an instant: ${shown(start)}`)
  return {
    now: () => now,
    advance(by) {
      const ms = typeof by === 'number' ? by : spanOf(by)
      if (ms === null || !Number.isFinite(ms) || ms < 0)
        throw new Error(`fakeClock.advance: not a duration: ${shown(by)}`)
      if (now + ms > MAX_DATE)
        throw new Error(`fakeClock.advance: ${shown(by)} is past the last instant a Date holds`)
      now += ms
      return now
    },
    set(to) {
      const next = instant(to)
      if (Number.isNaN(next)) throw new Error(`fakeClock.set: not an instant: ${shown(to)}`)
      if (next < now) throw new Error('fakeClock.set: time only moves forward')
      now = next
      return now
    },
  }
}

/** The last instant a `Date` holds, in ms since the epoch (±100,000,000 days). */
const MAX_DATE = 8.64e15
