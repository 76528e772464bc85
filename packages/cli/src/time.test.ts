/**
 * Times read from text (traffic `t`, `explain --at`): the forms accepted, the impossible dates
 * refused, and the same instant whatever the machine's time zone. This file runs in New York time
 * (its own process): `Date.parse` read `2024-03-10 12:00` there as 16:00Z.
 */
process.env.TZ = 'America/New_York'

import { describe, expect, it } from 'vitest'
import { parseLine, TrafficError } from './simulate/traffic.js'
import { parseTime, TIME_FORMS, timeError } from './time.js'

const at = (text: unknown) => {
  const parsed = parseTime(text)
  return parsed.ok ? parsed.at : parsed.reason
}

describe('parseTime', () => {
  it('runs in a zone that is not UTC (else this file proves nothing)', () => {
    expect(new Date(2024, 0, 15).getTimezoneOffset()).toBe(300)
  })

  it('reads ISO 8601 date-times with Z or an offset, with T or a space', () => {
    const noon = Date.UTC(2024, 2, 10, 12)
    for (const text of [
      '2024-03-10T12:00Z',
      '2024-03-10T12:00:00Z',
      '2024-03-10T12:00:00.000Z',
      '2024-03-10T13:00+01:00',
      '2024-03-10T07:00:00-05:00',
      '2024-03-10T12:00:00+00:00',
      '2024-03-10T12:00:00-00:00',
      '2024-03-10 12:00Z',
      '2024-03-10 17:30:00.000+05:30',
    ])
      expect(at(text), text).toBe(noon)
    expect(at('2024-03-10T12:00:00.25Z')).toBe(noon + 250)
    expect(at('2024-03-10T12:00:00.5Z')).toBe(noon + 500)
    expect(at('2024-03-10T12:00:00.123Z')).toBe(noon + 123)
    // microseconds (Python's isoformat, PostgreSQL) are cut to the millisecond, as Date.parse did
    expect(at('2024-03-10T12:00:00.123456+00:00')).toBe(noon + 123)
  })

  it('reads a date-time or a date without an offset as UTC, whatever TZ says', () => {
    expect(at('2024-03-10 12:00')).toBe(Date.UTC(2024, 2, 10, 12))
    expect(at('2024-03-10T12:00')).toBe(Date.UTC(2024, 2, 10, 12))
    expect(at('2024-03-10 12:00:30.5')).toBe(Date.UTC(2024, 2, 10, 12, 0, 30, 500))
    expect(at('2024-03-10')).toBe(Date.UTC(2024, 2, 10))
    expect(at('2024-02-29')).toBe(Date.UTC(2024, 1, 29))
    expect(at('1000-01-01')).toBe(Date.UTC(1000, 0, 1))
    expect(at('9999-12-31T23:59:59.999Z')).toBe(Date.UTC(9999, 11, 31, 23, 59, 59, 999))
  })

  it('keeps the numeric forms: ms since the epoch as a number or as digits', () => {
    expect(at(1_767_600_000_000)).toBe(1_767_600_000_000)
    expect(at('1767600000000')).toBe(1_767_600_000_000)
    expect(at(1_767_600_000)).toBe(1_767_600_000) // seconds: read as ms (simulate warns)
  })

  it('refuses impossible dates and times, saying what is wrong', () => {
    expect(at('2024-02-31')).toMatch(/"2024-02-31".*February 2024 has 29 days/)
    expect(at('2023-02-29')).toMatch(/February 2023 has 28 days/)
    expect(at('2024-04-31T00:00Z')).toMatch(/April 2024 has 30 days/)
    expect(at('2024-00-10')).toMatch(/month 00/)
    expect(at('2024-13-01')).toMatch(/month 13/)
    expect(at('2024-03-00')).toMatch(/day 00/)
    expect(at('2024-03-10T25:00Z')).toMatch(/hour 25/)
    expect(at('2024-03-10T24:00Z')).toMatch(/hour 24/)
    expect(at('2024-03-10T12:60Z')).toMatch(/minute 60/)
    expect(at('2024-03-10T12:00:60Z')).toMatch(/second 60/)
    expect(at('2024-03-10T12:00+24:00')).toMatch(/offset/)
    expect(at('2024-03-10T12:00+01:60')).toMatch(/offset/)
  })

  it('refuses anything else', () => {
    for (const text of [
      'Sun Feb 31 2024',
      'Sun Mar 10 2024 12:00:00 GMT-0400',
      'March 10, 2024',
      '10/03/2024',
      '2024-3-10',
      '2024/03/10',
      '2024-03-10T12',
      '2024-03-10T12:00:00+0100',
      '2024-03-10T12:00:00+01',
      '2024-03-10T12:00 +01:00',
      '2024-03-10  12:00',
      '2024-03-10Z',
      '2024-03-10t12:00z',
      ' 2024-03-10',
      '+002024-03-10T12:00:00Z',
      '24-03-10',
      'yesterday',
      '',
      '1.5e12',
      '-1000',
    ])
      expect(at(text), text).toMatch(/not one of these forms/)
    expect(at(undefined)).toMatch(/missing/)
    expect(at(null)).toMatch(/null/)
    expect(at(true)).toMatch(/boolean/)
    expect(at(Number.NaN)).toMatch(/NaN/)
  })

  it('refuses times outside the years 1000 to 9999', () => {
    for (const value of [
      '0999-12-31',
      '0050-01-01',
      '1000-01-01T00:30+01:00',
      1e20,
      -8.64e15,
      '1'.repeat(30),
    ])
      expect(at(value), String(value)).toMatch(/outside the years 1000 to 9999/)
  })

  it('names the accepted forms and says that no offset means UTC', () => {
    expect(TIME_FORMS).toContain('ms since the epoch')
    expect(TIME_FORMS).toContain('2026-01-05T09:30:00Z')
    expect(TIME_FORMS).toContain('UTC')
    expect(TIME_FORMS).toContain('years 1000 to 9999')
    expect(timeError('--at', 'it is missing')).toBe(
      `--at must be ms since the epoch or an ISO 8601 time; it is missing; ${TIME_FORMS}`,
    )
  })
})

describe('traffic times (parseLine)', () => {
  const line = (t: unknown) => JSON.stringify({ t, subject: { user: 'u' } })

  it('reads "2024-03-10 12:00" as 12:00Z in New York too', () => {
    expect(parseLine(line('2024-03-10 12:00'), 1)?.at).toBe(Date.UTC(2024, 2, 10, 12))
    expect(parseLine(line('2024-03-10'), 1)?.at).toBe(Date.UTC(2024, 2, 10))
  })

  it('refuses impossible or unknown times with the line number and the accepted forms', () => {
    for (const t of [
      'Sun Feb 31 2024',
      '2024-02-31',
      '2024-13-01',
      '2024-03-10T25:00Z',
      '2024-03-10 12:60',
    ]) {
      let error: unknown
      try {
        parseLine(line(t), 7)
      } catch (caught) {
        error = caught
      }
      expect(error, t).toBeInstanceOf(TrafficError)
      expect((error as TrafficError).line).toBe(7)
      expect((error as Error).message).toMatch(
        /^line 7: "t" must be ms since the epoch or an ISO 8601 time; got /,
      )
      expect((error as Error).message).toContain(TIME_FORMS)
      expect((error as Error).message).toContain(JSON.stringify(t))
    }
  })
})
