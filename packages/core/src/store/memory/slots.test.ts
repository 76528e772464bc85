import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { idText, numberIn, Slots } from './slots.js'

interface Item {
  n: number
  id: string
}

describe('Slots', () => {
  it('parses only the canonical ids it made', () => {
    const slots = new Slots<Item>(1_000, 60_000)
    const made: string[] = []
    for (let i = 0; i < 1_300; i++) {
      const item = { n: -1, id: '' }
      item.n = slots.add(item).n
      item.id = slots.idOf(item.n)
      made.push(item.id)
    }
    for (const [n, id] of made.entries()) expect(slots.parse(id)).toBe(n)
    // the ring (1,024 here) holds the last ones, found by id, and only by their own id
    expect(slots.find(made.at(-1)!)?.id).toBe(made.at(-1))
    expect(slots.find(made[1_300 - 1_024]!)?.id).toBe(made[1_300 - 1_024])
    expect(slots.find(made[1_300 - 1_025]!)).toBeUndefined()
    // another first character (the prefix is random: it may start with any of them)
    const other = made.at(-1)!.startsWith('x') ? 'y' : 'x'
    expect(slots.find(`${other}${made.at(-1)!.slice(1)}`)).toBeUndefined()
    const { prefix } = slots
    expect(made.every((id) => id.length === 12 && /^[\w-]+$/.test(id))).toBe(true)
    const last = made.at(-1)!
    for (const foreign of [
      '',
      prefix,
      `${prefix}AAAA`, // too short
      `${prefix}AAAAAA`,
      `${prefix}AAAAAAAAA`, // the long form of a short number: one text per number
      idText(
        Array.from(prefix, (c) => c.charCodeAt(0)),
        1_300,
      ), // not made yet
      `${prefix}AAAA.`,
      `${prefix}AAAA\u00e9`,
      `${prefix}AAAA\u4e00`,
      `${last} `,
      `${other}${last.slice(1)}`, // another prefix (the first character is random: never the same)
      `${prefix.slice(0, -1)}${prefix.endsWith('A') ? 'B' : 'A'}${last.slice(-5)}`, // one character off
    ])
      expect(slots.parse(foreign), foreign).toBe(-1)
    expect(new Slots<Item>(10, 1).prefix).not.toBe(prefix)
  })

  it('writes every safe number as one text of its own, and reads it back', () => {
    const codes = Array.from('Ab-_x9Q', (c) => c.charCodeAt(0))
    const number = fc.oneof(
      fc.nat(2 ** 30 + 5),
      fc.integer({ min: 2 ** 30 - 5, max: 2 ** 30 + 5 }),
      fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
      fc.integer({ min: Number.MAX_SAFE_INTEGER - 5, max: Number.MAX_SAFE_INTEGER }),
    )
    fc.assert(
      fc.property(number, number, (n, m) => {
        const id = idText(codes, n)
        expect(id.startsWith('Ab-_x9Q')).toBe(true)
        expect(id.length).toBe(n < 2 ** 30 ? 12 : 16)
        expect(numberIn(id, 7)).toBe(n)
        expect(idText(codes, m) === id).toBe(m === n)
      }),
    )
    // past the safe integers, and texts no number is written as
    expect(numberIn('Ab-_x9Q_________', 7)).toBe(-1)
    expect(numberIn('Ab-_x9QAAAAAAAAA', 7)).toBe(-1)
    expect(numberIn('Ab-_x9QAAAA_____', 7)).toBe(-1) // 2^30 - 1 in the long form
    expect(numberIn('Ab-_x9QAAABAAAAA', 7)).toBe(2 ** 30)
  })

  it.each([
    ['', false],
    [', growing its ring and bits', true],
  ])('keeps open items and closed states as a reference model does%s', (_, grow) => {
    // a ring of 64 and 48 ids remembered: small enough that the ring and the bits wrap often
    const step = fc.oneof(
      { arbitrary: fc.record({ kind: fc.constant('add' as const) }), weight: 3 },
      {
        arbitrary: fc.record({
          kind: fc.constant('close' as const),
          back: fc.nat(80),
          released: fc.boolean(),
        }),
        weight: 2,
      },
      { arbitrary: fc.record({ kind: fc.constant('advance' as const), ms: fc.nat(40_000) }), weight: 1 },
    )
    fc.assert(
      fc.property(fc.array(step, { maxLength: 1_000, size: 'max' }), (steps) => {
        const remember = 48
        const horizonMs = 30_000
        // 128 bits in 4 blocks of 32 ids: a block's time outlives some of its ids' bits
        // and starting at a ring of 2 and 32 bits, so that both grow on the way
        const slots = new Slots<Item>(
          remember,
          horizonMs,
          grow ? { blocks: 4, firstRing: 2, firstBits: 32 } : { blocks: 4 },
        )
        const items = new Map<number, Item>()
        /** Items the ring handed back (the store keeps them in its keyed map). */
        const handedBack = new Set<number>()
        const closedAt = new Map<number, { at: number; released: boolean }>()
        let now = 0
        let next = 0
        let lastClose = Number.NEGATIVE_INFINITY
        for (const s of steps) {
          if (s.kind === 'add') {
            const item = { n: -1, id: '' }
            const { n, displaced } = slots.add(item)
            item.n = n
            item.id = slots.idOf(n)
            expect(n).toBe(next++)
            if (displaced !== undefined) {
              expect(items.has(displaced.n)).toBe(true) // only open items are handed back
              handedBack.add(displaced.n)
            }
            items.set(n, item)
          } else if (s.kind === 'close') {
            const n = next - 1 - s.back
            const item = items.get(n)
            if (n < 0 || item === undefined) continue
            expect(slots.take(item)).toBe(!handedBack.has(n))
            items.delete(n)
            handedBack.delete(n)
            const kept = slots.close(n, s.released ? 'released' : 'settled', now)
            expect(kept).toBe(next - n <= remember)
            if (kept) closedAt.set(n, { at: now, released: s.released })
            lastClose = now
          } else now += s.ms
          for (let n = Math.max(0, next - 160); n < next; n++) {
            const item = items.get(n)
            const open = item !== undefined && !handedBack.has(n) ? item : undefined
            if (slots.find(slots.idOf(n)) !== open) throw new Error(`find(${n}) is not the open item`)
            const state = slots.closed(n, now)
            const closed = closedAt.get(n)
            const expected = closed === undefined ? undefined : closed.released ? 'released' : 'settled'
            if (closed === undefined || next - n > remember || now >= lastClose + horizonMs) {
              if (state !== undefined) throw new Error(`closed(${n}) should be forgotten, is ${state}`)
            } else if (now < closed.at + horizonMs) {
              if (state !== expected) throw new Error(`closed(${n}) is ${state}, not ${expected}`)
            } else if (state !== undefined && state !== expected) {
              // past its horizon an id may be remembered a while longer (its block saw a later close)
              throw new Error(`closed(${n}) is ${state}, not ${expected}`)
            }
          }
        }
      }),
      { numRuns: 60 },
    )
  })

  it('remembers a closed id for its horizon, to the millisecond', () => {
    const slots = new Slots<Item>(100, 30_000)
    const item = { n: -1, id: '' }
    item.n = slots.add(item).n
    expect(slots.take(item)).toBe(true)
    expect(slots.close(item.n, 'released', 1_000)).toBe(true)
    expect(slots.closed(item.n, 30_999)).toBe('released')
    expect(slots.closed(item.n, 31_000)).toBeUndefined()
  })

  // the ledger's expiry cursor skips numbers below `oldest`: none of them may still be in the ring
  it('holds every record it did not hand back at its number, and none below `oldest`', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.constant('add' as const), fc.nat(40)), { maxLength: 300 }),
        (steps) => {
          const slots = new Slots<Item>(64, 1_000, { firstRing: 4 }) // grows 4 → 64
          const open = new Map<number, Item>()
          let adds = 0
          for (const step of steps) {
            if (step === 'add') {
              adds++
              const item = { n: -1, id: '' }
              const { n, displaced } = slots.add(item)
              item.n = n
              item.id = slots.idOf(n)
              open.set(n, item)
              if (displaced !== undefined) open.delete(displaced.n)
            } else {
              const item = [...open.values()][step % Math.max(1, open.size)]
              if (item !== undefined && slots.take(item)) open.delete(item.n)
            }
            expect(slots.made).toBe(adds)
            for (let n = 0; n < slots.made; n++) {
              const at = slots.at(n)
              expect(at, `number ${n}`).toBe(open.get(n))
              if (n < slots.oldest) expect(at, `number ${n} below ${slots.oldest}`).toBeUndefined()
            }
          }
        },
      ),
    )
  })
})
