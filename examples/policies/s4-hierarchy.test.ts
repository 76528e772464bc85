import { readFileSync } from 'node:fs'
import { type Alert, createTollgate } from '@tollgate/core'
import { fakeClock } from '@tollgate/core/testing'
import { describe, expect, it } from 'vitest'

const policy = readFileSync(new URL('./s4-hierarchy.yaml', import.meta.url), 'utf8')
const ask = (project: string, userTier: string, tokens: number, model = 'gpt-4o-mini') => ({
  subject: { org: 'acme', project, user: `${userTier}-user` },
  attributes: { userTier },
  model,
  estimate: { inputTokens: tokens - 100, maxOutputTokens: 100 },
})

describe('S4: hierarchy with soft and hard limits', () => {
  it('refuses calls above the per-call cap of the project', async () => {
    const gate = createTollgate({ policy, clock: fakeClock() })
    expect(await gate.reserve(ask('production', 'premium', 4000))).toMatchObject({ allowed: true })
    expect(await gate.reserve(ask('production', 'premium', 4001))).toMatchObject({
      allowed: false,
      code: 'request_too_large',
      status: 413,
    })
    expect(await gate.reserve(ask('development', 'premium', 2001))).toMatchObject({
      allowed: false,
      code: 'request_too_large',
    })
  })

  it('warns once at 80%, throttles to half the rate at 95%, blocks at 100%', async () => {
    const clock = fakeClock('2026-05-04T08:00:00Z')
    const alerts: Alert[] = []
    const gate = createTollgate({ policy, clock, onAlert: (a) => alerts.push(a) })
    // a standard user: 10,000 tokens a day and 30 requests a minute; past 9,500 tokens, 15 a minute
    const call = ask('development', 'standard', 500)
    for (let i = 0; i < 18; i++) {
      expect((await gate.reserve(call)).allowed).toBe(true)
      clock.advance('3m')
    }
    const userAlerts = () => alerts.filter((a) => a.rule === 'standard-user-day')
    expect(userAlerts()).toEqual([
      expect.objectContaining({ type: 'threshold', threshold: 0.8, partition: { user: 'standard-user' } }),
    ])
    expect((await gate.reserve(ask('development', 'standard', 480))).allowed).toBe(true) // 9,480: not yet 95%
    const small = { ...call, estimate: { inputTokens: 0, maxOutputTokens: 10 } }
    let admitted = 0
    for (let i = 0; i < 25; i++) if ((await gate.reserve(small)).allowed) admitted++
    expect(admitted).toBe(1 + 15) // one below 95%, then the throttle's 15 a minute
    const throttled = await gate.reserve(small)
    expect(throttled).toMatchObject({
      allowed: false,
      code: 'rate_limited',
      rule: 'standard-user-day',
      retryable: true,
    })
    if (throttled.allowed) return
    clock.advance(throttled.retryAfterMs!)
    expect((await gate.reserve(small)).allowed).toBe(true)
    const blocked = await gate.reserve(call)
    expect(blocked).toMatchObject({
      allowed: false,
      code: 'quota_exceeded',
      rule: 'standard-user-day',
      retryable: false,
    })
    expect(userAlerts()).toHaveLength(1)
  })

  it('at 100% of the frontier allowance, serves the named fallback model, visibly', async () => {
    const gate = createTollgate({ policy, clock: fakeClock() })
    for (let i = 0; i < 5; i++) {
      expect(await gate.reserve(ask('production', 'premium', 4000, 'gpt-4o'))).toMatchObject({
        allowed: true,
        model: 'gpt-4o',
      })
    }
    const served = await gate.reserve(ask('production', 'premium', 4000, 'gpt-4o'))
    expect(served).toMatchObject({ allowed: true, model: 'gpt-4o-mini', requestedModel: 'gpt-4o' })
    if (served.allowed)
      expect(served.downgrade).toEqual({
        from: 'gpt-4o',
        to: 'gpt-4o-mini',
        reason: 'fallback',
        rule: 'frontier-user-day',
      })
  })
})
