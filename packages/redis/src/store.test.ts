/** The store's own parts: id encoding, time from Redis TIME, and what reaches Redis. */
import { createTollgate, type PolicyInput } from '@tollgate/core'
import fc from 'fast-check'
import { afterAll, describe, expect, it } from 'vitest'
import { decodeId, encodeId } from './keys.js'
import { redisStore } from './store.js'
import { deleteKeys, prefixes, testClient } from './test/redis.js'

const client = testClient()
const prefix = prefixes('store')

afterAll(async () => {
  await deleteKeys(client, prefix.pattern)
  await client.quit()
})

/** Any sequence of UTF-16 code units, lone surrogates included. */
const anyString = fc
  .array(fc.integer({ min: 0, max: 0xffff }), { maxLength: 40 })
  .map((units) => String.fromCharCode(...units))
const tricky = fc
  .array(fc.constantFrom('%', '2', '5', 'u', 'd', '8', '0', '\uD800', '\uDC00', '\uFFFD', 'a'), {
    maxLength: 12,
  })
  .map((parts) => parts.join(''))

describe('encodeId', () => {
  it('is undone by decodeId, so no two strings share an encoding', () => {
    fc.assert(
      fc.property(fc.oneof(anyString, tricky), (text) => {
        expect(decodeId(encodeId(text))).toBe(text)
      }),
      { numRuns: 2_000 },
    )
  })

  it('gives well-formed Unicode that survives UTF-8 unchanged, keeping plain ids as they are', () => {
    fc.assert(
      fc.property(fc.oneof(anyString, tricky), (text) => {
        const encoded = encodeId(text)
        expect(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(encoded)).toBe(
          false,
        )
        expect(Buffer.from(encoded, 'utf8').toString('utf8')).toBe(encoded)
      }),
      { numRuns: 2_000 },
    )
    for (const plain of ['user-1', 'a:b', '{x}', 'ü🚦', 'a\nb']) expect(encodeId(plain)).toBe(plain)
    expect(encodeId('%')).toBe('%25')
    expect(encodeId('\uD800')).toBe('%ud800')
  })
})

describe('time from Redis', () => {
  it('without a test clock the scripts use Redis TIME, and now() follows it', async () => {
    const store = redisStore({ client, prefix: prefix.next() })
    expect(Math.abs(store.now() - Date.now())).toBeLessThan(1_000)
    const counter = {
      key: 'k',
      metric: 'requests',
      amount: 1,
      cap: 1,
      enforce: true,
      window: { kind: 'fixed' as const, bounds: [0, 1] },
      expiry: 'keep' as const,
    }
    const local = Date.now()
    const skew = await store.reserve({
      id: 'r',
      counters: [counter],
      ttlMs: 1_000,
      blocks: [],
      meta: { model: 'm' },
    })
    expect(skew.status).toBe('skew')
    const [seconds, micros] = await client.time()
    const server = Number(seconds) * 1_000 + Math.floor(Number(micros) / 1_000)
    expect(skew.now).toBeGreaterThanOrEqual(local - 1_000)
    expect(skew.now).toBeLessThanOrEqual(server)
    expect(Math.abs(store.now() - server)).toBeLessThan(1_000)
  })

  it('the scripts read Redis TIME to the millisecond', async () => {
    const store = redisStore({ client, prefix: prefix.next() })
    const serverNow = async () => {
      const [seconds, micros] = await client.time()
      return Number(seconds) * 1_000 + Math.floor(Number(micros) / 1_000)
    }
    const counter = {
      key: 'k',
      metric: 'requests',
      amount: 1,
      cap: 1,
      enforce: true,
      window: { kind: 'fixed' as const, bounds: [0, 1] },
      expiry: 'keep' as const,
    }
    const before = await serverNow()
    const skew = await store.reserve({
      id: 'r',
      counters: [counter],
      ttlMs: 1_000,
      blocks: [],
      meta: { model: 'm' },
    })
    const after = await serverNow()
    expect(skew.status).toBe('skew')
    expect(skew.now).toBeGreaterThanOrEqual(before)
    expect(skew.now).toBeLessThanOrEqual(after)
  })

  it('the engine runs on Redis time', async () => {
    const policy: PolicyInput = {
      models: { m: { price: { input: 1, output: 1 } } },
      rules: [
        { id: 'minute', per: 'user', limits: { requests: 2 }, window: 'minute' },
        { id: 'rolling', per: 'user', limits: { tokens: 1_000 }, window: '1h' },
        { id: 'bucket', per: 'user', limits: { requests: 10 }, window: { bucket: '1m' } },
        { id: 'concurrency', per: 'user', limits: { concurrency: 5 } },
      ],
    }
    const gate = createTollgate({ policy, store: redisStore({ client, prefix: prefix.next() }) })
    const ask = { subject: { user: 'u1' }, model: 'm', estimate: { inputTokens: 100, maxOutputTokens: 0 } }
    const first = await gate.reserve(ask)
    expect(first).toMatchObject({ allowed: true })
    expect(Math.abs((first.allowed ? first.reservation.expiresAt : 0) - (Date.now() + 600_000))).toBeLessThan(
      2_000,
    )
    expect(await gate.settle(first.id, { inputTokens: 40 })).toMatchObject({ status: 'settled', late: false })
    const usage = await gate.usage({ subject: { user: 'u1' } })
    expect(usage.find((l) => l.rule === 'rolling')).toMatchObject({ used: 40, held: 0 })
  })
})
