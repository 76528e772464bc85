/**
 * Conformance: a reserve is idempotent by id, and a reservation can be abandoned (`commit` with
 * `abandon: true`) before its reserve arrives. A client whose reserve got no answer (a timeout, a
 * dropped connection) cannot know whether it landed, or whether it will land later: it abandons
 * the id, and whichever of the two reaches the store first, nothing stays held.
 */
import { describe, expect, it } from 'vitest'
import type { Store, StoreCommitResult } from '../../store/contract.js'
import {
  bucket,
  closed,
  counter,
  DAY,
  day,
  harness,
  lease,
  MINUTE,
  minute,
  read,
  release,
  reserve,
  reserveOk,
  type Suite,
  settle,
  sliding,
  snapshot,
} from './specs.js'

async function abandon(store: Store, id: string): Promise<StoreCommitResult> {
  return await store.commit({ id, amounts: null, abandon: true })
}

/**
 * A reserve that must change nothing and reject: its id is closed. A store throws an error with
 * `code: 'reservation_closed'`; a store over the network may reject with its own error for it.
 */
async function refused(promise: Promise<unknown>): Promise<void> {
  await expect(promise, 'a reserve under a closed id rejects').rejects.toBeDefined()
}

export function describeReplays(suite: Suite): void {
  describe('a reserve replayed under its id', () => {
    it('of an open reservation holds nothing more and answers ok with the counters as they are', async () => {
      const { store, clock, key, id } = await harness(suite)
      const now = clock.now()
      const specs = [
        counter(key('full'), day(now), 10, 10),
        counter(key('rolling'), sliding(MINUTE, 10_000), 100, 7),
        counter(key('bucket'), bucket(1_000), 5, 2, { metric: 'requests' }),
        counter(key('lease'), lease(DAY), 1, 1, { metric: 'concurrency' }),
      ]
      const r = id()
      await reserveOk(store, r, specs)
      const before = await snapshot(store, specs)
      // a block set since does not refuse it either: the reservation was admitted before the block
      const marker = key('marker')
      await store.block(marker, 'blocked')
      const again = await reserveOk(store, r, specs, { blocks: [marker] })
      expect(again.map(({ used, held }) => ({ used, held }))).toEqual(before)
      expect(again.map((c) => [c.denied, c.tripped, c.throttled, c.retryAfterMs])).toEqual(
        specs.map(() => [false, false, false, null]),
      )
      expect(await snapshot(store, specs)).toEqual(before)
      // one release returns the one hold
      expect(closed(await release(store, r), 'released').map((c) => [c.held, c.charged])).toEqual([
        [10, 0],
        [7, 0],
        [2, 0],
        [1, 0],
      ])
      const after = await read(store, specs)
      expect(after.map((s) => s.held)).toEqual([0, 0, 0, 0])
      expect([after[0]!.used, after[1]!.used, after[3]!.used]).toEqual([0, 0, 0])
    })

    it('of a settled, released or expired reservation changes nothing and rejects', async () => {
      const { store, clock, key, id } = await harness(suite)
      const spec = counter(key(), day(clock.now()), 100, 10)
      const s = id('settled')
      const r = id('released')
      const e = id('expired')
      await reserveOk(store, s, [spec])
      await reserveOk(store, r, [spec])
      await reserveOk(store, e, [spec], { ttlMs: MINUTE })
      closed(await settle(store, s, { tokens: 3 }), 'settled')
      closed(await release(store, r), 'released')
      clock.advance(2 * MINUTE)
      const before = await snapshot(store, [spec])
      expect(before).toEqual([{ used: 13, held: 0 }])
      for (const closedId of [s, r, e]) await refused(reserve(store, closedId, [spec]))
      expect(await snapshot(store, [spec])).toEqual(before)
      expect((await store.lookup(s))?.state).toBe('settled')
      expect((await store.lookup(r))?.state).toBe('released')
    })
  })

  describe('abandon (commit with abandon: true)', () => {
    it('of an id the store does not know remembers it as released: a later reserve under it holds nothing', async () => {
      const { store, clock, key, id } = await harness(suite)
      const specs = [
        counter(key('day'), day(clock.now()), 100, 10),
        counter(key('lease'), lease(DAY), 1, 1, { metric: 'concurrency' }),
      ]
      const r = id('lost')
      expect(await abandon(store, r)).toEqual({ status: 'unknown' })
      expect(await store.lookup(r)).toMatchObject({ id: r, state: 'released' })
      // the reserve arrives after its abandon
      await refused(reserve(store, r, specs))
      expect(await snapshot(store, specs)).toEqual([
        { used: 0, held: 0 },
        { used: 0, held: 0 },
      ])
      // the lease is free: another reservation gets it
      await reserveOk(store, id('next'), specs)
      expect(await release(store, r)).toEqual({ status: 'duplicate', previous: 'released' })
      expect(await settle(store, r, { tokens: 5 })).toEqual({ status: 'duplicate', previous: 'released' })
      expect(await snapshot(store, specs)).toEqual([
        { used: 10, held: 10 },
        { used: 1, held: 1 },
      ])
    })

    it('of an open reservation releases it, and a reserve replayed after it holds nothing', async () => {
      const { store, clock, key, id } = await harness(suite)
      const now = clock.now()
      const a = counter(key('a'), minute(now), 50, 5)
      const b = counter(key('b'), lease(DAY), 1, 1, { metric: 'concurrency' })
      const settled = id('settled')
      await reserveOk(store, settled, [a])
      closed(await settle(store, settled, { tokens: 2 }), 'settled')
      const r = id()
      await reserveOk(store, r, [a, b])
      expect(await snapshot(store, [a, b])).toEqual([
        { used: 7, held: 5 },
        { used: 1, held: 1 },
      ])
      expect(closed(await abandon(store, r), 'released')).toEqual([
        { key: a.key, metric: 'tokens', held: 5, charged: 0, overdraft: 0 },
        { key: b.key, metric: 'concurrency', held: 1, charged: 0, overdraft: 0 },
      ])
      expect(await snapshot(store, [a, b])).toEqual([
        { used: 2, held: 0 },
        { used: 0, held: 0 },
      ])
      expect((await store.lookup(r))?.state).toBe('released')
      await refused(reserve(store, r, [a, b]))
      expect(await snapshot(store, [a, b])).toEqual([
        { used: 2, held: 0 },
        { used: 0, held: 0 },
      ])
    })

    it('is idempotent, and changes nothing on a closed reservation', async () => {
      const { store, clock, key, id } = await harness(suite)
      const spec = counter(key(), day(clock.now()), 100, 10)
      const open = id('open')
      const unknown = id('unknown')
      const settled = id('settled')
      await reserveOk(store, open, [spec])
      await reserveOk(store, settled, [spec])
      closed(await settle(store, settled, { tokens: 4 }), 'settled')
      closed(await abandon(store, open), 'released')
      expect(await abandon(store, open)).toEqual({ status: 'duplicate', previous: 'released' })
      expect(await abandon(store, unknown)).toEqual({ status: 'unknown' })
      expect(await abandon(store, unknown)).toEqual({ status: 'duplicate', previous: 'released' })
      expect(await abandon(store, settled)).toEqual({ status: 'duplicate', previous: 'settled' })
      expect((await store.lookup(settled))?.state).toBe('settled')
      expect(await snapshot(store, [spec])).toEqual([{ used: 4, held: 0 }])
    })
  })
}
