import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { Marks } from './marks.js'

type Step =
  | { kind: 'set'; key: number; ms: number }
  | { kind: 'get'; key: number }
  | { kind: 'advance'; ms: number }

const step: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('set' as const),
      key: fc.nat(5_000),
      ms: fc.integer({ min: 1, max: 100 }),
    }),
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('get' as const), key: fc.nat(5_000) }) },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 1, max: 50 }) }),
  },
)

describe('Marks', () => {
  it('answers as a plain map of end times would, and keeps at most twice the most marks ever live', () => {
    fc.assert(
      fc.property(fc.array(step, { minLength: 2_000, maxLength: 3_000 }), (steps) => {
        const marks = new Marks()
        const model = new Map<string, number>()
        let now = 0
        let mostLive = 0
        for (const s of steps) {
          if (s.kind === 'advance') now += s.ms
          else if (s.kind === 'set') {
            marks.set(`k${s.key}`, now + s.ms, now)
            model.set(`k${s.key}`, now + s.ms)
          } else {
            const until = model.get(`k${s.key}`)
            expect(marks.get(`k${s.key}`, now)).toBe(until !== undefined && until > now ? until : undefined)
          }
          let live = 0
          for (const until of model.values()) if (until > now) live++
          mostLive = Math.max(mostLive, live)
          expect(marks.size).toBeLessThanOrEqual(Math.max(1_024, 2 * mostLive) + 1)
        }
      }),
      { numRuns: 10, endOnFailure: true },
    )
  })

  it('drops marks on keys never read again', () => {
    const marks = new Marks()
    for (let i = 0; i < 100_000; i++) marks.set(`user-${i}`, i + 10, i)
    expect(marks.size).toBeLessThan(1_100)
    expect(marks.get('user-99999', 99_999)).toBe(100_009)
    expect(marks.has('user-0')).toBe(false)
  })

  it('a pass drops only the marks that have ended, not one ending a millisecond later', () => {
    const marks = new Marks()
    marks.set('soon', 1, 0)
    for (let i = 0; i < 1_024; i++) marks.set(`gone-${i}`, 0, 0) // the last of these starts a pass
    expect(marks.size).toBe(1)
    expect(marks.get('soon', 0)).toBe(1)
  })
})
