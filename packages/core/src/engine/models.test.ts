import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { TollgateError } from '../errors.js'
import type { PolicyInput } from '../policy/schema.js'
import { memoryStore } from '../store/memory/store.js'
import { fakeClock } from '../testing/fake-clock.js'
import { createTollgate } from './gate.js'
import { MAX_COST } from './models.js'

/** Exact cost in micro-units, rounded up: `tokens` at `price` currency units per million. */
const exactCost = (tokens: number, price: number) =>
  (BigInt(tokens) * BigInt(Math.round(price * 1e6)) + 999_999n) / 1_000_000n

/** A policy with one priced model; `general` adds a per-call cap that never binds (no fast lane). */
const policyOf = (price: number, general: boolean): PolicyInput => ({
  models: { m: { price: { input: price, output: price } } },
  rules: [{ id: 'budget', per: 'user', limits: { tokens: 1e12, cost: 1e9 }, window: 'month' }],
  ...(general ? { caps: [{ maxTokens: 1e12 }] } : {}),
})

const refusal = async (promise: Promise<unknown>) => {
  try {
    await promise
  } catch (error) {
    return error
  }
  return undefined
}

describe('a call priced beyond what one call may cost', () => {
  it('is refused with invalid_amount before any counter moves, on the fast and the general path', async () => {
    const seen = { over: 0, within: 0 }
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 1_000_000_000 }),
        fc.integer({ min: 0, max: 1e12 }),
        fc.boolean(),
        async (price, tokens, general) => {
          const gate = createTollgate({
            policy: policyOf(price, general),
            store: memoryStore({ clock: fakeClock() }),
          })
          const subject = { user: 'u' }
          const asked = gate.reserve({
            subject,
            model: 'm',
            estimate: { inputTokens: tokens, maxOutputTokens: 0 },
          })
          const over = exactCost(tokens, price) > BigInt(MAX_COST)
          const error = await refusal(asked)
          seen[over ? 'over' : 'within']++
          if (!over) {
            expect(error).toBeUndefined()
            return
          }
          expect(TollgateError.isInstance(error)).toBe(true)
          expect(error).toMatchObject({ code: 'invalid_amount', issues: [{ path: ['estimate'] }] })
          for (const state of await gate.usage({ subject })) expect(state).toMatchObject({ used: 0, held: 0 })
        },
      ),
      { numRuns: 200 },
    )
    expect(seen.over).toBeGreaterThan(10)
    expect(seen.within).toBeGreaterThan(10)
  })

  it('at settle: refused, the reservation still held, then settled or released as usual', async () => {
    for (const general of [false, true]) {
      const gate = createTollgate({
        policy: policyOf(1_000_000, general),
        store: memoryStore({ clock: fakeClock() }),
      })
      const subject = { user: 'u' }
      const decision = await gate.reserve({
        subject,
        model: 'm',
        estimate: { inputTokens: 100, maxOutputTokens: 0 },
      })
      if (!decision.allowed) throw new Error('refused')
      // 1e9 tokens at 1,000,000 per million cost exactly 1e15 micro-units: the most one call may cost
      const error = await refusal(gate.settle(decision.id, { inputTokens: 1e9 + 1 }))
      expect(error).toMatchObject({ code: 'invalid_amount', issues: [{ path: ['usage'] }] })
      const cost = (await gate.usage({ subject })).find((s) => s.metric === 'cost')!
      // 100 tokens at 1,000,000 per million: 100 in the policy's currency, 1e8 micro-units
      expect(cost).toMatchObject({ used: 1e8, held: 1e8 })
      expect(await gate.settle(decision.id, { inputTokens: 1e9 })).toMatchObject({
        status: 'settled',
        amounts: { cost: MAX_COST },
      })
    }
  })
})
