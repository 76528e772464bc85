/**
 * Conformance: `scan` (optional) lists the counters under a key prefix in the window the
 * probe lays out, with their caps (overrides included). Skipped for stores without it.
 */
import { describe, expect, it } from 'vitest'
import { counter, day, harness, reserveOk, type Suite, settle, sliding } from './specs.js'

export function describeScan(suite: Suite): void {
  describe('scan (breakdowns)', () => {
    it('lists the counters under a prefix with their state, and nothing else', async () => {
      const { store, clock, key, id } = await harness(suite)
      if (!store.scan) return
      const base = key('rule')
      const window = day(clock.now())
      const amounts: Record<string, number> = { 'a=1': 5, 'a=2': 7, 'a=1%003a%007b': 3 }
      for (const [partition, amount] of Object.entries(amounts)) {
        const r = id()
        await reserveOk(store, r, [counter(`${base}:${partition}`, window, 100, amount)])
        await settle(store, r, { tokens: amount })
      }
      await reserveOk(store, id(), [counter(`${key('other')}:a=1`, window, 100, 9)])
      await store.setOverride(`${base}:a=2`, 50)
      const found = await store.scan(counter(`${base}:`, window, 100, 0), 100)
      const byKey = Object.fromEntries(found.map((f) => [f.key, f.state]))
      expect(Object.keys(byKey).sort()).toEqual(
        Object.keys(amounts)
          .map((p) => `${base}:${p}`)
          .sort(),
      )
      expect(byKey[`${base}:a=1`]).toMatchObject({ used: 5, held: 0, cap: 100 })
      expect(byKey[`${base}:a=2`]).toMatchObject({ used: 7, cap: 50 })
    })

    it('reads the current window only: last window counts nothing', async () => {
      const { store, clock, key, id } = await harness(suite, '2026-03-10T23:59:00Z')
      if (!store.scan) return
      const base = key('rule')
      await reserveOk(store, id(), [counter(`${base}:a=1`, day(clock.now()), 100, 4)])
      const r = id()
      await reserveOk(store, r, [counter(`${base}:a=2`, sliding(60_000, 1_000), 100, 4)])
      clock.advance(120_000)
      const found = await store.scan(counter(`${base}:`, day(clock.now()), 100, 0), 100)
      expect(found.filter((f) => f.state.used > 0)).toEqual([])
    })

    it('returns at most `max` counters', async () => {
      const { store, clock, key, id } = await harness(suite)
      if (!store.scan) return
      const base = key('rule')
      const window = day(clock.now())
      for (let i = 0; i < 5; i++) await reserveOk(store, id(), [counter(`${base}:a=${i}`, window, 100, 1)])
      expect((await store.scan(counter(`${base}:`, window, 100, 0), 3)).length).toBeLessThanOrEqual(3)
    })
  })
}
