import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { counterKey, escapeId, partitionKey } from './keys.js'

describe('keys', () => {
  it('escapes injectively, into a safe alphabet', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), fc.string({ unit: 'binary' }), (a, b) => {
        expect(escapeId(a)).toMatch(/^[A-Za-z0-9_.~%-]*$/)
        if (a !== b) expect(escapeId(a)).not.toBe(escapeId(b))
      }),
      { numRuns: 2000 },
    )
  })

  it('never lets two different partitions share a key', () => {
    const id = fc
      .string({ unit: 'grapheme', minLength: 1 })
      .chain((s) => fc.constantFrom(s, `${s}:`, `{${s}}`, `${s},x=y`))
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.constantFrom('org', 'user', 'key'), id), { minLength: 1, maxLength: 3 }),
        fc.array(fc.tuple(fc.constantFrom('org', 'user', 'key'), id), { minLength: 1, maxLength: 3 }),
        (a, b) => {
          const ka = counterKey(
            'rule',
            'tokens',
            partitionKey(
              a.map(([d]) => d),
              Object.fromEntries(a),
            ),
          )
          const kb = counterKey(
            'rule',
            'tokens',
            partitionKey(
              b.map(([d]) => d),
              Object.fromEntries(b),
            ),
          )
          const same =
            JSON.stringify(a.map(([d]) => [d, Object.fromEntries(a)[d]])) ===
            JSON.stringify(b.map(([d]) => [d, Object.fromEntries(b)[d]]))
          expect(ka === kb).toBe(same)
        },
      ),
      { numRuns: 1000 },
    )
  })
})

describe('escapeId', () => {
  it('never lets a key separator through, whatever else the id holds', () => {
    for (const id of ['a:b', ':', 'a:b%', 'x:y=z', 'user:42', '{a}', 'a,b'])
      expect(escapeId(id)).not.toMatch(/[:=,{}]/)
    expect(escapeId('a:b')).toBe('a%003ab')
  })
})
