import { readFileSync } from 'node:fs'
import { createTollgate } from '@tollgate/core'
import { fakeClock } from '@tollgate/core/testing'
import { describe, expect, it } from 'vitest'

const policy = readFileSync(new URL('./s3-user-team-org.yaml', import.meta.url), 'utf8')
const ask = (user: string, team = 'eng') => ({
  subject: { org: 'acme', team, user },
  estimate: { inputTokens: 500, maxOutputTokens: 500 },
})

describe('S3: user, team and organization tiers', () => {
  it('refuses the 21st request of a user in 60 s with 429, Retry-After and headers; backing off works', async () => {
    const clock = fakeClock()
    const gate = createTollgate({ policy, clock })
    for (let i = 0; i < 20; i++) {
      const d = await gate.reserve(ask('u1'))
      expect(d.allowed).toBe(true)
      if (d.allowed) await gate.settle(d.id, { inputTokens: 500, outputTokens: 200 })
      clock.advance('1s')
    }
    const refused = await gate.reserve(ask('u1'))
    expect(refused).toMatchObject({
      allowed: false,
      code: 'rate_limited',
      status: 429,
      rule: 'user-rate',
      retryable: true,
    })
    if (refused.allowed) return
    expect(refused.headers['retry-after']).toBeDefined()
    expect(refused.headers['x-ratelimit-remaining-requests']).toBe('0')
    expect(refused.headers.ratelimit).toContain('"user-rate.requests";r=0')
    // teammates are unaffected
    expect((await gate.reserve(ask('u2'))).allowed).toBe(true)
    // waiting exactly Retry-After lets the user through
    clock.advance(refused.retryAfterMs!)
    expect((await gate.reserve(ask('u1'))).allowed).toBe(true)
  })

  it('caps calls in flight per user at 5, and frees a slot when a call settles', async () => {
    const gate = createTollgate({ policy, clock: fakeClock() })
    const held = []
    for (let i = 0; i < 5; i++) held.push(await gate.reserve(ask('u1')))
    const sixth = await gate.reserve(ask('u1'))
    expect(sixth).toMatchObject({ allowed: false, code: 'concurrency_limited', rule: 'user-inflight' })
    await gate.release(held[0]!.id)
    expect((await gate.reserve(ask('u1'))).allowed).toBe(true)
  })

  it('the team ceiling binds across users: 200 requests a minute for the whole team', async () => {
    const clock = fakeClock()
    const gate = createTollgate({ policy, clock })
    let admitted = 0
    const refusedBy = new Set<string | null>()
    for (let i = 0; i < 220; i++) {
      const d = await gate.reserve(ask(`user-${i % 15}`))
      if (d.allowed) {
        admitted++
        await gate.settle(d.id, { inputTokens: 500, outputTokens: 100 })
      } else refusedBy.add(d.rule)
      clock.advance(100)
    }
    expect(admitted).toBe(200)
    expect([...refusedBy]).toEqual(['team-rate'])
  })
})
