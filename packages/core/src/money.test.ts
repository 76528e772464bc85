import { describe, expect, it } from 'vitest'
import { parseDuration, parseRate } from './duration.js'
import { costOf, toMicros } from './money.js'

describe('money', () => {
  it('holds currency as integer micro-units and rounds cost up, exactly, also past 2^53', () => {
    expect(toMicros(0.1)).toBe(100_000)
    expect(toMicros(50)).toBe(50_000_000)
    expect(costOf(1, toMicros(2.5))).toBe(3) // 2.5 micro-units for one token, rounded up
    expect(costOf(1_000_000, toMicros(2.5))).toBe(2_500_000)
    expect(costOf(1e12, toMicros(60))).toBe(60_000_000_000_000) // $60M
    expect(costOf(999_999_999_999, 123_456_789)).toBe(Math.ceil((999_999_999_999 * 123.456789) / 1))
  })
})

describe('durations and rates', () => {
  it('parses what policies write', () => {
    expect(parseDuration('60s')).toBe(60_000)
    expect(parseDuration('1h30m')).toBe(5_400_000)
    expect(parseDuration('250ms')).toBe(250)
    expect(parseDuration(1500)).toBe(1500)
    for (const bad of ['', '1', 'soon', '-1s', '1y', 0, -5, Number.NaN, 1.5])
      expect(parseDuration(bad)).toBeNull()
    // what is no text is no duration or rate either (these threw "value.trim is not a function")
    for (const bad of [null, undefined, {}, ['1m'], Object.create(null)]) {
      expect(parseDuration(bad as never)).toBeNull()
      expect(parseRate(bad as never)).toBeNull()
    }
    expect(parseRate('50/1m')).toEqual({ limit: 50, periodMs: 60_000 })
    expect(parseRate('10/s')).toEqual({ limit: 10, periodMs: 1000 })
    expect(parseRate('0/s')).toBeNull()
  })
})
