/** Conformance: rolling (`sliding`) windows, token buckets and concurrency leases. */
import { describe, expect, it } from 'vitest'
import {
  asking,
  bucket,
  closed,
  counter,
  DAY,
  harness,
  lease,
  readOne,
  release,
  reserveDenied,
  reserveOk,
  type Suite,
  settle,
  sliding,
  snapshot,
} from './specs.js'

const SIZE = 60_000
const SLOT = 1_000

export function describeRates(suite: Suite): void {
  describe('sliding windows', () => {
    it('no span of sizeMs holds more than the cap; capacity comes back after sizeMs + slotMs', async () => {
      const { store, clock, key, id } = await harness(suite)
      clock.advance(437)
      const start = clock.now()
      const spec = counter(key(), sliding(SIZE, SLOT), 10, 10)
      await reserveOk(store, id(), [spec])
      await reserveDenied(store, id(), [asking(spec, 1)])
      clock.set(start + SIZE - 1)
      await reserveDenied(store, id(), [asking(spec, 1)])
      clock.set(start + SIZE + SLOT)
      expect(await readOne(store, spec)).toMatchObject({ used: 0, held: 0 })
      await reserveOk(store, id(), [spec])
    })

    it('retryAfterMs of a refusal is honest, and what is still in the window stays counted', async () => {
      const { store, clock, key, id } = await harness(suite)
      clock.advance(250)
      const spec = counter(key(), sliding(SIZE, SLOT), 10, 6)
      await reserveOk(store, id(), [spec])
      clock.advance(20_000)
      await reserveOk(store, id(), [asking(spec, 4)])
      clock.advance(10_000)
      const [refused] = await reserveDenied(store, id(), [asking(spec, 5)])
      const retry = refused!.retryAfterMs
      expect(retry).not.toBeNull()
      expect(retry!).toBeGreaterThan(0)
      expect(retry!).toBeLessThanOrEqual(SIZE + SLOT)
      clock.advance(retry!)
      await reserveOk(store, id(), [asking(spec, 5)])
      // The 4 admitted 20 s after the first hold are still inside the window: 4 + 5 + 2 > 10.
      await reserveDenied(store, id(), [asking(spec, 2)])
    })

    it('an amount above the cap is refused with no retry time', async () => {
      const { store, key, id } = await harness(suite)
      const [refused] = await reserveDenied(store, id(), [counter(key(), sliding(SIZE, SLOT), 10, 11)])
      expect(refused).toMatchObject({ denied: true, retryAfterMs: null })
    })

    it('settle and release move the hold within the window', async () => {
      const { store, clock, key, id } = await harness(suite)
      const spec = counter(key(), sliding(SIZE, SLOT), 10, 8)
      const a = id()
      await reserveOk(store, a, [spec])
      clock.advance(5_000)
      closed(await settle(store, a, { tokens: 3 }), 'settled')
      expect(await snapshot(store, [spec])).toEqual([{ used: 3, held: 0 }])
      const b = id()
      await reserveOk(store, b, [asking(spec, 7)])
      await reserveDenied(store, id(), [asking(spec, 1)])
      closed(await release(store, b), 'released')
      expect(await snapshot(store, [spec])).toEqual([{ used: 3, held: 0 }])
    })

    it('an open hold that ages out of the window leaves held within used', async () => {
      const { store, clock, key, id } = await harness(suite)
      const spec = counter(key(), sliding(SIZE, SLOT), 10, 5)
      const r = id()
      await reserveOk(store, r, [spec], { ttlMs: DAY })
      clock.advance(SIZE + SLOT)
      const state = await readOne(store, spec)
      expect(state.used).toBe(0)
      expect(state.held).toBe(0)
      closed(await settle(store, r, { tokens: 5 }), 'settled')
      expect(await snapshot(store, [spec])).toEqual([{ used: 0, held: 0 }])
      await reserveOk(store, id(), [asking(spec, 10)])
      expect(await snapshot(store, [spec])).toEqual([{ used: 10, held: 10 }])
    })
  })

  describe('token buckets', () => {
    const INTERVAL = 1_000

    it('admits the burst at once, then one unit per intervalMs', async () => {
      const { store, clock, key, id } = await harness(suite)
      const spec = counter(key(), bucket(INTERVAL), 5, 1, { metric: 'requests' })
      for (let i = 0; i < 5; i++) await reserveOk(store, id(), [spec])
      const [refused] = await reserveDenied(store, id(), [spec])
      expect(refused!.retryAfterMs).toBeGreaterThan(0)
      expect(refused!.retryAfterMs).toBeLessThanOrEqual(INTERVAL)
      clock.advance(INTERVAL)
      await reserveOk(store, id(), [spec])
      await reserveDenied(store, id(), [spec])
      clock.advance(3 * INTERVAL)
      for (let i = 0; i < 3; i++) await reserveOk(store, id(), [spec])
      await reserveDenied(store, id(), [spec])
      clock.advance(100 * INTERVAL)
      for (let i = 0; i < 5; i++) await reserveOk(store, id(), [spec])
      await reserveDenied(store, id(), [spec])
    })

    it('admits its whole burst when the interval is a fraction (a period over the cap)', async () => {
      // 5 minutes over 11 is 27,272.7… ms: summed eleven times at the clock's magnitude it came out a
      // hair over 11 intervals, and the 11th request of a fresh bucket was refused
      const { store, clock, key, id } = await harness(suite)
      for (const cap of [3, 7, 11, 13, 141]) {
        const spec = counter(key(), bucket(300_000 / cap), cap, 1, { metric: 'requests' })
        for (let i = 0; i < cap; i++) {
          const [answer] = await reserveOk(store, id(), [spec])
          expect(answer!.used, `cap ${cap}`).toBe(i + 1)
        }
        await reserveDenied(store, id(), [spec])
        clock.advance(1)
      }
    })

    it('never admits before the refill exact arithmetic gives, not even by a millisecond', async () => {
      // the rounding slack was once a thousandth of a unit: 1.234 ms of a 1,234 ms interval, so a
      // request due at 2,468 ms passed at 2,467 (found by the bucket property)
      const { store, clock, key, id } = await harness(suite)
      const spec = counter(key(), bucket(1_234), 10, 6)
      await reserveOk(store, id(), [spec])
      clock.advance(2_467)
      const [refused] = await reserveDenied(store, id(), [spec])
      expect(refused!.retryAfterMs).toBeGreaterThan(0)
      expect(refused!.retryAfterMs).toBeLessThanOrEqual(1)
      clock.advance(1)
      await reserveOk(store, id(), [spec])
    })

    it('retryAfterMs of a refusal is honest', async () => {
      const { store, clock, key, id } = await harness(suite)
      clock.advance(123)
      const spec = counter(key(), bucket(INTERVAL), 5, 5)
      await reserveOk(store, id(), [spec])
      clock.advance(1_700)
      const [refused] = await reserveDenied(store, id(), [asking(spec, 3)])
      const retry = refused!.retryAfterMs
      expect(retry).not.toBeNull()
      expect(retry!).toBeGreaterThan(0)
      expect(retry!).toBeLessThanOrEqual(3 * INTERVAL)
      clock.advance(retry!)
      await reserveOk(store, id(), [asking(spec, 3)])
    })

    it('a release or a settle below the hold gives back only what has not refilled: never past the burst', async () => {
      const { store, clock, key, id } = await harness(suite)
      const spec = counter(key(), bucket(INTERVAL), 6, 1, { metric: 'requests' })
      const old = id()
      const low = id()
      await reserveOk(store, old, [spec])
      await reserveOk(store, low, [asking(spec, 3)])
      clock.advance(10 * INTERVAL) // full again: both holds have refilled
      for (let i = 0; i < 6; i++) await reserveOk(store, id(), [spec])
      await reserveDenied(store, id(), [spec])
      closed(await release(store, old), 'released')
      closed(await settle(store, low, { requests: 0 }), 'settled')
      await reserveDenied(store, id(), [spec]) // was admitted: 7 and more within a burst of 6
      // half refilled: a release gives back what is still out, no more
      const half = id()
      clock.advance(6 * INTERVAL)
      await reserveOk(store, half, [asking(spec, 4)])
      clock.advance(2 * INTERVAL) // 2 of its 4 have refilled: 4 free
      closed(await release(store, half), 'released') // the 2 still out: 6 free, the burst
      for (let i = 0; i < 6; i++) await reserveOk(store, id(), [spec])
      await reserveDenied(store, id(), [spec])
    })

    it('a settle past the estimate after the bucket refilled counts from now, as a new hold would', async () => {
      const { store, clock, key, id } = await harness(suite)
      const spec = counter(key(), bucket(INTERVAL), 6, 1, { metric: 'requests' })
      const late = id()
      await reserveOk(store, late, [spec])
      clock.advance(10 * INTERVAL)
      closed(await settle(store, late, { requests: 4 }), 'settled') // 3 units past its hold, charged now
      for (let i = 0; i < 3; i++) await reserveOk(store, id(), [spec])
      await reserveDenied(store, id(), [spec])
    })

    it('an amount above the burst is refused with no retry time', async () => {
      const { store, key, id } = await harness(suite)
      const [refused] = await reserveDenied(store, id(), [counter(key(), bucket(INTERVAL), 5, 6)])
      expect(refused).toMatchObject({ denied: true, retryAfterMs: null })
    })
  })

  describe('leases', () => {
    const TTL = 30_000

    it('admits cap leases, then settle or release frees one', async () => {
      const { store, clock, key, id } = await harness(suite)
      const spec = counter(key(), lease(TTL), 2, 1, { metric: 'concurrency' })
      const a = id()
      const b = id()
      await reserveOk(store, a, [spec])
      clock.advance(2_000)
      await reserveOk(store, b, [spec])
      expect(await snapshot(store, [spec])).toEqual([{ used: 2, held: 2 }])
      const [refused] = await reserveDenied(store, id(), [spec])
      expect(refused!.retryAfterMs).toBeGreaterThan(0)
      expect(refused!.retryAfterMs).toBeLessThanOrEqual(TTL - 2_000)
      closed(await settle(store, a, { concurrency: 1 }), 'settled')
      expect(await snapshot(store, [spec])).toEqual([{ used: 1, held: 1 }])
      const c = id()
      await reserveOk(store, c, [spec])
      await reserveDenied(store, id(), [spec])
      closed(await release(store, b), 'released')
      await reserveOk(store, id(), [spec])
      await reserveDenied(store, id(), [spec])
    })

    it('an unsettled lease frees itself after ttlMs', async () => {
      const { store, clock, key, id } = await harness(suite)
      const spec = counter(key(), lease(TTL), 2, 1, { metric: 'concurrency' })
      await reserveOk(store, id(), [spec], { ttlMs: DAY })
      await reserveOk(store, id(), [spec], { ttlMs: DAY })
      clock.advance(TTL - 1)
      await reserveDenied(store, id(), [spec])
      clock.advance(1)
      expect(await snapshot(store, [spec])).toEqual([{ used: 0, held: 0 }])
      await reserveOk(store, id(), [spec])
      await reserveOk(store, id(), [spec])
      await reserveDenied(store, id(), [spec])
    })

    it('settling a lease that freed itself does not free another one', async () => {
      const { store, clock, key, id } = await harness(suite)
      const spec = counter(key(), lease(TTL), 1, 1, { metric: 'concurrency' })
      const first = id()
      await reserveOk(store, first, [spec], { ttlMs: DAY })
      clock.advance(TTL)
      await reserveOk(store, id(), [spec], { ttlMs: DAY })
      closed(await settle(store, first, { concurrency: 1 }), 'settled')
      expect(await snapshot(store, [spec])).toEqual([{ used: 1, held: 1 }])
      await reserveDenied(store, id(), [spec])
    })
  })
}
