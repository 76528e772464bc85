/**
 * The engine end to end on Redis: `createTollgate({ policy, store: redisStore(...) })`, played
 * side by side with the memory store, and several gates (as several processes would) sharing one Redis.
 */
import { createTollgate, type PolicyInput } from '@tollgate/core'
import { fakeClock } from '@tollgate/core/testing'
import { afterAll, describe, expect, it } from 'vitest'
import { redisStore } from './store.js'
import { hostileNames, mixedRun, models } from './test/mixed.js'
import { deleteKeys, prefixes, testClient } from './test/redis.js'

const client = testClient()
const other = testClient()
const prefix = prefixes('engine')

afterAll(async () => {
  await deleteKeys(client, prefix.pattern)
  await Promise.all([client.quit(), other.quit()])
})

describe('the engine on Redis', () => {
  it('decides exactly as on the memory store over a long mixed run', { timeout: 60_000 }, async () => {
    await mixedRun((clock) => redisStore({ client, prefix: prefix.next(), clock }))
  })

  it('decides the same with hostile ids', { timeout: 60_000 }, async () => {
    await mixedRun(
      (clock) => redisStore({ client, prefix: prefix.next(), clock }),
      (id) => hostileNames[id]!,
    )
  })

  it('gates on different clients share counters, and any of them settles a reservation', async () => {
    const clock = fakeClock()
    const shared = prefix.next()
    const rules: PolicyInput = {
      models,
      tenant: 'org',
      rules: [
        { id: 'org-tokens', per: 'org', limits: { tokens: 1_000 }, window: 'day' },
        { id: 'user-concurrency', per: 'user', limits: { concurrency: 1 } },
      ],
    }
    const a = createTollgate({ policy: rules, store: redisStore({ client, prefix: shared, clock }) })
    const b = createTollgate({ policy: rules, store: redisStore({ client: other, prefix: shared, clock }) })
    const ask = (user: string, inputTokens: number) => ({
      subject: { org: 'acme', user },
      model: 'gpt-4o-mini',
      estimate: { inputTokens, maxOutputTokens: 0 },
    })
    const first = await a.reserve(ask('u1', 600))
    expect(first.allowed).toBe(true)
    // Another process sees the hold: the org has 400 left, and u1 is busy.
    expect(await b.reserve(ask('u2', 500))).toMatchObject({ allowed: false, rule: 'org-tokens' })
    expect(await b.reserve(ask('u1', 10))).toMatchObject({ allowed: false, code: 'concurrency_limited' })
    // b settles a's reservation from the store's record (it never saw it).
    expect(await b.settle(first.id, { inputTokens: 300, outputTokens: 0 })).toMatchObject({
      status: 'settled',
    })
    expect(await a.settle(first.id, { inputTokens: 300 })).toMatchObject({ status: 'duplicate' })
    const usage = await a.usage({ subject: { org: 'acme', user: 'u1' } })
    expect(usage.find((l) => l.rule === 'org-tokens')).toMatchObject({ used: 300, held: 0, remaining: 700 })
    expect(await b.reserve(ask('u1', 700))).toMatchObject({ allowed: true })
  })

  it('a prepaid balance is credited, spent and refused across gates', async () => {
    const clock = fakeClock()
    const shared = prefix.next()
    const rules: PolicyInput = {
      models,
      rules: [{ id: 'wallet', per: 'org', limits: { cost: 0 }, balance: true }],
    }
    const a = createTollgate({ policy: rules, store: redisStore({ client, prefix: shared, clock }) })
    const b = createTollgate({ policy: rules, store: redisStore({ client: other, prefix: shared, clock }) })
    const ask = {
      subject: { org: 'acme' },
      model: 'gpt-4o',
      estimate: { inputTokens: 100_000, maxOutputTokens: 0 },
    }
    expect(await a.reserve(ask)).toMatchObject({ allowed: false, rule: 'wallet' })
    await b.credit({ rule: 'wallet', subject: { org: 'acme' } }, 1)
    const spend = await a.reserve(ask) // $0.25 held of $1
    expect(spend.allowed).toBe(true)
    await b.settle(spend.id, { inputTokens: 100_000, outputTokens: 10_000 }) // $0.35
    const [wallet] = await b.usage({ subject: { org: 'acme' }, model: 'gpt-4o' })
    expect(wallet).toMatchObject({ rule: 'wallet', used: -650_000, held: 0, resetAt: null })
    clock.advance('400d')
    expect((await a.usage({ subject: { org: 'acme' }, model: 'gpt-4o' }))[0]).toMatchObject({
      used: -650_000,
    })
  })

  // With `policy.tenant`, admin calls (credit, override, balance checks) must use the counter reserve uses.
  it('with a tenant, a credit lands on the counter that reserve reads', async () => {
    const rules: PolicyInput = {
      tenant: 'org',
      models,
      rules: [{ id: 'wallet', per: 'org', limits: { cost: 0 }, balance: true }],
    }
    const gate = createTollgate({
      policy: rules,
      store: redisStore({ client, prefix: prefix.next(), clock: fakeClock() }),
    })
    await gate.credit({ rule: 'wallet', subject: { org: 'acme' } }, 1)
    const decision = await gate.reserve({
      subject: { org: 'acme' },
      model: 'gpt-4o',
      estimate: { inputTokens: 1_000 },
    })
    expect(decision.allowed).toBe(true)
  })

  it('time comes from the store: the clock option drives windows and expiry', async () => {
    const clock = fakeClock('2026-01-05T00:00:59.000Z')
    const rules: PolicyInput = {
      models,
      rules: [
        { id: 'per-minute', per: 'user', limits: { requests: 1 }, window: 'minute', holds: { ttl: '30s' } },
      ],
    }
    const gate = createTollgate({
      policy: rules,
      store: redisStore({ client, prefix: prefix.next(), clock }),
    })
    const ask = { subject: { user: 'u1' }, model: 'gpt-4o-mini' }
    const held = await gate.reserve(ask)
    expect(held).toMatchObject({ allowed: true, reservation: { expiresAt: clock.now() + 30_000 } })
    expect(await gate.reserve(ask)).toMatchObject({ allowed: false, retryAfterMs: 1_000 })
    clock.advance('1s')
    expect(await gate.reserve(ask)).toMatchObject({ allowed: true })
    clock.advance('31s')
    expect(await gate.settle(held.id, {})).toMatchObject({ status: 'settled', late: true })
  })
})
