/** Conformance: calendar (`fixed`) windows, lifetime windows and clock skew. */
import { describe, expect, it } from 'vitest'
import type { WindowSpec } from '../../store/contract.js'
import { calendarBounds } from '../../windows/calendar.js'
import {
  asking,
  closed,
  counter,
  DAY,
  day,
  harness,
  lifetime,
  MINUTE,
  minute,
  readOne,
  reserve,
  reserveDenied,
  reserveOk,
  type Suite,
  settle,
  snapshot,
} from './specs.js'

export function describeFixedWindows(suite: Suite): void {
  describe('fixed windows', () => {
    it('a fresh counter reads empty with the window start and end', async () => {
      const { store, clock, key } = await harness(suite)
      clock.advance(12_345)
      const window = minute(clock.now())
      const state = await readOne(store, counter(key(), window, 10))
      expect(state).toEqual({
        cap: 10,
        used: 0,
        held: 0,
        resetAt: window.bounds[2],
        windowStart: window.bounds[1],
      })
    })

    it('after the window ends the next one starts empty', async () => {
      const { store, clock, key, id } = await harness(suite)
      clock.advance(1_500)
      const window = minute(clock.now())
      const [, start, end, nextEnd] = window.bounds
      const spec = counter(key(), window, 10, 7)
      await reserveOk(store, id(), [spec])
      expect(await readOne(store, spec)).toMatchObject({ used: 7, held: 7, windowStart: start, resetAt: end })
      clock.set(end! - 1)
      expect(await snapshot(store, [spec])).toEqual([{ used: 7, held: 7 }])
      clock.set(end!)
      expect(await readOne(store, spec)).toEqual({
        cap: 10,
        used: 0,
        held: 0,
        windowStart: end,
        resetAt: nextEnd,
      })
      await reserveOk(store, id(), [asking(spec, 10)])
    })

    it('a settle after rollover adjusts the old window and leaves the new one untouched', async () => {
      const { store, clock, key, id } = await harness(suite)
      const window = minute(clock.now())
      const spec = counter(key(), window, 10, 5)
      const old = id('old')
      await reserveOk(store, old, [spec])
      clock.set(window.bounds[2]! + 30_000)
      await reserveOk(store, id('new'), [asking(spec, 4)])
      // The old window ends at 5 + 7 = 12 > 10: the overdraft shows the settle landed there.
      expect(closed(await settle(store, old, { tokens: 12 }), 'settled')).toEqual([
        { key: spec.key, metric: 'tokens', held: 5, charged: 12, overdraft: 2 },
      ])
      expect(await snapshot(store, [spec])).toEqual([{ used: 4, held: 4 }])
      await reserveOk(store, id(), [asking(spec, 6)])
      await reserveDenied(store, id(), [asking(spec, 1)])
    })

    it('a day window holds for the whole day and resets at midnight', async () => {
      const { store, clock, key, id } = await harness(suite, '2026-03-10T00:00:00.000Z')
      const spec = counter(key(), day(clock.now()), 10, 6)
      await reserveOk(store, id(), [spec], { ttlMs: 2 * DAY })
      clock.advance(DAY - 1)
      expect(await snapshot(store, [{ ...spec, window: day(clock.now()) }])).toEqual([{ used: 6, held: 6 }])
      await reserveDenied(store, id(), [{ ...spec, window: day(clock.now()) }])
      clock.advance(1)
      expect(await snapshot(store, [{ ...spec, window: day(clock.now()) }])).toEqual([{ used: 0, held: 0 }])
    })

    it('the store picks the interval holding its own now, whatever bounds list it is offered', async () => {
      const { store, clock, key, id } = await harness(suite)
      clock.advance(20_000)
      const now = clock.now()
      const aheadBy = (ms: number): WindowSpec => ({
        kind: 'fixed',
        bounds: calendarBounds('minute', 'UTC', now + ms, 1),
      })
      const behindBy = (ms: number): WindowSpec => ({
        kind: 'fixed',
        bounds: calendarBounds('minute', 'UTC', now - ms, 1),
      })
      const k = key()
      await reserveOk(store, id(), [counter(k, aheadBy(MINUTE), 10, 3)])
      await reserveOk(store, id(), [counter(k, behindBy(MINUTE), 10, 4)])
      const state = await readOne(store, counter(k, minute(now), 10))
      expect(state).toMatchObject({ used: 7, held: 7, windowStart: now - 20_000, resetAt: now + 40_000 })
    })

    it('a lifetime window never resets, and waiting does not help its refusals', async () => {
      const { store, clock, key, id } = await harness(suite)
      const spec = counter(key(), lifetime(), 10, 10)
      expect(await readOne(store, spec)).toMatchObject({ used: 0, resetAt: null, windowStart: 0 })
      await reserveOk(store, id(), [spec])
      clock.advance(400 * DAY)
      // the unsettled hold expired long ago: still charged (expiry 'keep'), no longer held
      expect(await readOne(store, spec)).toMatchObject({ used: 10, held: 0, resetAt: null })
      const [refused] = await reserveDenied(store, id(), [asking(spec, 1)])
      expect(refused).toMatchObject({ denied: true, retryAfterMs: null, resetAt: null })
    })

    it('an amount above the cap is refused with no retry time', async () => {
      const { store, clock, key, id } = await harness(suite)
      const spec = counter(key(), minute(clock.now()), 10, 11)
      const [refused] = await reserveDenied(store, id(), [spec])
      expect(refused).toMatchObject({ denied: true, retryAfterMs: null, used: 0 })
      expect(await snapshot(store, [spec])).toEqual([{ used: 0, held: 0 }])
    })
  })

  describe('clock skew', () => {
    it("bounds that do not hold the store's now answer skew with the store's time", async () => {
      const { store, clock, key, id } = await harness(suite)
      clock.advance(3_210)
      const now = clock.now()
      const past: WindowSpec = {
        kind: 'fixed',
        bounds: calendarBounds('minute', 'UTC', now - 10 * MINUTE, 1),
      }
      const future: WindowSpec = {
        kind: 'fixed',
        bounds: calendarBounds('minute', 'UTC', now + 10 * MINUTE, 1),
      }
      const endsAtNow: WindowSpec = { kind: 'fixed', bounds: [now - MINUTE, now] }
      for (const window of [past, future, endsAtNow]) {
        expect(await reserve(store, id(), [counter(key(), window, 10, 1)])).toEqual({ status: 'skew', now })
      }
    })

    it('a skew answer changes nothing, even for the counters whose bounds were fine', async () => {
      const { store, clock, key, id } = await harness(suite)
      const now = clock.now()
      const good = counter(key('good'), minute(now), 10, 4)
      const breaker = counter(key('breaker'), minute(now), 3, 4, { trip: { cooldownMs: MINUTE } })
      const skewed = counter(
        key('skewed'),
        { kind: 'fixed', bounds: [now - 2 * MINUTE, now - MINUTE] },
        10,
        1,
      )
      const r = id()
      for (const order of [
        [good, breaker, skewed],
        [skewed, good, breaker],
      ]) {
        expect(await reserve(store, r, order)).toEqual({ status: 'skew', now })
      }
      expect(await snapshot(store, [good, breaker])).toEqual([
        { used: 0, held: 0 },
        { used: 0, held: 0 },
      ])
      expect(await store.lookup(r)).toBeNull()
      // The engine retries with fresh bounds under the same id: it goes through.
      await reserveOk(store, r, [good])
      // No breaker was tripped by the skewed attempts: the first real refusal trips it now.
      const [tripped] = await reserveDenied(store, id(), [breaker])
      expect(tripped).toMatchObject({ tripped: true, trippedNow: true })
    })
  })
}
