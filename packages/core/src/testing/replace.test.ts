import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { replaceAt } from './replace.js'

/** The keys `path` walks in `value`, by the rule `replaceAt` documents: where it stops is the node it names. */
const walk = (value: unknown, path: readonly number[]): string[] => {
  if (path.length === 0 || typeof value !== 'object' || value === null) return []
  const keys = Object.keys(value)
  if (keys.length === 0) return []
  const key = keys[path[0]! % keys.length]!
  return [key, ...walk((value as Record<string, unknown>)[key], path.slice(1))]
}
const get = (value: unknown, keys: readonly string[]): unknown =>
  keys.reduce((node, key) => (node as Record<string, unknown>)[key], value)

describe('replaceAt', () => {
  it('replaces at the root for an empty path, and where a step meets no object or one with no keys', () => {
    expect(replaceAt({ a: 1 }, [], 'x')).toBe('x')
    for (const leaf of [{}, [], null, undefined, 7, 'text', true])
      expect(replaceAt({ a: leaf }, [0, 3, 1], 'x'), String(leaf)).toEqual({ a: 'x' })
    expect(replaceAt(null, [0], 'x')).toBe('x')
  })

  it('picks a key for any number: a negative step from the end, a fraction cut, NaN the first', () => {
    // a negative, fractional or NaN step added a key named "undefined"
    const value = { a: 1, b: 2, c: 3 }
    expect(replaceAt(value, [-1], 'x')).toEqual({ a: 1, b: 2, c: 'x' })
    expect(replaceAt(value, [-3], 'x')).toEqual({ a: 'x', b: 2, c: 3 })
    expect(replaceAt(value, [-4], 'x')).toEqual({ a: 1, b: 2, c: 'x' })
    expect(replaceAt(value, [1.9], 'x')).toEqual({ a: 1, b: 'x', c: 3 })
    expect(replaceAt(value, [-0.5], 'x')).toEqual({ a: 'x', b: 2, c: 3 })
    for (const step of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY])
      expect(replaceAt(value, [step], 'x'), String(step)).toEqual({ a: 'x', b: 2, c: 3 })
    fc.assert(
      fc.property(fc.array(fc.double(), { maxLength: 4 }), (path) => {
        const nested = { a: { b: [1, 2], c: 3 }, d: [4, { e: 5 }] }
        const replaced = JSON.stringify(replaceAt(nested, path, 'x'))
        return !replaced.includes('undefined') && replaced.includes('"x"')
      }),
    )
  })

  it('picks a key by index modulo the number of keys, and keeps arrays arrays', () => {
    expect(replaceAt({ a: 1, b: 2 }, [3], 'x')).toEqual({ a: 1, b: 'x' })
    expect(replaceAt({ a: 1, b: 2 }, [4], 'x')).toEqual({ a: 'x', b: 2 })
    const list = replaceAt([1, [2, 3]], [5, 2], 'x')
    expect(list).toStrictEqual([1, ['x', 3]])
    expect(Array.isArray(list) && Array.isArray(list[1])).toBe(true)
  })

  it('puts the replacement at the node the path names, keeps the rest, and never changes the value (property)', () => {
    fc.assert(
      fc.property(
        fc.jsonValue(),
        fc.array(fc.nat(20), { maxLength: 6 }),
        fc.anything(),
        (value, path, replacement) => {
          const before = structuredClone(value)
          const out = replaceAt(value, path, replacement)
          expect(value).toStrictEqual(before)
          const keys = walk(value, path)
          expect(get(out, keys)).toBe(replacement)
          // every node off the path is the one of the value
          for (let depth = 0; depth < keys.length; depth++)
            for (const key of Object.keys(get(value, keys.slice(0, depth)) as object))
              if (key !== keys[depth])
                expect(get(out, [...keys.slice(0, depth), key])).toBe(
                  get(value, [...keys.slice(0, depth), key]),
                )
          if (
            typeof value === 'object' &&
            value !== null &&
            path.length > 0 &&
            Object.keys(value).length > 0
          ) {
            expect(out).not.toBe(value)
            expect(Object.keys(out as object)).toEqual(Object.keys(value))
            expect(Array.isArray(out)).toBe(Array.isArray(value))
          }
        },
      ),
    )
  })
})
