/**
 * Reservations past their expiry, against the real Redis (127.0.0.1:6379 unless TOLLGATE_TEST_REDIS
 * says otherwise), time from a fake clock, each case on the memory store too (the reference).
 *
 * The sweep expires at most `sweepLimit` reservations per script call, oldest first: with
 * `sweepLimit: 1` and two reservations due, the second is past its expiry but not swept yet (a
 * backlog). Such a reservation must behave exactly as an expired one. Also here: index entries whose
 * record is gone, late settles of expired leases, and the retry a refusal at the cap gives.
 */
import { type CounterSpec, memoryStore, type StoreReserve } from '@tollgate/core'
import { type FakeClock, fakeClock } from '@tollgate/core/testing'
import { afterAll, describe, expect, it } from 'vitest'
import { redisStore, redisStoreWithoutLeanScripts } from './store.js'
import { deleteKeys, prefixes, testClient } from './test/redis.js'

const client = testClient()
const prefix = prefixes('expiry')

afterAll(async () => {
  await deleteKeys(client, prefix.pattern)
  await client.quit()
})

const START = Date.parse('2026-03-02T10:00:00.000Z')
const DAY = [Date.parse('2026-03-02T00:00:00.000Z'), Date.parse('2026-03-03T00:00:00.000Z')]
const TTL = 60_000

function counter(key: string, amount: number, cap: number, extra: Partial<CounterSpec> = {}): CounterSpec {
  const window = { kind: 'fixed' as const, bounds: DAY }
  return { key, metric: 'tokens', amount, cap, enforce: true, window, expiry: 'keep', ...extra }
}

const reserveOf = (id: string, counters: CounterSpec[], ttlMs = TTL): StoreReserve => ({
  id,
  counters,
  ttlMs,
  blocks: [],
  meta: { model: 'm' },
})

/**
 * The lean scripts (reserve and commit), the general ones only, batches (the lean reserve in a batch
 * script), each sweeping one reservation per call; and the memory store, which expires on time.
 */
const redisFlavours = {
  lean: (clock: FakeClock) => redisStore({ client, prefix: prefix.next(), clock, sweepLimit: 1 }),
  general: (clock: FakeClock) =>
    redisStoreWithoutLeanScripts({ client, prefix: prefix.next(), clock, sweepLimit: 1 }),
  batch: (clock: FakeClock) =>
    redisStore({ client, prefix: prefix.next(), clock, sweepLimit: 1, batch: true }),
}
const flavours = { ...redisFlavours, memory: (clock: FakeClock) => memoryStore({ clock }) }

describe('a reservation past its expiry that the sweep has not reached yet', () => {
  for (const [name, make] of Object.entries(flavours)) {
    it(`answers a replay of its reserve as closed, and holds nothing (${name})`, async () => {
      const clock = fakeClock(START)
      const store = make(clock)
      const specs = [counter('k', 1, 100)]
      for (const id of ['a', 'b']) expect((await store.reserve(reserveOf(id, specs))).status).toBe('ok')
      clock.advance(TTL + 1_000)
      // The sweep of this call expires a only; b is still held in Redis, past its expiry.
      const replay = async () => store.reserve(reserveOf('b', specs)) // the memory store throws at once
      await expect(replay()).rejects.toMatchObject({ code: 'reservation_closed' })
      expect(await store.commit({ id: 'b', amounts: { tokens: 1 } })).toMatchObject({
        status: 'settled',
        late: true,
      })
      expect(await store.read([counter('k', 0, 100)])).toMatchObject([{ used: 2, held: 0 }])
    })

    it(`answers a replay of its reserve as closed from its expiresAt on (${name})`, async () => {
      const clock = fakeClock(START)
      const store = make(clock)
      const specs = [counter('k', 1, 100)]
      for (const id of ['a', 'b']) expect((await store.reserve(reserveOf(id, specs))).status).toBe('ok')
      clock.advance(TTL)
      // At the expiry of a and b: the sweep of this call expires a only; b is due at this very instant.
      const replay = async () => store.reserve(reserveOf('b', specs)) // the memory store throws at once
      await expect(replay()).rejects.toMatchObject({ code: 'reservation_closed' })
      expect(await store.read([counter('k', 0, 100)])).toMatchObject([{ used: 2, held: 0 }])
    })

    it(`is late from its expiresAt on, not a millisecond before (${name})`, async () => {
      const clock = fakeClock(START)
      const store = make(clock)
      const specs = [counter('k', 1, 100)]
      for (const id of ['a', 'b', 'c']) await store.reserve(reserveOf(id, specs))
      clock.advance(TTL - 1)
      expect(await store.commit({ id: 'c', amounts: { tokens: 1 } })).toMatchObject({ late: false })
      clock.advance(1)
      // At the expiry of a and b: the sweep of this call expires a only, b is settled past its expiry.
      expect(await store.commit({ id: 'b', amounts: { tokens: 1 } })).toMatchObject({
        status: 'settled',
        late: true,
      })
    })
  }
})

describe('the expiry sweep', () => {
  for (const [name, make] of Object.entries(redisFlavours)) {
    it(`drops an index entry whose record is gone, and reaches the reservations behind it (${name})`, async () => {
      const clock = fakeClock(START)
      const store = make(clock)
      const specs = [counter('k', 1, 100, { expiry: 'release' })]
      for (const id of ['a', 'b']) await store.reserve(reserveOf(id, specs))
      // The record of a is gone (evicted under a maxmemory volatile-* policy, or deleted): its index
      // entry is left, the oldest due, and its hold is lost with it.
      expect(await client.del(`{${store.prefix}}:r:a`)).toBe(1)
      clock.advance(TTL + 1_000)
      for (let i = 0; i < 3; i++) await store.read(specs)
      // b expired and its hold was returned (expiry: release); only a's lost hold is left.
      expect(await store.read([counter('k', 0, 100)])).toMatchObject([{ used: 1, held: 1 }])
      expect(await store.lookup('b')).toMatchObject({ state: 'expired' })
      expect(await client.zrange(`{${store.prefix}}:x`, 0, -1)).toEqual([])
    })

    it(`expires at most sweepLimit reservations per call, the earliest due first (${name})`, async () => {
      const clock = fakeClock(START)
      const store = make(clock) // sweepLimit: 1
      const specs = [counter('k', 1, 100, { expiry: 'release' })]
      await store.reserve(reserveOf('b', specs))
      await store.reserve(reserveOf('a', specs, TTL - 1_000)) // due first
      clock.advance(TTL + 1_000)
      const tag = `{${store.prefix}}`
      // one call: one sweep of one reservation (a's hold returned, b's still held)
      expect(await store.read([counter('k', 0, 100)])).toMatchObject([{ used: 1, held: 1 }])
      expect(await client.hget(`${tag}:r:a`, 's')).toBe('expired')
      expect(await client.hget(`${tag}:r:b`, 's')).toBe('held')
      expect(await client.zrange(`${tag}:x`, 0, -1)).toEqual(['b'])
      // the next call reaches b
      expect(await store.read([counter('k', 0, 100)])).toMatchObject([{ used: 0, held: 0 }])
      expect(await client.hget(`${tag}:r:b`, 's')).toBe('expired')
    })
  }
})

describe('a reserve after a reservation has expired', () => {
  for (const [name, make] of Object.entries(flavours)) {
    it(`finds the hold it returned (expiry: release) and is admitted (${name})`, async () => {
      const clock = fakeClock(START)
      const store = make(clock)
      const full = [counter('k', 10, 10, { expiry: 'release' })]
      expect((await store.reserve(reserveOf('a', full))).status).toBe('ok')
      expect((await store.reserve(reserveOf('b', full))).status).toBe('denied')
      clock.advance(TTL + 1_000)
      // no other call between: this reserve's own sweep returns a's hold first
      expect((await store.reserve(reserveOf('c', full))).status).toBe('ok')
      expect(await store.read([counter('k', 0, 10)])).toMatchObject([{ used: 10, held: 10 }])
    })
  }
})

describe('a late settle of an expired lease', () => {
  for (const [name, make] of Object.entries(flavours)) {
    it(`reports nothing held or charged, even with expiry: keep (${name})`, async () => {
      const clock = fakeClock(START)
      const store = make(clock)
      const lease = counter('l', 1, 5, { metric: 'concurrency', window: { kind: 'lease', ttlMs: TTL } })
      await store.reserve(reserveOf('r', [lease], 1_000))
      clock.advance(2_000)
      // The lease was freed at the expiry whatever its expiry says (leases are never kept).
      expect(await store.commit({ id: 'r', amounts: { tokens: 3 } })).toEqual({
        status: 'settled',
        late: true,
        counters: [{ key: 'l', metric: 'concurrency', held: 0, charged: 0, overdraft: 0 }],
      })
      expect(await store.read([{ ...lease, amount: 0 }])).toMatchObject([{ used: 0, held: 0 }])
    })
  }
})

describe('a refusal at the cap', () => {
  const sliding = counter('s', 0, 1_000, { window: { kind: 'sliding', sizeMs: TTL, slotMs: 10_000 } })
  for (const [name, make] of Object.entries(flavours)) {
    for (const beside of [[], [sliding]]) {
      it(`of an amount up to the cap waits until the window ends, past it never (${name}${beside.length ? ', beside a sliding counter' : ''})`, async () => {
        const store = make(fakeClock(START))
        expect((await store.reserve(reserveOf('x', [counter('k', 5, 10), ...beside]))).status).toBe('ok')
        const retry = async (id: string, amount: number) => {
          const answer = await store.reserve(reserveOf(id, [counter('k', amount, 10), ...beside]))
          expect(answer.status).toBe('denied')
          return answer.status === 'denied' ? answer.counters[0]!.retryAfterMs : undefined
        }
        expect(await retry('y', 6)).toBe(DAY[1]! - START)
        expect(await retry('z', 10)).toBe(DAY[1]! - START)
        expect(await retry('w', 11)).toBe(null)
      })
    }
  }
})
