/** A clock that only moves when told to: time in tests never comes from a sleep. */
import { parseDuration } from '../duration.js'

export interface FakeClock {
  now(): number
  /** Move forward by milliseconds or a duration such as `'90s'`. */
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
  const instant = (value: number | string | Date) =>
    typeof value === 'number' ? value : new Date(value).getTime()
  let now = instant(start)
  if (!Number.isFinite(now)) throw new Error(`fakeClock: not an instant: ${String(start)}`)
  return {
    now: () => now,
    advance(by) {
      const ms = typeof by === 'number' ? by : parseDuration(by)
      if (ms === null || !Number.isFinite(ms) || ms < 0)
        throw new Error(`fakeClock.advance: not a duration: ${String(by)}`)
      now += ms
      return now
    },
    set(to) {
      const next = instant(to)
      if (!Number.isFinite(next) || next < now) throw new Error('fakeClock.set: time only moves forward')
      now = next
      return now
    },
  }
}
