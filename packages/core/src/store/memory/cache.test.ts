import { describe, expect, it } from 'vitest'
import { ClockCache, type Expiring } from './cache.js'

const entry = (forgetAt = Number.POSITIVE_INFINITY): Expiring => ({ forgetAt, seen: false })

describe('ClockCache', () => {
  for (const padded of [false, true]) {
    it(`keeps its bound and hides its padding (padded: ${padded})`, () => {
      const cache = new ClockCache<Expiring>(3, padded)
      expect(cache.size).toBe(0)
      expect([...cache.entries(0)]).toEqual([])
      for (let i = 0; i < 10; i++) cache.add(`k${i}`, entry(), 0)
      expect(cache.size).toBe(3)
      expect([...cache.entries(0)].map(([key]) => key)).toEqual(['k7', 'k8', 'k9'])
      cache.delete('k8')
      expect(cache.get('k8', 0)).toBeUndefined()
      expect(cache.size).toBe(2)
      // a seen entry gets a second chance; an unseen one goes first
      cache.get('k7', 0)
      cache.add('k10', entry(), 0)
      cache.add('k11', entry(), 0)
      expect([...cache.entries(0)].map(([key]) => key).sort()).toEqual(['k10', 'k11', 'k7'])
      // expired entries are dropped on read and hidden from entries
      cache.add('old', entry(5), 0)
      expect([...cache.entries(5)].map(([key]) => key)).not.toContain('old')
      expect(cache.get('old', 5)).toBeUndefined()
    })
  }

  it('drops a sixteenth of its bound in one pass, not one entry per add (each pass walks the Map)', () => {
    let dropped = 0
    const cache = new ClockCache<Expiring>(1_024, false, () => dropped++)
    for (let i = 0; i < 1_024; i++) cache.add(`k${i}`, entry(), 0)
    expect(dropped).toBe(0)
    cache.add('one more', entry(), 0)
    expect(dropped).toBe(64)
    for (let i = 0; i < 63; i++) cache.add(`m${i}`, entry(), 0)
    expect(dropped).toBe(64) // room was made for these
    expect(cache.size).toBe(1_024)
    cache.add('past it again', entry(), 0)
    expect(dropped).toBe(128)
  })

  it('never evicts the entry it is adding, even when every other one was seen', () => {
    const cache = new ClockCache<Expiring>(1)
    cache.add('a', entry(), 0)
    cache.get('a', 0)
    cache.add('b', entry(), 0)
    expect([...cache.entries(0)].map(([key]) => key)).toEqual(['b'])
  })

  it('tells onEvict of each entry dropped to keep the bound, and of no other', () => {
    const dropped: Expiring[] = []
    const cache = new ClockCache<Expiring>(2, true, (value) => dropped.push(value))
    const [a, b, c, d] = [entry(), entry(), entry(), entry()]
    cache.add('a', a!, 0)
    cache.add('b', b!, 0)
    cache.delete('b') // deleted, not dropped
    cache.add('c', c!, 0)
    cache.get('a', 0) // seen: a second chance
    cache.add('d', d!, 0)
    expect(dropped).toEqual([c])
    expect(c!.forgetAt).toBe(Number.NEGATIVE_INFINITY)
    expect([a, b, d].map((e) => e!.forgetAt)).toEqual([Infinity, Infinity, Infinity])
  })

  it('drops an expired entry before a live one, even when the expired one was read', () => {
    const cache = new ClockCache<Expiring>(2)
    cache.add('old', entry(5), 0)
    cache.get('old', 0) // seen, but it expires at 5
    cache.add('live', entry(), 0)
    cache.add('new', entry(), 10)
    expect([...cache.entries(10)].map(([key]) => key)).toEqual(['live', 'new'])
  })
})
