import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { parseSfList } from './structured-fields.js'

describe('parseSfList', () => {
  it('takes the whitespace RFC 9651 allows: around the list, around commas (SP or HTAB), after ";"', () => {
    const both = [
      { name: 'a', params: { q: 1 } },
      { name: 'b', params: { w: 2 } },
    ]
    expect(parseSfList(' "a";q=1 ,\t"b"; w=2 ')).toEqual(both)
    expect(parseSfList('  "a";q=1,"b";w=2')).toEqual(both)
    expect(parseSfList('"a";q=1\t,"b";w=2')).toEqual(both)
    expect(parseSfList('"a";q=1 ,"b";w=2')).toEqual(both)
    expect(parseSfList('"a";q=1,\t"b";w=2')).toEqual(both)
    expect(parseSfList('"a";q=1, "b";w=2')).toEqual(both)
    expect(parseSfList('"a";  q=1,"b";w=2')).toEqual(both)
  })

  it('takes negative sf-integers, sf-string values, and every key character, up to 15 digits', () => {
    expect(parseSfList('"a";q=-1;qu="concurrent-requests"')).toEqual([
      { name: 'a', params: { q: -1, qu: 'concurrent-requests' } },
    ])
    expect(parseSfList('"a";a_b-c.d*=1;*k=2')).toEqual([{ name: 'a', params: { 'a_b-c.d*': 1, '*k': 2 } }])
    expect(parseSfList('"a";q=999999999999999;r=-999999999999999')).toEqual([
      { name: 'a', params: { q: 999_999_999_999_999, r: -999_999_999_999_999 } },
    ])
  })

  it('refuses what the grammar does not allow, naming what and where', () => {
    for (const [bad, why] of [
      ['"a\tb"', /^bad character in sf-string at 3 /], // HTAB is a field character, but not an sf-string one
      ['"a";q=1;q=2', /^duplicate parameter q at 9 /],
      ['"a"x"b"', /^expected "," at 3 /],
      ['"a";q=1 "b"', /^expected "," at 8 /],
      ['"a";q 1', /^parameter q has no value at 5 /],
      ['"a";q:1', /^parameter q has no value at 5 /],
      ['"a', /^unterminated sf-string at 3 /],
      ['"a";q=-', /^expected sf-integer at 6 /],
      ['"a" ;q=1', /^expected "," at 4 /],
      ['"a";Q=1', /^expected lowercase key at 4 /],
      ['"a",\t', /^trailing comma at 5 /],
    ] as const)
      expect(() => parseSfList(bad), bad).toThrow(why)
  })

  it('reads back any list written by the grammar (property)', () => {
    const text = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)) })
    const key = fc.stringMatching(/^[a-z*][a-z0-9_\-.*]{0,6}$/)
    const value = fc.oneof(fc.integer({ min: -999_999_999_999_999, max: 999_999_999_999_999 }), text)
    const member = fc.record({ name: text, params: fc.dictionary(key, value, { maxKeys: 4 }) })
    const sfString = (s: string) => `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`
    const ows = fc.constantFrom('', ' ', '\t', ' \t ')
    fc.assert(
      fc.property(fc.array(member, { minLength: 1, maxLength: 5 }), ows, ows, (members, before, after) => {
        const field = members
          .map(
            ({ name, params }) =>
              sfString(name) +
              Object.entries(params)
                .map(([k, v]) => `;${k}=${typeof v === 'number' ? v : sfString(v)}`)
                .join(''),
          )
          .join(`${before},${after}`)
        const plain = members.map(({ name, params }) => ({ name, params: { ...params } }))
        expect(parseSfList(field)).toEqual(plain)
      }),
    )
  })
})
