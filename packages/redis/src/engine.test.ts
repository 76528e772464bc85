/**
 * The engine end to end on Redis: `createTollgate({ policy, store: redisStore(...) })`, played
 * side by side with the memory store, and several gates (as several processes would) sharing one Redis.
 */
import { type Alert, createTollgate, type Decision, memoryStore, type PolicyInput } from '@tollgate/core'
import { fakeClock } from '@tollgate/core/testing'
import { afterAll, describe, expect, it } from 'vitest'
import { redisStore } from './store.js'
import { deleteKeys, prefixes, testClient } from './test/redis.js'

const client = testClient()
const other = testClient()
const prefix = prefixes('engine')

afterAll(async () => {
  await deleteKeys(client, prefix.pattern)
  await Promise.all([client.quit(), other.quit()])
})

const models = {
  'gpt-4o-mini': { tier: 'low', price: { input: 0.15, output: 0.6 } },
  'gpt-4o': { tier: 'frontier', price: { input: 2.5, output: 10 } },
}

/** Every kind of window and companion the store knows, with a tenant so counters are scoped. */
const mixed: PolicyInput = {
  tenant: 'org',
  models,
  rules: [
    {
      id: 'user-day',
      per: 'user',
      limits: { requests: 40, tokens: 20_000 },
      window: 'day',
      alerts: [0.5, 0.9],
    },
    { id: 'user-rpm', per: 'user', limits: { requests: 5 }, window: '60s', alerts: [0.6] },
    { id: 'project-bucket', per: ['org', 'project'], limits: { requests: 3 }, window: { bucket: '20s' } },
    { id: 'user-concurrency', per: 'user', limits: { concurrency: 2 }, holds: { ttl: '2m' } },
    {
      id: 'org-budget',
      per: 'org',
      limits: { cost: 0.05 },
      window: 'month',
      alerts: [0.5, 0.8],
      holds: { expiry: 'release', ttl: '5m' },
    },
    {
      id: 'org-throttle',
      per: 'org',
      limits: { tokens: 14_000 },
      window: 'hour',
      throttle: { at: 0.3, rate: '2/1m' },
    },
    { id: 'global-rpm', limits: { requests: 9 }, window: 'minute' },
    { id: 'breaker', per: 'org', limits: { tokens: 10_000 }, window: 'hour', circuit: { cooldown: '2m' } },
    { id: 'shadow', per: 'user', limits: { tokens: 3_000 }, window: 'hour', mode: 'shadow' },
  ],
}

/** The same shapes tuned so that the day, the rolling minute, the global rule and the budget bind. */
const quotas: PolicyInput = {
  tenant: 'org',
  models,
  rules: [
    { id: 'user-day', per: 'user', limits: { requests: 15, tokens: 20_000 }, window: 'day', alerts: [0.5] },
    { id: 'user-rpm', per: 'user', limits: { requests: 3 }, window: { rolling: '60s', slots: 12 } },
    {
      id: 'user-concurrency',
      per: 'user',
      limits: { concurrency: 3 },
      holds: { ttl: '90s', expiry: 'release' },
    },
    { id: 'org-budget', per: 'org', limits: { cost: 0.02 }, window: 'month', holds: { ttl: '3m' } },
    { id: 'global-rpm', limits: { requests: 6 }, window: 'minute' },
  ],
}

/** A small seeded generator, so a failure replays. */
function random(seed: number) {
  let a = seed >>> 0
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  return {
    int: (max: number) => Math.floor(next() * max),
    pick: <T>(list: readonly T[]) => list[Math.floor(next() * list.length)]!,
  }
}

/** A decision without its random ids. */
const plain = (value: unknown) =>
  JSON.parse(JSON.stringify(value, (key, v) => (key === 'id' ? undefined : v)))

describe('the engine on Redis', () => {
  it('decides exactly as on the memory store over a long mixed run', { timeout: 60_000 }, async () => {
    const seen = new Set<string>()
    for (const [seed, policy] of [
      [1, mixed],
      [2, mixed],
      [3, quotas],
      [4, quotas],
    ] as const) {
      const clock = fakeClock('2026-03-31T23:50:00.000Z')
      const alerts = { memory: [] as Alert[], redis: [] as Alert[] }
      const memory = createTollgate({
        policy,
        store: memoryStore({ clock }),
        onAlert: (a) => alerts.memory.push(a),
      })
      const redis = createTollgate({
        policy,
        store: redisStore({ client, prefix: prefix.next(), clock }),
        onAlert: (a) => alerts.redis.push(a),
      })
      const rng = random(seed)
      const open: { memory: string; redis: string; at: number }[] = []
      const closed: typeof open = []
      // Each user and project belongs to one tenant, as a trusted subject's ids do.
      const subjects = () =>
        rng.pick([
          { org: 'o1', project: 'p1', user: 'u1' },
          { org: 'o1', project: 'p2', user: 'u1' },
          { org: 'o1', project: 'p1', user: 'u2' },
          { org: 'o2', project: 'p3', user: 'u3' },
          { org: 'o2', project: 'p4', user: 'u4' },
        ])
      for (let step = 0; step < 250; step++) {
        const what = rng.int(10)
        const label = `seed ${seed} step ${step}`
        if (what < 5) {
          const request = {
            subject: subjects(),
            model: rng.pick(['gpt-4o-mini', 'gpt-4o']),
            estimate: { inputTokens: rng.int(3_000), maxOutputTokens: rng.int(1_000) },
          }
          const a: Decision = await memory.reserve(request)
          const b: Decision = await redis.reserve(request)
          expect(plain(b), label).toEqual(plain(a))
          if (a.allowed && a.warnings.length > 0) seen.add('warning')
          if (!a.allowed) for (const v of a.violations) seen.add(`${v.code} ${v.rule}`)
          for (const v of a.shadowViolations) seen.add(`shadow ${v.rule}`)
          if (a.allowed && b.allowed) open.push({ memory: a.id, redis: b.id, at: clock.now() })
        } else if (what < 7 && open.length > 0) {
          const r = open.splice(rng.int(open.length), 1)[0]!
          const usage = rng.int(3) === 0 ? {} : { inputTokens: rng.int(4_000), outputTokens: rng.int(1_500) }
          if (clock.now() - r.at < 30 * 60_000) {
            expect(plain(await redis.settle(r.redis, usage)), label).toEqual(
              plain(await memory.settle(r.memory, usage)),
            )
          }
          closed.push(r)
        } else if (what < 8 && open.length > 0) {
          const r = open.splice(rng.int(open.length), 1)[0]!
          if (clock.now() - r.at < 30 * 60_000) {
            expect(plain(await redis.release(r.redis)), label).toEqual(plain(await memory.release(r.memory)))
          }
          closed.push(r)
        } else if (what < 9 && closed.length > 0) {
          const r = rng.pick(closed)
          expect(await redis.settle(r.redis, {}), label).toEqual(await memory.settle(r.memory, {}))
        } else {
          clock.advance(rng.pick([0, 1_000, 5_000, 30_000, 90_000, 400_000]))
        }
        if (step % 25 === 0) {
          const subject = subjects()
          expect(plain(await redis.usage({ subject })), label).toEqual(plain(await memory.usage({ subject })))
        }
      }
      expect(alerts.redis).toEqual(alerts.memory)
      expect(alerts.redis.length).toBeGreaterThan(0)
    }
    expect([...seen].sort()).toEqual([
      'budget_exceeded org-budget',
      'circuit_open breaker',
      'concurrency_limited user-concurrency',
      'quota_exceeded global-rpm',
      'quota_exceeded org-throttle',
      'quota_exceeded user-day',
      'rate_limited org-throttle',
      'rate_limited project-bucket',
      'rate_limited user-rpm',
      'shadow shadow',
      'warning',
    ])
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
