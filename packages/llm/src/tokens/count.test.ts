import fc from 'fast-check'
import * as cl100k from 'gpt-tokenizer/encoding/cl100k_base'
import * as o200k from 'gpt-tokenizer/encoding/o200k_base'
import { describe, expect, it, vi } from 'vitest'
import { countTokens, createCounter, utf8Length } from './count.js'
import { encodingForModel, exactCounter } from './encoding.js'

const deterministic = { timeBudgetMs: Number.POSITIVE_INFINITY }

/** Text from an alphabet rich in the characters the pre-tokenizers split on. */
const alphabet = fc.constantFrom(
  ...[
    ' ',
    ' ',
    ' ',
    '\n',
    '\n',
    '\r',
    '\t',
    '/',
    "'",
    's',
    'a',
    'Z',
    'é',
    '0',
    '7',
    '.',
    ',',
    '}',
    '中',
    '文',
  ],
  ...['😀', '\u00a0', '\u3000', '<|endoftext|>', "'re", 'The', ' the', 'ing', '  ', '\n\n', '\ud800'],
)
const text = fc.array(alphabet, { maxLength: 400 }).map((parts) => parts.join(''))

describe('exact counts', () => {
  it('matches known o200k counts', () => {
    expect(countTokens('Hello, world!')).toEqual({ tokens: 4, exact: true })
    expect(countTokens('')).toEqual({ tokens: 0, exact: true })
    expect(countTokens('tiktoken is great!').tokens).toBe(6)
    expect(countTokens('<|endoftext|>').tokens).toBeGreaterThan(1) // special-token text counts as text
  })

  it('matches known cl100k counts', () => {
    expect(countTokens('tiktoken is great!', 'cl100k_base').tokens).toBe(6)
    expect(countTokens('antidisestablishmentarianism', 'cl100k_base').tokens).toBe(6)
  })

  it.each([
    ['o200k_base', o200k],
    ['cl100k_base', cl100k as typeof o200k],
  ] as const)('counts piece by piece exactly as gpt-tokenizer does (%s)', (name, encoder) => {
    const exact = exactCounter(name)
    const asText = { disallowedSpecial: new Set<string>() }
    const check = (value: string) => {
      expect(exact(value)).toBe(encoder.countTokens(value, asText))
    }
    fc.assert(fc.property(text, check), { numRuns: 500 })
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 200 }), check), { numRuns: 500 })
    // twice: the second count comes from the memo of pieces
    for (const value of ['Hello, world!', "I'M DONE, they're 12345 words", '<|endoftext|> 中文 😀'])
      for (let i = 0; i < 2; i++) check(value)
  })

  it('serves repeated texts from a cache without changing any result', () => {
    const prompt = `${'You are terse. '.repeat(20)}${'x'.repeat(30)}` // longer than a piece: cached
    const first = createCounter('o200k_base', deterministic).count(prompt)
    expect(createCounter('o200k_base', deterministic).count(prompt)).toBe(first)
    // a counter that would bound the 30-character run still bounds it, cached or not
    const tight = createCounter('o200k_base', { ...deterministic, maxPieceChars: 20 })
    expect(tight.count(prompt)).toBeGreaterThan(first)
    expect(tight.bounded).toBe(true)
    // a hit spends the budget a count would: what follows is bounded as it would be
    const small = createCounter('o200k_base', { ...deterministic, maxExactChars: prompt.length })
    expect(small.count(prompt)).toBe(first)
    expect(small.count('more')).toBe(utf8Length('more'))
  })

  it('picks the encoding per model', () => {
    expect(encodingForModel('gpt-4o')).toBe('o200k_base')
    expect(encodingForModel('gpt-4.1-mini')).toBe('o200k_base')
    expect(encodingForModel('o3-mini')).toBe('o200k_base')
    expect(encodingForModel('gpt-5')).toBe('o200k_base')
    expect(encodingForModel('gpt-4')).toBe('cl100k_base')
    expect(encodingForModel('gpt-4-turbo')).toBe('cl100k_base')
    expect(encodingForModel('gpt-3.5-turbo')).toBe('cl100k_base')
    expect(encodingForModel('text-embedding-3-small')).toBe('cl100k_base')
    expect(encodingForModel('ft:gpt-3.5-turbo:acme::abc')).toBe('cl100k_base')
    expect(encodingForModel('claude-sonnet-4-5')).toBe('o200k_base')
  })
})

describe('bounded counting', () => {
  it('spends its time budget on counting, not on the time between texts (stream deltas)', () => {
    let now = 0
    const clock = vi.spyOn(performance, 'now').mockImplementation(() => now)
    try {
      const counter = createCounter('o200k_base', { timeBudgetMs: 25 })
      let tokens = 0
      for (let i = 0; i < 50; i++) {
        tokens += counter.count(' word')
        now += 100 // the next delta arrives 100 ms later
      }
      expect(tokens).toBe(50)
      expect(counter.bounded).toBe(false)
    } finally {
      clock.mockRestore()
    }
  })

  it.each(['o200k_base', 'cl100k_base'] as const)('segments add up to the exact count (%s)', (encoding) => {
    const exact = exactCounter(encoding)
    fc.assert(
      fc.property(text, fc.integer({ min: 1, max: 40 }), (value, maxPieceChars) => {
        // a piece limit above the text length: every split is exact, so the sum must be exact
        const counter = createCounter(encoding, { ...deterministic, maxPieceChars: 10_000 })
        expect(counter.count(value)).toBe(exact(value))
        expect(counter.bounded).toBe(false)
        // with a small piece limit some pieces are bounded: never below the exact count
        const tight = createCounter(encoding, { ...deterministic, maxPieceChars })
        expect(tight.count(value)).toBeGreaterThanOrEqual(exact(value))
      }),
      { numRuns: 300 },
    )
  })

  it('is never below the exact count, whatever the budget', () => {
    const exact = exactCounter('o200k_base')
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 300 }), fc.nat(400), (value, maxExactChars) => {
        const { tokens } = countTokens(value, 'o200k_base', { ...deterministic, maxExactChars })
        expect(tokens).toBeGreaterThanOrEqual(exact(value))
      }),
      { numRuns: 300 },
    )
  })

  it('bounds a long string by its UTF-8 length instead of counting it', () => {
    let random = ''
    for (let i = 0; i < 1_000_000; i++) random += String.fromCharCode(33 + ((i * 7919) % 94))
    const result = countTokens(random, 'o200k_base', deterministic)
    expect(result.exact).toBe(false)
    expect(result.tokens).toBeLessThanOrEqual(utf8Length(random))
    expect(result.tokens).toBeGreaterThan(0)
  })

  it('bounds a run without split points (CJK, base64) past maxPieceChars', () => {
    const run = '中'.repeat(500)
    const result = countTokens(`Hello ${run} world`, 'o200k_base', deterministic)
    expect(result.exact).toBe(false)
    expect(result.tokens).toBe(countTokens('Hello', 'o200k_base').tokens + utf8Length(` ${run}`) + 1)
  })

  it('shares one budget across the texts of a request', () => {
    const counter = createCounter('o200k_base', { ...deterministic, maxExactChars: 20 })
    expect(counter.count('hello world')).toBe(2)
    expect(counter.bounded).toBe(false)
    // 'hello' still fits the budget; the rest is bounded from the split point before ' world'
    expect(counter.count('hello world again')).toBe(1 + utf8Length(' world again'))
    expect(counter.count('more')).toBe(utf8Length('more'))
    expect(counter.bounded).toBe(true)
  })

  it('counts UTF-8 bytes', () => {
    expect(utf8Length('aé中😀')).toBe(1 + 2 + 3 + 4)
    expect(utf8Length('\ud800x')).toBe(3 + 1)
    expect(utf8Length('\ud800'.repeat(300))).toBe(900) // long texts take the Buffer path
    expect(utf8Length('😀'.repeat(300))).toBe(1200)
  })
})

describe('bad input', () => {
  it('names what is wrong: an unknown encoding, or text that is not a string', () => {
    for (const name of ['p50k_base', '', '__proto__', 'constructor', 'toString'])
      expect(() => createCounter(name as never), name).toThrow(/Unknown encoding .*o200k_base or cl100k_base/)
    expect(() => countTokens('hi', 'gpt-4o' as never)).toThrow(/Unknown encoding "gpt-4o"/)
    for (const text of [undefined, null, 5, {}, ['a'], Symbol('s')])
      expect(() => countTokens(text as never), String(typeof text)).toThrow(/text must be a string, got/)
    expect(countTokens('')).toEqual({ tokens: 0, exact: true })
  })

  it('names a bad option instead of throwing from inside (or counting with NaN)', () => {
    const none = Object.create(null)
    expect(() => createCounter(none)).toThrow(/Unknown encoding \(object\)/)
    for (const [name, value] of [
      ['maxExactChars', none],
      ['maxPieceChars', Number.NaN],
      ['timeBudgetMs', -1],
      ['maxExactChars', '100'],
    ] as const)
      expect(() => countTokens('hi', 'o200k_base', { [name]: value }), name).toThrow(
        new RegExp(`^${name} must be a number, 0 or more`),
      )
    expect(countTokens('hello', 'o200k_base', null as never).tokens).toBe(1)
    expect(encodingForModel(5 as never)).toBe('o200k_base')
  })
})
