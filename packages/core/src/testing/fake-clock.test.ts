import { describe, expect, it } from 'vitest'
import { fakeClock } from './fake-clock.js'

describe('fakeClock', () => {
  it('moves forward by durations and to instants, never back', () => {
    const clock = fakeClock('2026-01-05T00:00:00Z')
    const start = Date.parse('2026-01-05T00:00:00Z')
    expect(clock.now()).toBe(start)
    expect(clock.advance('90s')).toBe(start + 90_000)
    expect(clock.advance(0)).toBe(start + 90_000)
    expect(clock.set('2026-02-01T00:00:00Z')).toBe(Date.parse('2026-02-01T00:00:00Z'))
    expect(clock.set(new Date('2026-03-01T00:00:00Z'))).toBe(Date.parse('2026-03-01T00:00:00Z'))
    expect(() => clock.set(start)).toThrow(/time only moves forward/)
  })

  it('refuses what is not a duration or an instant, and time past what a Date holds, leaving the time', () => {
    const clock = fakeClock(0)
    for (const by of [
      Number.NaN,
      -5,
      Number.POSITIVE_INFINITY,
      '1 fortnight',
      '-5s',
      '',
      null,
      undefined,
      {},
      Object.create(null), // its message threw a TypeError of its own
    ])
      expect(() => clock.advance(by as never), typeof by).toThrow(/^fakeClock\.advance: not a duration/)
    expect(() => clock.set(Object.create(null))).toThrow(/^fakeClock\.set: not an instant: object/)
    expect(() => fakeClock(Object.create(null))).toThrow(/^fakeClock: not an instant: object/)
    expect(() => clock.advance(1e308)).toThrow(/past the last instant a Date holds/)
    for (const to of [Number.NaN, Number.POSITIVE_INFINITY, 'x', 1e308, null, {}])
      expect(() => clock.set(to as never), String(to)).toThrow(/^fakeClock\.set: not an instant/)
    expect(clock.now()).toBe(0)
    expect(() => fakeClock(1e308)).toThrow(/not an instant/)
    expect(() => fakeClock('soon')).toThrow(/not an instant/)
  })
})
