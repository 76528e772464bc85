import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { TollgateError } from '../errors.js'
import { MAX_AMOUNT, readUsage } from './validate.js'

const FIELDS = ['inputTokens', 'cachedInputTokens', 'outputTokens', 'cost'] as const
const good = fc.oneof(fc.constant(undefined), fc.integer({ min: 0, max: MAX_AMOUNT }))
const bad = fc.oneof(
  fc.constantFrom(-1, 0.5, MAX_AMOUNT + 1, Number.NaN, Number.POSITIVE_INFINITY, -0.0001, 2 ** 53),
  fc.constantFrom('1', null, true, {}, [], 1n),
)

describe('readUsage', () => {
  it('takes every report of whole amounts from 0 to 1e12', () => {
    fc.assert(
      fc.property(good, good, good, good, (inputTokens, cachedInputTokens, outputTokens, cost) => {
        const usage = { inputTokens, cachedInputTokens, outputTokens, cost }
        if ((cachedInputTokens ?? 0) > (inputTokens ?? Number.POSITIVE_INFINITY))
          expect(() => readUsage(usage)).toThrow(/cachedInputTokens/)
        else expect(() => readUsage(usage)).not.toThrow()
      }),
    )
  })

  it('refuses any other amount, naming its field', () => {
    fc.assert(
      fc.property(fc.constantFrom(...FIELDS), bad, good, (field, value, other) => {
        const usage = { inputTokens: other, outputTokens: other, [field]: value }
        let thrown: unknown
        try {
          readUsage(usage as never)
        } catch (error) {
          thrown = error
        }
        expect(TollgateError.isInstance(thrown)).toBe(true)
        expect(thrown).toMatchObject({ code: 'invalid_amount' })
        expect((thrown as Error).message).toContain(`usage.${field}`)
      }),
    )
  })
})
