import { readFileSync } from 'node:fs'
import { createTollgate, type PolicyInput, TollgateError } from '@tollgate/core'
import { replaceAt } from '@tollgate/core/testing'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { virtualClock } from '../clock.js'
import { explain } from './explain.js'
import { formatExplanation } from './format.js'
import type { ExplainInput } from './types.js'

const policy: PolicyInput = {
  models: {
    mini: { tier: 'low', price: { input: 1, output: 2 } },
    big: { tier: 'premium', price: { input: 10, output: 20 } },
  },
  plans: { free: { models: ['tier:low'] }, pro: {}, payg: {} },
  access: [
    {
      match: { tier: 'premium' },
      require: { flags: ['vip'], balance: { rule: 'prepaid', atLeast: 5 } },
      otherwise: { downgrade: 'mini' },
    },
  ],
  caps: [{ match: { plan: 'free' }, maxInputTokens: 1000 }],
  rules: [
    { id: 'key-minute', per: 'key', limits: { requests: 5 }, window: 'minute' },
    { id: 'user-day', per: 'user', limits: { tokens: 3000 }, window: 'day', code: 'USER_QUOTA' },
    { id: 'free-day', match: { plan: 'free' }, per: 'user', limits: { requests: 10 }, window: 'day' },
    {
      id: 'big-day',
      match: { model: 'big' },
      per: 'org',
      limits: { tokens: 100 },
      window: 'day',
      fallback: 'mini',
    },
    { id: 'shadow-org', per: 'org', limits: { tokens: 500 }, window: 'day', mode: 'shadow' },
    { id: 'prepaid', match: { plan: 'payg' }, per: 'org', balance: true, limits: { cost: 0 } },
  ],
}
const AT = Date.parse('2026-01-05T12:00:00Z')
const subject = { org: 'acme', user: 'u1', key: 'k1' }
const run = (input: ExplainInput) => explain(policy, input, { at: AT })
const outcomes = (e: Awaited<ReturnType<typeof run>>) => e.steps.map((s) => [s.step, s.label, s.outcome])

describe('explain', () => {
  it('walks caps, model access and limits in evaluation order, each with its verdict', async () => {
    const e = await run({
      subject,
      attributes: { plan: 'pro', flags: ['vip'] },
      model: 'big',
      inputTokens: 500,
      maxOutputTokens: 300,
    })
    expect(outcomes(e)).toEqual([
      ['cap', 'caps.0', 'skip'],
      ['access', 'plans.free', 'skip'],
      ['access', 'access.0', 'pass'],
      ['rule', 'key-minute', 'pass'],
      ['rule', 'user-day', 'pass'],
      ['rule', 'free-day', 'skip'],
      ['rule', 'big-day', 'downgrade'],
      ['rule', 'shadow-org', 'shadow-refuse'],
      ['rule', 'prepaid', 'skip'],
      // the engine decides again for the fallback model: the limits as mini sees them
      ['rule', 'key-minute', 'pass'],
      ['rule', 'user-day', 'pass'],
      ['rule', 'free-day', 'skip'],
      ['rule', 'big-day', 'skip'],
      ['rule', 'shadow-org', 'shadow-refuse'],
      ['rule', 'prepaid', 'skip'],
    ])
    expect(e.steps.slice(-6).every((s) => s.model === 'mini')).toBe(true)
    expect(e).toMatchObject({
      requestedModel: 'big',
      requestedTier: 'premium',
      model: 'big',
      tier: 'premium',
    })
    // 500 × $10/M + 300 × $20/M
    expect(e.estimate).toMatchObject({ requests: 1, tokens: 800, cost: 11_000 })
    const bigDay = e.steps.find((s) => s.label === 'big-day')!
    expect(bigDay.partition).toEqual({ org: 'acme' })
    expect(bigDay.limits).toEqual([
      {
        metric: 'tokens',
        amount: 800,
        cap: 100,
        window: 'per day',
        admits: false,
        code: 'quota_exceeded',
        status: 429,
      },
    ])
    expect(bigDay.detail).toBe('quota_exceeded (429): tokens 800 > 100: serves mini instead (fallback)')
    expect(e.steps.find((s) => s.label === 'free-day')!.reason).toBe('plan "pro", wants free')
    // the engine serves the fallback, and the shadow rule would still refuse it
    expect(e.decision).toEqual({
      allowed: true,
      model: 'mini',
      downgrade: { from: 'big', to: 'mini', reason: 'fallback', rule: 'big-day' },
      warnings: [],
      shadowRules: ['shadow-org'],
      flags: [],
    })
  })

  it('shows an access downgrade and the entries checked again for the new model', async () => {
    const e = await run({
      subject,
      attributes: { plan: 'pro' },
      model: 'big',
      inputTokens: 10,
      maxOutputTokens: 10,
    })
    const access = e.steps.filter((s) => s.step === 'access').map((s) => [s.label, s.model, s.outcome])
    expect(access).toEqual([
      ['plans.free', 'big', 'skip'],
      ['access.0', 'big', 'downgrade'],
      ['plans.free', 'mini', 'skip'],
      ['access.0', 'mini', 'skip'],
    ])
    expect(e.steps[2]!.detail).toBe(
      'needs a flag of [vip] or a "prepaid" balance of at least 5: downgrade to mini',
    )
    expect(e).toMatchObject({ model: 'mini', tier: 'low' })
    expect(e.steps.find((s) => s.label === 'big-day')!.outcome).toBe('skip') // limits see mini
    expect(e.decision).toMatchObject({
      allowed: true,
      model: 'mini',
      downgrade: { reason: 'access', rule: 'access.0' },
    })
  })

  it('reads a balance as its opening balance, and estimates what the engine holds', async () => {
    const payg = await run({ subject, attributes: { plan: 'payg' }, model: 'big', inputTokens: 50 })
    expect(payg.steps.find((s) => s.label === 'access.0')!.outcome).toBe('downgrade') // an empty store holds 0
    const opened = await explain(
      {
        ...policy,
        rules: policy.rules.map((r) => (r.id === 'prepaid' ? { ...r, limits: { cost: 10 } } : r)),
      },
      { subject, attributes: { plan: 'payg' }, model: 'big', inputTokens: 50 },
      { at: AT },
    )
    expect(opened.steps.find((s) => s.label === 'access.0')!.outcome).toBe('pass')

    const input = {
      subject,
      attributes: { plan: 'pro', flags: ['vip'] },
      model: 'big',
      inputTokens: 50,
      maxOutputTokens: 40,
    }
    const e = await run(input)
    expect(e.decision).toMatchObject({ allowed: true, model: 'big', downgrade: null })
    const gate = createTollgate({ policy, clock: virtualClock(AT) })
    const decision = await gate.reserve({ ...input, estimate: { inputTokens: 50, maxOutputTokens: 40 } })
    expect(decision.allowed && decision.reservation.amounts).toEqual(e.estimate)
  })

  it('reads a balance whose rule does not apply to the request as 0, as the engine does (it showed the opening balance)', async () => {
    // the balance rule counts for payg only: a starter workspace's request unlocks nothing with it
    const opened: PolicyInput = {
      ...policy,
      rules: policy.rules.map((r) => (r.id === 'prepaid' ? { ...r, limits: { cost: 10 } } : r)),
    }
    const gate = createTollgate({ policy: opened, clock: virtualClock(AT) })
    for (const [attributes, outcome] of [
      [{ plan: 'pro' }, 'downgrade'],
      [{ plan: 'payg' }, 'pass'],
    ] as const) {
      const input = { subject, attributes, model: 'big', inputTokens: 50, maxOutputTokens: 10 }
      const e = await explain(opened, input, { at: AT })
      expect(e.steps.find((s) => s.label === 'access.0')!.outcome).toBe(outcome)
      const real = await gate.reserve({ ...input, estimate: { inputTokens: 50, maxOutputTokens: 10 } })
      expect(real.allowed && real.model).toBe(outcome === 'pass' ? 'big' : 'mini')
      expect(e.decision).toMatchObject({ allowed: true, model: outcome === 'pass' ? 'big' : 'mini' })
    }
    // the counter cannot be read without the rule's partition: 0 as well
    const orgless = await explain(
      opened,
      { subject: { user: 'u1', key: 'k1' }, attributes: { plan: 'payg' }, model: 'big' },
      { at: AT },
    )
    expect(orgless.steps.find((s) => s.label === 'access.0')!.outcome).toBe('downgrade')
  })

  it('reports a per-call cap refusal and a missing partition dimension', async () => {
    const capped = await run({ subject, attributes: { plan: 'free' }, model: 'mini', inputTokens: 2000 })
    expect(capped.steps[0]).toMatchObject({
      label: 'caps.0',
      outcome: 'refuse',
      detail: expect.stringContaining('2000 input tokens > 1000'),
    })
    expect(capped.decision).toMatchObject({
      allowed: false,
      code: 'request_too_large',
      status: 413,
      rule: 'caps.0',
    })

    const keyless = await run({
      subject: { org: 'acme', user: 'u1' },
      attributes: { plan: 'pro' },
      model: 'mini',
    })
    expect(keyless.steps.find((s) => s.label === 'key-minute')).toMatchObject({ outcome: 'invalid' })
    expect(keyless.decision).toMatchObject({ allowed: false, error: 'invalid_subject' })
  })

  it('agrees with the engine on the refusing rule and its code', async () => {
    const e = await run({
      subject,
      attributes: { plan: 'pro' },
      model: 'mini',
      inputTokens: 2900,
      maxOutputTokens: 200,
    })
    expect(e.steps.filter((s) => s.outcome === 'refuse').map((s) => s.label)).toEqual(['user-day'])
    expect(e.decision).toMatchObject({ allowed: false, code: 'USER_QUOTA', status: 429, rule: 'user-day' })
  })

  it('labels a balance rule with a circuit circuit_open, the code the engine refuses with', async () => {
    const circuit: PolicyInput = {
      models: { big: { tier: 'premium', price: { input: 1, output: 1 } } },
      rules: [
        { id: 'credits', per: 'user', limits: { cost: 0 }, balance: true, circuit: { cooldown: '1m' } },
      ],
    }
    const input = { subject: { user: 'u' }, model: 'big', inputTokens: 1000 }
    const e = await explain(circuit, input, { at: AT })
    const step = e.steps.find((s) => s.label === 'credits')!
    expect(step.outcome).toBe('refuse')
    expect(step.limits?.map((l) => l.code)).toEqual(['circuit_open'])
    const engine = await createTollgate({ policy: circuit, clock: virtualClock(AT) }).reserve({
      ...input,
      estimate: { inputTokens: 1000 },
    })
    expect(engine).toMatchObject({ allowed: false, code: 'circuit_open' })
    expect(e.decision).toMatchObject({ allowed: false, code: 'circuit_open', rule: 'credits' })
  })

  it('lets a balance of exactly require.balance.atLeast through the access entry, as the engine does', async () => {
    const exact = (opening: number): PolicyInput => ({
      models: { big: { tier: 'premium', price: { input: 1, output: 1 } } },
      access: [{ require: { balance: { rule: 'credits', atLeast: 5 } }, otherwise: 'refuse' }],
      rules: [{ id: 'credits', per: 'user', limits: { cost: opening }, balance: true }],
    })
    for (const [opening, outcome] of [
      [5, 'pass'],
      [4, 'refuse'],
    ] as const) {
      const input = { subject: { user: 'u' }, model: 'big' }
      const e = await explain(exact(opening), input, { at: AT })
      expect(
        e.steps.filter((s) => s.step === 'access').map((s) => [s.label, s.outcome]),
        `${opening}`,
      ).toEqual([['access.0', outcome]])
      const engine = await createTollgate({ policy: exact(opening), clock: virtualClock(AT) }).reserve(input)
      expect(engine.allowed, `${opening}`).toBe(outcome === 'pass')
      expect(e.decision.allowed, `${opening}`).toBe(outcome === 'pass')
    }
  })

  it('refuses a downgrade to a model already tried (here the one asked for), as the engine does', async () => {
    const loop: PolicyInput = {
      models: {
        big: { tier: 'premium', price: { input: 1, output: 1 } },
        small: { price: { input: 0.1, output: 0.1 } },
      },
      access: [{ allow: ['small'], otherwise: { downgrade: 'big' } }],
      rules: [],
    }
    const input = { subject: { user: 'u' }, model: 'big' }
    const e = await explain(loop, input, { at: AT })
    const access = e.steps.filter((s) => s.step === 'access')
    expect(access.map((s) => [s.label, s.model, s.outcome])).toEqual([['access.0', 'big', 'refuse']])
    expect(access[0]!.detail).toContain('model_not_allowed')
    expect(access[0]!.detail).not.toContain('downgrade to')
    const engine = await createTollgate({ policy: loop, clock: virtualClock(AT) }).reserve(input)
    expect(engine).toMatchObject({ allowed: false, code: 'model_not_allowed' })
    expect(e.decision).toMatchObject({ allowed: false, code: 'model_not_allowed' })
  })

  it('enforces a canary for a target named by a dimension outside its per, as the engine does', async () => {
    const canary: PolicyInput = {
      rules: [
        {
          id: 'canary',
          per: ['project', 'user'],
          limits: { requests: 0 },
          window: 'day',
          rollout: { sample: 0, targets: [{ org: 'acme' }] },
        },
      ],
    }
    for (const org of ['acme', 'other']) {
      const e = await explain(canary, { subject: { org, project: 'p', user: 'u' } }, { at: AT })
      const gate = createTollgate({ policy: canary })
      const engine = await gate.reserve({ subject: { org, project: 'p', user: 'u' } })
      expect(e.decision.allowed, org).toBe(engine.allowed)
      expect(e.decision.allowed, org).toBe(org !== 'acme')
    }
  })

  it('formats the steps under the evaluation order headings', async () => {
    const e = await run({
      subject,
      attributes: { plan: 'pro' },
      model: 'big',
      inputTokens: 10,
      maxOutputTokens: 10,
    })
    const text = formatExplanation(e, 'USD')
    const order = ['1. Per-call caps', '2. Model access', 'then, for mini:', '3. Limits', 'Decision']
    const positions = order.map((heading) => text.indexOf(heading))
    expect(positions.every((p) => p >= 0)).toBe(true)
    expect([...positions].sort((a, b) => a - b)).toEqual(positions)
    expect(text).toContain(
      'Request at 2026-01-05T12:00:00Z: model big (tier premium); limits see mini (tier low)',
    )
    expect(text).toContain('user-day: pass — admits')
    expect(text).toContain('tokens: 20 of 3,000 per day → admits')
    expect(text).toContain('allowed, model mini (access downgrade from big by access.0)')
  })

  it('names a request without a model "(none)" in the decision too', async () => {
    const text = formatExplanation(
      await explain({ rules: [policy.rules[0]!] }, { subject }, { at: AT }),
      'USD',
    )
    expect(text).toContain('Request at 2026-01-05T12:00:00Z: model (none)')
    expect(text.endsWith('  allowed, model (none)')).toBe(true)
  })

  it('reads a model the policy names by its alias as that model, as the engine does', async () => {
    const aliased: PolicyInput = {
      ...policy,
      aliases: { fast: 'mini', smart: 'big' },
      access: [{ match: { model: 'smart' }, require: { flags: ['vip'] }, otherwise: { downgrade: 'fast' } }],
      rules: [
        { id: 'smart-day', per: 'user', match: { model: ['smart'] }, limits: { requests: 1 }, window: 'day' },
      ],
    }
    const e = await explain(aliased, { subject, model: 'big' }, { at: AT })
    expect(e.decision).toMatchObject({ allowed: true, model: 'mini', downgrade: { to: 'mini' } })
    expect(e.steps.find((s) => s.label === 'access.0')).toMatchObject({
      applies: true,
      outcome: 'downgrade',
      reason: 'model "big"',
    })
    const direct = await explain({ ...aliased, access: [] }, { subject, model: 'smart' }, { at: AT })
    expect(direct.steps.find((s) => s.label === 'smart-day')).toMatchObject({
      applies: true,
      reason: 'model "big"',
    })
  })
})

describe('explain on requests of any shape', () => {
  const scenario = readFileSync(
    new URL('../../../../examples/policies/s2-saas-plans.yaml', import.meta.url),
    'utf8',
  )
  const request = {
    subject: { tenant: 't1', org: 'o1', project: 'p1', user: 'u1' },
    attributes: { plan: 'pro' },
    model: 'gpt-4o',
    feature: 'chat',
    estimate: { inputTokens: 100, maxOutputTokens: 50 },
  }

  it('a request the engine refuses as malformed is explained by that refusal (it threw a TypeError)', async () => {
    for (const subject of [null, 'u1', 5]) {
      const explanation = await explain(scenario, { ...request, subject } as never)
      expect(explanation).toMatchObject({ steps: [], decision: { allowed: false, error: 'invalid_subject' } })
      const text = formatExplanation(explanation, 'USD')
      expect(text).toContain('invalid_subject')
      // no sections that would say the policy has no rules, nor an estimate of "undefined" tokens
      expect(text).toMatch(/malformed: no rule is walked/)
      expect(text).not.toMatch(/none in the policy|undefined/)
    }
    const negative = await explain(scenario, { ...request, estimate: { inputTokens: -1 } })
    expect(formatExplanation(negative, 'USD')).toMatch(
      /malformed: no rule is walked[\s\S]*error invalid_amount: estimate\.inputTokens/,
    )
    await expect(explain(scenario, null as never)).rejects.toMatchObject({ code: 'invalid_request' })
    await expect(explain(scenario, request, { at: 1e20 })).rejects.toMatchObject({ code: 'invalid_request' })
    // an `at` of no prototype made the message itself throw a TypeError
    const at = Object.create(null)
    await expect(explain(scenario, request, { at })).rejects.toMatchObject({ code: 'invalid_request' })
  })

  it('any JSON value anywhere in the request is explained and printed, or refused with a TollgateError', async () => {
    const json = fc.anything({ maxDepth: 2 }).map((v) => JSON.parse(JSON.stringify(v) ?? 'null') as unknown)
    await fc.assert(
      fc.asyncProperty(fc.array(fc.nat(20), { maxLength: 4 }), json, async (path, value) => {
        try {
          formatExplanation(await explain(scenario, replaceAt(request, path, value) as never), 'USD')
          return true
        } catch (error) {
          return TollgateError.isInstance(error)
        }
      }),
      { numRuns: 300 },
    )
  }, 30_000)
})
