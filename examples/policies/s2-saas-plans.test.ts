import { readFileSync } from 'node:fs'
import { type Alert, createTollgate, type ReserveRequest, toMicros } from '@tollgate/core'
import { fakeClock } from '@tollgate/core/testing'
import { describe, expect, it } from 'vitest'

const policy = readFileSync(new URL('./s2-saas-plans.yaml', import.meta.url), 'utf8')
const setup = () => {
  const clock = fakeClock('2026-05-04T09:00:00Z')
  const alerts: Alert[] = []
  const gate = createTollgate({ policy, clock, onAlert: (a) => alerts.push(a) })
  return { clock, gate, alerts }
}
const req = (plan: string, workspace: string, extra: Partial<ReserveRequest> = {}): ReserveRequest => ({
  subject: { workspace, key: `key_${workspace}` },
  attributes: { plan },
  model: 'gpt-4o-mini',
  feature: 'chat',
  estimate: { inputTokens: 1000, maxOutputTokens: 500 },
  ...extra,
})

describe('S2: a SaaS plan matrix', () => {
  it('trial: low-cost models only until an admin upgrades the tenant; 100k input / 25k output tokens', async () => {
    const { gate } = setup()
    const frontier = await gate.reserve(req('trial', 'w1', { model: 'gpt-4o' }))
    expect(frontier).toMatchObject({
      allowed: false,
      code: 'model_not_allowed',
      status: 403,
      retryable: false,
    })
    const upgraded = await gate.reserve(
      req('trial', 'w1', { model: 'gpt-4o', attributes: { plan: 'trial', flags: ['frontier-upgrade'] } }),
    )
    expect(upgraded).toMatchObject({ allowed: true, model: 'gpt-4o' })
    const big = { inputTokens: 20_000, maxOutputTokens: 5_000 }
    for (let i = 0; i < 4; i++)
      expect((await gate.reserve(req('trial', 'w2', { estimate: big }))).allowed).toBe(true)
    const fifth = await gate.reserve(req('trial', 'w2', { estimate: big }))
    expect(fifth).toMatchObject({ allowed: true })
    const sixth = await gate.reserve(req('trial', 'w2', { estimate: big }))
    expect(sixth).toMatchObject({
      allowed: false,
      code: 'quota_exceeded',
      rule: 'trial-allowance',
      retryAfterMs: null,
    })
  })

  it('starter: $50 of provider cost a month, then 402 plan_allowance_exhausted with tenant and reset time', async () => {
    const { gate, clock } = setup()
    // gpt-4o: 100k input ($0.25) + 20k output ($0.20) = $0.45 a call; 111 calls fit in $50
    const call = req('starter', 'acme', {
      model: 'gpt-4o',
      estimate: { inputTokens: 100_000, maxOutputTokens: 20_000 },
    })
    let admitted = 0
    for (let i = 0; i < 120; i++) {
      const d = await gate.reserve({ ...call, subject: { workspace: 'acme', key: `k${i}` } })
      if (!d.allowed) {
        expect(d).toMatchObject({
          code: 'plan_allowance_exhausted',
          status: 402,
          partition: { workspace: 'acme' },
          retryable: false,
        })
        expect(d.resetAt).toBe(Date.parse('2026-06-01T00:00:00Z'))
        expect(d.headers['x-should-retry']).toBe('false')
        break
      }
      admitted++
      await gate.settle(d.id, { inputTokens: 100_000, outputTokens: 20_000 })
      clock.advance('1h') // stay under the runaway breaker's $15 an hour
    }
    expect(admitted).toBe(111)
  })

  it('per-key burst: 60 a minute for one key, 429 with Retry-After and the key id; other keys go on', async () => {
    const { gate } = setup()
    for (let i = 0; i < 60; i++) expect((await gate.reserve(req('starter', 'acme'))).allowed).toBe(true)
    const refused = await gate.reserve(req('starter', 'acme'))
    expect(refused).toMatchObject({
      allowed: false,
      code: 'rate_limited',
      status: 429,
      partition: { key: 'key_acme' },
      retryable: true,
    })
    if (refused.allowed) return
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0)
    expect(refused.headers['x-should-retry']).toBe('true')
    const otherKey = await gate.reserve({
      ...req('starter', 'acme'),
      subject: { workspace: 'acme', key: 'key_other' },
    })
    expect(otherKey.allowed).toBe(true)
  })

  it('premium models: enterprise or a prepaid balance above $100, otherwise a visible downgrade', async () => {
    const { gate } = setup()
    const o1 = { model: 'o1', estimate: { inputTokens: 1000, maxOutputTokens: 1000 } }
    const enterprise = await gate.reserve(
      req('enterprise', 'big', { ...o1, attributes: { plan: 'enterprise', flags: ['enterprise'] } }),
    )
    expect(enterprise).toMatchObject({ allowed: true, model: 'o1', downgrade: null })
    const starter = await gate.reserve(req('starter', 'small', o1))
    expect(starter).toMatchObject({ allowed: true, model: 'gpt-4o', requestedModel: 'o1' })
    if (starter.allowed)
      expect(starter.downgrade).toMatchObject({ from: 'o1', to: 'gpt-4o', reason: 'access' })
    await gate.credit({ rule: 'prepaid-balance', subject: { workspace: 'rich' } }, 150)
    const rich = await gate.reserve(req('payg', 'rich', o1))
    expect(rich).toMatchObject({ allowed: true, model: 'o1' })
    await gate.credit({ rule: 'prepaid-balance', subject: { workspace: 'poor' } }, 20)
    const poor = await gate.reserve(req('payg', 'poor', o1))
    expect(poor).toMatchObject({ allowed: true, model: 'gpt-4o' })
  })

  it('runaway breaker: 3x the hourly budget trips a cool-down with an alert; other features go on', async () => {
    const { gate, clock, alerts } = setup()
    // gpt-4o: 500k input ($1.25) + 100k output ($1) = $2.25 a call: the 7th passes $15
    const burn = req('enterprise', 'acme', {
      model: 'gpt-4o',
      feature: 'summarize',
      estimate: { inputTokens: 500_000, maxOutputTokens: 100_000 },
    })
    let tripped = 0
    for (let i = 0; i < 7; i++) {
      const d = await gate.reserve(burn)
      if (d.allowed) await gate.settle(d.id, { inputTokens: 500_000, outputTokens: 100_000 })
      else tripped++
    }
    expect(tripped).toBe(1)
    expect(alerts).toEqual([
      expect.objectContaining({
        type: 'circuit',
        rule: 'runaway-breaker',
        partition: { workspace: 'acme', feature: 'summarize' },
      }),
    ])
    const small = { ...burn, estimate: { inputTokens: 10, maxOutputTokens: 10 } }
    clock.advance('10m')
    expect(await gate.reserve(small)).toMatchObject({ allowed: false, code: 'circuit_open', status: 503 })
    expect((await gate.reserve({ ...small, feature: 'chat' })).allowed).toBe(true)
    clock.advance('21m') // cool-down over, and a new hour
    expect((await gate.reserve(small)).allowed).toBe(true)
  })

  it('prepaid balance: refused before any spend when the estimate passes it; unused estimate returns', async () => {
    const { gate } = setup()
    await gate.credit({ rule: 'prepaid-balance', subject: { workspace: 'pp' } }, 1)
    const tooBig = await gate.reserve(
      req('payg', 'pp', { model: 'gpt-4o', estimate: { inputTokens: 200_000, maxOutputTokens: 100_000 } }),
    )
    expect(tooBig).toMatchObject({
      allowed: false,
      code: 'insufficient_balance',
      status: 402,
      retryable: false,
    })
    const d = await gate.reserve(
      req('payg', 'pp', { model: 'gpt-4o', estimate: { inputTokens: 100_000, maxOutputTokens: 50_000 } }),
    )
    expect(d.allowed).toBe(true)
    if (!d.allowed) return
    expect(d.reservation.amounts.cost).toBe(toMicros(0.75))
    const settled = await gate.settle(d.id, { inputTokens: 100_000, outputTokens: 10_000 })
    expect(settled.amounts.cost).toBe(toMicros(0.35))
    const [balance] = (
      await gate.usage({ subject: { workspace: 'pp' }, attributes: { plan: 'payg' } })
    ).filter((l) => l.rule === 'prepaid-balance')
    expect(balance!.remaining).toBe(toMicros(0.65))
  })
})
