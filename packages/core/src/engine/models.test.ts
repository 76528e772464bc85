import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { TollgateError } from '../errors.js'
import type { PolicyInput } from '../policy/schema.js'
import { memoryStore } from '../store/memory/store.js'
import { fakeClock } from '../testing/fake-clock.js'
import type { AuditRecord } from './audit.js'
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

describe('cached input tokens', () => {
  it('can never be more than the input tokens, reported or estimated: the cost never goes below zero', async () => {
    const policy: PolicyInput = {
      models: { m: { price: { input: 10, output: 10, cachedInput: 1 } } },
      rules: [{ id: 'budget', per: 'user', limits: { cost: 100 }, window: 'day' }],
    }
    const gate = createTollgate({ policy, store: memoryStore({ clock: fakeClock() }) })
    const subject = { user: 'u' }
    const decision = await gate.reserve({
      subject,
      model: 'm',
      estimate: { inputTokens: 100_000, maxOutputTokens: 0 },
    })
    if (!decision.allowed) throw new Error('refused')
    // input tokens left out are the estimate's 100,000: a million cached ones cannot be
    const error = await refusal(gate.settle(decision.id, { cachedInputTokens: 1_000_000, outputTokens: 0 }))
    expect(error).toMatchObject({ code: 'invalid_amount', message: expect.stringContaining('the estimate') })
    expect(await refusal(gate.settle(decision.id, { inputTokens: 10, cachedInputTokens: 11 }))).toMatchObject(
      {
        code: 'invalid_amount',
      },
    )
    // the reservation is still held at its estimate, and settles with a consistent report
    const cost = async () => (await gate.usage({ subject, model: 'm' })).find((s) => s.metric === 'cost')!
    expect(await cost()).toMatchObject({ used: 1_000_000, held: 1_000_000 })
    const settled = await gate.settle(decision.id, { cachedInputTokens: 100_000, outputTokens: 0 })
    expect(settled).toMatchObject({ status: 'settled', amounts: { cost: 100_000 } })
    expect(await cost()).toMatchObject({ used: 100_000, held: 0 })
  })
})

describe('run with a report the gate refuses', () => {
  it('closes the reservation at its estimate, and the refusal still reaches the caller', async () => {
    for (const general of [false, true]) {
      const gate = createTollgate({
        policy: policyOf(1_000_000, general),
        store: memoryStore({ clock: fakeClock() }),
      })
      const subject = { user: 'u' }
      const request = { subject, model: 'm', estimate: { inputTokens: 100, maxOutputTokens: 0 } }
      // more cached tokens than the estimate's input tokens: refused where it is reported
      const cached = await refusal(
        gate.run(request, ({ report }) => report({ cachedInputTokens: 101, outputTokens: 0 })),
      )
      expect(cached).toMatchObject({ code: 'invalid_amount' })
      // a report priced past what one call may cost: refused at the close
      const priced = await refusal(gate.run(request, ({ report }) => report({ inputTokens: 1e9 + 1 })))
      expect(priced).toMatchObject({ code: 'invalid_amount', issues: [{ path: ['usage'] }] })
      // both calls were made: each is settled at its estimate (100 tokens, 1e8 micro-units), none held
      const cost = (await gate.usage({ subject })).find((s) => s.metric === 'cost')!
      expect(cost).toMatchObject({ used: 2e8, held: 0 })
    }
  })
})

describe('an alias written where a model is named', () => {
  // requests name models by alias; the policy may too, and means the model the alias names
  const models = {
    'gpt-4o': { tier: 'premium', price: { input: 2.5, output: 10 } },
    'gpt-4o-mini': { tier: 'basic', price: { input: 0.15, output: 0.6 } },
  }
  const aliases = { fast: 'gpt-4o-mini', smart: 'gpt-4o' }
  const ask = (gate: ReturnType<typeof createTollgate>, model: string, plan = 'pro') =>
    gate.reserve({
      subject: { user: 'u' },
      model,
      attributes: { plan },
      estimate: { inputTokens: 100, maxOutputTokens: 10 },
    })
  const gateOf = (policy: Partial<PolicyInput>) =>
    createTollgate({
      policy: {
        models,
        aliases,
        rules: [{ id: 'r', per: 'user', limits: { requests: 100 }, window: 'day' }],
        ...policy,
      },
      store: memoryStore({ clock: fakeClock() }),
    })

  it('in a plan or access list, allows the model (it refused every call the alias named)', async () => {
    const gate = gateOf({ plans: { free: { models: ['fast'] } } })
    expect(await ask(gate, 'fast', 'free')).toMatchObject({ allowed: true, model: 'gpt-4o-mini' })
    expect(await ask(gate, 'gpt-4o-mini', 'free')).toMatchObject({ allowed: true })
    expect(await ask(gate, 'smart', 'free')).toMatchObject({ allowed: false, code: 'model_not_allowed' })
    const access = gateOf({ access: [{ allow: ['smart'] }] })
    expect(await ask(access, 'gpt-4o')).toMatchObject({ allowed: true, model: 'gpt-4o' })
  })

  it('as a downgrade, calls the model (it was called by its alias, unpriced, and refused)', async () => {
    const gate = gateOf({
      access: [{ match: { tier: 'premium' }, require: { flags: ['vip'] }, otherwise: { downgrade: 'fast' } }],
    })
    expect(await ask(gate, 'smart')).toMatchObject({
      allowed: true,
      model: 'gpt-4o-mini',
      downgrade: { from: 'gpt-4o', to: 'gpt-4o-mini', reason: 'access' },
    })
  })

  it('refused by the limits after a downgrade, names it in the decision, message and record', async () => {
    const records: AuditRecord[] = []
    const gate = createTollgate({
      policy: {
        models,
        aliases,
        access: [
          { match: { tier: 'premium' }, require: { flags: ['vip'] }, otherwise: { downgrade: 'fast' } },
        ],
        rules: [
          { id: 'cheap', per: 'user', match: { model: 'fast' }, limits: { requests: 1 }, window: 'day' },
        ],
      },
      store: memoryStore({ clock: fakeClock() }),
      onDecision: (record) => void records.push(record),
    })
    expect(await ask(gate, 'smart')).toMatchObject({ allowed: true, downgrade: { to: 'gpt-4o-mini' } })
    const refused = await ask(gate, 'smart')
    const downgrade = { from: 'gpt-4o', to: 'gpt-4o-mini', reason: 'access', rule: expect.any(String) }
    expect(refused).toMatchObject({ allowed: false, rule: 'cheap', downgrade })
    expect(refused.allowed || refused.message).toMatch(/changed "gpt-4o" to "gpt-4o-mini"/)
    expect(records[1]).toMatchObject({ decision: 'refuse', downgrade: { from: 'gpt-4o', to: 'gpt-4o-mini' } })
    // asked for the cheaper model itself: no downgrade, and the message says nothing of one
    const direct = await ask(gate, 'fast')
    expect(direct).toMatchObject({ allowed: false, rule: 'cheap', downgrade: null })
    expect(direct.allowed || direct.message).not.toMatch(/changed/)
    expect(records[2]).toMatchObject({ decision: 'refuse', downgrade: null })
  })

  it('in a match, applies to the model (the cap or rule never applied)', async () => {
    const capped = gateOf({ caps: [{ match: { model: 'smart' }, maxInputTokens: 10 }] })
    expect(await ask(capped, 'smart')).toMatchObject({ allowed: false })
    expect(await ask(capped, 'gpt-4o')).toMatchObject({ allowed: false })
    expect(await ask(capped, 'fast')).toMatchObject({ allowed: true })
    const ruled = gateOf({
      rules: [
        { id: 'premium', per: 'user', match: { model: ['smart'] }, limits: { requests: 1 }, window: 'day' },
      ],
    })
    expect(await ask(ruled, 'gpt-4o')).toMatchObject({ allowed: true })
    expect(await ask(ruled, 'smart')).toMatchObject({ allowed: false, rule: 'premium' })
    expect(await ask(ruled, 'fast')).toMatchObject({ allowed: true })
  })
})

describe('a tier rule and a model with no tier', () => {
  const policy: PolicyInput = {
    models: {
      big: { tier: 'premium', price: { input: 1, output: 1 } },
      plain: { price: { input: 1, output: 1 } },
    },
    rules: [
      {
        id: 'premium-daily',
        per: 'user',
        match: { tier: 'premium' },
        limits: { requests: 10 },
        window: 'day',
      },
      { id: 'credits', per: 'user', match: { tier: 'premium' }, limits: { cost: 50 }, balance: true },
    ],
    access: [{ require: { balance: { rule: 'credits', atLeast: 1 } } }],
  }
  const ask = (model: string) => ({
    subject: { user: 'u' },
    model,
    estimate: { inputTokens: 1, maxOutputTokens: 1 },
  })

  it('the balance a premium rule holds never lets an untiered model past access: model_not_allowed', async () => {
    const gate = createTollgate({ policy, store: memoryStore({ clock: fakeClock() }) })
    // the credits balance applies to premium models only: for "plain" there is no balance to require
    expect(await gate.reserve(ask('plain'))).toMatchObject({ allowed: false, code: 'model_not_allowed' })
    expect(await gate.reserve(ask('big'))).toMatchObject({ allowed: true, model: 'big' })
  })

  it('gate.usage lists no premium rule for the untiered model, and both with no model named', async () => {
    const gate = createTollgate({ policy, store: memoryStore({ clock: fakeClock() }) })
    expect(await gate.usage({ subject: { user: 'u' }, model: 'plain' })).toEqual([])
    const rules = (await gate.usage({ subject: { user: 'u' }, model: 'big' })).map((limit) => limit.rule)
    expect(rules.sort()).toEqual(['credits', 'premium-daily'])
    const loose = (await gate.usage({ subject: { user: 'u' } })).map((limit) => limit.rule)
    expect(loose.sort()).toEqual(['credits', 'premium-daily'])
  })
})

describe('the cost a settle charges (mutation audit)', () => {
  const priced: PolicyInput = {
    units: ['images'],
    models: { m: { price: { input: 1, output: 1, units: { images: 0.5 } } } },
    rules: [{ id: 'spend', per: 'user', limits: { cost: 1_000 }, window: 'month' }],
  }
  const reserve = async (gate: ReturnType<typeof createTollgate>) => {
    const d = await gate.reserve({
      subject: { user: 'u' },
      model: 'm',
      estimate: { inputTokens: 1_000_000, maxOutputTokens: 0, units: { images: 2 } },
    })
    if (!d.allowed) throw new Error(d.message)
    return d
  }

  it('is the cost the usage reports, over what the price would make of it', async () => {
    const gate = createTollgate({ policy: priced, clock: fakeClock() })
    const d = await reserve(gate)
    expect(d.reservation.amounts.cost).toBe(2_000_000)
    const settled = await gate.settle(d.id, { inputTokens: 1_000_000, outputTokens: 0, cost: 123 })
    expect(settled.amounts.cost).toBe(123)
  })

  it('prices a unit the usage leaves out at its estimate', async () => {
    const gate = createTollgate({ policy: priced, clock: fakeClock() })
    const d = await reserve(gate)
    // 1M input tokens at 1, and the 2 images estimated at 0.5 each: 2 currency units
    const settled = await gate.settle(d.id, { inputTokens: 1_000_000, outputTokens: 0 })
    expect(settled.amounts).toMatchObject({ images: 2, cost: 2_000_000 })
  })
})

describe('model access that downgrades in a circle (mutation audit)', () => {
  it('refuses at the entry that would go back to a model already tried, naming it', async () => {
    const gate = createTollgate({
      policy: {
        models: { a: { price: { input: 1, output: 1 } }, b: { price: { input: 1, output: 1 } } },
        access: [
          { match: { model: 'a' }, allow: [], otherwise: { downgrade: 'b' } },
          { match: { model: 'b' }, allow: [], otherwise: { downgrade: 'a' } },
        ],
        rules: [{ id: 'day', per: 'user', limits: { requests: 10 }, window: 'day' }],
      },
      clock: fakeClock(),
    })
    expect(await gate.reserve({ subject: { user: 'u' }, model: 'a' })).toMatchObject({
      allowed: false,
      code: 'model_not_allowed',
      rule: 'access.1',
    })
  })
})
