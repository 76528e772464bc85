import fc from 'fast-check'
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

  it('advances by nothing as a number or as a duration string alike', () => {
    // advance(0) moved by nothing and advance('0s') threw "not a duration"
    const clock = fakeClock(1_000)
    expect(clock.advance(0)).toBe(1_000)
    for (const by of ['0s', '0ms', '0m0s', ' 0h ']) expect(clock.advance(by), by).toBe(1_000)
    expect(clock.advance('0.4ms')).toBe(1_000) // rounded to whole milliseconds, as durations are
    expect(clock.advance('1m0s')).toBe(61_000)
  })

  it('starts by default at 2026-01-05T00:00:00Z, a Monday', () => {
    const clock = fakeClock()
    expect(clock.now()).toBe(Date.parse('2026-01-05T00:00:00Z'))
    expect(new Date(clock.now()).getUTCDay()).toBe(1)
  })

  it('takes every instant a Date holds, to the last millisecond on either side, and none past them', () => {
    const last = 8.64e15
    expect(fakeClock(last).now()).toBe(last)
    expect(fakeClock(-last).now()).toBe(-last)
    expect(fakeClock(new Date(last)).now()).toBe(last)
    for (const start of [last + 1, -last - 1, -1e308, Number.NEGATIVE_INFINITY])
      expect(() => fakeClock(start), String(start)).toThrow(/^fakeClock: not an instant/)
    expect(() => fakeClock(-last).set(-last - 1)).toThrow(/^fakeClock\.set: not an instant/)
    const clock = fakeClock(last - 1_000)
    expect(() => clock.advance(1_001)).toThrow(/past the last instant a Date holds/)
    expect(clock.now()).toBe(last - 1_000)
    expect(clock.advance('1s')).toBe(last)
    expect(() => clock.advance(1)).toThrow(/past the last instant a Date holds/)
    expect(clock.set(last)).toBe(last)
    expect(clock.now()).toBe(last)
  })

  it('may be set to the instant it shows, and now() answers what advance and set returned', () => {
    const clock = fakeClock('2026-01-05T00:00:00Z')
    const start = clock.now()
    expect(clock.set(start)).toBe(start)
    expect(clock.set(new Date(start))).toBe(start)
    expect(clock.set('2026-01-05T00:00:00.000Z')).toBe(start)
    expect(clock.set(start + 1)).toBe(start + 1)
    expect(clock.now()).toBe(start + 1)
    expect(() => clock.set(start)).toThrow(/time only moves forward/)
    expect(clock.now()).toBe(start + 1)
  })

  it('shows the start plus every step, whatever mix of advances and sets moved it (property)', () => {
    const step = fc.oneof(
      fc.record({ advance: fc.nat(10 ** 9) }),
      fc.record({ advance: fc.constantFrom('1ms', '90s', '1h', '1d') }),
      fc.record({ setAhead: fc.nat(10 ** 9) }),
    )
    fc.assert(
      fc.property(
        fc.integer({ min: -(10 ** 12), max: 10 ** 12 }),
        fc.array(step, { maxLength: 20 }),
        (start, steps) => {
          const clock = fakeClock(start)
          let expected = start
          for (const s of steps) {
            const ms =
              'setAhead' in s
                ? s.setAhead
                : typeof s.advance === 'number'
                  ? s.advance
                  : { '1ms': 1, '90s': 90_000, '1h': 3_600_000, '1d': 86_400_000 }[s.advance]!
            expected += ms
            const answer = 'setAhead' in s ? clock.set(expected) : clock.advance(s.advance)
            if (answer !== expected || clock.now() !== expected) return false
          }
          return true
        },
      ),
    )
  })
})
