import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { type Due, Expiries } from './expiry.js'

interface Item extends Due {
  name: number
}

describe('Expiries', () => {
  // expiries close together (few lists at once), and spread over a minute (many lists: the heap
  // of their seconds is deep)
  it.each([
    [1_500, 1_500],
    [60_000, 4_000],
  ])(
    'hands each open item to expire once, at its second, as a reference model does (within %i ms)',
    (within, advance) => {
      const step = fc.oneof(
        { arbitrary: fc.record({ kind: fc.constant('add' as const), inMs: fc.nat(within) }), weight: 10 },
        { arbitrary: fc.record({ kind: fc.constant('remove' as const), pick: fc.nat() }), weight: 10 },
        { arbitrary: fc.record({ kind: fc.constant('advance' as const), ms: fc.nat(advance) }), weight: 1 },
      )
      fc.assert(
        fc.property(fc.array(step, { minLength: 300, maxLength: 1_500 }), (steps) => {
          const expiries = new Expiries<Item>()
          /** Open items and the whole second they expire at. */
          const open = new Map<Item, number>()
          let now = 0
          let names = 0
          for (const s of steps) {
            if (s.kind === 'add') {
              const item: Item = { name: names++, due: undefined }
              expiries.add(item, now + s.inMs)
              open.set(item, Math.ceil((now + s.inMs) / 1_000) * 1_000)
            } else if (s.kind === 'remove') {
              if (open.size === 0) continue
              const item = [...open.keys()][s.pick % open.size]!
              expiries.remove(item)
              open.delete(item)
            } else now += s.ms
            const expired: Item[] = []
            expiries.expireDue(now, (item) => expired.push(item))
            const due = [...open].filter(([, at]) => at <= now).map(([item]) => item)
            expect(expired.map((i) => i.name).sort((a, b) => a - b)).toEqual(
              due.map((i) => i.name).sort((a, b) => a - b),
            )
            for (const item of due) open.delete(item)
            // closed items are compacted out: no list holds more than twice its open items, however
            // short (short lists kept every closed item until their second passed), but the one
            // being added to, which may hold 64 more
            expect(expiries.size.listed).toBeLessThanOrEqual(2 * open.size + 64)
          }
        }),
        { numRuns: 100 },
      )
    },
  )

  it('compacts a list when most of it closed, in place', () => {
    const expiries = new Expiries<Item>()
    const items: Item[] = Array.from({ length: 1_000 }, (_, name) => ({ name, due: undefined }))
    for (const item of items) expiries.add(item, 5_000)
    for (const item of items.slice(0, 900)) expiries.remove(item)
    const { listed, lists } = expiries.size
    expect(lists).toBe(1)
    expect(listed).toBeLessThanOrEqual(2 * 100)
    const expired: number[] = []
    expiries.expireDue(5_000, (item) => expired.push(item.name))
    expect(expired).toEqual(items.slice(900).map((i) => i.name))
  })

  it('compacts the list it was adding to once it moves on to another, if most of it closed', () => {
    const expiries = new Expiries<Item>()
    const items: Item[] = Array.from({ length: 100 }, (_, name) => ({ name, due: undefined }))
    for (const item of items) expiries.add(item, 5_000)
    // 60 closed: fewer than the list being added to waits for
    for (const item of items.slice(0, 60)) expiries.remove(item)
    expect(expiries.size.listed).toBe(100)
    expiries.add({ name: 100, due: undefined }, 6_000)
    // no longer added to, the list holds no more than twice its 40 open items
    expect(expiries.size).toEqual({ listed: 41, lists: 2 })
  })

  it('expires an item listed for a second already swept, at the next sweep', () => {
    const expiries = new Expiries<Item>()
    const a: Item = { name: 0, due: undefined }
    const b: Item = { name: 1, due: undefined }
    expiries.add(a, 2_000)
    const expired: number[] = []
    expiries.expireDue(2_000, (item) => expired.push(item.name))
    expect(expired).toEqual([0])
    // due at once (a TTL of 0 at a whole second): its list is a new one, not the one just swept
    expiries.add(b, 2_000)
    expiries.expireDue(2_000, (item) => expired.push(item.name))
    expect(expired).toEqual([0, 1])
    expect(expiries.size).toEqual({ listed: 0, lists: 0 })
  })
})
