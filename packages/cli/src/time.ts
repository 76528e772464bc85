/**
 * Times written in traffic files (`t`) and on the command line (`explain --at`), read the same on
 * every machine: never by the local time zone (`TZ`), and never rolling an impossible date over
 * (`Date.parse` read `2024-03-10 12:00` as local time and `2024-02-31` as March 2).
 */
import { inFourDigitYears } from './clock.js'

/** The forms {@link parseTime} accepts, for error messages. */
export const TIME_FORMS =
  'accepted, in the years 1000 to 9999: 1767605400000 (ms since the epoch), 2026-01-05T09:30:00Z, ' +
  '2026-01-05T10:30:00.250+01:00, 2026-01-05 09:30 (a space for the T), 2026-01-05; ' +
  'without an offset a time is UTC, a date midnight UTC'

/**
 * The message for a value {@link parseTime} refused, naming where it was (`"t"`, `--at`).
 * @example timeError('--at', 'got "2024-02-31" (February 2024 has 29 days)')
 */
export const timeError = (what: string, reason: string): string =>
  `${what} must be ms since the epoch or an ISO 8601 time; ${reason}; ${TIME_FORMS}`

/** A time read by {@link parseTime}: ms since the epoch, or why the value is not a time. */
export type ParsedTime = { ok: true; at: number } | { ok: false; reason: string }

/**
 * `YYYY-MM-DD`, then optionally `THH:MM` (or a space for the `T`), `:SS`, a fraction of a second,
 * and `Z` or `±HH:MM`.
 */
const ISO =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|([+-])(\d{2}):(\d{2}))?)?$/

const MONTHS = [
  'January',
  'February',
  'March',
  'April',
  'May',
  'June',
  'July',
  'August',
  'September',
  'October',
  'November',
  'December',
]

const daysIn = (year: number, month: number) =>
  month === 2
    ? year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0)
      ? 29
      : 28
    : [4, 6, 9, 11].includes(month)
      ? 30
      : 31

/** A value as a message shows it: strings quoted (and cut when long), numbers as they are. */
function shown(value: unknown): string {
  if (value === undefined) return 'nothing'
  if (typeof value === 'number') return String(value)
  if (typeof value !== 'string')
    return value === null ? 'null' : `a ${Array.isArray(value) ? 'list' : typeof value}`
  return JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value)
}

const refused = (value: unknown, why: string): ParsedTime => ({
  ok: false,
  reason: value === undefined ? 'it is missing' : `got ${shown(value)} (${why})`,
})

const inRange = (value: unknown, at: number): ParsedTime =>
  inFourDigitYears(at) ? { ok: true, at } : refused(value, 'outside the years 1000 to 9999')

/**
 * Read a time: a number of ms since the epoch (as a number or a string of digits), or an ISO 8601
 * date-time with `T` or a space, with `Z`, a `±HH:MM` offset or none (UTC), or a date (midnight
 * UTC). Impossible dates and times (February 31, hour 25, minute 60, month 13) are refused, and so
 * is any other form; the local time zone is never used. Times outside the years 1000 to 9999 are
 * refused too.
 *
 * @example
 * parseTime('2024-03-10 12:00') // { ok: true, at: Date.UTC(2024, 2, 10, 12) }
 * parseTime('2024-02-31') // { ok: false, reason: 'got "2024-02-31" (February 2024 has 29 days)' }
 */
export function parseTime(value: unknown): ParsedTime {
  if (typeof value === 'number')
    return Number.isFinite(value) ? inRange(value, value) : refused(value, 'not a number of ms')
  if (typeof value !== 'string') return refused(value, 'not a number of ms or an ISO time')
  if (/^\d+$/.test(value)) return inRange(value, Number(value))
  const match = ISO.exec(value)
  if (!match) return refused(value, 'not one of these forms')
  const [, y, mo, d, h = '00', mi = '00', s = '00', fraction = '', zone, sign, oh, om] = match as (
    | string
    | undefined
  )[]
  const [year, month, day, hour, minute, second] = [y, mo, d, h, mi, s].map(Number) as number[]
  if (month! < 1 || month! > 12) return refused(value, `month ${mo} is not 01 to 12`)
  const days = daysIn(year!, month!)
  if (day! < 1) return refused(value, `day ${d} is not 01 to ${days}`)
  if (day! > days) return refused(value, `${MONTHS[month! - 1]} ${y} has ${days} days`)
  if (hour! > 23) return refused(value, `hour ${h} is not 00 to 23`)
  if (minute! > 59) return refused(value, `minute ${mi} is not 00 to 59`)
  if (second! > 59) return refused(value, `second ${s} is not 00 to 59`)
  let offset = 0
  if (zone !== undefined && zone !== 'Z') {
    if (Number(oh) > 23 || Number(om) > 59) return refused(value, `offset ${zone} is not -23:59 to +23:59`)
    offset = (sign === '-' ? -1 : 1) * (Number(oh) * 60 + Number(om)) * 60_000
  }
  // setUTCFullYear, not Date.UTC, which reads the years 0 to 99 as 1900 to 1999
  const date = new Date(0)
  date.setUTCFullYear(year!, month! - 1, day!)
  date.setUTCHours(hour!, minute!, second!, Number(fraction.slice(0, 3).padEnd(3, '0')))
  return inRange(value, date.getTime() - offset)
}
