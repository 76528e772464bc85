/** Conformance: atomic reserve, settle and release, idempotency, lookup and the store's clock. */
import { describe, expect, it } from 'vitest'
import {
  asking,
  closed,
  counter,
  day,
  harness,
  lifetime,
  minute,
  read,
  readOne,
  release,
  reserve,
  reserveDenied,
  reserveOk,
  type Suite,
  settle,
  snapshot,
} from './specs.js'

export function describeReservations(suite: Suite): void {
  describe('reserve is all or nothing', () => {
    it('an ok reserve holds its amount on every counter and reports the state after the hold', async () => {
      const { store, clock, key, id } = await harness(suite)
      const now = clock.now()
      const specs = [
        counter(key('minute'), minute(now), 10, 3),
        counter(key('day'), day(now), 5, 1, { metric: 'requests' }),
        counter(key('lifetime'), lifetime(), 100, 7, { metric: 'cost' }),
      ]
      const first = await reserveOk(store, id(), specs)
      expect(first.map((c) => [c.used, c.held, c.denied])).toEqual([
        [3, 3, false],
        [1, 1, false],
        [7, 7, false],
      ])
      expect(await snapshot(store, specs)).toEqual([
        { used: 3, held: 3 },
        { used: 1, held: 1 },
        { used: 7, held: 7 },
      ])
      const second = await reserveOk(store, id(), specs)
      expect(second.map((c) => c.used)).toEqual([6, 2, 14])
      expect(await snapshot(store, specs)).toEqual([
        { used: 6, held: 6 },
        { used: 2, held: 2 },
        { used: 14, held: 14 },
      ])
    })

    it('admits up to the cap inclusive and refuses one unit more', async () => {
      const { store, clock, key, id } = await harness(suite)
      const spec = counter(key(), day(clock.now()), 10, 10)
      await reserveOk(store, id(), [spec])
      await reserveOk(store, id(), [asking(spec, 0)])
      const [refused] = await reserveDenied(store, id(), [asking(spec, 1)])
      expect(refused).toMatchObject({ denied: true, used: 10, cap: 10 })
      expect(await snapshot(store, [spec])).toEqual([{ used: 10, held: 10 }])
    })

    it('a reserve where one counter would pass its cap is denied and changes no counter', async () => {
      const { store, clock, key, id } = await harness(suite)
      const now = clock.now()
      const window = minute(now)
      const end = window.bounds[2]!
      const a = counter(key('a'), window, 10, 5)
      const b = counter(key('b'), window, 10, 5, { metric: 'requests' })
      const c = counter(key('c'), lifetime(), 100, 5, { metric: 'cost' })
      await reserveOk(store, id(), [asking(b, 8), asking(c, 1)])
      const before = await snapshot(store, [a, b, c])
      expect(before).toEqual([
        { used: 0, held: 0 },
        { used: 8, held: 8 },
        { used: 1, held: 1 },
      ])
      const refusedId = id('refused')
      const answer = await reserveDenied(store, refusedId, [a, b, c])
      expect(answer.map((r) => r.denied)).toEqual([false, true, false])
      expect(answer[1]).toMatchObject({ used: 8, cap: 10 })
      const retry = answer[1]!.retryAfterMs
      expect(retry).not.toBeNull()
      expect(retry!).toBeGreaterThan(0)
      expect(retry!).toBeLessThanOrEqual(end - now)
      expect(await snapshot(store, [a, b, c])).toEqual(before)
      // A refused reservation does not exist: nothing to look up, settle or release.
      expect(await store.lookup(refusedId)).toBeNull()
      expect(await settle(store, refusedId, { tokens: 5, requests: 5, cost: 5 })).toEqual({
        status: 'unknown',
      })
      expect(await release(store, refusedId)).toEqual({ status: 'unknown' })
      expect(await snapshot(store, [a, b, c])).toEqual(before)
      // Waiting retryAfterMs lets the same request through, under the same id (as the engine retries).
      clock.advance(retry!)
      await reserveOk(store, refusedId, [a, b, c])
      expect(await snapshot(store, [a, b])).toEqual([
        { used: 5, held: 5 },
        { used: 5, held: 5 },
      ])
      expect((await readOne(store, c)).used).toBe(6)
      expect(closed(await release(store, refusedId), 'released')).toHaveLength(3)
      expect((await read(store, [a, b, c])).map((s) => s.used)).toEqual([0, 0, 1])
    })

    it('two counters of one reserve may share a metric and each holds', async () => {
      const { store, clock, key, id } = await harness(suite)
      const x = counter(key('x'), day(clock.now()), 10, 4)
      const y = counter(key('y'), minute(clock.now()), 5, 4)
      await reserveOk(store, id(), [x, y])
      await reserveDenied(store, id(), [x, y])
      expect(await snapshot(store, [x, y])).toEqual([
        { used: 4, held: 4 },
        { used: 4, held: 4 },
      ])
    })
  })

  describe('settle and release', () => {
    it('settling below the hold charges the actual amount and frees the rest', async () => {
      const { store, clock, key, id } = await harness(suite)
      const spec = counter(key(), day(clock.now()), 100, 10)
      const r = id()
      await reserveOk(store, r, [spec])
      const counters = closed(await settle(store, r, { tokens: 4 }), 'settled')
      expect(counters).toEqual([{ key: spec.key, metric: 'tokens', held: 10, charged: 4, overdraft: 0 }])
      expect(await snapshot(store, [spec])).toEqual([{ used: 4, held: 0 }])
    })

    it('settling above the hold charges the actual amount', async () => {
      const { store, clock, key, id } = await harness(suite)
      const spec = counter(key(), day(clock.now()), 100, 10)
      const r = id()
      await reserveOk(store, r, [spec])
      expect(closed(await settle(store, r, { tokens: 25 }), 'settled')[0]).toMatchObject({
        held: 10,
        charged: 25,
      })
      expect(await snapshot(store, [spec])).toEqual([{ used: 25, held: 0 }])
    })

    it('reports the overdraft when a settle takes a counter past its cap', async () => {
      const { store, clock, key, id } = await harness(suite)
      const tight = counter(key('tight'), day(clock.now()), 20, 15)
      const loose = counter(key('loose'), day(clock.now()), 1_000, 15)
      const r = id()
      await reserveOk(store, r, [tight, loose])
      const counters = closed(await settle(store, r, { tokens: 32 }), 'settled')
      expect(counters).toEqual([
        { key: tight.key, metric: 'tokens', held: 15, charged: 32, overdraft: 12 },
        { key: loose.key, metric: 'tokens', held: 15, charged: 32, overdraft: 0 },
      ])
      expect(await snapshot(store, [tight, loose])).toEqual([
        { used: 32, held: 0 },
        { used: 32, held: 0 },
      ])
      const [refused] = await reserveDenied(store, id(), [asking(tight, 1)])
      expect(refused!.used).toBe(32)
    })

    it('a metric missing from the amounts keeps its held amount', async () => {
      const { store, clock, key, id } = await harness(suite)
      const tokens = counter(key('tokens'), day(clock.now()), 100, 10)
      const requests = counter(key('requests'), day(clock.now()), 100, 1, { metric: 'requests' })
      const r = id()
      await reserveOk(store, r, [tokens, requests])
      const counters = closed(await settle(store, r, { tokens: 4 }), 'settled')
      expect(counters.map((c) => [c.metric, c.held, c.charged])).toEqual([
        ['tokens', 10, 4],
        ['requests', 1, 1],
      ])
      expect(await snapshot(store, [tokens, requests])).toEqual([
        { used: 4, held: 0 },
        { used: 1, held: 0 },
      ])
    })

    it('release returns the whole hold and keeps what was settled before', async () => {
      const { store, clock, key, id } = await harness(suite)
      const a = counter(key('a'), minute(clock.now()), 50, 5)
      const b = counter(key('b'), lifetime(), 50, 9, { metric: 'cost' })
      const settled = id('settled')
      await reserveOk(store, settled, [a, b])
      closed(await settle(store, settled, { tokens: 3, cost: 2 }), 'settled')
      const r = id('released')
      await reserveOk(store, r, [a, b])
      expect(await snapshot(store, [a, b])).toEqual([
        { used: 8, held: 5 },
        { used: 11, held: 9 },
      ])
      expect(closed(await release(store, r), 'released')).toEqual([
        { key: a.key, metric: 'tokens', held: 5, charged: 0, overdraft: 0 },
        { key: b.key, metric: 'cost', held: 9, charged: 0, overdraft: 0 },
      ])
      expect(await snapshot(store, [a, b])).toEqual([
        { used: 3, held: 0 },
        { used: 2, held: 0 },
      ])
    })

    it('a second settle or release of an id is a duplicate and changes nothing', async () => {
      const { store, clock, key, id } = await harness(suite)
      const spec = counter(key(), day(clock.now()), 100, 10)
      const s = id('settled')
      const r = id('released')
      await reserveOk(store, s, [spec])
      await reserveOk(store, r, [spec])
      closed(await settle(store, s, { tokens: 7 }), 'settled')
      closed(await release(store, r), 'released')
      const after = await snapshot(store, [spec])
      expect(after).toEqual([{ used: 7, held: 0 }])
      expect(await settle(store, s, { tokens: 1 })).toEqual({ status: 'duplicate', previous: 'settled' })
      expect(await settle(store, s, { tokens: 70 })).toEqual({ status: 'duplicate', previous: 'settled' })
      expect(await release(store, s)).toEqual({ status: 'duplicate', previous: 'settled' })
      expect(await release(store, r)).toEqual({ status: 'duplicate', previous: 'released' })
      expect(await settle(store, r, { tokens: 9 })).toEqual({ status: 'duplicate', previous: 'released' })
      expect(await snapshot(store, [spec])).toEqual(after)
      expect((await store.lookup(s))?.state).toBe('settled')
      expect((await store.lookup(r))?.state).toBe('released')
    })

    it('an unknown id answers unknown and changes nothing', async () => {
      const { store, clock, key, id } = await harness(suite)
      const spec = counter(key(), day(clock.now()), 100, 10)
      await reserveOk(store, id(), [spec])
      expect(await settle(store, id('never-reserved'), { tokens: 3 })).toEqual({ status: 'unknown' })
      expect(await release(store, id('never-reserved'))).toEqual({ status: 'unknown' })
      expect(await store.lookup(id('never-reserved'))).toBeNull()
      expect(await snapshot(store, [spec])).toEqual([{ used: 10, held: 10 }])
    })
  })

  describe('lookup and now', () => {
    it('lookup returns the state, expiry and meta of a reservation', async () => {
      const { store, clock, key, id } = await harness(suite)
      clock.advance(1_234)
      const spec = counter(key(), day(clock.now()), 100, 10)
      const meta = {
        model: 'gpt-4o',
        amounts: { tokens: 10 },
        nested: { list: [1, 'two', null], emoji: '🚦' },
      }
      const r = id()
      const started = clock.now()
      await reserveOk(store, r, [spec], { meta, ttlMs: 90_000 })
      expect(await store.lookup(r)).toEqual({ id: r, state: 'held', expiresAt: started + 90_000, meta })
      clock.advance(5_000)
      closed(await settle(store, r, { tokens: 1 }), 'settled')
      // a closed reservation is remembered by its state; its meta may be gone
      expect(await store.lookup(r)).toMatchObject({ id: r, state: 'settled' })
      const other = id()
      await reserveOk(store, other, [spec], { meta: { model: 'other' } })
      closed(await release(store, other), 'released')
      expect(await store.lookup(other)).toMatchObject({ state: 'released' })
    })

    it("now() answers the clock's time", async () => {
      const { store, clock } = await harness(suite)
      expect(await store.now()).toBe(clock.now())
      clock.advance(61_001)
      expect(await store.now()).toBe(clock.now())
      const { store: later, clock: lateClock } = await harness(suite, '2031-07-04T12:34:56.789Z')
      expect(await later.now()).toBe(lateClock.now())
      expect(await later.now()).toBe(Date.parse('2031-07-04T12:34:56.789Z'))
    })

    it('every answer of reserve carries the store time', async () => {
      const { store, clock, key, id } = await harness(suite)
      clock.advance(777)
      const spec = counter(key(), day(clock.now()), 1, 1)
      expect((await reserve(store, id(), [spec])).now).toBe(clock.now())
      clock.advance(5)
      expect((await reserve(store, id(), [spec])).now).toBe(clock.now())
    })
  })
}
