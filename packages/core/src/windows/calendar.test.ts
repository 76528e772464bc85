import { TZDate } from '@date-fns/tz'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { assertTimeZone, type CalendarUnit, calendarBounds, calendarWindow } from './calendar.js'

const HOUR = 3_600_000
const ZONES = [
  'UTC',
  'America/New_York',
  'Europe/Berlin',
  'Australia/Lord_Howe',
  'Asia/Kolkata',
  'Pacific/Chatham',
  'America/Santiago',
]
const UNITS: CalendarUnit[] = ['minute', 'hour', 'day', 'week', 'month']

/** Normalises an ISO string with any offset (or an epoch ms) to UTC ISO, for readable diffs. */
const utc = (at: string | number) => new Date(typeof at === 'number' ? at : Date.parse(at)).toISOString()

function expectWindow(unit: CalendarUnit, timeZone: string, now: string, start: string, end: string) {
  const window = calendarWindow(unit, timeZone, Date.parse(now))
  expect({ start: utc(window.start), end: utc(window.end) }).toEqual({ start: utc(start), end: utc(end) })
}

function expectBounds(unit: CalendarUnit, timeZone: string, now: string, around: number, expected: string[]) {
  expect(calendarBounds(unit, timeZone, Date.parse(now), around).map(utc)).toEqual(expected.map(utc))
}

describe('assertTimeZone', () => {
  it('rejects an unknown zone with a clear message', () => {
    expect(() => assertTimeZone('Mars/Olympus')).toThrow(/Invalid time zone "Mars\/Olympus"/)
    expect(() => assertTimeZone('')).toThrow(Error)
  })

  it('accepts IANA zones', () => {
    expect(() => assertTimeZone('Europe/Berlin')).not.toThrow()
    expect(() => assertTimeZone('UTC')).not.toThrow()
  })

  it('is applied by calendarWindow and calendarBounds', () => {
    expect(() => calendarWindow('day', 'Mars/Olympus', 0)).toThrow(/Mars\/Olympus/)
    expect(() => calendarBounds('day', 'Mars/Olympus', 0)).toThrow(/Mars\/Olympus/)
  })
})

describe('day windows', () => {
  it('are 23 and 25 hours on DST days in America/New_York', () => {
    expectWindow(
      'day',
      'America/New_York',
      '2026-03-08T12:00:00-04:00',
      '2026-03-08T00:00:00-05:00',
      '2026-03-09T00:00:00-04:00',
    )
    expectWindow(
      'day',
      'America/New_York',
      '2026-11-01T12:00:00-05:00',
      '2026-11-01T00:00:00-04:00',
      '2026-11-02T00:00:00-05:00',
    )
  })

  it('follow Europe/Berlin DST days', () => {
    expectWindow(
      'day',
      'Europe/Berlin',
      '2026-03-29T01:30:00+01:00',
      '2026-03-29T00:00:00+01:00',
      '2026-03-30T00:00:00+02:00',
    )
    expectWindow(
      'day',
      'Europe/Berlin',
      '2026-10-25T02:30:00+01:00',
      '2026-10-25T00:00:00+02:00',
      '2026-10-26T00:00:00+01:00',
    )
  })

  it('start at the first instant of the day when local midnight does not exist', () => {
    // Chile skips 2026-09-06 00:00-01:00; Lebanon skipped 2020-03-29 00:00-01:00.
    expectBounds('day', 'America/Santiago', '2026-09-06T12:00:00-03:00', 1, [
      '2026-09-05T00:00:00-04:00',
      '2026-09-06T01:00:00-03:00',
      '2026-09-07T00:00:00-03:00',
      '2026-09-08T00:00:00-03:00',
    ])
    expectWindow(
      'day',
      'Asia/Beirut',
      '2020-03-29T00:30:00Z',
      '2020-03-29T01:00:00+03:00',
      '2020-03-30T00:00:00+03:00',
    )
  })

  it('start at the first of two local midnights', () => {
    // Cuba falls back from 01:00 to 00:00, so 2026-11-01 00:00 happens twice.
    expectWindow(
      'day',
      'America/Havana',
      '2026-11-01T00:30:00-05:00',
      '2026-11-01T00:00:00-04:00',
      '2026-11-02T00:00:00-05:00',
    )
  })
})

describe('month windows', () => {
  it('go from Jan 31 to a whole February', () => {
    expectBounds('month', 'Europe/Berlin', '2026-01-31T23:59:59.999+01:00', 1, [
      '2025-12-01T00:00:00+01:00',
      '2026-01-01T00:00:00+01:00',
      '2026-02-01T00:00:00+01:00',
      '2026-03-01T00:00:00+01:00',
    ])
    expectWindow(
      'month',
      'Europe/Berlin',
      '2026-02-01T00:00:00+01:00',
      '2026-02-01T00:00:00+01:00',
      '2026-03-01T00:00:00+01:00',
    )
  })

  it('know leap Februaries', () => {
    expectWindow(
      'month',
      'America/New_York',
      '2028-02-29T23:00:00-05:00',
      '2028-02-01T00:00:00-05:00',
      '2028-03-01T00:00:00-05:00',
    )
    expectWindow(
      'month',
      'America/New_York',
      '2026-02-28T23:00:00-05:00',
      '2026-02-01T00:00:00-05:00',
      '2026-03-01T00:00:00-05:00',
    )
  })

  it('roll over from December to January', () => {
    expectBounds('month', 'Asia/Kolkata', '2026-12-31T23:59:59.999+05:30', 1, [
      '2026-11-01T00:00:00+05:30',
      '2026-12-01T00:00:00+05:30',
      '2027-01-01T00:00:00+05:30',
      '2027-02-01T00:00:00+05:30',
    ])
  })

  it('span a DST change', () => {
    expectWindow(
      'month',
      'Europe/Berlin',
      '2026-03-15T12:00:00+01:00',
      '2026-03-01T00:00:00+01:00',
      '2026-04-01T00:00:00+02:00',
    )
  })
})

describe('week windows', () => {
  it('start on Monday and span a DST change', () => {
    // Sunday 2026-03-08 is the DST day in New York: that week is 167 hours.
    expectWindow(
      'week',
      'America/New_York',
      '2026-03-08T23:59:00-04:00',
      '2026-03-02T00:00:00-05:00',
      '2026-03-09T00:00:00-04:00',
    )
    expectWindow(
      'week',
      'America/New_York',
      '2026-03-09T00:00:00-04:00',
      '2026-03-09T00:00:00-04:00',
      '2026-03-16T00:00:00-04:00',
    )
    expectWindow(
      'week',
      'Europe/Berlin',
      '2026-10-21T09:00:00+02:00',
      '2026-10-19T00:00:00+02:00',
      '2026-10-26T00:00:00+01:00',
    )
  })
})

describe('hour windows', () => {
  it('start at :30 UTC in Asia/Kolkata', () => {
    expectBounds('hour', 'Asia/Kolkata', '2026-06-15T10:47:00+05:30', 1, [
      '2026-06-15T09:00:00+05:30',
      '2026-06-15T10:00:00+05:30',
      '2026-06-15T11:00:00+05:30',
      '2026-06-15T12:00:00+05:30',
    ])
    expectWindow(
      'hour',
      'Asia/Kolkata',
      '2026-06-15T05:29:59.999Z',
      '2026-06-15T04:30:00Z',
      '2026-06-15T05:30:00Z',
    )
  })

  it('split the repeated fall-back hour into two one-hour windows', () => {
    const bounds = [
      '2026-10-31T23:00:00-04:00',
      '2026-11-01T00:00:00-04:00',
      '2026-11-01T01:00:00-04:00',
      '2026-11-01T01:00:00-05:00',
      '2026-11-01T02:00:00-05:00',
      '2026-11-01T03:00:00-05:00',
    ]
    expectBounds('hour', 'America/New_York', '2026-11-01T01:30:00-04:00', 2, bounds)
    expectWindow('hour', 'America/New_York', '2026-11-01T01:30:00-05:00', bounds[3]!, bounds[4]!)
    const ms = calendarBounds('hour', 'America/New_York', Date.parse('2026-11-01T01:30:00-04:00'), 2)
    expect(ms.slice(1).map((b, i) => b - ms[i]!)).toEqual([HOUR, HOUR, HOUR, HOUR, HOUR])
  })

  it('skip the missing spring-forward hour', () => {
    expectBounds('hour', 'America/New_York', '2026-03-08T01:30:00-05:00', 1, [
      '2026-03-08T00:00:00-05:00',
      '2026-03-08T01:00:00-05:00',
      '2026-03-08T03:00:00-04:00',
      '2026-03-08T04:00:00-04:00',
    ])
  })

  it('are cut where a half-hour DST change moves the clock (Australia/Lord_Howe)', () => {
    expectBounds('hour', 'Australia/Lord_Howe', '2026-04-05T01:15:00+11:00', 1, [
      '2026-04-05T00:00:00+11:00',
      '2026-04-05T01:00:00+11:00',
      '2026-04-05T01:30:00+10:30',
      '2026-04-05T02:00:00+10:30',
    ])
  })
})

describe('minute windows', () => {
  it('are UTC minutes', () => {
    expectWindow(
      'minute',
      'Asia/Kolkata',
      '2026-06-15T10:47:31.250+05:30',
      '2026-06-15T05:17:00Z',
      '2026-06-15T05:18:00Z',
    )
  })
})

describe('calendarBounds', () => {
  it('gives [prevStart, start, end, nextEnd] by default and [start, end] for around = 0', () => {
    const now = Date.parse('2026-06-15T10:47:00Z')
    const { start, end } = calendarWindow('day', 'UTC', now)
    expect(calendarBounds('day', 'UTC', now)).toEqual([start - 24 * HOUR, start, end, end + 24 * HOUR])
    expect(calendarBounds('day', 'UTC', now, 0)).toEqual([start, end])
  })

  it('rejects a bad around and a bad now', () => {
    expect(() => calendarBounds('day', 'UTC', 0, -1)).toThrow(/around/)
    expect(() => calendarBounds('day', 'UTC', 0, 1.5)).toThrow(/around/)
    expect(() => calendarWindow('day', 'UTC', Number.NaN)).toThrow(/nowMs/)
  })

  it('returns a fresh array each call', () => {
    const first = calendarBounds('hour', 'UTC', 0)
    first[0] = 42
    expect(calendarBounds('hour', 'UTC', 0)[0]).toBe(-HOUR)
  })
})

/** Local date (and with `hour`, hour and offset) of an instant, read with TZDate's getters (host-independent). */
function local(t: number, timeZone: string, hour = false): string {
  const d = new TZDate(t, timeZone)
  const day = `${d.getFullYear()}-${d.getMonth() + 1}-${d.getDate()}`
  return hour ? `${day} ${d.getHours()}h ${d.getTimezoneOffset()}` : day
}

/** The bounds of every window of `unit` that starts in 2026; reports any window not starting where the last ended. */
function walk2026(unit: CalendarUnit, timeZone: string, problems: string[] = []): number[] {
  const bounds = [calendarWindow(unit, timeZone, Date.UTC(2026, 0, 1)).start]
  while (bounds.at(-1)! < Date.UTC(2027, 0, 1)) {
    const { start, end } = calendarWindow(unit, timeZone, bounds.at(-1)!)
    if (start !== bounds.at(-1))
      problems.push(`${unit} window at ${utc(bounds.at(-1)!)} starts ${utc(start)}`)
    bounds.push(end)
  }
  return bounds
}

describe('every window in 2026', () => {
  it.each(ZONES)('is contiguous and matches local days and hours in %s', (timeZone) => {
    const problems: string[] = []
    const check = (ok: boolean, what: string, start: number, end: number) => {
      if (!ok) problems.push(`${what}: [${utc(start)}, ${utc(end)})`)
    }
    const days = walk2026('day', timeZone, problems)
    for (let i = 1; i < days.length; i++) {
      const [start, end] = [days[i - 1]!, days[i]!]
      check(end - start >= 22 * HOUR && end - start <= 26 * HOUR, 'day length', start, end)
      check(local(end - 1, timeZone) === local(start, timeZone), 'day holds two dates', start, end)
      check(local(start - 1, timeZone) !== local(start, timeZone), 'day starts late', start, end)
    }
    const hours = walk2026('hour', timeZone, problems)
    for (let i = 1; i < hours.length; i++) {
      const [start, end] = [hours[i - 1]!, hours[i]!]
      check(end - start > 0 && end - start <= HOUR, 'hour length', start, end)
      check(
        local(end - 1, timeZone, true) === local(start, timeZone, true),
        'hour holds two hours',
        start,
        end,
      )
    }
    const dayStarts = new Set(days)
    for (const unit of ['week', 'month'] as const) {
      for (const bound of walk2026(unit, timeZone, problems).slice(1, -1)) {
        check(dayStarts.has(bound), `${unit} bound is not a day start`, bound, bound)
      }
    }
    expect(problems).toEqual([])
  })
})

describe('host time zone', () => {
  it('does not change any result', () => {
    const saved = process.env.TZ
    const run = () =>
      ['America/Santiago', 'Europe/Berlin', 'Australia/Lord_Howe'].map((zone) => walk2026('day', zone))
    const expected = run()
    try {
      for (const host of ['America/Santiago', 'Australia/Lord_Howe', 'America/New_York', 'Asia/Kolkata']) {
        process.env.TZ = host
        expect(new Date(Date.UTC(2026, 0, 1)).getHours(), host).not.toBe(0)
        expect(run(), host).toEqual(expected)
      }
    } finally {
      if (saved === undefined) delete process.env.TZ
      else process.env.TZ = saved
    }
  })
})

describe('properties', () => {
  const instant = fc.integer({ min: Date.UTC(2000, 0, 1), max: Date.UTC(2100, 0, 1) - 1 })
  const zone = fc.constantFrom(...ZONES)
  const unit = fc.constantFrom(...UNITS)
  const runs = { numRuns: 1000 }

  it('the window holds now and touches its neighbours', () => {
    fc.assert(
      fc.property(unit, zone, instant, (unit, zone, now) => {
        const { start, end } = calendarWindow(unit, zone, now)
        expect(start).toBeLessThanOrEqual(now)
        expect(now).toBeLessThan(end)
        expect(calendarWindow(unit, zone, end).start).toBe(end)
        expect(calendarWindow(unit, zone, start - 1).end).toBe(start)
        expect(calendarWindow(unit, zone, end - 1)).toEqual({ start, end })
      }),
      runs,
    )
  })

  it('calendarBounds is strictly ascending around the current window', () => {
    fc.assert(
      fc.property(unit, zone, instant, fc.integer({ min: 0, max: 4 }), (unit, zone, now, around) => {
        const bounds = calendarBounds(unit, zone, now, around)
        expect(bounds).toHaveLength(2 * around + 2)
        for (let i = 1; i < bounds.length; i++) expect(bounds[i]!).toBeGreaterThan(bounds[i - 1]!)
        const { start, end } = calendarWindow(unit, zone, now)
        expect([bounds[around], bounds[around + 1]]).toEqual([start, end])
      }),
      runs,
    )
  })

  it('minute windows are 60 s and day windows 22 to 26 h', () => {
    fc.assert(
      fc.property(zone, instant, (zone, now) => {
        const minute = calendarWindow('minute', zone, now)
        expect(minute.end - minute.start).toBe(60_000)
        const day = calendarWindow('day', zone, now)
        expect(day.end - day.start).toBeGreaterThanOrEqual(22 * HOUR)
        expect(day.end - day.start).toBeLessThanOrEqual(26 * HOUR)
      }),
      runs,
    )
  })

  it('the UTC fast path agrees with Etc/UTC', () => {
    fc.assert(
      fc.property(unit, instant, (unit, now) => {
        expect(calendarBounds(unit, 'UTC', now, 2)).toEqual(calendarBounds(unit, 'Etc/UTC', now, 2))
      }),
      runs,
    )
  })
})
