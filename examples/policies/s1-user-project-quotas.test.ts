import { readFileSync } from 'node:fs'
import { type AuditRecord, createTollgate, type PolicyInput, parsePolicy } from '@tollgate/core'
import { fakeClock } from '@tollgate/core/testing'
import { describe, expect, it } from 'vitest'
import { parse } from 'yaml'

const text = readFileSync(new URL('./s1-user-project-quotas.yaml', import.meta.url), 'utf8')
const subject = { user: 'user-8932', project: 'pro-plan' }
const call = { subject, model: 'gpt-4o-mini', estimate: { inputTokens: 400, maxOutputTokens: 100 } }

describe('S1: per-user and per-project quotas with audit tags', () => {
  it('refuses the request after 5,000 tokens with the rule code, and audits who, what and why', async () => {
    const clock = fakeClock('2026-05-04T09:00:00Z')
    const audit: AuditRecord[] = []
    const gate = createTollgate({ policy: text, clock, onDecision: (r) => audit.push(r) })
    for (let i = 0; i < 10; i++) {
      const decision = await gate.reserve(call)
      expect(decision.allowed).toBe(true)
      if (decision.allowed) await gate.settle(decision.id, { inputTokens: 400, outputTokens: 100 })
      clock.advance('1m')
    }
    const refused = await gate.reserve(call)
    expect(refused.allowed).toBe(false)
    if (refused.allowed) return
    expect(refused.code).toBe('USER_QUOTA_EXCEEDED')
    expect(refused.status).toBe(429)
    expect(refused.rule).toBe('user-daily')
    expect(refused.partition).toEqual({ user: 'user-8932' })
    expect(refused.retryable).toBe(false)
    expect(refused.resetAt).toBe(Date.parse('2026-05-05T00:00:00Z'))
    const record = audit.at(-1)!
    expect(record).toMatchObject({ decision: 'refuse', rule: 'user-daily', code: 'USER_QUOTA_EXCEEDED' })
    expect(record.subject).toEqual({ user: 'user-8932', project: 'pro-plan' })
    // another user of the same project is not affected; the next day the user is back
    expect((await gate.reserve({ ...call, subject: { user: 'user-1', project: 'pro-plan' } })).allowed).toBe(
      true,
    )
    clock.set('2026-05-05T00:00:00Z')
    expect((await gate.reserve(call)).allowed).toBe(true)
  })

  it('runs the same policy in shadow: every would-be refusal recorded, nothing refused', async () => {
    const policy = parse(text) as PolicyInput
    for (const rule of policy.rules) rule.mode = 'shadow'
    const clock = fakeClock('2026-05-04T09:00:00Z')
    const audit: AuditRecord[] = []
    const gate = createTollgate({ policy: parsePolicy(policy), clock, onDecision: (r) => audit.push(r) })
    for (let i = 0; i < 12; i++) {
      const decision = await gate.reserve(call)
      expect(decision.allowed).toBe(true)
      if (decision.allowed) await gate.settle(decision.id, { inputTokens: 400, outputTokens: 100 })
    }
    const shadowed = audit.filter((r) => r.shadow)
    expect(shadowed).toHaveLength(2)
    expect(shadowed[0]).toMatchObject({ decision: 'allow', shadowRules: ['user-daily'] })
  })
})
