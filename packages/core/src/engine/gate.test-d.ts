import { describe, expectTypeOf, it } from 'vitest'
import type { AllowedDecision, Decision, DeniedDecision, LimitState } from '../decision.js'
import type { TollgateErrorCode } from '../errors.js'
import { TollgateError } from '../errors.js'
import { definePolicy } from '../policy/load.js'
import type { RemoteStore, Store, StoreCommitResult, StoreReserveResult } from '../store/contract.js'
import { memoryStore } from '../store/memory/store.js'
import { fakeClock } from '../testing/fake-clock.js'
import { createTollgate } from './gate.js'
import type { CommitResult, RunContext } from './types.js'

const gate = createTollgate({
  policy: definePolicy({ rules: [{ id: 'r', per: 'user', limits: { requests: 1 }, window: 'day' }] }),
  store: memoryStore({ clock: fakeClock() }),
})

describe('public types', () => {
  it('narrows the decision union on `allowed`', async () => {
    const decision = await gate.reserve({ subject: { user: 'u' } })
    expectTypeOf(decision).toEqualTypeOf<Decision>()
    if (decision.allowed) {
      expectTypeOf(decision).toEqualTypeOf<AllowedDecision>()
      expectTypeOf(decision.reservation.id).toBeString()
      expectTypeOf(decision.model).toBeString()
      // @ts-expect-error a denial's fields are not on an allowed decision
      decision.retryAfterMs
    } else {
      expectTypeOf(decision).toEqualTypeOf<DeniedDecision>()
      expectTypeOf(decision.retryAfterMs).toEqualTypeOf<number | null>()
      expectTypeOf(decision.status).toBeNumber()
      // @ts-expect-error no reservation on a denial
      decision.reservation
    }
    expectTypeOf(decision.limits).toEqualTypeOf<LimitState[]>()
    expectTypeOf(decision.headers).toEqualTypeOf<Record<string, string>>()
  })

  it('types run by its callback and settle by its result', async () => {
    const value = gate.run({ subject: { user: 'u' } }, async (context) => {
      expectTypeOf(context).toEqualTypeOf<RunContext>()
      return 42 as const
    })
    expectTypeOf(value).toEqualTypeOf<Promise<42>>()
    expectTypeOf(gate.settle('id', { inputTokens: 1 })).toEqualTypeOf<Promise<CommitResult>>()
    // @ts-expect-error usage fields are numbers
    gate.settle('id', { inputTokens: '1' })
  })

  it('rejects malformed options and requests at compile time', () => {
    // @ts-expect-error the policy is required
    createTollgate({})
    // @ts-expect-error subject ids are strings
    gate.reserve({ subject: { user: 1 } })
    // @ts-expect-error a window must be a known unit, a duration string or an object
    definePolicy({ rules: [{ id: 'r', limits: { requests: 1 }, window: true }] })
  })

  it('gives errors a code union and a static guard', () => {
    const error: unknown = new Error('x')
    if (TollgateError.isInstance(error)) {
      expectTypeOf(error.code).toExtend<TollgateErrorCode | (string & {})>()
      expectTypeOf(error.decision).toEqualTypeOf<DeniedDecision | undefined>()
    }
  })

  it('a remote store is a store whose operations answer with promises', () => {
    expectTypeOf<RemoteStore>().toExtend<Store>()
    expectTypeOf<RemoteStore['reserve']>().returns.toEqualTypeOf<Promise<StoreReserveResult>>()
    expectTypeOf<RemoteStore['commit']>().returns.toEqualTypeOf<Promise<StoreCommitResult>>()
    expectTypeOf<RemoteStore['now']>().returns.toEqualTypeOf<number | Promise<number>>()
  })
})
