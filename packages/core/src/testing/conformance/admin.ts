/** Conformance: runtime cap overrides, block markers and adjustments outside reservations. */
import { describe, expect, it } from 'vitest'
import { calendarBounds } from '../../windows/calendar.js'
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
  reserve,
  reserveDenied,
  reserveOk,
  type Suite,
  settle,
  snapshot,
} from './specs.js'

export function describeAdmin(suite: Suite): void {
  describe('cap overrides', () => {
    it('an override replaces the cap for reserve and read, down and up; null restores it', async () => {
      const { store, clock, key, id } = await harness(suite)
      const spec = counter(key(), day(clock.now()), 10, 4)
      const neighbour = counter(key(), day(clock.now()), 10, 4)
      await store.setOverride(spec.key, 3)
      expect(await readOne(store, spec)).toMatchObject({ cap: 3, used: 0 })
      expect(await readOne(store, neighbour)).toMatchObject({ cap: 10 })
      const [refused] = await reserveDenied(store, id(), [spec])
      expect(refused).toMatchObject({ cap: 3, denied: true })
      await reserveOk(store, id(), [asking(spec, 3)])
      await store.setOverride(spec.key, 20)
      expect(await readOne(store, spec)).toMatchObject({ cap: 20, used: 3 })
      const [raised] = await reserveOk(store, id(), [asking(spec, 17)])
      expect(raised).toMatchObject({ cap: 20, used: 20 })
      await reserveDenied(store, id(), [asking(spec, 1)])
      await store.setOverride(spec.key, null)
      expect(await readOne(store, spec)).toMatchObject({ cap: 10, used: 20 })
      await reserveDenied(store, id(), [asking(spec, 1)])
      await store.setOverride(spec.key, null)
      expect(await readOne(store, spec)).toMatchObject({ cap: 10 })
    })

    it('an override under a scope (tenant) applies to that scope only', async () => {
      // the same user id in two tenants: capping one tenant's user leaves the other's alone
      const { store, clock, key, id } = await harness(suite)
      const k = key('scoped')
      const scopes = [undefined, 'a', 'b', '{a}', 'a:b', 'é\u0000']
      const specs = scopes.map((scope) =>
        counter(k, day(clock.now()), 10, 4, scope === undefined ? {} : { scope }),
      )
      const caps = (states: { cap: number }[]) => states.map((s) => s.cap)
      await store.setOverride(k, 3, 'a')
      expect(caps(await read(store, specs))).toEqual([10, 3, 10, 10, 10, 10])
      await store.setOverride(k, 5)
      await store.setOverride(k, 7, '{a}')
      expect(caps(await read(store, specs))).toEqual([5, 3, 10, 7, 10, 10])
      const [refused] = await reserveDenied(store, id(), [specs[1]!])
      expect(refused).toMatchObject({ cap: 3, denied: true })
      await reserveOk(store, id(), [specs[2]!]) // b's counter keeps its cap of 10
      const r = id()
      await reserveOk(store, r, [asking(specs[3]!, 7)])
      expect(closed(await settle(store, r, { tokens: 9 }), 'settled')[0]!.overdraft).toBe(2)
      await store.setOverride(k, null, 'a')
      expect(caps(await read(store, specs))).toEqual([5, 10, 10, 7, 10, 10])
      await store.setOverride(k, null)
      await store.setOverride(k, null, '{a}')
      expect(caps(await read(store, specs))).toEqual([10, 10, 10, 10, 10, 10])
    })

    it('an override applies to every window of the key and to the overdraft of a settle', async () => {
      const { store, clock, key, id } = await harness(suite)
      const k = key()
      await store.setOverride(k, 5)
      const r = id()
      await reserveOk(store, r, [counter(k, minute(clock.now()), 10, 5)])
      expect(closed(await settle(store, r, { tokens: 8 }), 'settled')[0]!.overdraft).toBe(3)
      clock.set(minute(clock.now()).bounds[2]!)
      await reserveDenied(store, id(), [counter(k, minute(clock.now()), 10, 6)])
      await store.setOverride(k, 0)
      await reserveDenied(store, id(), [counter(k, minute(clock.now()), 10, 1)])
    })
  })

  describe('blocks', () => {
    it('a block refuses every reserve naming its marker with its code and changes nothing', async () => {
      const { store, clock, key, id } = await harness(suite)
      const spec = counter(key(), day(clock.now()), 100, 5)
      const marker = key('user=alice')
      await store.block(marker, 'key_revoked')
      const r = id()
      const answer = await reserve(store, r, [spec], { blocks: [key('user=bob'), marker] })
      expect(answer).toEqual({ status: 'blocked', now: clock.now(), block: marker, code: 'key_revoked' })
      expect(await snapshot(store, [spec])).toEqual([{ used: 0, held: 0 }])
      expect(await store.lookup(r)).toBeNull()
      // Markers are exact strings.
      for (const near of [`${marker}x`, marker.toUpperCase(), marker.slice(0, -1)]) {
        await reserveOk(store, id(), [asking(spec, 0)], { blocks: [near] })
      }
      await reserveOk(store, id(), [spec])
      await store.block(marker, null)
      await reserveOk(store, r, [spec], { blocks: [marker] })
      expect(await snapshot(store, [spec])).toEqual([{ used: 10, held: 10 }])
    })

    it('blocks are checked before the counters, and a new code replaces the old one', async () => {
      const { store, clock, key, id } = await harness(suite)
      const marker = key('team=red')
      await store.block(marker, 'blocked')
      await store.block(marker, 'abuse')
      const skewed = counter(
        key(),
        { kind: 'fixed', bounds: calendarBounds('minute', 'UTC', clock.now() - 3_600_000) },
        1,
        5,
      )
      const answer = await reserve(store, id(), [skewed], { blocks: [marker] })
      expect(answer).toMatchObject({ status: 'blocked', block: marker, code: 'abuse' })
    })
  })

  describe('adjust', () => {
    it('adds to and takes from the current window outside any reservation', async () => {
      const { store, clock, key, id } = await harness(suite)
      const spec = counter(key(), minute(clock.now()), 100, 10)
      expect(await store.adjust(spec, 5)).toMatchObject({ cap: 100, used: 5, held: 0 })
      await reserveOk(store, id(), [spec])
      expect(await store.adjust(spec, -4)).toMatchObject({ used: 11, held: 10 })
      expect(await snapshot(store, [spec])).toEqual([{ used: 11, held: 10 }])
      clock.set(minute(clock.now()).bounds[2]!)
      expect(await snapshot(store, [{ ...spec, window: minute(clock.now()) }])).toEqual([
        { used: 0, held: 0 },
      ])
    })

    it('a negative adjust credits a prepaid balance', async () => {
      const { store, key, id } = await harness(suite)
      const balance = counter(key(), lifetime(), 0, 60, { metric: 'cost' })
      await reserveDenied(store, id(), [balance])
      expect(await store.adjust(balance, -100)).toMatchObject({ cap: 0, used: -100 })
      const r = id()
      await reserveOk(store, r, [balance])
      await reserveDenied(store, id(), [asking(balance, 50)])
      closed(await settle(store, r, { cost: 30 }), 'settled')
      expect((await readOne(store, balance)).used).toBe(-70)
      await reserveOk(store, id(), [asking(balance, 50)])
      await reserveDenied(store, id(), [asking(balance, 21)])
      expect((await read(store, [balance]))[0]).toMatchObject({ used: -20, held: 50 })
    })
  })
}
