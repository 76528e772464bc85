import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { SlotRing } from './slot-ring.js'

/** The reference: slot index → what it counts and holds, read in index order. */
class Model {
  slots = new Map<number, { counted: number; held: number }>()
  ordered() {
    return [...this.slots.entries()].sort(([a], [b]) => a - b)
  }
  add(slot: number, amount: number, hold: number) {
    const s = this.slots.get(slot) ?? { counted: 0, held: 0 }
    this.slots.set(slot, { counted: s.counted + amount, held: s.held + hold })
  }
  charge(slot: number, delta: number, open: number) {
    const s = this.slots.get(slot)
    if (s === undefined) return false
    s.counted += delta
    s.held -= open
    return true
  }
  drop(cutoff: number) {
    let counted = 0
    let held = 0
    for (const [slot, s] of this.slots)
      if (slot < cutoff) {
        counted += s.counted
        held += s.held
        this.slots.delete(slot)
      }
    return { counted, held }
  }
  leaving(total: number, most: number) {
    let left = total
    for (const [slot, s] of this.ordered()) {
      left -= s.counted
      if (left <= most) return slot
    }
    return undefined
  }
}

describe('SlotRing', () => {
  it('counts, charges, drops and reads slots as a map of slots does, the ring growing as needed', () => {
    const step = fc.oneof(
      // the next slot: mostly the same or a little later, sometimes after a long idle time
      {
        arbitrary: fc.record({
          kind: fc.constant('add' as const),
          ahead: fc.oneof(
            fc.integer({ min: 0, max: 3 }),
            fc.integer({ min: 0, max: 70 }),
            fc.constant(5_000),
          ),
          amount: fc.integer({ min: -5, max: 20 }),
          hold: fc.nat(20),
        }),
        weight: 4,
      },
      {
        arbitrary: fc.record({
          kind: fc.constant('charge' as const),
          back: fc.nat(80),
          delta: fc.integer({ min: -10, max: 10 }),
          open: fc.nat(5),
        }),
        weight: 2,
      },
      // the window moves on: drop what is older than `width` slots before the newest
      { arbitrary: fc.record({ kind: fc.constant('drop' as const), width: fc.nat(70) }), weight: 2 },
      {
        arbitrary: fc.record({
          kind: fc.constant('leaving' as const),
          most: fc.integer({ min: -5, max: 200 }),
        }),
        weight: 1,
      },
    )
    fc.assert(
      fc.property(
        fc.integer({ min: -1e9, max: 2e12 }),
        fc.array(step, { maxLength: 120 }),
        (start, steps) => {
          const ring = new SlotRing()
          const model = new Model()
          let now = start // the newest slot: slots are added for the current time only
          let cut = Number.NEGATIVE_INFINITY
          const dropped = { counted: 0, held: 0 }
          for (const s of steps) {
            if (s.kind === 'add') {
              now += s.ahead
              if (now < cut) continue // the window never starts after the current slot
              ring.add(now, s.amount, s.hold)
              model.add(now, s.amount, s.hold)
            } else if (s.kind === 'charge') {
              const slot = now - s.back
              expect(ring.charge(slot, s.delta, s.open)).toBe(model.charge(slot, s.delta, s.open))
            } else if (s.kind === 'drop') {
              cut = Math.max(cut, now - s.width)
              ring.drop(cut, dropped)
              expect(dropped).toEqual(model.drop(cut))
            } else {
              const total = model.ordered().reduce((sum, [, v]) => sum + v.counted, 0)
              expect(ring.leaving(total, s.most)).toBe(model.leaving(total, s.most))
            }
            const ordered = model.ordered()
            expect(ring.size).toBe(ordered.length)
            expect(ring.first).toBe(ordered[0]?.[0])
            for (const [slot, v] of ordered) expect(ring.get(slot)).toBe(v.counted)
            expect(ring.get(now + 1)).toBeUndefined()
          }
        },
      ),
      { numRuns: 300 },
    )
  })

  it('places slots far from the first one (past 32-bit integers) and before it', () => {
    const ring = new SlotRing()
    const dropped = { counted: 0, held: 0 }
    ring.add(7, 1, 1)
    ring.add(5, 2, 0) // before the first slot added: kept in order all the same
    expect([ring.first, ring.get(5), ring.get(7), ring.get(6)]).toEqual([5, 2, 1, undefined])
    const far = 7 + 2 ** 33
    ring.drop(far - 3, dropped)
    expect(dropped).toEqual({ counted: 3, held: 1 })
    for (const slot of [far - 2, far, far + 1]) ring.add(slot, slot - far + 10, 1)
    expect(ring.charge(far, 5, 1)).toBe(true)
    expect(ring.charge(far - 1, 5, 1)).toBe(false)
    expect([ring.first, ring.get(far - 2), ring.get(far), ring.get(far + 1)]).toEqual([far - 2, 8, 15, 11])
    expect(ring.leaving(34, 20)).toBe(far)
    ring.drop(far + 1, dropped)
    expect(dropped).toEqual({ counted: 23, held: 1 })
    expect([ring.size, ring.first]).toEqual([1, far + 1])
  })

  it('keeps a ring no wider than the widest span of slots held, however long the cell lives', () => {
    const ring = new SlotRing()
    const dropped = { counted: 0, held: 0 }
    for (let slot = 1_000; slot < 101_000; slot++) {
      ring.drop(slot - 60, dropped) // a 60-slot window
      ring.add(slot, 1, 1)
      if (slot > 1_060) expect(dropped).toEqual({ counted: 1, held: 1 })
    }
    expect(ring.size).toBe(61)
    expect((ring as unknown as { counted: number[] }).counted.length).toBe(64)
    // an idle cell: dropping after a long time steps over its slots only
    ring.drop(1e12, dropped)
    expect(dropped).toEqual({ counted: 61, held: 61 })
    expect(ring.size).toBe(0)
    expect(ring.first).toBeUndefined()
  })
})
