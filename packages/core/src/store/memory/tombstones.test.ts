import { describe, expect, it } from 'vitest'
import { Tombstones } from './tombstones.js'

describe('Tombstones', () => {
  it('answers each closed id with its state, and nothing for others', () => {
    const tombstones = new Tombstones(60_000, 100_000)
    for (let i = 0; i < 20_000; i++) tombstones.add(`id:${i}{x}`, i % 3 === 0 ? 'released' : 'settled', 0)
    for (let i = 0; i < 20_000; i++)
      expect(tombstones.get(`id:${i}{x}`, 1)).toBe(i % 3 === 0 ? 'released' : 'settled')
    for (let i = 20_000; i < 40_000; i++) expect(tombstones.get(`id:${i}{x}`, 1)).toBeUndefined()
    expect(tombstones.get('', 1)).toBeUndefined()
  })

  it('forgets ids after the horizon, and the oldest first past its bound', () => {
    const tombstones = new Tombstones(24_000, 80)
    tombstones.add('a', 'settled', 0)
    expect(tombstones.get('a', 23_999)).toBe('settled')
    expect(tombstones.get('a', 25_000)).toBeUndefined()
    // tables of 10 (80 / 8): the first table goes once more than 80 ids are kept
    for (let i = 0; i < 81; i++) tombstones.add(`b${i}`, 'released', 30_000)
    expect(tombstones.get('b0', 30_000)).toBeUndefined()
    expect(tombstones.get('b80', 30_000)).toBe('released')
  })

  it('remembers an id closed between two time slices for its whole horizon', () => {
    // slices of 1 s (24 s / 24): closed at 0.5 s, the id is kept until at least 24.5 s
    const tombstones = new Tombstones(24_000, 80)
    tombstones.add('a', 'settled', 500)
    expect(tombstones.get('a', 24_499)).toBe('settled')
  })

  it('remembers nothing with a horizon of 0 (its time slice of 0 kept every id for ever)', () => {
    const tombstones = new Tombstones(0, 100)
    tombstones.add('a', 'settled', 0)
    expect(tombstones.get('a', 0)).toBeUndefined()
    expect(tombstones.get('a', 30 * 86_400_000)).toBeUndefined()
  })

  it('keeps every id up to its bound, and forgets them at their horizon, not before', () => {
    // slices of 1 s: closed at 0, an id is kept until 24 s exactly
    const tombstones = new Tombstones(24_000, 80)
    for (let i = 0; i < 80; i++) tombstones.add(`c${i}`, 'settled', 0)
    for (let i = 0; i < 80; i++) expect(tombstones.get(`c${i}`, 23_999), `c${i}`).toBe('settled')
    expect(tombstones.get('c0', 24_000)).toBeUndefined()
  })
})
