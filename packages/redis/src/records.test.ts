/**
 * What a closed reservation leaves in Redis: for `idempotencyMs` (24 h by default) every settled or
 * released id is remembered so that a duplicate is recognised, so its size is paid for every call
 * of the last day. Only its state stays, as `<tag>:d:<id>`; records an earlier version closed (the
 * whole hash) are still recognised.
 */
import { createTollgate, type PolicyInput } from '@tollgate/core'
import { fakeClock } from '@tollgate/core/testing'
import { afterAll, describe, expect, it } from 'vitest'
import { redisStore, redisStoreWithoutLeanScripts } from './store.js'
import { deleteKeys, prefixes, testClient } from './test/redis.js'

const client = testClient()
const prefix = prefixes('records')

afterAll(async () => {
  await deleteKeys(client, prefix.pattern)
  await client.quit()
})

const policy: PolicyInput = {
  models: { m: { price: { input: 1, output: 1 } } },
  rules: [
    { id: 'user-day', per: 'user', limits: { requests: 100, tokens: 1_000_000 }, window: 'day' },
    { id: 'team-day', per: 'team', limits: { tokens: 1_000_000 }, window: 'day' },
  ],
}
const ask = {
  subject: { team: 't', user: 'u' },
  model: 'm',
  estimate: { inputTokens: 100, maxOutputTokens: 50 },
}

/** Every key of a prefix with its type and TTL. */
async function keysOf(p: string) {
  const keys = (await client.keys(`{${p}}*`)).sort()
  return Promise.all(
    keys.map(async (key) => ({ key, type: await client.type(key), ttl: await client.pttl(key) })),
  )
}

describe('open reservations', () => {
  for (const lean of [true, false]) {
    it(`live their TTL plus idempotencyMs in Redis, for a late settle (${lean ? 'lean' : 'general'} reserve)`, async () => {
      // Redis drops a record by its key's TTL, on its own clock whatever the test clock says: the
      // TTL it set is read back instead of waiting for it.
      const p = prefix.next()
      const clock = fakeClock()
      const options = { client, prefix: p, clock, idempotencyMs: 3_600_000 }
      const store = lean ? redisStore(options) : redisStoreWithoutLeanScripts(options)
      const gate = createTollgate({ policy, store })
      const held = await gate.reserve(ask) // calendar windows only: the lean reserve takes it
      if (!held.allowed) throw new Error('refused')
      const ttl = held.reservation.expiresAt - clock.now()
      expect(ttl).toBe(600_000) // the default hold TTL
      const life = await client.pttl(`{${p}}:r:${held.id}`)
      expect(life).toBeGreaterThan(ttl + 3_590_000)
      expect(life).toBeLessThanOrEqual(ttl + 3_600_000)
      // the expiry index lives at least as long as its records
      expect(await client.pttl(`{${p}}:x`)).toBeGreaterThanOrEqual(life - 1_000)
    })
  }
})

describe('closed reservations', () => {
  for (const lean of [true, false]) {
    it(`leave only their state for idempotencyMs (${lean ? 'lean' : 'general'} commit)`, async () => {
      const p = prefix.next()
      const clock = fakeClock()
      const options = { client, prefix: p, clock, idempotencyMs: 3_600_000 }
      const store = lean ? redisStore(options) : redisStoreWithoutLeanScripts(options)
      const gate = createTollgate({ policy, store })
      const settled = await gate.reserve(ask)
      const released = await gate.reserve(ask)
      if (!settled.allowed || !released.allowed) throw new Error('refused')
      const commit = (id: string, amounts: Record<string, number> | null) => store.commit({ id, amounts })
      expect(await commit(settled.id, { requests: 1, tokens: 120 })).toMatchObject({ status: 'settled' })
      expect(await commit(released.id, null)).toMatchObject({ status: 'released' })

      const left = (await keysOf(p)).filter((k) => !/:f:/.test(k.key)) // the windows stay, as before
      expect(left.map(({ key, type }) => [key, type])).toEqual(
        [
          [`{${p}}:d:${released.id}`, 'string'],
          [`{${p}}:d:${settled.id}`, 'string'],
        ].sort(),
      )
      for (const { ttl } of left) expect(ttl).toBeGreaterThan(3_590_000)
      expect(await client.get(`{${p}}:d:${settled.id}`)).toBe('settled')
      // `MEMORY USAGE` of the closed record was 448 bytes as a hash with its meta; 120 now
      const bytes = Number(await client.call('MEMORY', 'USAGE', `{${p}}:d:${settled.id}`))
      expect(bytes).toBeLessThan(200)

      // duplicates are still recognised, from the gate and from the store
      expect(await gate.settle(settled.id, { inputTokens: 1 })).toMatchObject({ status: 'duplicate' })
      expect(await gate.release(released.id)).toMatchObject({ status: 'duplicate' })
      expect(await commit(settled.id, null)).toEqual({ status: 'duplicate', previous: 'settled' })
      expect(await store.lookup(released.id)).toMatchObject({ id: released.id, state: 'released' })
      // forgotten once Redis drops it (its TTL runs on Redis' own clock): then the id is unknown
      await client.del(`{${p}}:d:${settled.id}`)
      expect(await commit(settled.id, null)).toEqual({ status: 'unknown' })
    })
  }

  it('a record an earlier version closed (the whole hash) still answers duplicate', async () => {
    const p = prefix.next()
    const store = redisStore({ client, prefix: p, clock: fakeClock() })
    const id = 'closed-by-0.x'
    await client.hset(`{${p}}:r:${id}`, 's', 'settled', 'e', '1', 'm', JSON.stringify({ model: 'm' }))
    expect(await store.commit({ id, amounts: null })).toEqual({ status: 'duplicate', previous: 'settled' })
    expect(await store.lookup(id)).toMatchObject({ state: 'settled', meta: { model: 'm' } })
  })
})

describe('calendar windows', () => {
  const START = Date.parse('2026-03-02T10:00:00.000Z')
  const STOP = START + 60_000
  const GRACE = 120_000
  const flavours = [
    ['lean reserve', true, false],
    ['general reserve', false, false],
    ['general reserve, with alerts', false, true],
  ] as const
  for (const [name, lean, alerts] of flavours) {
    it(`live until their end plus graceMs, for a late settle (${name})`, async () => {
      // As above, the TTL Redis set is read back: it counts on Redis' own clock.
      const p = prefix.next()
      const clock = fakeClock(START)
      const options = { client, prefix: p, clock, graceMs: GRACE }
      const store = lean ? redisStore(options) : redisStoreWithoutLeanScripts(options)
      const counter = {
        key: 'k',
        metric: 'tokens',
        amount: 1,
        cap: 100,
        enforce: true,
        window: { kind: 'fixed' as const, bounds: [START - 1_000, STOP] },
        expiry: 'keep' as const,
        ...(alerts ? { alerts: [0.5] } : {}),
      }
      const reserve = { id: 'r', counters: [counter], ttlMs: 1_000, blocks: [], meta: { model: 'm' } }
      expect((await store.reserve(reserve)).status).toBe('ok')
      const life = await client.pttl(`{${p}}:f:${START - 1_000}:k`)
      expect(life).toBeGreaterThan(STOP - START + GRACE - 1_000)
      expect(life).toBeLessThanOrEqual(STOP - START + GRACE)
      // a second hold in the window does not move its deadline
      clock.advance(10_000)
      expect((await store.reserve({ ...reserve, id: 's' })).status).toBe('ok')
      expect(await client.pttl(`{${p}}:f:${START - 1_000}:k`)).toBeGreaterThan(STOP - START + GRACE - 1_000)
    })
  }
})

describe('expired reservations', () => {
  for (const lean of [true, false]) {
    it(`live idempotencyMs from their expiry, for a late settle (${lean ? 'lean' : 'general'} reserve)`, async () => {
      const p = prefix.next()
      const clock = fakeClock()
      const options = { client, prefix: p, clock, idempotencyMs: 3_600_000 }
      const store = lean ? redisStore(options) : redisStoreWithoutLeanScripts(options)
      const gate = createTollgate({ policy, store })
      const held = await gate.reserve(ask)
      if (!held.allowed) throw new Error('refused')
      clock.advance('2h') // swept late: nothing called the store in between
      expect(await store.lookup(held.id)).toMatchObject({ state: 'expired' })
      // its life starts again at the expiry (the reserve gave it the hold TTL plus idempotencyMs)
      const life = await client.pttl(`{${p}}:r:${held.id}`)
      expect(life).toBeGreaterThan(3_590_000)
      expect(life).toBeLessThanOrEqual(3_600_000)
      expect(await gate.settle(held.id, { inputTokens: 10 })).toMatchObject({ status: 'settled', late: true })
    })
  }
})

describe('lease counters', () => {
  it('live as long as their leases, however short graceMs', async () => {
    const p = prefix.next()
    const store = redisStore({ client, prefix: p, clock: fakeClock(), graceMs: 1_000 })
    const lease = {
      key: 'k',
      metric: 'concurrency',
      amount: 1,
      cap: 5,
      enforce: true,
      window: { kind: 'lease' as const, ttlMs: 60_000 },
      expiry: 'release' as const,
    }
    const reserve = { id: 'r', counters: [lease], ttlMs: 60_000, blocks: [], meta: { model: 'm' } }
    expect((await store.reserve(reserve)).status).toBe('ok')
    for (const key of [`{${p}}:m:k`, `{${p}}:l:k`]) {
      const life = await client.pttl(key)
      expect(life, key).toBeGreaterThan(60_000)
      expect(life, key).toBeLessThanOrEqual(61_000)
    }
  })
})
