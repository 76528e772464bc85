import { describe, expect, it, vi } from 'vitest'
import { TollgateError } from '../errors.js'
import type { PolicyInput } from '../policy/schema.js'
import type { ReservationMeta } from '../store/contract.js'
import { memoryStore } from '../store/memory/store.js'
import { fakeClock } from '../testing/fake-clock.js'
import { unhandledRejections } from '../testing/unhandled.js'
import type { SettleRecord } from './audit.js'
import { createEngine } from './context.js'
import { createTollgate } from './gate.js'
import type { ReserveRequest } from './types.js'

const models = {
  'gpt-4o-mini': { tier: 'low', price: { input: 0.15, output: 0.6, cachedInput: 0.075 } },
  'gpt-4o': { tier: 'frontier', price: { input: 2.5, output: 10 } },
}
const base: PolicyInput = {
  models,
  rules: [
    { id: 'user-day', per: 'user', limits: { requests: 3, tokens: 1000 }, window: 'day' },
    { id: 'user-minute', per: 'user', limits: { requests: 2 }, window: '60s' },
    { id: 'project-budget', per: 'project', limits: { cost: 1 }, window: 'month' },
  ],
}
const ask = (extra: Partial<ReserveRequest> = {}): ReserveRequest => ({
  subject: { user: 'u1', project: 'p1' },
  model: 'gpt-4o-mini',
  estimate: { inputTokens: 100, maxOutputTokens: 100 },
  ...extra,
})
const setup = (policy: PolicyInput = base) => {
  const clock = fakeClock()
  const store = memoryStore({ clock })
  return { clock, store, gate: createTollgate({ policy, store }) }
}

describe('reserve', () => {
  it('holds the estimate on every matched counter, and a denial changes none', async () => {
    const { gate } = setup()
    const first = await gate.reserve(ask())
    expect(first.allowed).toBe(true)
    const before = await gate.usage(ask())
    // 950 tokens would pass the daily 1000 (200 held): refused, nothing moves
    const big = await gate.reserve(ask({ estimate: { inputTokens: 850, maxOutputTokens: 100 } }))
    expect(big).toMatchObject({ allowed: false, code: 'quota_exceeded', rule: 'user-day' })
    expect(await gate.usage(ask())).toEqual(before)
    expect(before.find((l) => l.rule === 'user-day' && l.metric === 'tokens')).toMatchObject({
      used: 200,
      held: 200,
    })
  })

  it('lists every violated limit and makes the longest wait primary, so Retry-After never lies', async () => {
    const { gate, clock } = setup()
    await gate.reserve(ask())
    clock.advance('70s')
    await gate.reserve(ask())
    clock.advance('10s')
    await gate.reserve(ask())
    clock.advance('5s') // the day has its 3 requests, the last minute its 2
    const refused = await gate.reserve(ask())
    expect(refused.allowed).toBe(false)
    if (refused.allowed) return
    expect(refused.violations.map((v) => v.rule).sort()).toEqual(['user-day', 'user-minute'])
    expect(refused.rule).toBe('user-day') // resets at midnight, long after the minute frees up
    expect(refused.retryAfterMs).toBe(refused.violations[0]!.retryAfterMs)
    expect(refused.violations[0]!.retryAfterMs!).toBeGreaterThan(refused.violations[1]!.retryAfterMs!)
  })

  it('follows the evaluation order: blocks, then per-call caps, then model access, then limits', async () => {
    const policy: PolicyInput = {
      ...base,
      caps: [{ maxInputTokens: 500 }],
      access: [{ allow: ['gpt-4o-mini'] }],
    }
    const { gate } = setup(policy)
    const everythingWrong = ask({ model: 'gpt-4o', estimate: { inputTokens: 5_000, maxOutputTokens: 100 } })
    await gate.block('user', 'u1', 'key_revoked')
    expect(await gate.reserve(everythingWrong)).toMatchObject({ code: 'key_revoked', status: 403 })
    await gate.unblock('user', 'u1')
    expect(await gate.reserve(everythingWrong)).toMatchObject({ code: 'request_too_large', status: 413 })
    expect(await gate.reserve(ask({ model: 'gpt-4o' }))).toMatchObject({
      code: 'model_not_allowed',
      status: 403,
    })
  })

  it('refuses a block without a dimension, or with a code no rule could have, and changes nothing', async () => {
    const { gate } = setup(base)
    const refused = async (call: Promise<void>, code: string) => {
      const error = await call.catch((e: unknown) => e)
      expect(TollgateError.isInstance(error) && error.code).toBe(code)
    }
    await refused(gate.block('', 'u1', 'x'), 'invalid_subject')
    for (const code of ['', 'has space', 'x'.repeat(129), 'line\nbreak', 5 as unknown as string])
      await refused(gate.block('user', 'u1', code), 'invalid_request')
    expect(await gate.reserve(ask())).toMatchObject({ allowed: true })
    await gate.block('user', 'u1', `A_z.0-${'x'.repeat(122)}`) // 128 characters
    expect(await gate.reserve(ask())).toMatchObject({ allowed: false, code: `A_z.0-${'x'.repeat(122)}` })
  })

  it('keeps ids with separators, braces and Unicode apart, across dimensions and rules', async () => {
    const policy: PolicyInput = {
      rules: [
        { id: 'per-user', per: 'user', limits: { requests: 1 }, window: 'day' },
        { id: 'per-pair', per: ['org', 'user'], limits: { requests: 1 }, window: 'day' },
      ],
    }
    const { gate } = setup(policy)
    const subjects = [
      { org: 'a', user: 'b,user=c' },
      { org: 'a,user=b', user: 'c' },
      { org: 'a:b', user: 'c:' },
      { org: 'a', user: 'b:c' },
      { org: '{x}', user: '%007b' },
      { org: '{x}', user: '{' },
      { org: 'é', user: 'e\u0301' },
      { org: '\ud800', user: '\udc00' },
      { org: 'z', user: 'é' },
      { org: 'z', user: 'line\nbreak' },
    ]
    for (const subject of subjects) expect((await gate.reserve({ subject })).allowed).toBe(true)
    for (const subject of subjects) expect((await gate.reserve({ subject })).allowed).toBe(false)
  })

  it('refuses bad input with a typed error before any counter moves', async () => {
    const { gate } = setup()
    const bad: unknown[] = [
      { ...ask(), estimate: { inputTokens: Number.NaN } },
      { ...ask(), estimate: { inputTokens: -1 } },
      { ...ask(), estimate: { inputTokens: Number.POSITIVE_INFINITY } },
      { ...ask(), estimate: { maxOutputTokens: 1e13 } },
      { ...ask(), estimate: { inputTokens: 1.5 } },
      { ...ask(), estimate: { inputTokens: '100' } },
      { ...ask(), estimate: { units: { images: -2 } } },
      { ...ask(), subject: { user: '' } },
      { ...ask(), subject: { user: 42 } },
      { ...ask(), subject: { user: 'x'.repeat(20_000) } },
      { ...ask(), subject: null },
      { ...ask(), model: '' },
      { ...ask(), subject: { project: 'p1' } }, // rule user-day needs a user
      null,
    ]
    for (const request of bad) {
      const error = await gate.reserve(request as ReserveRequest).catch((e: unknown) => e)
      expect(TollgateError.isInstance(error), JSON.stringify(request)?.slice(0, 80)).toBe(true)
      expect((error as TollgateError).status).toBe(400)
    }
    const usage = await gate.usage(ask())
    expect(usage.every((l) => l.used === 0)).toBe(true)
  })

  it('serves shadow rules without refusing, and enforces a canary only on its targets', async () => {
    const policy: PolicyInput = {
      rules: [
        { id: 'shadowed', per: 'user', limits: { requests: 1 }, window: 'day', mode: 'shadow' },
        {
          id: 'canary',
          per: 'org',
          limits: { requests: 1 },
          window: 'day',
          rollout: { sample: 0, targets: [{ org: 'acme' }] },
        },
      ],
    }
    const { gate } = setup(policy)
    const other = { subject: { org: 'other', user: 'u' } }
    await gate.reserve(other)
    const second = await gate.reserve(other)
    expect(second).toMatchObject({ allowed: true })
    expect(second.shadowViolations.map((v) => v.rule).sort()).toEqual(['canary', 'shadowed'])
    const acme = { subject: { org: 'acme', user: 'v' } }
    await gate.reserve(acme)
    expect(await gate.reserve(acme)).toMatchObject({ allowed: false, rule: 'canary' })
  })

  it('samples a canary by partition, stable across calls', async () => {
    const policy: PolicyInput = {
      rules: [{ id: 'half', per: 'user', limits: { requests: 0 }, window: 'day', rollout: { sample: 0.5 } }],
    }
    const { gate } = setup(policy)
    let enforced = 0
    for (let i = 0; i < 400; i++) {
      const first = await gate.reserve({ subject: { user: `user-${i}` } })
      const again = await gate.reserve({ subject: { user: `user-${i}` } })
      expect(again.allowed).toBe(first.allowed)
      if (!first.allowed) enforced++
    }
    expect(enforced).toBeGreaterThan(150)
    expect(enforced).toBeLessThan(250)
  })

  it('enforces a canary on targets named by a dimension outside its per (the docs’ { org: acme })', async () => {
    // compared with the partition alone ({ project, user }), the target never matched
    const policy: PolicyInput = {
      rules: [
        {
          id: 'canary',
          per: ['project', 'user'],
          limits: { requests: 1 },
          window: 'day',
          rollout: { sample: 0, targets: [{ org: 'acme' }] },
        },
      ],
    }
    const { gate } = setup(policy)
    for (const org of ['acme', 'other']) {
      const ask = { subject: { org, project: 'p', user: 'u' } }
      await gate.reserve(ask)
      expect((await gate.reserve(ask)).allowed, org).toBe(org !== 'acme')
    }
  })

  it('samples sequential ids as evenly as any others', async () => {
    // FNV-1a without a final mix took 22% of u1…u20000 for a 25% sample (10 standard deviations off)
    const policy: PolicyInput = {
      rules: [
        { id: 'quarter', per: 'user', limits: { requests: 0 }, window: 'day', rollout: { sample: 0.25 } },
      ],
    }
    const { gate } = setup(policy)
    for (const name of [(i: number) => `u${i}`, (i: number) => `ws_${String(i).padStart(5, '0')}`]) {
      let enforced = 0
      for (let i = 0; i < 4000; i++)
        if (!(await gate.reserve({ subject: { user: name(i) } })).allowed) enforced++
      // 4 standard deviations (27 of 4000) either side of 1000
      expect(Math.abs(enforced - 1000), name(7)).toBeLessThan(110)
    }
  })

  it('handles models without a price as the policy says, never as free', async () => {
    const rules: PolicyInput['rules'] = [{ id: 'budget', per: 'user', limits: { cost: 1 }, window: 'day' }]
    const denyGate = setup({ models, rules }).gate
    expect(await denyGate.reserve(ask({ model: 'mystery-1' }))).toMatchObject({
      allowed: false,
      code: 'model_not_allowed',
    })
    const flat = setup({ models, rules, unpriced: { action: 'reserve', amount: 0.4 } }).gate
    expect(await flat.reserve(ask({ model: 'mystery-1' }))).toMatchObject({
      allowed: true,
      reservation: { amounts: { cost: 400_000 } },
    })
    expect((await flat.reserve(ask({ model: 'mystery-1' }))).allowed).toBe(true)
    expect((await flat.reserve(ask({ model: 'mystery-1' }))).allowed).toBe(false)
    const flag = setup({ models, rules, unpriced: { action: 'flag' } }).gate
    expect(await flag.reserve(ask({ model: 'mystery-1' }))).toMatchObject({
      allowed: true,
      flags: ['unpriced_model'],
    })
  })
})

describe('model access', () => {
  it('counts a balance only for requests its rule applies to', async () => {
    const policy: PolicyInput = {
      models: { ...models, o1: { tier: 'premium', price: { input: 15, output: 60 } } },
      access: [
        {
          match: { tier: 'premium' },
          require: { balance: { rule: 'wallet', atLeast: 100 } },
          otherwise: { downgrade: 'gpt-4o' },
        },
      ],
      rules: [{ id: 'wallet', match: { plan: 'payg' }, per: 'org', balance: true, limits: { cost: 200 } }],
    }
    const { gate } = setup(policy)
    const o1 = { subject: { org: 'acme' }, model: 'o1', estimate: { inputTokens: 10, maxOutputTokens: 10 } }
    expect(await gate.reserve({ ...o1, attributes: { plan: 'payg' } })).toMatchObject({
      allowed: true,
      model: 'o1',
    })
    expect(await gate.reserve({ ...o1, attributes: { plan: 'starter' } })).toMatchObject({
      allowed: true,
      model: 'gpt-4o',
    })
  })
})

describe('settle and release', () => {
  it('charges the actual usage, returns the unused part, and reports overrun and overdraft', async () => {
    const { gate } = setup()
    const d = await gate.reserve(ask({ estimate: { inputTokens: 300, maxOutputTokens: 300 } }))
    const settled = await gate.settle(d.id, { inputTokens: 300, outputTokens: 100 })
    expect(settled).toMatchObject({ status: 'settled', late: false, overrun: {}, overdraft: [] })
    expect(
      (await gate.usage(ask())).find((l) => l.rule === 'user-day' && l.metric === 'tokens'),
    ).toMatchObject({ used: 400, held: 0 })
    const e = await gate.reserve(ask({ estimate: { inputTokens: 100, maxOutputTokens: 100 } }))
    const over = await gate.settle(e.id, { inputTokens: 100, outputTokens: 700 })
    expect(over.overrun).toMatchObject({ outputTokens: 600, tokens: 600 })
    expect(over.overdraft).toEqual([{ rule: 'user-day', metric: 'tokens', amount: 200 }])
  })

  it('reports overrun of cost and custom units, never of requests', async () => {
    const gate = createTollgate({
      policy: {
        units: ['images'],
        models: { m: { price: { input: 1, output: 2, units: { images: 40 } } } },
        rules: [{ id: 'spend', per: 'user', limits: { cost: 100, images: 10 }, window: 'day' }],
      },
      clock: fakeClock(),
    })
    const request = {
      subject: { user: 'u' },
      model: 'm',
      estimate: { inputTokens: 10, units: { images: 1 } },
    }
    const d = await gate.reserve({ ...request, estimate: { ...request.estimate, maxOutputTokens: 10 } })
    if (!d.allowed) throw new Error(`refused: ${d.code}`)
    const settled = await gate.settle(d.id, { inputTokens: 10, outputTokens: 5, units: { images: 3 } })
    expect(settled.overrun).toEqual({ images: 2, cost: settled.amounts.cost! - d.reservation.amounts.cost! })
    expect(settled.overrun.cost).toBeGreaterThan(0)
    expect(settled.overrun).not.toHaveProperty('requests')
  })

  it('is idempotent: a duplicate settle or release changes nothing', async () => {
    const { gate } = setup()
    const d = await gate.reserve(ask())
    await gate.settle(d.id, { inputTokens: 10, outputTokens: 10 })
    const after = await gate.usage(ask())
    expect(await gate.settle(d.id, { inputTokens: 500, outputTokens: 500 })).toMatchObject({
      status: 'duplicate',
    })
    expect(await gate.release(d.id)).toMatchObject({ status: 'duplicate' })
    expect(await gate.usage(ask())).toEqual(after)
    expect(await gate.settle('no-such-id')).toMatchObject({ status: 'unknown' })
    await expect(gate.settle(d.id, { outputTokens: Number.NaN })).rejects.toMatchObject({
      code: 'invalid_amount',
    })
  })

  it('prices cached input tokens at the cached price', async () => {
    const { gate } = setup({ models, rules: [base.rules[2]!] })
    const d = await gate.reserve(ask({ estimate: { inputTokens: 1_000_000, maxOutputTokens: 0 } }))
    expect(d).toMatchObject({ reservation: { amounts: { cost: 150_000 } } })
    const settled = await gate.settle(d.id, {
      inputTokens: 1_000_000,
      cachedInputTokens: 1_000_000,
      outputTokens: 0,
    })
    expect(settled.amounts.cost).toBe(75_000)
  })

  it('settles from another gate sharing the store (the reservation is looked up by id)', async () => {
    const clock = fakeClock()
    const store = memoryStore({ clock })
    const a = createTollgate({ policy: base, store })
    const b = createTollgate({ policy: base, store })
    const d = await a.reserve(ask())
    expect(await b.settle(d.id, { inputTokens: 50, outputTokens: 50 })).toMatchObject({ status: 'settled' })
    expect(await a.settle(d.id, { inputTokens: 50, outputTokens: 50 })).toMatchObject({ status: 'duplicate' })
  })

  it('keeps an unsettled hold charged after it expires, and trues it up on a late settle', async () => {
    const { gate, clock } = setup({ ...base, defaults: { holds: { ttl: '5m' } } })
    const d = await gate.reserve(ask({ estimate: { inputTokens: 100, maxOutputTokens: 300 } }))
    clock.advance('6m')
    const tokens = async () =>
      (await gate.usage(ask())).find((l) => l.rule === 'user-day' && l.metric === 'tokens')
    expect(await tokens()).toMatchObject({ used: 400, held: 0 })
    expect(await gate.settle(d.id, { inputTokens: 100, outputTokens: 20 })).toMatchObject({
      status: 'settled',
      late: true,
    })
    expect(await tokens()).toMatchObject({ used: 120 })
  })
})

describe('run', () => {
  it('settles what the call reported, releases when it throws first, and throws refusals', async () => {
    const { gate } = setup()
    const value = await gate.run(ask(), async ({ model, report }) => {
      report({ inputTokens: 100, outputTokens: 5 })
      return `called ${model}`
    })
    expect(value).toBe('called gpt-4o-mini')
    await expect(
      gate.run(ask(), async () => {
        throw new Error('provider down')
      }),
    ).rejects.toThrow('provider down')
    const tokens = (await gate.usage(ask())).find((l) => l.rule === 'user-day' && l.metric === 'tokens')
    expect(tokens).toMatchObject({ used: 105, held: 0 })
    await gate.run(ask(), () => 1)
    const refusal = await gate.run(ask(), () => 1).catch((e: unknown) => e)
    expect(TollgateError.isInstance(refusal) && refusal.decision?.rule).toBe('user-minute')
  })

  it('refuses a bad usage report where it is made, and never leaves the reservation open', async () => {
    const { gate, clock } = setup()
    const tokens = async () =>
      (await gate.usage(ask())).find((l) => l.rule === 'user-day' && l.metric === 'tokens')
    // the report throws inside the call; the call was made, so the estimate (200 tokens) is charged
    const thrown = await gate
      .run(ask(), async ({ report }) => {
        report({ inputTokens: Number.NaN })
        return 'unreachable'
      })
      .catch((e: unknown) => e)
    expect(thrown).toMatchObject({ code: 'invalid_amount' })
    expect(await tokens()).toMatchObject({ used: 200, held: 0 })
    // caught by the call, which reports again: the good report is what is settled
    clock.advance('61s')
    const value = await gate.run(ask(), async ({ report }) => {
      expect(() => report({ outputTokens: -1 })).toThrow(/usage\.outputTokens/)
      report({ inputTokens: 10, outputTokens: 20 })
      return 'ok'
    })
    expect(value).toBe('ok')
    expect(await tokens()).toMatchObject({ used: 230, held: 0 })
  })
})

describe('admin', () => {
  it('overrides one partition’s cap at run time, in the store', async () => {
    const { gate } = setup()
    await gate.override({ rule: 'user-minute', subject: { user: 'u1' } }, 10)
    for (let i = 0; i < 3; i++) expect((await gate.reserve(ask())).allowed).toBe(true)
    expect(await gate.reserve(ask({ subject: { user: 'u2', project: 'p1' } }))).toMatchObject({
      allowed: true,
    })
    await gate.override({ rule: 'project-budget', subject: { project: 'p1' } }, 0)
    expect(await gate.reserve(ask())).toMatchObject({ allowed: false, code: 'budget_exceeded', status: 402 })
    await expect(gate.override({ rule: 'nope', subject: {} }, 1)).rejects.toMatchObject({
      code: 'unknown_rule',
    })
    await expect(gate.override({ rule: 'user-day', subject: { user: 'u1' } }, 1)).rejects.toMatchObject({
      code: 'invalid_request',
    })
  })

  it('with a tenant, overrides the partition of the tenant named only', async () => {
    // the same user id in two orgs is two users: capping one leaves the other alone
    const { gate } = setup({
      tenant: 'org',
      rules: [{ id: 'user-day', per: 'user', limits: { requests: 5 }, window: 'day' }],
    })
    const u1 = (org: string) => ({ subject: { org, user: 'u1' } })
    await gate.override({ rule: 'user-day', subject: { org: 'a', user: 'u1' } }, 1)
    expect(await gate.reserve(u1('a'))).toMatchObject({ allowed: true })
    expect(await gate.reserve(u1('a'))).toMatchObject({ allowed: false, rule: 'user-day' })
    for (let i = 0; i < 5; i++) expect(await gate.reserve(u1('b'))).toMatchObject({ allowed: true })
    expect(await gate.reserve(u1('b'))).toMatchObject({ allowed: false, rule: 'user-day' })
    expect((await gate.usage(u1('a')))[0]).toMatchObject({ limit: 1, used: 1 })
    expect((await gate.usage(u1('b')))[0]).toMatchObject({ limit: 5, used: 5 })
  })

  it('overrides the counter a reserve counts in: a model by its alias, a rule per model shared by tenants', async () => {
    const { gate } = setup({
      tenant: 'org',
      models: { 'gpt-4o-mini': { aliases: ['fast'] } },
      rules: [{ id: 'per-model', per: 'model', limits: { requests: 1 }, window: 'day' }],
    })
    const call = (org: string, model: string) => ({ subject: { org, user: 'u' }, model })
    // no tenant needed (the counter is every tenant's), and the alias names the model
    await gate.override({ rule: 'per-model', subject: { model: 'fast' } }, 3)
    expect(await gate.reserve(call('a', 'fast'))).toMatchObject({ allowed: true })
    expect(await gate.reserve(call('b', 'gpt-4o-mini'))).toMatchObject({ allowed: true })
    expect(await gate.reserve(call('a', 'gpt-4o-mini'))).toMatchObject({ allowed: true })
    expect(await gate.reserve(call('b', 'fast'))).toMatchObject({ allowed: false, rule: 'per-model' })
    expect((await gate.usage(call('a', 'fast')))[0]).toMatchObject({ limit: 3, used: 3 })
  })
})

describe('money overrides', () => {
  it('take any amount a policy could state (0 to 1e9 currency units), and name the unit when refused', async () => {
    const { gate } = setup({
      rules: [{ id: 'spend', per: 'project', limits: { cost: 5_000_000 }, window: 'month' }],
    })
    const ref = { rule: 'spend', subject: { project: 'p1' } }
    await gate.override(ref, 2_000_000)
    const cap = async () => (await gate.usage(ask())).find((u) => u.rule === 'spend')
    expect(await cap()).toMatchObject({ limit: 2_000_000 * 1e6 }) // usage counts money in micro-units
    await gate.override(ref, 1e9)
    expect(await cap()).toMatchObject({ limit: 1e15 })
    for (const bad of [1e9 + 1, -1, Number.NaN, '5'])
      await expect(gate.override(ref, bad as never)).rejects.toMatchObject({
        code: 'invalid_amount',
        message: expect.stringContaining('from 0 to 1e9 currency units'),
      })
    expect(await cap()).toMatchObject({ limit: 1e15 })
  })
})

describe('credit', () => {
  it('takes 0.000001 to 1e9 currency units; less would round to a credit of nothing', async () => {
    const { gate } = setup({
      currency: 'USD',
      rules: [{ id: 'prepaid', per: 'project', balance: true, limits: { cost: 0 } }],
    })
    const ref = { rule: 'prepaid', subject: { project: 'p1' } }
    expect(await gate.credit(ref, 0.000001)).toEqual({ balance: 1 }) // micro-units
    for (const bad of [0.0000004, 0, -1, 1e9 + 1, Number.NaN, '5'])
      await expect(gate.credit(ref, bad as never)).rejects.toMatchObject({
        code: 'invalid_amount',
        message: 'credit an amount from 0.000001 up to 1e9 currency units',
      })
    expect(await gate.credit(ref, 999_999_999.999999)).toEqual({ balance: 1e15 })
  })

  it('never lets a balance grow past 1e9 currency units (past it, small charges stopped counting)', async () => {
    const { gate } = setup({
      currency: 'USD',
      rules: [{ id: 'prepaid', per: 'project', balance: true, limits: { cost: 0 } }],
    })
    const ref = { rule: 'prepaid', subject: { project: 'p1' } }
    for (let i = 1; i <= 10; i++) expect(await gate.credit(ref, 1e8)).toEqual({ balance: i * 1e14 })
    await expect(gate.credit(ref, 0.000001)).rejects.toMatchObject({
      code: 'invalid_amount',
      message: expect.stringContaining('at most 1e9 currency units'),
    })
    expect((await gate.usage({ subject: { project: 'p1' } }))[0]).toMatchObject({ remaining: 1e15 })
  })
})

describe('malformed input', () => {
  /** The error code and message `f` is refused with; throws unless it is a TollgateError. */
  const refusal = async (f: () => Promise<unknown>) => {
    try {
      await f()
    } catch (error) {
      if (!TollgateError.isInstance(error)) throw error
      return `${error.code}: ${error.message}`
    }
    return 'accepted'
  }
  const cycle: Record<string, unknown> = {}
  cycle.self = cycle

  it('refuses a counter reference or a top query that is not one, with a typed error', async () => {
    const { gate } = setup()
    const hostile = [undefined, null, 5, 'user-day', Symbol('s'), 1n]
    for (const value of hostile) {
      const as = value as never
      expect(await refusal(() => gate.override(as, 3))).toMatch(/^invalid_request: the counter must be/)
      expect(await refusal(() => gate.top(as))).toMatch(/^invalid_request: the query must be/)
      if (typeof value === 'string') continue // a valid id below
      const ref = { rule: 'user-day', metric: 'requests', subject: { user: 'u1' } }
      expect(await refusal(() => gate.override({ ...ref, rule: as }, 3))).toMatch(
        /^invalid_request: the counter\.rule/,
      )
      if (value !== undefined)
        expect(await refusal(() => gate.override({ ...ref, metric: as }, 3))).toMatch(
          /^invalid_request: the counter\.metric/,
        )
      expect(await refusal(() => gate.override({ ...ref, subject: as }, 3))).toMatch(
        /^invalid_subject: subject/,
      )
      expect(await refusal(() => gate.override({ ...ref, subject: { user: as } }, 3))).toMatch(
        /^invalid_subject: subject\.user/,
      )
      expect(
        await refusal(() => gate.top({ rule: 'user-day', metric: 'requests', where: { user: as } })),
      ).toMatch(/^invalid_subject: where\.user/)
    }
    // nothing was overridden: the caps are the policy's
    const usage = await gate.usage(ask())
    expect(usage.find((u) => u.rule === 'user-day' && u.metric === 'requests')).toMatchObject({ limit: 3 })
    expect(
      await refusal(() => gate.top({ rule: 'user-day', metric: 'requests', where: null as never })),
    ).toBe('accepted')
  })

  it('refuses a custom unit named like a builtin metric, which would replace its amount', async () => {
    const { gate } = setup()
    const before = await gate.usage(ask())
    for (const metric of ['requests', 'tokens', 'inputTokens', 'outputTokens', 'cost', 'concurrency']) {
      const units = { [metric]: 0 }
      expect(await refusal(() => gate.reserve(ask({ estimate: { inputTokens: 1, units } })))).toMatch(
        new RegExp(`^invalid_amount: estimate\\.units\\.${metric}: "${metric}" is a builtin metric`),
      )
      // inherited keys are read as units too, so they are checked as well
      const inherited = Object.create({ [metric]: 0 })
      expect(await refusal(() => gate.reserve(ask({ estimate: { units: inherited } })))).toMatch(
        /is a builtin metric/,
      )
    }
    expect(await gate.usage(ask())).toEqual(before)
    const held = await gate.reserve(ask())
    if (!held.allowed) throw new Error('refused')
    expect(await refusal(() => gate.settle(held.id, { inputTokens: 500, units: { tokens: 0 } }))).toMatch(
      /^invalid_amount: usage\.units\.tokens/,
    )
    // the reservation is still held, and settles with what was reported
    expect(await gate.settle(held.id, { inputTokens: 500, outputTokens: 0 })).toMatchObject({
      status: 'settled',
      amounts: { requests: 1, tokens: 500 },
    })
  })

  it('refuses a custom unit named like what every object has, which would read its methods as amounts', async () => {
    const { gate } = setup()
    const before = await gate.usage(ask())
    // the model is priced: a unit price looked up by such a name found a function, and the cost NaN
    for (const unit of ['constructor', 'toString', 'valueOf', 'hasOwnProperty']) {
      const units = JSON.parse(`{"${unit}": 1}`) as Record<string, number>
      expect(await refusal(() => gate.reserve(ask({ estimate: { inputTokens: 1, units } })))).toMatch(
        new RegExp(`^invalid_amount: estimate\\.units\\.${unit}: .*every JavaScript object`),
      )
    }
    expect(await gate.usage(ask())).toEqual(before)
    const held = await gate.reserve(ask())
    if (!held.allowed) throw new Error('refused')
    expect(
      await refusal(() => gate.settle(held.id, { inputTokens: 500, units: JSON.parse('{"valueOf": 2}') })),
    ).toMatch(/^invalid_amount: usage\.units\.valueOf: .*every JavaScript object/)
    expect(await gate.settle(held.id, { inputTokens: 500, outputTokens: 0 })).toMatchObject({
      status: 'settled',
      amounts: { requests: 1, tokens: 500 },
    })
  })

  it('refuses an estimate or a usage report made only of fields it does not know, naming the field meant', async () => {
    const { gate } = setup()
    const before = await gate.usage(ask())
    // without a field it knows, an estimate holds the defaults and a report settles at the estimate
    expect(await refusal(() => gate.reserve(ask({ estimate: { outputTokens: 500 } as never })))).toBe(
      'invalid_amount: estimate.outputTokens is not an estimate field: give it as maxOutputTokens',
    )
    expect(await refusal(() => gate.reserve(ask({ estimate: { max_tokens: 500 } as never })))).toMatch(
      /^invalid_amount: estimate\.max_tokens is not an estimate field: give it as maxOutputTokens/,
    )
    expect(await gate.usage(ask())).toEqual(before)
    const held = await gate.reserve(ask())
    if (!held.allowed) throw new Error('refused')
    // an OpenAI usage object passed as it is
    const raw = { prompt_tokens: 120, completion_tokens: 30, total_tokens: 150 }
    expect(await refusal(() => gate.settle(held.id, raw as never))).toBe(
      "invalid_amount: usage.prompt_tokens is not a usage field: give it as inputTokens (openAIUsage() in @tollgate/llm reads a provider's usage object)",
    )
    expect(await refusal(() => gate.settle(held.id, { output_tokens: 3 } as never))).toMatch(
      /^invalid_amount: usage\.output_tokens is not a usage field: give it as outputTokens/,
    )
    expect(await refusal(() => gate.settle(held.id, { tokens: 3 } as never))).toMatch(
      /^invalid_amount: usage\.tokens is not a usage field: the fields are inputTokens, cachedInputTokens, outputTokens, cost, units and estimated/,
    )
    // an empty report still settles at the estimate, and the reservation was left open for it
    expect(await gate.settle(held.id, {})).toMatchObject({ status: 'settled', amounts: { tokens: 200 } })
  })

  it('refuses attributes no policy can match on, before anything moves', async () => {
    const { gate } = setup()
    const before = await gate.usage(ask())
    const hostile: [unknown, RegExp][] = [
      ['pro', /^invalid_request: attributes must be an object/],
      [['pro'], /^invalid_request: attributes must be an object/],
      [{ plan: Number.NaN }, /^invalid_request: attributes\.plan must be/],
      [{ plan: Number.POSITIVE_INFINITY }, /^invalid_request: attributes\.plan must be/],
      [{ plan: () => 'pro' }, /^invalid_request: attributes\.plan must be/],
      [{ plan: Symbol('pro') }, /^invalid_request: attributes\.plan must be/],
      [{ plan: 1n }, /^invalid_request: attributes\.plan must be/],
      [{ nested: [1n] }, /^invalid_request: attributes must be JSON values/],
      [{ nested: cycle }, /^invalid_request: attributes must be JSON values/],
    ]
    for (const [attributes, expected] of hostile)
      expect(await refusal(() => gate.reserve(ask({ attributes: attributes as never })))).toMatch(expected)
    expect(await gate.usage(ask())).toEqual(before)
    // what a JSON identity or a JS caller passes is taken: strings, numbers, booleans, lists, null, undefined
    const fine = { plan: 'pro', seats: 3, trial: false, flags: ['beta'], region: null, team: undefined }
    expect((await gate.reserve(ask({ attributes: fine as never }))).allowed).toBe(true)
  })
})

describe('hooks', () => {
  it('an async hook that rejects is dropped, not an unhandled rejection (that ended the process)', async () => {
    const unhandled = await unhandledRejections(async () => {
      const failing = async () => {
        throw new Error('the audit database is down')
      }
      const alerting = { ...base, rules: [{ ...base.rules[0]!, alerts: [0.1] }] }
      const hooks = { onDecision: failing, onSettle: failing, onAlert: failing, onStoreError: failing }
      const gate = createTollgate({ policy: alerting, ...hooks })
      const decision = await gate.reserve(ask())
      expect(decision.allowed).toBe(true)
      await gate.settle(decision.allowed ? decision.id : '', { inputTokens: 900, outputTokens: 50 })
      const down = { ...memoryStore(), reserve: () => Promise.reject(new Error('ECONNREFUSED')) }
      expect(await createTollgate({ policy: base, store: down, ...hooks }).reserve(ask())).toMatchObject({
        allowed: false,
        code: 'store_unavailable',
      })
    })
    expect(unhandled).toEqual([])
  })
})

describe('store failures', () => {
  const broken = (clock = fakeClock()) => {
    const store = memoryStore({ clock })
    return {
      ...store,
      reserve: () => Promise.reject(new Error('ECONNREFUSED')),
      commit: () => Promise.reject(new Error('ECONNREFUSED')),
    }
  }

  it('a store that answers the wrong shape is a store_error, not a TypeError from inside', async () => {
    const real = memoryStore()
    const plain = { ...real, lane: undefined } // a store of your own: no lane
    const wrong = async (promise: Promise<unknown>) => {
      const error = await promise.catch((e: unknown) => e)
      return TollgateError.isInstance(error) && error.code
    }
    const noTime = createTollgate({ policy: base, store: { ...plain, now: () => '2026-01-05' as never } })
    expect(await wrong(noTime.reserve(ask()))).toBe('store_error')
    expect(await wrong(noTime.usage(ask()))).toBe('store_error')
    const badReserve = {
      ...plain,
      reserve: async () => ({ status: 'ok', now: real.now(), counters: 'none' }),
    }
    expect(await wrong(createTollgate({ policy: base, store: badReserve as never }).reserve(ask()))).toBe(
      'store_error',
    )
    const badRead = { ...plain, read: async () => [{ cap: '3' }] }
    expect(await wrong(createTollgate({ policy: base, store: badRead as never }).usage(ask()))).toBe(
      'store_error',
    )
  })

  it('a decision or settle that is made stands when the store cannot tell the time for its record', async () => {
    const real = memoryStore()
    let broken = false
    const store = {
      ...real,
      lane: undefined,
      now: () => {
        if (broken) throw new Error('ECONNRESET')
        return real.now()
      },
      reserve: (input: Parameters<typeof real.reserve>[0]) => {
        const answer = real.reserve(input)
        broken = true // the connection breaks right after the hold lands
        return answer
      },
    }
    const records: unknown[] = []
    const gate = createTollgate({
      policy: { rules: [{ id: 'one-at-a-time', per: 'user', limits: { concurrency: 1 } }] },
      store,
      onDecision: (r) => records.push(r),
      onSettle: (r) => records.push(r),
    })
    // it threw ECONNRESET with the lease held: the caller could not release what it did not know of
    const decision = await gate.reserve(ask())
    expect(decision.allowed).toBe(true)
    expect(await gate.settle(decision.allowed ? decision.id : '', {})).toMatchObject({ status: 'settled' })
    expect(records).toHaveLength(2)
  })

  it('fails closed on money rules and open on rate limits, and says so', async () => {
    const errors: unknown[] = []
    const closed = createTollgate({ policy: base, store: broken(), onStoreError: (e) => errors.push(e) })
    expect(await closed.reserve(ask())).toMatchObject({
      allowed: false,
      code: 'store_unavailable',
      status: 503,
      retryable: true,
      // the rule that fails closed, and its partition, as any refusal by a rule names them
      rule: 'project-budget',
      partition: { project: 'p1' },
    })
    const open = createTollgate({ policy: { rules: base.rules.slice(0, 2) }, store: broken() })
    const d = await open.reserve(ask())
    expect(d).toMatchObject({ allowed: true, flags: ['store_degraded'] })
    expect(await open.settle(d.id, {})).toMatchObject({ status: 'degraded' })
    expect(errors).toHaveLength(1)
  })

  it("applies the failure modes when the store's clock fails or never answers (it threw raw, or hung past timeoutMs)", async () => {
    const clocks = {
      throws: () => {
        throw new Error('ECONNRESET')
      },
      rejects: () => Promise.reject(new Error('ECONNRESET')),
      hangs: () => new Promise<number>(() => {}),
    }
    for (const [how, now] of Object.entries(clocks)) {
      const errors: unknown[] = []
      const store = { ...memoryStore(), now }
      const options = { store, timeoutMs: 50, onStoreError: (e: unknown) => errors.push(e) }
      const closed = createTollgate({ policy: base, ...options })
      expect(await closed.reserve(ask()), how).toMatchObject({ allowed: false, code: 'store_unavailable' })
      const open = createTollgate({ policy: { rules: base.rules.slice(0, 2) }, ...options })
      expect(await open.reserve(ask()), how).toMatchObject({ allowed: true, flags: ['store_degraded'] })
      // reads answer a typed error within the timeout too
      const usage = await open.usage({ subject: ask().subject }).catch((e: unknown) => e)
      expect(TollgateError.isInstance(usage) && usage.code, how).toBe('store_unavailable')
      expect(errors, how).toHaveLength(3)
      // a decision's record is stamped with the local time when the store cannot tell it
      const records: { at: number }[] = []
      const audited = createTollgate({ ...options, policy: base, onDecision: (r) => records.push(r) })
      expect(await audited.reserve(ask()), how).toMatchObject({ code: 'store_unavailable' })
      expect(records[0]?.at, how).toBeTypeOf('number')
    }
  })

  it('answers store_unavailable whatever a store throws (an object with no prototype made settle throw a TypeError)', async () => {
    for (const thrown of [Object.create(null), { message: Object.create(null) }, Symbol('down'), undefined]) {
      const store = memoryStore()
      const failing = {
        ...store,
        reserve: () => Promise.reject(thrown),
        commit: () => Promise.reject(thrown),
      }
      const errors: unknown[] = []
      const gate = createTollgate({ policy: base, store: failing, onStoreError: (e) => errors.push(e) })
      expect(await gate.reserve(ask())).toMatchObject({ allowed: false, code: 'store_unavailable' })
      const open = createTollgate({ policy: base, store: { ...store, commit: failing.commit } })
      const decision = await open.reserve(ask())
      const error = await open.settle(decision.allowed ? decision.id : '', {}).catch((e: unknown) => e)
      expect(TollgateError.isInstance(error) && error.code).toBe('store_unavailable')
      expect(errors).toEqual([thrown])
    }
  })

  it("run keeps the call's own outcome when the store fails at the settle", async () => {
    const clock = fakeClock()
    const store = memoryStore({ clock })
    let down = false
    const flaky = {
      ...store,
      commit: (input: Parameters<typeof store.commit>[0]) =>
        down ? Promise.reject(new Error('ECONNRESET')) : store.commit(input),
    }
    const errors: unknown[] = []
    const gate = createTollgate({ policy: base, store: flaky, clock, onStoreError: (e) => errors.push(e) })
    // the call succeeded and was paid for: its answer comes back, the store's failure goes to the hook
    const value = await gate.run(ask(), ({ report }) => {
      down = true
      report({ inputTokens: 10, outputTokens: 10 })
      return 'answer'
    })
    expect(value).toBe('answer')
    // the call failed: its own error comes back, not the store's
    await expect(
      gate.run(ask(), () => {
        throw new Error('provider down')
      }),
    ).rejects.toThrow('provider down')
    expect(errors).toHaveLength(2)
  })

  it('bounds a hung store by the timeout, then applies the failure mode', async () => {
    vi.useFakeTimers()
    try {
      const hung = { ...memoryStore({ clock: fakeClock() }), reserve: () => new Promise<never>(() => {}) }
      const gate = createTollgate({ policy: base, store: hung, timeoutMs: 250 })
      const pending = gate.reserve(ask())
      await vi.advanceTimersByTimeAsync(250)
      expect(await pending).toMatchObject({ allowed: false, code: 'store_unavailable' })
    } finally {
      vi.useRealTimers()
    }
  })
})

describe('a settle the store answers after the timeout', () => {
  /** A memory store whose first commit answers `delayMs` late (fake timers), or fails then when `fails`. */
  const slowCommits = (delayMs: number, fails = false) => {
    const inner = memoryStore({ clock: fakeClock() })
    let commits = 0
    return {
      ...inner,
      commit: (input: Parameters<typeof inner.commit>[0]) =>
        commits++ > 0
          ? inner.commit(input)
          : new Promise<Awaited<ReturnType<typeof inner.commit>>>((resolve, reject) =>
              setTimeout(() => (fails ? reject(new Error('lost')) : resolve(inner.commit(input))), delayMs),
            ),
    }
  }

  it('emits its settle record when the answer lands, once, even when the settle is retried', async () => {
    vi.useFakeTimers()
    try {
      const records: SettleRecord[] = []
      const store = slowCommits(400)
      const gate = createTollgate({ policy: base, store, timeoutMs: 250, onSettle: (r) => records.push(r) })
      const decision = await gate.reserve(ask())
      if (!decision.allowed) throw new Error('refused')
      const settle = gate.settle(decision.id, { inputTokens: 90, outputTokens: 40 })
      const told = expect(settle).rejects.toMatchObject({ code: 'store_unavailable' })
      await vi.advanceTimersByTimeAsync(250)
      await told
      expect(records).toEqual([]) // not yet landed
      await vi.advanceTimersByTimeAsync(150)
      expect(records).toHaveLength(1)
      // a retry (told store_unavailable, the caller settles again) finds it closed: no second record
      expect(await gate.settle(decision.id, { inputTokens: 90, outputTokens: 40 })).toMatchObject({
        status: 'duplicate',
      })
      expect(records).toHaveLength(1)
      expect(records[0]).toMatchObject({ id: decision.id, event: 'settle', status: 'settled' })
      expect(records[0]!.actual).toMatchObject({ inputTokens: 90, outputTokens: 40 })
    } finally {
      vi.useRealTimers()
    }
  })

  it('emits none when the store fails after the timeout', async () => {
    vi.useFakeTimers()
    try {
      const records: SettleRecord[] = []
      const gate = createTollgate({
        policy: base,
        store: slowCommits(400, true),
        timeoutMs: 250,
        onSettle: (r) => records.push(r),
      })
      const decision = await gate.reserve(ask())
      if (!decision.allowed) throw new Error('refused')
      const told = expect(gate.release(decision.id)).rejects.toMatchObject({ code: 'store_unavailable' })
      await vi.advanceTimersByTimeAsync(1_000)
      await told
      expect(records).toEqual([])
    } finally {
      vi.useRealTimers()
    }
  })
})

describe('createTollgate', () => {
  it('refuses options that cannot work when the gate is made, naming the option', () => {
    const bad: [string, Record<string, unknown>][] = [
      ['store', { store: {} }],
      ['store', { store: { ...memoryStore(), commit: undefined } }],
      ['clock', { clock: {} }],
      ['clock', { clock: { now: () => undefined } }],
      ['clock', { clock: { now: () => Number.NaN } }],
      ['clock', { clock: { now: () => new Date() } }],
      ['clock', { clock: { now: () => '1767571200000' } }],
      ['onDecision', { onDecision: 'log' }],
      ['onStoreError', { onStoreError: {} }],
      ['timeoutMs', { timeoutMs: Number.NaN }],
      ['timeoutMs', { timeoutMs: -1 }],
      ['timeoutMs', { timeoutMs: '1s' }],
      ['timeoutMs', { timeoutMs: 2 ** 31 }], // a timer would fire at once: every call timed out
      ['timeoutMs', { timeoutMs: Number.POSITIVE_INFINITY }],
      ['maxIdLength', { maxIdLength: 0 }],
      ['maxIdLength', { maxIdLength: Number.NaN }],
      ['maxPlans', { maxPlans: 0 }],
      ['maxPlans', { maxPlans: 2.5 }],
      ['maxPlans', { maxPlans: Number.POSITIVE_INFINITY }],
      ['maxPlans', { maxPlans: '1000' }],
    ]
    for (const [name, options] of bad) {
      let thrown: unknown
      try {
        createTollgate({ policy: base, ...options } as never)
      } catch (error) {
        thrown = error
      }
      expect(TollgateError.isInstance(thrown), name).toBe(true)
      expect(thrown, name).toMatchObject({ code: 'invalid_request', message: expect.stringContaining(name) })
    }
    const clock = fakeClock()
    expect(() =>
      createTollgate({
        policy: base,
        store: memoryStore({ clock }),
        clock,
        timeoutMs: 50,
        maxIdLength: 1,
        maxPlans: 1,
      }),
    ).not.toThrow()
  })
})

describe('maxPlans', () => {
  it('bounds the plans kept, and every decision stays right as they are made again', async () => {
    // past the bound every plan is forgotten at once: counts live in the store, never in a plan
    const clock = fakeClock()
    const policy: PolicyInput = {
      rules: [
        { id: 'user', per: 'user', limits: { requests: 3 }, window: 'day' },
        { id: 'team', per: 'team', limits: { requests: 10 }, window: 'day' },
      ],
    }
    const gate = createTollgate({ policy, store: memoryStore({ clock }), clock, maxPlans: 2 })
    const admitted = new Map<string, number>()
    // five users take turns, so each call finds its plan forgotten by the others
    for (let round = 0; round < 4; round++)
      for (let u = 0; u < 5; u++) {
        const user = `u${u}`
        const decision = await gate.reserve({ subject: { user, team: 't' } })
        if (decision.allowed) {
          admitted.set(user, (admitted.get(user) ?? 0) + 1)
          await gate.settle(decision.id)
        } else expect(['user', 'team']).toContain(decision.rule)
      }
    // the team's cap binds first, after ten calls; no user went past three
    expect([...admitted.values()].reduce((a, b) => a + b, 0)).toBe(10)
    for (const count of admitted.values()) expect(count).toBeLessThanOrEqual(3)
    const usage = await gate.usage({ subject: { user: 'u0', team: 't' } })
    expect(usage.find((l) => l.rule === 'team')?.used).toBe(10)
  })

  it('is the bound of the gate’s plans (the default keeps 50,000)', () => {
    const policy: PolicyInput = {
      rules: [{ id: 'user', per: 'user', limits: { requests: 3 }, window: 'day' }],
    }
    const plansOf = (maxPlans: number | undefined) => {
      const { plans } = createEngine({ policy, store: memoryStore(), ...(maxPlans ? { maxPlans } : {}) })
      const context = (user: string) => ({
        subject: { user },
        attributes: {},
        model: undefined,
        tier: undefined,
        feature: undefined,
      })
      for (let u = 0; u < 300; u++) plans.of(context(`u${u}`))
      return plans.nodes
    }
    // nodes: the plans' trie and the rules' parts; 300 users make 300 of each past the bound
    expect(plansOf(undefined)).toBeGreaterThan(600)
    expect(plansOf(100)).toBeLessThan(450)
  })
})

describe('retryAfterMs', () => {
  it('is whole milliseconds, and waiting it admits a token bucket’s next request', async () => {
    // a bucket's refill interval (5 minutes / cap) is fractional: a wait of 5.8e-11 ms was refused again
    for (const cap of [3, 7, 11, 13, 141]) {
      const { gate, clock } = setup({
        rules: [{ id: 'burst', per: 'user', limits: { requests: cap }, window: { bucket: '5m' } }],
      })
      const u1 = { subject: { user: 'u1' } }
      for (let i = 0; i < cap; i++) expect((await gate.reserve(u1)).allowed).toBe(true)
      for (let i = 0; i < 20; i++) {
        const refused = await gate.reserve(u1)
        if (refused.allowed) throw new Error(`cap ${cap}: admitted before the bucket refilled`)
        expect(Number.isInteger(refused.retryAfterMs), `cap ${cap}`).toBe(true)
        clock.advance(refused.retryAfterMs!)
        expect((await gate.reserve(u1)).allowed, `cap ${cap}, wait ${i}`).toBe(true)
      }
    }
  })
})

describe('money in refusal messages', () => {
  it('shows amounts below a cent to the micro-unit, and a balance as what is left', async () => {
    // a call to gpt-4o-mini costs 0.000075 USD here: "needs 0.00 USD" told the caller nothing
    const { gate } = setup({
      models,
      rules: [
        { id: 'prepaid', per: 'user', balance: true, limits: { cost: 0 } },
        { id: 'daily', per: 'project', limits: { cost: 0.0001 }, window: 'day' },
      ],
    })
    expect(await gate.reserve(ask())).toMatchObject({
      code: 'insufficient_balance',
      message: 'Rule "prepaid" has a balance of 0.00 USD for user "u1"; this request needs 0.000075 USD.',
    })
    await gate.credit({ rule: 'prepaid', subject: { user: 'u1' } }, 25)
    expect((await gate.reserve(ask())).allowed).toBe(true)
    expect(await gate.reserve(ask())).toMatchObject({
      code: 'budget_exceeded',
      message:
        'Rule "daily" allows 0.0001 USD per day for project "p1"; 0.000075 USD used, this request needs 0.000075 USD.',
    })
    await gate.credit({ rule: 'prepaid', subject: { user: 'u2' } }, 0.00005)
    expect(await gate.reserve(ask({ subject: { user: 'u2', project: 'p2' } }))).toMatchObject({
      message: 'Rule "prepaid" has a balance of 0.00005 USD for user "u2"; this request needs 0.000075 USD.',
    })
  })
})

describe('model names', () => {
  it('are bounded like ids: a model may name a partition and a key', async () => {
    // a 1 MB model name a client picked became a 7 MB Redis key name
    const clock = fakeClock()
    const policy: PolicyInput = {
      rules: [{ id: 'per-model', per: 'model', limits: { requests: 9 }, window: 'day' }],
    }
    const gate = createTollgate({ policy, store: memoryStore({ clock }), maxIdLength: 64 })
    await expect(gate.reserve({ subject: {}, model: 'm'.repeat(65) })).rejects.toMatchObject({
      code: 'invalid_request',
      message: 'model is longer than 64 characters',
    })
    expect((await gate.reserve({ subject: {}, model: 'm'.repeat(64) })).allowed).toBe(true)
  })
})

describe('a rule with a throttle and a fallback', () => {
  it('throttles from `at` and serves the fallback only at its cap', async () => {
    // the throttle's refusals served the fallback model from 80%: nothing was ever throttled
    const { gate, clock } = setup({
      models,
      rules: [
        {
          id: 'frontier-day',
          per: 'user',
          match: { tier: 'frontier' },
          limits: { requests: 10 },
          window: 'day',
          throttle: { at: 0.8, rate: '1/1m' },
          fallback: 'gpt-4o-mini',
        },
      ],
    })
    const outcomes: string[] = []
    for (let i = 0; i < 12; i++) {
      const d = await gate.reserve({ subject: { user: 'u1' }, model: 'gpt-4o' })
      outcomes.push(d.allowed ? (d.downgrade ? `fallback:${d.model}` : 'allowed') : d.code)
      clock.advance('10s')
    }
    // 8 below the throttle; then one a minute (one in six of these ten-second steps); at the cap, the fallback
    expect(outcomes.slice(0, 8)).toEqual(Array(8).fill('allowed'))
    expect(outcomes.slice(8)).toContain('rate_limited')
    expect(outcomes.slice(8).filter((o) => o.startsWith('fallback'))).toEqual([])
    // one a minute gets through the throttle until the cap of 10: then every call is served the fallback
    const later: string[] = []
    for (let i = 0; i < 4; i++) {
      clock.advance('1m')
      const d = await gate.reserve({ subject: { user: 'u1' }, model: 'gpt-4o' })
      later.push(d.allowed ? (d.downgrade ? `fallback:${d.model}` : 'allowed') : d.code)
    }
    const admitted = outcomes.filter((o) => o === 'allowed').length
    expect(later).toEqual([
      ...Array(10 - admitted).fill('allowed'),
      ...Array(4 - (10 - admitted)).fill('fallback:gpt-4o-mini'),
    ])
  })
})

describe('refusals before the limits', () => {
  it('carry the request’s limits and rate-limit headers, as every response does', async () => {
    // a per-call cap or a model rule refused with no RateLimit or x-ratelimit-* headers
    const { gate } = setup({
      models,
      caps: [{ maxInputTokens: 1000 }],
      plans: { free: { models: ['gpt-4o-mini'] } },
      rules: [{ id: 'user-day', per: 'user', limits: { requests: 5 }, window: 'day' }],
    })
    expect((await gate.reserve({ subject: { user: 'u1' }, model: 'gpt-4o-mini' })).allowed).toBe(true)
    const tooLarge = await gate.reserve({ subject: { user: 'u1' }, estimate: { inputTokens: 5000 } })
    const premium = await gate.reserve({
      subject: { user: 'u1' },
      attributes: { plan: 'free' },
      model: 'gpt-4o',
    })
    for (const d of [tooLarge, premium]) {
      expect(d.allowed).toBe(false)
      expect(d.limits).toMatchObject([{ rule: 'user-day', metric: 'requests', limit: 5, used: 1 }])
      expect(d.headers).toMatchObject({
        'ratelimit-policy': '"user-day.requests";q=5;w=86400',
        'x-ratelimit-remaining-requests': '4',
      })
    }
    expect(tooLarge).toMatchObject({ code: 'request_too_large' })
    expect(premium).toMatchObject({ code: 'model_not_allowed' })
  })
})

describe('settle amounts (mutation audit)', () => {
  it('settles at the estimate when given no usage, and measures each overrun from its own estimate', async () => {
    const { gate } = setup()
    const d = await gate.reserve(ask({ estimate: { inputTokens: 300, maxOutputTokens: 100 } }))
    const settled = await gate.settle(d.id)
    expect(settled).toMatchObject({ status: 'settled', overrun: {}, overdraft: [] })
    expect(settled.amounts).toMatchObject({ inputTokens: 300, outputTokens: 100, tokens: 400 })
    const tokens = async () =>
      (await gate.usage(ask())).find((l) => l.rule === 'user-day' && l.metric === 'tokens')
    expect(await tokens()).toMatchObject({ used: 400, held: 0 })
    const e = await gate.reserve(ask({ estimate: { inputTokens: 100, maxOutputTokens: 300 } }))
    if (!e.allowed) throw new Error(`refused: ${e.code}`)
    const over = await gate.settle(e.id, { inputTokens: 150, outputTokens: 350 })
    expect(over.overrun).toEqual({
      inputTokens: 50,
      outputTokens: 50,
      tokens: 100,
      cost: over.amounts.cost! - e.reservation.amounts.cost!,
    })
    expect(await tokens()).toMatchObject({ used: 900, held: 0 })
  })

  it('reports no overrun of a custom unit used exactly as estimated', async () => {
    const gate = createTollgate({
      policy: {
        units: ['images'],
        models: { m: { price: { input: 1, output: 2, units: { images: 40 } } } },
        rules: [{ id: 'spend', per: 'user', limits: { cost: 100, images: 10 }, window: 'day' }],
      },
      clock: fakeClock(),
    })
    const d = await gate.reserve({
      subject: { user: 'u' },
      model: 'm',
      estimate: { inputTokens: 10, maxOutputTokens: 10, units: { images: 2 } },
    })
    const settled = await gate.settle(d.id, { inputTokens: 10, outputTokens: 10, units: { images: 2 } })
    expect(settled.overrun).toEqual({})
  })
})

describe('run (mutation audit)', () => {
  it('settles what was reported when the call throws after reporting', async () => {
    const { gate } = setup()
    await expect(
      gate.run(ask(), async ({ report }) => {
        report({ inputTokens: 40, outputTokens: 2 })
        throw new Error('stream broke')
      }),
    ).rejects.toThrow('stream broke')
    const tokens = (await gate.usage(ask())).find((l) => l.rule === 'user-day' && l.metric === 'tokens')
    expect(tokens).toMatchObject({ used: 42, held: 0 })
  })

  it('refuses, where it is made, a report of more cached tokens than the estimated input', async () => {
    const { gate } = setup()
    const value = await gate.run(ask(), async ({ report }) => {
      expect(() => report({ cachedInputTokens: 101 })).toThrow(/cachedInputTokens/)
      report({ cachedInputTokens: 100, outputTokens: 1 })
      return 'ok'
    })
    expect(value).toBe('ok')
  })
})

describe('per-call caps (mutation audit)', () => {
  const rules: PolicyInput['rules'] = [
    { id: 'user-day', per: 'user', limits: { requests: 100 }, window: 'day' },
  ]
  const call = (inputTokens: number, maxOutputTokens?: number): ReserveRequest => ({
    subject: { user: 'u1' },
    model: 'gpt-4o-mini',
    estimate: maxOutputTokens === undefined ? { inputTokens } : { inputTokens, maxOutputTokens },
  })

  it('admit a call at each cap and refuse one a token past it, on the fast path too', async () => {
    const { gate } = setup({ models, rules, caps: [{ maxInputTokens: 100, maxOutputTokens: 100 }] })
    // the first request of a plan: a store lane would hold it if caps were not checked
    expect(await gate.reserve(call(101, 0))).toMatchObject({
      allowed: false,
      code: 'request_too_large',
      status: 413,
    })
    expect(await gate.reserve(call(0, 101))).toMatchObject({ allowed: false, code: 'request_too_large' })
    expect(await gate.reserve(call(100, 100))).toMatchObject({ allowed: true })
  })

  it('count input and output against maxTokens, with the cap’s own code', async () => {
    const { gate } = setup({ models, rules, caps: [{ maxTokens: 150, code: 'CALL_TOO_BIG' }] })
    expect(await gate.reserve(call(100, 50))).toMatchObject({ allowed: true })
    expect(await gate.reserve(call(100, 51))).toMatchObject({
      allowed: false,
      code: 'CALL_TOO_BIG',
      status: 413,
    })
  })

  it('count the default output tokens when the request names no maximum', async () => {
    const { gate } = setup({
      models,
      rules,
      defaults: { maxOutputTokens: 200 },
      caps: [{ maxOutputTokens: 100 }],
    })
    expect(await gate.reserve(call(10))).toMatchObject({ allowed: false, code: 'request_too_large' })
    expect(await gate.reserve(call(10, 100))).toMatchObject({ allowed: true })
  })
})

describe('fallback models (mutation audit)', () => {
  const policy: PolicyInput = {
    models: { ...models, tiny: { tier: 'tiny', price: { input: 0.01, output: 0.01 } } },
    rules: [
      {
        id: 'frontier-day',
        per: 'user',
        match: { tier: 'frontier' },
        limits: { requests: 1 },
        window: 'day',
        fallback: 'gpt-4o-mini',
      },
      {
        id: 'low-day',
        per: 'user',
        match: { tier: 'low' },
        limits: { requests: 1 },
        window: 'day',
        fallback: 'tiny',
      },
    ],
  }
  const big = { subject: { user: 'u1' }, model: 'gpt-4o' }

  it('serves a rule’s fallback once, says why, and refuses as the rule did when the fallback is refused too', async () => {
    const { gate } = setup(policy)
    expect(await gate.reserve(big)).toMatchObject({ allowed: true, model: 'gpt-4o', downgrade: null })
    expect(await gate.reserve(big)).toMatchObject({
      allowed: true,
      model: 'gpt-4o-mini',
      requestedModel: 'gpt-4o',
      downgrade: { from: 'gpt-4o', to: 'gpt-4o-mini', reason: 'fallback', rule: 'frontier-day' },
    })
    // the fallback's own rule refuses it: no second hop to its fallback, the first refusal stands
    expect(await gate.reserve(big)).toMatchObject({
      allowed: false,
      code: 'quota_exceeded',
      rule: 'frontier-day',
    })
  })
})

describe('refusal codes and statuses (mutation audit)', () => {
  it('a rule’s own status, and quota_exceeded for a lifetime window', async () => {
    const { gate } = setup({
      rules: [
        { id: 'paid', per: 'user', limits: { requests: 1 }, window: 'day', status: 402 },
        { id: 'trial', per: 'project', limits: { requests: 1 }, window: 'lifetime' },
      ],
    })
    expect((await gate.reserve({ subject: { user: 'u1', project: 'p1' } })).allowed).toBe(true)
    expect(await gate.reserve({ subject: { user: 'u1', project: 'p2' } })).toMatchObject({
      allowed: false,
      rule: 'paid',
      status: 402,
    })
    expect(await gate.reserve({ subject: { user: 'u2', project: 'p1' } })).toMatchObject({
      allowed: false,
      rule: 'trial',
      code: 'quota_exceeded',
      status: 429,
    })
  })

  it('attempt is a whole number from 1 to 1000, both ends included', async () => {
    const { gate } = setup()
    expect((await gate.reserve(ask({ attempt: 1000 }))).allowed).toBe(true)
    await expect(gate.reserve(ask({ attempt: 1001 }))).rejects.toMatchObject({ code: 'invalid_request' })
  })
})

describe('refusal retryability and stores that list every counter (mutation audit)', () => {
  it('a concurrency refusal is retryable: a lease frees up', async () => {
    const { gate } = setup({ rules: [{ id: 'one-at-a-time', per: 'user', limits: { concurrency: 1 } }] })
    expect((await gate.reserve(ask())).allowed).toBe(true)
    const refused = await gate.reserve(ask())
    expect(refused).toMatchObject({
      allowed: false,
      code: 'concurrency_limited',
      status: 429,
      retryable: true,
    })
  })

  it('reports no overdraft for counters a store lists with none (a store may ignore `brief`)', async () => {
    const real = memoryStore({ clock: fakeClock() })
    const store = {
      ...real,
      lane: undefined,
      commit: (input: Parameters<typeof real.commit>[0]) => real.commit({ ...input, brief: false }),
    }
    const gate = createTollgate({ policy: base, store })
    const d = await gate.reserve(ask())
    expect(await gate.settle(d.id, { inputTokens: 10, outputTokens: 10 })).toMatchObject({
      status: 'settled',
      overdraft: [],
    })
  })
})

describe('a reserve the store answers after the timeout (mutation audit)', () => {
  it('releases the hold when it lands: the caller was told store_unavailable and holds nothing', async () => {
    vi.useFakeTimers()
    try {
      const inner = memoryStore({ clock: fakeClock() })
      const store = {
        ...inner,
        lane: undefined,
        reserve: (input: Parameters<typeof inner.reserve>[0]) =>
          new Promise<Awaited<ReturnType<typeof inner.reserve>>>((resolve) =>
            setTimeout(() => resolve(inner.reserve(input)), 400),
          ),
      }
      const gate = createTollgate({ policy: base, store, timeoutMs: 250 })
      const pending = gate.reserve(ask())
      await vi.advanceTimersByTimeAsync(250)
      expect(await pending).toMatchObject({ allowed: false, code: 'store_unavailable' })
      await vi.advanceTimersByTimeAsync(200) // the hold lands, and is released
      const limits = await gate.usage(ask())
      expect(limits.find((l) => l.rule === 'user-day' && l.metric === 'requests')).toMatchObject({
        used: 0,
        held: 0,
      })
    } finally {
      vi.useRealTimers()
    }
  })
})

describe('settles and decisions, where a mutation audit of the one-step lane settle found no test', () => {
  // guards heldOf's copy of a meta the engine did not write (no amounts): its model still prices the settle
  it('settles a reservation made on the store with a model but no amounts (or null), priced by that model', async () => {
    const { gate, store } = setup()
    store.reserve({ id: 'ext', counters: [], ttlMs: 60_000, blocks: [], meta: { model: 'gpt-4o-mini' } })
    const settled = await gate.settle('ext', { inputTokens: 1000, outputTokens: 0 })
    expect(settled).toMatchObject({ status: 'settled' })
    // only what was reported, and its price: no builtin metric the meta never held
    expect(settled.amounts).toStrictEqual({ inputTokens: 1000, outputTokens: 0, tokens: 1000, cost: 150 })
    // amounts: null is no amounts either
    store.reserve({
      id: 'null',
      counters: [],
      ttlMs: 60_000,
      blocks: [],
      meta: { model: 'gpt-4o-mini', amounts: null },
    })
    expect((await gate.settle('null', { inputTokens: 1000, outputTokens: 0 })).amounts).toStrictEqual(
      settled.amounts,
    )
  })

  // guards allowedOf's requestedModel: an access downgrade still names the model asked for
  it('names the model asked for in a decision downgraded by an access rule', async () => {
    const { gate } = setup({
      ...base,
      access: [
        { match: { tier: 'frontier' }, require: { flags: ['vip'] }, otherwise: { downgrade: 'gpt-4o-mini' } },
      ],
    })
    expect(await gate.reserve(ask({ model: 'gpt-4o' }))).toMatchObject({
      allowed: true,
      model: 'gpt-4o-mini',
      requestedModel: 'gpt-4o',
      downgrade: { from: 'gpt-4o', to: 'gpt-4o-mini', reason: 'access' },
    })
  })

  // guards the local fallback's settle bypassing the timeout (it is no remote store)
  it('waits for a local fallback store that answers a settle after timeoutMs', async () => {
    vi.useFakeTimers()
    try {
      const clock = fakeClock()
      const down = {
        ...memoryStore({ clock }),
        lane: undefined,
        reserve: () => Promise.reject(new Error('down')),
      }
      const inner = memoryStore({ clock })
      const slow = {
        ...inner,
        commit: (input: Parameters<typeof inner.commit>[0]) =>
          new Promise<Awaited<ReturnType<typeof inner.commit>>>((resolve) =>
            setTimeout(() => resolve(inner.commit(input)), 400),
          ),
      }
      const gate = createTollgate({
        policy: { rules: [{ id: 'rpm', per: 'user', limits: { requests: 10 }, window: 'minute' }] },
        store: down,
        clock,
        timeoutMs: 250,
        localFallback: { share: 0.5, store: slow },
      })
      const decision = await gate.reserve({ subject: { user: 'u' } })
      expect(decision).toMatchObject({ allowed: true, flags: ['store_degraded', 'store_fallback'] })
      const settle = gate.settle(decision.id, {})
      const told = expect(settle).resolves.toMatchObject({ status: 'settled' })
      await vi.advanceTimersByTimeAsync(400)
      await told
    } finally {
      vi.useRealTimers()
    }
  })
})

describe('a store meta with keys the engine does not write', () => {
  const policy = { rules: [{ id: 'd', per: 'user', limits: { tokens: 1000 }, window: 'day' as const }] }
  const amounts = { requests: 1, concurrency: 1, inputTokens: 10, outputTokens: 0, tokens: 10, cost: 0 }
  // a store without a lane, holding reservation `ext` with this meta: the settle reads it with lookup
  const setup = (meta: ReservationMeta) => {
    const store = { ...memoryStore({ clock: fakeClock() }), lane: undefined }
    store.reserve({ id: 'ext', counters: [], ttlMs: 60_000, blocks: [], meta })
    return { store, gate: createTollgate({ policy, store }) }
  }

  it('settles on the store a meta that carries `local: true`', async () => {
    const { gate } = setup({ model: '', amounts, local: true })
    expect(await gate.settle('ext', { inputTokens: 7, outputTokens: 0 })).toMatchObject({ status: 'settled' })
  })

  it('settles on the store a meta that carries `degraded: true`', async () => {
    const { store, gate } = setup({ model: '', amounts, degraded: true })
    expect(await gate.settle('ext', { inputTokens: 7, outputTokens: 0 })).toMatchObject({ status: 'settled' })
    expect(await store.lookup('ext')).toMatchObject({ state: 'settled' })
  })
})
