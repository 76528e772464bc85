/**
 * Calendar windows in an IANA time zone. Offsets come from `tzOffset` (@date-fns/tz); local times are
 * mapped back to instants here, not with TZDate's wall-clock constructor/setters (nor date-fns'
 * `startOfDay` on a TZDate), whose DST-day results depend on the host zone (date-fns/tz#13, #40):
 * under `TZ=America/Santiago`, `new TZDate(2026, 3, 5, 'America/Santiago')` is 03:30Z, not 04:00Z.
 */
import { tzOffset } from '@date-fns/tz'

/** Calendar units a rule's window can be. */
export type CalendarUnit = 'minute' | 'hour' | 'day' | 'week' | 'month'

const MINUTE = 60_000
const HOUR = 3_600_000
const DAY = 86_400_000
const validZones = new Set<string>(['UTC'])
/** The last bounds computed per unit, `around` and zone: requests mostly fall in the same window. */
const cache = new Map<string, number[]>()

/**
 * Throws a plain `Error` with a clear message if `timeZone` is not a valid IANA zone
 * (e.g. `'Mars/Olympus'`). Accepts whatever the runtime's `Intl` accepts, such as `'Europe/Berlin'`.
 */
export function assertTimeZone(timeZone: string): void {
  if (validZones.has(timeZone)) return
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: `${timeZone}` })
  } catch {
    throw new Error(`Invalid time zone "${timeZone}" (expected an IANA name like "Europe/Berlin")`)
  }
  validZones.add(timeZone)
}

/**
 * The window `[start, end)` in ms since epoch that holds `nowMs`, for `unit` in `timeZone`.
 *
 * - `day`, `week` (Monday to Monday) and `month` run from the first instant of the local day, week or
 *   month to the first instant of the next one: local midnight, or when midnight is skipped by a DST
 *   change, the instant the clocks jump. A `day` in America/New_York is 23 or 25 hours on DST days.
 * - `hour` is a local wall-clock hour (in Asia/Kolkata it starts at :30 UTC). Hours are also cut
 *   where the UTC offset changes, so the repeated 01:00 hour of a fall-back night is two windows.
 * - `minute` is a plain UTC minute (UTC offsets have been whole minutes since 1972).
 */
export function calendarWindow(
  unit: CalendarUnit,
  timeZone: string,
  nowMs: number,
): { start: number; end: number } {
  const bounds = cachedBounds(unit, timeZone, nowMs, 0)
  return { start: bounds[0]!, end: bounds[1]! }
}

/**
 * Ascending boundaries around `nowMs`: the starts of the `around` windows before the current one,
 * the current window's start, its end, and the ends of the `around` windows after it.
 * Length is `2 * around + 2`. The default `around = 1` gives `[prevStart, start, end, nextEnd]`.
 */
export function calendarBounds(unit: CalendarUnit, timeZone: string, nowMs: number, around = 1): number[] {
  if (!Number.isSafeInteger(around) || around < 0)
    throw new Error(`around must be an integer >= 0: ${around}`)
  return cachedBounds(unit, timeZone, nowMs, around).slice()
}

/** Bounds of the windows around `nowMs`, from or into the cache. The array is shared: do not mutate it. */
function cachedBounds(unit: CalendarUnit, timeZone: string, nowMs: number, around: number): number[] {
  if (!Number.isFinite(nowMs)) throw new Error(`nowMs must be a finite number, got ${nowMs}`)
  const key = `${unit} ${around} ${timeZone}`
  const hit = cache.get(key)
  if (hit !== undefined && hit[around]! <= nowMs && nowMs < hit[around + 1]!) return hit
  assertTimeZone(timeZone)
  const bounds: number[] = windowAt(unit, timeZone, nowMs)
  for (let i = 0; i < around; i++) {
    bounds.unshift(windowAt(unit, timeZone, bounds[0]! - 1)[0])
    bounds.push(windowAt(unit, timeZone, bounds.at(-1)!)[1])
  }
  cache.set(key, bounds)
  return bounds
}

function windowAt(unit: CalendarUnit, timeZone: string, now: number): [number, number] {
  if (unit === 'minute') {
    const start = now - mod(now, MINUTE)
    return [start, start + MINUTE]
  }
  const offset = offsetAt(timeZone, now)
  const wall = now + offset // local wall-clock time, written as if it were UTC
  if (unit === 'hour') {
    let start = now - mod(wall, HOUR)
    let end = start + HOUR
    if (offsetAt(timeZone, start) !== offset) start = nextOffsetChange(timeZone, start, now)
    if (offsetAt(timeZone, end - 1) !== offset) end = nextOffsetChange(timeZone, now, end - 1)
    return [start, end]
  }
  const [from, to] = localPeriod(unit, wall)
  return [firstInstantOf(timeZone, from), firstInstantOf(timeZone, to)]
}

/** Local start and end (as wall-clock times) of the day, week or month holding local time `wall`. */
function localPeriod(unit: CalendarUnit, wall: number): [number, number] {
  const day = Math.floor(wall / DAY)
  if (unit === 'day') return [day * DAY, (day + 1) * DAY]
  const monday = day - mod(day + 3, 7) // 1970-01-01 was a Thursday
  if (unit === 'week') return [monday * DAY, (monday + 7) * DAY]
  if (unit !== 'month') throw new Error(`Unknown calendar unit ${JSON.stringify(unit)}`)
  const date = new Date(wall)
  const [year, month] = [date.getUTCFullYear(), date.getUTCMonth()]
  return [Date.UTC(year, month, 1), Date.UTC(year, month + 1, 1)]
}

/** UTC offset of `timeZone` at instant `t`, in ms. */
function offsetAt(timeZone: string, t: number): number {
  return timeZone === 'UTC' ? 0 : Math.round(tzOffset(timeZone, new Date(t)) * MINUTE)
}

/**
 * The first instant whose local time is `wall` or later: the earlier one if `wall` happens twice,
 * the instant the clocks jump if `wall` is skipped. Assumes at most one offset change within a day of it.
 */
function firstInstantOf(timeZone: string, wall: number): number {
  const before = offsetAt(timeZone, wall - DAY)
  const after = offsetAt(timeZone, wall + DAY)
  const early = wall - before
  if (before === after || offsetAt(timeZone, early) === before) return early
  const late = wall - after
  return offsetAt(timeZone, late) === after ? late : nextOffsetChange(timeZone, late, early)
}

/** The first instant in `(from, to]` whose offset differs from the offset at `from` (bisection). */
function nextOffsetChange(timeZone: string, from: number, to: number): number {
  const offset = offsetAt(timeZone, from)
  let [lo, hi] = [from, to]
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2)
    if (offsetAt(timeZone, mid) === offset) lo = mid
    else hi = mid
  }
  return hi
}

function mod(a: number, n: number): number {
  return ((a % n) + n) % n
}
