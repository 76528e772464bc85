import { describe, expectTypeOf, it } from 'vitest'
import type { AllowedDecision, Decision, DeniedDecision, LimitState, Violation } from '../decision.js'
import type { ReasonCode, TollgateErrorCode } from '../errors.js'
import { TollgateError } from '../errors.js'
import { definePolicy } from '../policy/load.js'
import type { Attributes, AttributeValue } from '../policy/match.js'
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
    // @ts-expect-error a window must be a known unit: 'daily' is none ('day' is)
    definePolicy({ rules: [{ id: 'r', per: 'user', limits: { requests: 1 }, window: 'daily' }] })
    // @ts-expect-error a duration needs a unit it knows: 'y' is none
    definePolicy({ rules: [{ id: 'r', per: 'user', limits: { requests: 1 }, window: '1y' }] })
    createTollgate({
      // @ts-expect-error the same in a rolling window
      policy: { rules: [{ id: 'r', limits: { requests: 1 }, window: { rolling: '1 hour' } }] },
    })
  })

  it('takes attributes as docs/policies.md documents them', () => {
    const session: { plan?: string } = {}
    const flags = ['beta', 'enterprise'] as const
    // strings, finite numbers, booleans and lists of strings are matched on
    gate.reserve({ subject: { user: 'u' }, attributes: { plan: 'pro', seats: 5, trial: false, flags } })
    // `null` and `undefined` are absent values
    gate.reserve({ subject: { user: 'u' }, attributes: { plan: session.plan, environment: null } })
    // other JSON (objects, lists of numbers) is accepted and matches nothing
    gate.reserve({
      subject: { user: 'u' },
      attributes: { claims: { role: 'x', groups: ['a'] }, sizes: [1, 2] },
    })
    expectTypeOf<{ plan: string | undefined }>().toExtend<Attributes>()
    expectTypeOf<
      null | undefined | readonly number[] | { a: { b: [1, 'x', null] } }
    >().toExtend<AttributeValue>()
    // what JSON cannot write is refused with invalid_request, and does not compile
    // @ts-expect-error a function
    gate.reserve({ subject: { user: 'u' }, attributes: { plan: () => 'pro' } })
    // @ts-expect-error a bigint
    gate.reserve({ subject: { user: 'u' }, attributes: { seats: 5n } })
    // @ts-expect-error a symbol
    gate.reserve({ subject: { user: 'u' }, attributes: { plan: Symbol('pro') } })
  })

  it('gives errors a code union and a static guard', () => {
    const error: unknown = new Error('x')
    if (TollgateError.isInstance(error)) {
      // the known codes stay in the type (for completion), and any other string is allowed
      expectTypeOf(error.code).toEqualTypeOf<TollgateErrorCode | (string & {})>()
      expectTypeOf(error.code).not.toEqualTypeOf<string>()
      expectTypeOf<'budget_exceeded'>().toExtend<typeof error.code>()
      expectTypeOf(error.decision).toEqualTypeOf<DeniedDecision | undefined>()
    }
  })

  it("keeps the known reason codes in the codes of refusals, beside a rule's own", () => {
    expectTypeOf<DeniedDecision['code']>().toEqualTypeOf<ReasonCode | (string & {})>()
    expectTypeOf<Violation['code']>().toEqualTypeOf<ReasonCode | (string & {})>()
    expectTypeOf<DeniedDecision['code']>().not.toEqualTypeOf<string>()
    expectTypeOf<Violation['code']>().not.toEqualTypeOf<string>()
    expectTypeOf<'USER_QUOTA_EXCEEDED'>().toExtend<DeniedDecision['code']>()
  })

  it('a remote store is a store whose operations answer with promises', () => {
    expectTypeOf<RemoteStore>().toExtend<Store>()
    expectTypeOf<RemoteStore['reserve']>().returns.toEqualTypeOf<Promise<StoreReserveResult>>()
    expectTypeOf<RemoteStore['commit']>().returns.toEqualTypeOf<Promise<StoreCommitResult>>()
    expectTypeOf<RemoteStore['now']>().returns.toEqualTypeOf<number | Promise<number>>()
  })
})
