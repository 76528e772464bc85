/**
 * Hostile ids and amounts, through the engine, against Redis. A private, empty redis-server
 * shows that nothing is written outside the prefix and that every key has a TTL, save the
 * documented permanent ones.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { createTollgate, type PolicyInput, TollgateError } from '@tollgate/core'
import { fakeClock, replaceAt } from '@tollgate/core/testing'
import fc from 'fast-check'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type RedisStore, redisStore } from './store.js'
import { startRedis, type TestServer } from './test/server.js'

/** Ids that trip up key encodings, hash tags, globs and UTF-8. */
const HOSTILE: readonly string[] = [
  'a',
  'a:b',
  ':',
  '{a}',
  '{',
  '}',
  '}{',
  'a}:{b',
  '{tollgate}',
  'tollgate}:o:x',
  'a\nb',
  'a\r\n',
  '\n',
  'a\0b',
  '\t',
  '%',
  '%25',
  '%u0041',
  'A',
  '*',
  '?',
  '[a-z]',
  '\\',
  '"',
  '=',
  'a=b,c=d',
  '__proto__',
  'ü',
  'u\u0308',
  'İ',
  '🚦',
  '\uD83D',
  '\uDEA6',
  '\uDEA6\uD83D',
  '\uFFFD',
  '\uFEFF',
  'x'.repeat(10_000),
  `${'x'.repeat(10_000)}y`,
  `${'🚦'.repeat(5_000)}`,
]

const models = { m: { price: { input: 1, output: 1 } } }
const policy: PolicyInput = {
  tenant: 'org',
  models,
  rules: [
    { id: 'user-day', per: 'user', limits: { tokens: 1_000_000 }, window: 'day' },
    { id: 'key-rolling', per: 'key', limits: { requests: 100 }, window: '60s' },
    { id: 'org-bucket', per: 'org', limits: { requests: 100 }, window: { bucket: '1m' }, alerts: [0.5] },
    { id: 'user-concurrency', per: 'user', limits: { concurrency: 5 } },
    { id: 'org-budget', per: 'org', limits: { cost: 1_000 }, window: 'month' },
    { id: 'org-lifetime', per: ['org', 'user'], limits: { requests: 1_000 }, window: 'lifetime' },
    {
      id: 'org-breaker',
      per: 'org',
      limits: { requests: 1 },
      window: 'hour',
      circuit: { cooldown: '1m' },
      mode: 'shadow',
    },
    { id: 'global', limits: { requests: 1_000_000 }, window: 'minute', throttle: { at: 0.5, rate: '10/s' } },
  ],
}

let server: TestServer
let client: Redis

beforeAll(async () => {
  server = await startRedis()
  client = new Redis(server.url, {
    enableOfflineQueue: false,
    autoResendUnfulfilledCommands: false,
    lazyConnect: true,
  })
  await client.connect()
})

afterAll(async () => {
  client.disconnect()
  await server.kill()
})

function gateOn(prefix: string, clock = fakeClock()) {
  const store = redisStore({ client, prefix, clock })
  return { store, clock, gate: createTollgate({ policy, store }) }
}

/** Every key on the private server, each checked to start with a hash tag naming the prefix. */
async function keysOf(prefix: string): Promise<{ key: string; ttl: number }[]> {
  const keys = await client.keys('*')
  const out: { key: string; ttl: number }[] = []
  for (const key of keys) {
    const tag = /^\{([^{}]*)\}:/.exec(key)
    expect(tag, `a key outside any hash tag: ${JSON.stringify(key.slice(0, 80))}`).not.toBeNull()
    const inside = tag![1]!
    expect(
      inside === prefix || /^[A-Za-z0-9_.~%-]*$/.test(inside.slice(prefix.length + 1)),
      inside.slice(0, 80),
    ).toBe(true)
    expect(
      inside === prefix || inside.startsWith(`${prefix}:`),
      `tag ${inside.slice(0, 80)} outside ${prefix}`,
    ).toBe(true)
    out.push({ key, ttl: await client.pttl(key) })
  }
  return out
}

/** Keys meant to live until cleared: overrides, blocks and lifetime windows. */
const permanent = (key: string) => /^\{[^{}]*\}:(o|so|b):/.test(key) || /^\{[^{}]*\}:f:0:/.test(key)

describe('hostile ids through the engine, against Redis', () => {
  it('each id keeps its own counters, and every key stays under the prefix with a TTL', async () => {
    await client.flushdb()
    const prefix = 'hostile'
    const { gate, clock } = gateOn(prefix)
    const ids: string[] = []
    for (const [i, h] of HOSTILE.entries()) {
      const subject = { org: h, user: h, key: h }
      const decision = await gate.reserve({
        subject,
        model: 'm',
        estimate: { inputTokens: i + 1, maxOutputTokens: 0 },
      })
      expect(decision.allowed, `id ${JSON.stringify(h.slice(0, 20))}`).toBe(true)
      ids.push(decision.id)
    }
    for (const [i, h] of HOSTILE.entries()) {
      const limits = await gate.usage({ subject: { org: h, user: h, key: h }, model: 'm' })
      const byRule = Object.fromEntries(limits.map((l) => [`${l.rule}.${l.metric}`, l.used]))
      expect(byRule, `id ${JSON.stringify(h.slice(0, 20))}`).toMatchObject({
        'user-day.tokens': i + 1,
        'key-rolling.requests': 1,
        'user-concurrency.concurrency': 1,
        'org-budget.cost': i + 1,
        'org-lifetime.requests': 1,
      })
    }
    // Settle half, leave the other half to expire: both paths touch every kind of key.
    for (const [i, id] of ids.entries())
      if (i % 2 === 0) await gate.settle(id, { inputTokens: 1, outputTokens: 0 })
    clock.advance('11m')
    expect((await gate.usage({ subject: { org: 'a', user: 'a', key: 'a' }, model: 'm' }))[0]).toMatchObject({
      held: 0,
    })
    // Blocks, overrides and credits with hostile ids.
    await gate.block('user', HOSTILE[5]!, 'blocked')
    await gate.override({ rule: 'user-day', subject: { org: 'o', user: HOSTILE[6]! } }, 5)
    expect(
      await gate.reserve({ subject: { org: 'o', user: HOSTILE[5]!, key: 'k' }, model: 'm' }),
    ).toMatchObject({
      allowed: false,
      code: 'blocked',
    })
    expect(
      await gate.reserve({ subject: { org: 'o', user: HOSTILE[4]!, key: 'k' }, model: 'm' }),
    ).toMatchObject({
      allowed: true,
    })

    const keys = await keysOf(prefix)
    expect(keys.length).toBeGreaterThan(HOSTILE.length * 5)
    const forever = keys.filter((k) => k.ttl < 0)
    expect(forever.filter((k) => !permanent(k.key)).map((k) => k.key.slice(0, 80))).toEqual([])
    // Permanent keys are exactly the overrides, blocks and lifetime windows.
    // the override is org o's (the policy's tenant): kept under that tenant's tag
    expect(forever.filter((k) => /\}:s?o:/.test(k.key)).map((k) => k.key.slice(0, 24))).toEqual([
      '{hostile}:so:{hostile:o}',
    ])
    expect(forever.filter((k) => /\}:b:/.test(k.key))).toHaveLength(1)
    expect(forever.filter((k) => /\}:f:0:org-lifetime:/.test(k.key)).length).toBe(HOSTILE.length + 1)
    // Nothing lives longer than the reservation TTL plus the idempotency horizon, or a month plus grace.
    for (const { ttl } of keys) expect(ttl).toBeLessThanOrEqual(32 * 86_400_000 + 3_600_000)
  })

  it('ids that escape into the key or the hash tag are kept apart from their look-alikes', async () => {
    const { gate } = gateOn('lookalike')
    const pairs = [
      ['a:b', 'a%003ab'],
      ['%', '%25'],
      ['\uD800', '\uFFFD'],
      ['\uD800', '%ud800'],
      ['x}', 'x'],
      ['{x}', 'x'],
    ]
    const ids = pairs.flat()
    for (const id of ids) {
      const subject = { org: id, user: id, key: id }
      await gate.reserve({ subject, model: 'm', estimate: { inputTokens: 7, maxOutputTokens: 0 } })
    }
    for (const id of new Set(ids)) {
      const [day] = await gate.usage({ subject: { org: id, user: id, key: id }, model: 'm' })
      expect(day!.used, JSON.stringify(id)).toBe(7 * ids.filter((p) => p === id).length)
    }
  })
})

describe('hostile amounts through the engine, against Redis', () => {
  const bad: unknown[] = [
    -1,
    -0.5,
    1.5,
    Number.NaN,
    Number.POSITIVE_INFINITY,
    Number.NEGATIVE_INFINITY,
    1e12 + 1,
    2 ** 53,
    '5',
    null,
    {},
  ]

  it('bad estimates and usages are refused with a typed error and change no counter', async () => {
    const { gate } = gateOn('amounts')
    const subject = { org: 'o', user: 'u', key: 'k' }
    const before = await gate.usage({ subject, model: 'm' })
    for (const amount of bad) {
      for (const estimate of [
        { inputTokens: amount },
        { maxOutputTokens: amount },
        { units: { x: amount } },
      ]) {
        const error = await gate.reserve({ subject, model: 'm', estimate: estimate as never }).then(
          () => null,
          (e: unknown) => e,
        )
        expect(TollgateError.isInstance(error), `estimate ${JSON.stringify(estimate)}`).toBe(true)
      }
    }
    expect(await gate.usage({ subject, model: 'm' })).toEqual(before)
    const held = await gate.reserve({
      subject,
      model: 'm',
      estimate: { inputTokens: 10, maxOutputTokens: 0 },
    })
    for (const amount of bad) {
      const error = await gate.settle(held.id, { outputTokens: amount as never }).then(
        () => null,
        (e: unknown) => e,
      )
      expect(TollgateError.isInstance(error), `usage ${String(amount)}`).toBe(true)
    }
    expect(await gate.settle(held.id, { inputTokens: 4 })).toMatchObject({ status: 'settled' })
    const [day] = await gate.usage({ subject, model: 'm' })
    expect(day).toMatchObject({ used: 4, held: 0 })
  })

  it('the largest amounts count exactly, in Lua and on the way back', async () => {
    const subject = { org: 'big', user: 'big', key: 'big' }
    const big = { inputTokens: 3e11, maxOutputTokens: 0 }
    const rules: PolicyInput = {
      models,
      rules: [{ id: 'huge', per: 'user', limits: { tokens: 1e12 }, window: 'day' }],
    }
    const store = redisStore({ client, prefix: 'large-store', clock: fakeClock() })
    const exact = createTollgate({ policy: rules, store })
    const ids: string[] = []
    for (let i = 0; i < 3; i++) ids.push((await exact.reserve({ subject, model: 'm', estimate: big })).id)
    expect((await exact.usage({ subject }))[0]).toMatchObject({ used: 9e11, held: 9e11 })
    expect((await exact.reserve({ subject, model: 'm', estimate: big })).allowed).toBe(false)
    await exact.settle(ids[0]!, { inputTokens: 999_999_999_999, outputTokens: 1e12 })
    const [after] = await exact.usage({ subject })
    expect(after).toMatchObject({ used: 6e11 + 1_999_999_999_999, held: 6e11 })
    // Past 2^31 and past cjson's 14 digits, straight through the store: nothing is rounded.
    await storeExact(store)
  })
})

async function storeExact(store: RedisStore) {
  const spec = {
    key: 'exact',
    metric: 'tokens',
    amount: 2_999_999_999_999_999,
    cap: 9_007_199_254_740_991,
    enforce: true,
    window: { kind: 'fixed' as const, bounds: [0, Number.MAX_SAFE_INTEGER] },
    expiry: 'keep' as const,
  }
  for (let i = 0; i < 3; i++) {
    expect(
      await store.reserve({
        id: `exact-${i}`,
        counters: [spec],
        ttlMs: 60_000,
        blocks: [],
        meta: { model: 'm' },
      }),
    ).toMatchObject({
      status: 'ok',
    })
  }
  expect((await store.read([spec]))[0]).toMatchObject({
    used: 8_999_999_999_999_997,
    held: 8_999_999_999_999_997,
  })
  expect(await store.commit({ id: 'exact-1', amounts: { tokens: 1 } })).toMatchObject({
    counters: [{ held: 2_999_999_999_999_999, charged: 1, overdraft: 0 }],
  })
  expect((await store.read([spec]))[0]).toMatchObject({
    used: 5_999_999_999_999_999,
    held: 5_999_999_999_999_998,
  })
  // A fractional refill interval keeps every digit of the theoretical arrival time.
  const bucket = {
    ...spec,
    key: 'fraction',
    amount: 1,
    cap: 7,
    window: { kind: 'bucket' as const, intervalMs: 60_000 / 7 },
  }
  const answer = await store.reserve({
    id: 'fraction',
    counters: [bucket],
    ttlMs: 60_000,
    blocks: [],
    meta: { model: 'm' },
  })
  expect(answer.status === 'ok' && answer.counters[0]!.resetAt).toBe(answer.now + 60_000 / 7)
}

describe('any value anywhere, against Redis (property)', () => {
  const dir = new URL('../../../examples/policies/', import.meta.url)
  const scenarios = readdirSync(dir)
    .filter((file) => file.endsWith('.yaml'))
    .map((file) => [file, readFileSync(new URL(file, dir), 'utf8')] as const)
  /** A request that names every dimension, attribute and estimate the scenarios use. */
  const base = {
    subject: {
      tenant: 't1',
      org: 'o1',
      team: 'tm1',
      project: 'p1',
      user: 'u1',
      key: 'k1',
      environment: 'prod',
    },
    model: 'gpt-4o',
    feature: 'chat',
    attributes: { plan: 'pro', environment: 'production', flags: ['beta'] },
    estimate: { inputTokens: 100, maxOutputTokens: 100, units: { image_final: 1 } },
  }
  const usage = { inputTokens: 50, outputTokens: 20, cachedInputTokens: 10, units: { image_final: 1 } }
  const typed = async (call: () => unknown) => {
    try {
      await call()
      return true
    } catch (error) {
      return TollgateError.isInstance(error)
    }
  }
  const path = fc.array(fc.nat(20), { maxLength: 4 })
  const anything = fc.anything({
    maxDepth: 2,
    withBigInt: true,
    withNullPrototype: true,
    withSparseArray: true,
  })

  it('every scenario answers or throws a TollgateError, and every key stays under the prefix with a TTL', async () => {
    await client.flushall()
    for (const [file, policy] of scenarios) {
      const gate = createTollgate({ policy, store: redisStore({ client, prefix: 'fuzz' }) })
      await fc
        .assert(
          fc.asyncProperty(
            path,
            anything,
            path,
            anything,
            anything,
            async (at, value, usageAt, usageValue, id) => {
              const request = replaceAt(base, at, value) as never
              let allowed: string | undefined
              const reserved = await typed(async () => {
                const decision = await gate.reserve(request)
                if (decision.allowed) allowed = decision.id
              })
              return (
                reserved &&
                (await typed(() => gate.usage(request))) &&
                (await typed(
                  () => allowed && gate.settle(allowed, replaceAt(usage, usageAt, usageValue) as never),
                )) &&
                (await typed(() => gate.settle(id as never, usage))) &&
                (await typed(() => gate.release(id as never)))
              )
            },
          ),
          { numRuns: 200, interruptAfterTimeLimit: 20_000 },
        )
        .catch((error: Error) => {
          throw new Error(`${file}: ${error.message}`)
        })
    }
    const keys = await keysOf('fuzz')
    expect(keys.length).toBeGreaterThan(0)
    expect(keys.filter((k) => k.ttl < 0 && !permanent(k.key)).map((k) => k.key.slice(0, 80))).toEqual([])
  })

  it('any value in an override, a credit, a block or a top query answers or throws a TollgateError, under the prefix', async () => {
    await client.flushall()
    for (const [file, policy] of scenarios) {
      const gate = createTollgate({ policy, store: redisStore({ client, prefix: 'admin' }) })
      const rules = gate.policy.rules.map((rule) => rule.id)
      const metric = fc.constantFrom(undefined, 'requests', 'tokens', 'inputTokens', 'cost')
      await fc
        .assert(
          fc.asyncProperty(
            fc.constantFrom(...rules),
            metric,
            path,
            anything,
            anything,
            anything,
            async (rule, metric, at, value, amount, name) => {
              const ref = replaceAt({ rule, subject: base.subject, metric }, at, value) as never
              return (
                (await typed(() => gate.override(ref, amount as never))) &&
                (await typed(() => gate.credit(ref, amount as never))) &&
                (await typed(() => gate.top(replaceAt({ rule, metric, limit: 5 }, at, value) as never))) &&
                (await typed(() => gate.block(name as never, 'u1', amount as never))) &&
                (await typed(() => gate.unblock(name as never, amount as never)))
              )
            },
          ),
          { numRuns: 150, interruptAfterTimeLimit: 15_000 },
        )
        .catch((error: Error) => {
          throw new Error(`${file}: ${error.message}`)
        })
    }
    // one write known to land, beside whatever the hostile calls wrote (a run may write nothing)
    await createTollgate({ policy: scenarios[0]![1], store: redisStore({ client, prefix: 'admin' }) }).block(
      'user',
      'u:{1}',
    )
    expect((await keysOf('admin')).length).toBeGreaterThan(0) // and each under the prefix's hash tags
  })
})
