/** Conformance: what rides along with a counter: alerts, the breaker, the throttle, shadow mode. */
import { describe, expect, it } from 'vitest'
import type { CounterSpec } from '../../store/contract.js'
import {
  asking,
  closed,
  counter,
  day,
  harness,
  lifetime,
  MINUTE,
  minute,
  release,
  reserve,
  reserveDenied,
  reserveOk,
  type Suite,
  settle,
  sliding,
  snapshot,
} from './specs.js'

export function describeCompanions(suite: Suite): void {
  describe('alerts', () => {
    it('each fraction is reported once per window, and a new window re-arms them', async () => {
      const { store, clock, key, id } = await harness(suite)
      const k = key()
      const spec = (now: number): CounterSpec => counter(k, minute(now), 10, 3, { alerts: [0.5, 0.8] })
      const crossedBy = async (ids: string[]) => {
        const seen: number[][] = []
        for (const r of ids) seen.push((await reserveOk(store, r, [spec(clock.now())]))[0]!.crossed)
        return seen
      }
      const first = [id(), id(), id()]
      expect(await crossedBy(first)).toEqual([[], [0.5], [0.8]])
      await reserveDenied(store, id(), [spec(clock.now())]).then(([c]) => expect(c!.crossed).toEqual([]))
      // Released and taken again within the window: nothing fires twice.
      for (const r of first) closed(await release(store, r), 'released')
      expect(await crossedBy([id(), id(), id()])).toEqual([[], [], []])
      clock.set(minute(clock.now()).bounds[2]!)
      expect(await crossedBy([id(), id(), id()])).toEqual([[], [0.5], [0.8]])
    })

    it('a rolling window re-arms a fraction that one hold takes it back over', async () => {
      // re-armed by the usage after the hold, a jump from below the threshold to above never fired again
      const { store, clock, key, id } = await harness(suite)
      const spec = counter(key(), sliding(60_000, 1_000), 100, 60, { alerts: [0.5] })
      expect((await reserveOk(store, id(), [spec]))[0]!.crossed).toEqual([0.5])
      clock.advance(120_000) // the window is empty again
      expect((await reserveOk(store, id(), [spec]))[0]!.crossed).toEqual([0.5])
      expect((await reserveOk(store, id(), [asking(spec, 10)]))[0]!.crossed).toEqual([])
    })

    it('one hold crossing several fractions reports them all, in order', async () => {
      const { store, clock, key, id } = await harness(suite)
      const spec = counter(key(), day(clock.now()), 100, 90, { alerts: [0.25, 0.5, 0.8, 0.95] })
      const [answer] = await reserveOk(store, id(), [spec])
      expect(answer!.crossed).toEqual([0.25, 0.5, 0.8])
      const [next] = await reserveOk(store, id(), [asking(spec, 9)])
      expect(next!.crossed).toEqual([0.95])
      const [last] = await reserveOk(store, id(), [asking(spec, 1)])
      expect(last!.crossed).toEqual([])
    })

    it('usage reaching a fraction exactly fires it, an alert at 1 as the cap is reached', async () => {
      const { store, clock, key, id } = await harness(suite)
      const spec = counter(key(), day(clock.now()), 10, 5, { alerts: [0.5, 1] })
      expect((await reserveOk(store, id(), [spec]))[0]!.crossed).toEqual([0.5])
      expect((await reserveOk(store, id(), [spec]))[0]!.crossed).toEqual([1])
    })

    it('a rolling window resting exactly on a fraction does not re-arm it', async () => {
      const { store, key, id } = await harness(suite)
      const spec = counter(key(), sliding(60_000, 1_000), 10, 5, { alerts: [0.5] })
      expect((await reserveOk(store, id(), [spec]))[0]!.crossed).toEqual([0.5]) // 5 of 10: exactly 50%
      // 6 of 10: usage never went below 50%, so nothing fires again
      expect((await reserveOk(store, id(), [asking(spec, 1)]))[0]!.crossed).toEqual([])
    })

    it('many small reserves report each fraction exactly once', async () => {
      const { store, clock, key, id } = await harness(suite)
      const spec = counter(key(), lifetime(), 1_000, 7, { alerts: [0.5, 0.8] })
      const all: number[] = []
      for (let i = 0; i < 140; i++) {
        const result = await reserve(store, id(), [spec])
        if (result.status === 'ok') all.push(...result.counters[0]!.crossed)
        clock.advance(1)
      }
      expect(all).toEqual([0.5, 0.8])
    })
  })

  describe('breaker', () => {
    const COOL = 30_000

    it('the reserve that would pass the cap trips it; it refuses until the cool-down ends', async () => {
      const { store, clock, key, id } = await harness(suite)
      const window = minute(clock.now())
      const spec = counter(key(), window, 5, 5, { trip: { cooldownMs: COOL } })
      const other = counter(key('other'), window, 100, 1)
      const full = id()
      await reserveOk(store, full, [spec])
      const [first] = await reserveDenied(store, id(), [asking(spec, 1)])
      expect(first).toMatchObject({ denied: true, tripped: true, trippedNow: true })
      clock.advance(1_000)
      // Even with capacity back, the open breaker refuses (and changes nothing).
      closed(await release(store, full), 'released')
      const [again] = await reserveDenied(store, id(), [asking(spec, 1)])
      expect(again).toMatchObject({ denied: true, tripped: true, trippedNow: false })
      expect(again!.retryAfterMs).toBeGreaterThan(0)
      expect(again!.retryAfterMs).toBeLessThanOrEqual(COOL - 1_000)
      const withOther = await reserveDenied(store, id(), [other, asking(spec, 1)])
      expect(withOther.map((c) => c.tripped)).toEqual([false, true])
      expect(await snapshot(store, [spec, other])).toEqual([
        { used: 0, held: 0 },
        { used: 0, held: 0 },
      ])
      clock.advance(COOL - 1_000)
      await reserveOk(store, id(), [asking(spec, 1)])
    })

    it('its wait lasts while the counter itself still refuses, so waiting it admits', async () => {
      // a breaker that cools down before its day window resets would refuse again (and trip again)
      const { store, clock, key, id } = await harness(suite)
      const k = key()
      const spec = (now: number) => counter(k, day(now), 5, 5, { trip: { cooldownMs: COOL } })
      await reserveOk(store, id(), [spec(clock.now())])
      const dayEnd = day(clock.now()).bounds[2]!
      const [first] = await reserveDenied(store, id(), [asking(spec(clock.now()), 1)])
      expect(first).toMatchObject({ tripped: true, trippedNow: true, retryAfterMs: dayEnd - clock.now() })
      clock.advance(1_000)
      const [again] = await reserveDenied(store, id(), [asking(spec(clock.now()), 1)])
      expect(again).toMatchObject({ tripped: true, trippedNow: false, retryAfterMs: dayEnd - clock.now() })
      // more than the cap can ever hold: waiting never helps
      const [never] = await reserveDenied(store, id(), [asking(spec(clock.now()), 6)])
      expect(never).toMatchObject({ tripped: true, retryAfterMs: null })
      clock.advance(again!.retryAfterMs!)
      await reserveOk(store, id(), [asking(spec(clock.now()), 1)])
    })

    it('after the cool-down, in a new window, requests pass again', async () => {
      const { store, clock, key, id } = await harness(suite)
      const k = key()
      const spec = (now: number) => counter(k, minute(now), 5, 5, { trip: { cooldownMs: COOL } })
      await reserveOk(store, id(), [spec(clock.now())])
      expect((await reserveDenied(store, id(), [asking(spec(clock.now()), 1)]))[0]!.trippedNow).toBe(true)
      clock.advance(COOL - 1)
      expect((await reserveDenied(store, id(), [asking(spec(clock.now()), 1)]))[0]).toMatchObject({
        tripped: true,
        trippedNow: false,
      })
      clock.set(minute(clock.now()).bounds[2]!)
      const [answer] = await reserveOk(store, id(), [spec(clock.now())])
      expect(answer).toMatchObject({ denied: false, tripped: false, trippedNow: false })
    })
  })

  describe('throttle', () => {
    const throttle = { at: 0.5, limit: 2, periodMs: MINUTE }

    it('below `at` there is no throttle; past it at most `limit` reservations per period', async () => {
      const { store, clock, key, id } = await harness(suite)
      const spec = counter(key(), day(clock.now()), 1_000, 1, { throttle })
      for (let i = 0; i < 10; i++) {
        const [answer] = await reserveOk(store, id(), [spec])
        expect(answer!.throttled).toBe(false)
      }
      await store.adjust(spec, 600)
      await reserveOk(store, id(), [spec])
      await reserveOk(store, id(), [spec])
      const before = await snapshot(store, [spec])
      const [refused] = await reserveDenied(store, id(), [spec])
      expect(refused).toMatchObject({ denied: true, throttled: true, tripped: false })
      expect(await snapshot(store, [spec])).toEqual(before)
      const retry = refused!.retryAfterMs
      expect(retry).toBeGreaterThan(0)
      expect(retry).toBeLessThanOrEqual(throttle.periodMs)
      clock.advance(retry!)
      await reserveOk(store, id(), [spec])
      // Over ten periods, about `limit` per period: never more than the burst plus the rate.
      let admitted = 0
      for (let t = 0; t < 10 * throttle.periodMs; t += 5_000) {
        const result = await reserve(store, id(), [spec])
        if (result.status === 'ok') admitted++
        else expect(result.status === 'denied' && result.counters[0]!.throttled).toBe(true)
        clock.advance(5_000)
      }
      expect(admitted).toBeLessThanOrEqual(throttle.limit + 10 * throttle.limit)
      expect(admitted).toBeGreaterThanOrEqual(10 * throttle.limit - throttle.limit)
    })
  })

  describe('throttle from `at`', () => {
    it('counts the reservation that reaches at × cap', async () => {
      const { store, clock, key, id } = await harness(suite)
      const spec = counter(key(), day(clock.now()), 10, 1, {
        throttle: { at: 0.5, limit: 1, periodMs: MINUTE },
      })
      // four below 50%; the fifth reaches it and takes the throttle's one token; the sixth waits
      for (let i = 0; i < 5; i++) expect((await reserveOk(store, id(), [spec]))[0]!.throttled).toBe(false)
      const [refused] = await reserveDenied(store, id(), [spec])
      expect(refused).toMatchObject({ denied: true, throttled: true })
    })
  })

  describe('shadow counters', () => {
    it('a shadow counter that would refuse reports denied, holds nothing and never refuses', async () => {
      const { store, clock, key, id } = await harness(suite)
      const enforced = counter(key('enforced'), day(clock.now()), 100, 10)
      const shadow = counter(key('shadow'), day(clock.now()), 5, 10, { enforce: false })
      const answer = await reserveOk(store, id(), [enforced, shadow])
      expect(answer.map((c) => c.denied)).toEqual([false, true])
      expect(await snapshot(store, [enforced, shadow])).toEqual([
        { used: 10, held: 10 },
        { used: 0, held: 0 },
      ])
      const alone = await reserveOk(store, id(), [asking(shadow, 6)])
      expect(alone[0]!.denied).toBe(true)
      expect(await snapshot(store, [shadow])).toEqual([{ used: 0, held: 0 }])
    })

    it('an admitted shadow counter counts like any other', async () => {
      const { store, clock, key, id } = await harness(suite)
      const shadow = counter(key(), day(clock.now()), 50, 10, { enforce: false })
      const r = id()
      const [answer] = await reserveOk(store, r, [shadow])
      expect(answer).toMatchObject({ denied: false, used: 10, held: 10 })
      closed(await settle(store, r, { tokens: 4 }), 'settled')
      expect(await snapshot(store, [shadow])).toEqual([{ used: 4, held: 0 }])
    })

    it('a shadow counter never trips a breaker', async () => {
      const { store, clock, key, id } = await harness(suite)
      const shadow = counter(key(), day(clock.now()), 5, 6, { enforce: false, trip: { cooldownMs: MINUTE } })
      for (let i = 0; i < 3; i++) await reserveOk(store, id(), [shadow])
      const [fits] = await reserveOk(store, id(), [asking(shadow, 5)])
      expect(fits).toMatchObject({ denied: false, tripped: false })
    })

    it('when an enforced counter refuses, the shadow counter holds nothing either', async () => {
      const { store, clock, key, id } = await harness(suite)
      const enforced = counter(key('enforced'), day(clock.now()), 5, 10)
      const shadow = counter(key('shadow'), day(clock.now()), 100, 10, { enforce: false })
      const answer = await reserveDenied(store, id(), [shadow, enforced])
      expect(answer.map((c) => c.denied)).toEqual([false, true])
      expect(await snapshot(store, [shadow, enforced])).toEqual([
        { used: 0, held: 0 },
        { used: 0, held: 0 },
      ])
    })
  })
}
