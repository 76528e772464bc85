/**
 * Conformance: reservations that are never settled expire after `ttlMs`. Expiry may be
 * processed at whole-second granularity, so the checks look at `ttlMs - 1` (still held)
 * and `ttlMs + 1 s` (expired).
 */
import { describe, expect, it } from 'vitest'
import {
  closed,
  counter,
  DAY,
  day,
  harness,
  lease,
  release,
  reserveOk,
  type Suite,
  settle,
  snapshot,
} from './specs.js'

const TTL = 5_000

export function describeExpiry(suite: Suite): void {
  describe('expiry of reservations', () => {
    it("with expiry 'keep' an unsettled hold stays charged, and a late settle trues it up", async () => {
      const { store, clock, key, id } = await harness(suite)
      const spec = counter(key(), day(clock.now()), 100, 10, { expiry: 'keep' })
      const r = id()
      const start = clock.now()
      await reserveOk(store, r, [spec], { ttlMs: TTL })
      clock.advance(TTL - 1)
      expect(await snapshot(store, [spec])).toEqual([{ used: 10, held: 10 }])
      expect(await store.lookup(r)).toMatchObject({ state: 'held', expiresAt: start + TTL })
      clock.advance(1 + 1_000)
      expect(await snapshot(store, [spec])).toEqual([{ used: 10, held: 0 }])
      expect(await store.lookup(r)).toMatchObject({ id: r, state: 'expired', expiresAt: start + TTL })
      expect(closed(await settle(store, r, { tokens: 3 }), 'settled', true)).toEqual([
        { key: spec.key, metric: 'tokens', held: 10, charged: 3, overdraft: 0 },
      ])
      expect(await snapshot(store, [spec])).toEqual([{ used: 3, held: 0 }])
      expect(await settle(store, r, { tokens: 50 })).toEqual({ status: 'duplicate', previous: 'settled' })
      expect(await snapshot(store, [spec])).toEqual([{ used: 3, held: 0 }])
    })

    it("with expiry 'release' an unsettled hold is returned, and a late settle charges the actual amount", async () => {
      const { store, clock, key, id } = await harness(suite)
      const spec = counter(key(), day(clock.now()), 100, 10, { expiry: 'release' })
      const r = id()
      await reserveOk(store, r, [spec], { ttlMs: TTL })
      clock.advance(TTL - 1)
      expect(await snapshot(store, [spec])).toEqual([{ used: 10, held: 10 }])
      clock.advance(1 + 1_000)
      expect(await snapshot(store, [spec])).toEqual([{ used: 0, held: 0 }])
      expect((await store.lookup(r))?.state).toBe('expired')
      expect(closed(await settle(store, r, { tokens: 7 }), 'settled', true)[0]).toMatchObject({ charged: 7 })
      expect(await snapshot(store, [spec])).toEqual([{ used: 7, held: 0 }])
    })

    it('a release after expiry is late and leaves nothing charged', async () => {
      const { store, clock, key, id } = await harness(suite)
      const keep = counter(key('keep'), day(clock.now()), 100, 10, { expiry: 'keep' })
      const gone = counter(key('release'), day(clock.now()), 100, 4, {
        expiry: 'release',
        metric: 'requests',
      })
      const r = id()
      await reserveOk(store, r, [keep, gone], { ttlMs: TTL })
      clock.advance(TTL + 1_000)
      // Each counter expires by its own rule.
      expect(await snapshot(store, [keep, gone])).toEqual([
        { used: 10, held: 0 },
        { used: 0, held: 0 },
      ])
      closed(await release(store, r), 'released', true)
      expect(await snapshot(store, [keep, gone])).toEqual([
        { used: 0, held: 0 },
        { used: 0, held: 0 },
      ])
      expect(await release(store, r)).toEqual({ status: 'duplicate', previous: 'released' })
    })

    it('the expiry of one reservation leaves the others held', async () => {
      const { store, clock, key, id } = await harness(suite)
      const spec = counter(key(), day(clock.now()), 100, 6, { expiry: 'release' })
      const short = id('short')
      const long = id('long')
      await reserveOk(store, short, [spec], { ttlMs: TTL })
      await reserveOk(store, long, [spec], { ttlMs: DAY })
      clock.advance(TTL + 1_000)
      expect(await snapshot(store, [spec])).toEqual([{ used: 6, held: 6 }])
      expect((await store.lookup(long))?.state).toBe('held')
      closed(await settle(store, long, { tokens: 2 }), 'settled', false)
      expect(await snapshot(store, [spec])).toEqual([{ used: 2, held: 0 }])
    })

    it('a settle before the ttl is not late', async () => {
      const { store, clock, key, id } = await harness(suite)
      const spec = counter(key(), day(clock.now()), 100, 6)
      const r = id()
      await reserveOk(store, r, [spec], { ttlMs: TTL })
      clock.advance(TTL - 1)
      closed(await settle(store, r, { tokens: 6 }), 'settled', false)
      clock.advance(10_000)
      expect((await store.lookup(r))?.state).toBe('settled')
      expect(await snapshot(store, [spec])).toEqual([{ used: 6, held: 0 }])
    })

    it('an expired reservation frees its lease whatever its expiry', async () => {
      const { store, clock, key, id } = await harness(suite)
      const spec = counter(key(), lease(DAY), 1, 1, { metric: 'concurrency', expiry: 'keep' })
      await reserveOk(store, id(), [spec], { ttlMs: TTL })
      clock.advance(TTL + 1_000)
      expect(await snapshot(store, [spec])).toEqual([{ used: 0, held: 0 }])
      await reserveOk(store, id(), [spec])
    })
  })
}
