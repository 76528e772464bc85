import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import type { LimitState } from './decision.js'
import { formatResetDuration, rateLimitHeaders, retryHeaders } from './headers.js'
import { type Member, parseSfList } from './testing/headers.js'

/** Parses both IETF fields and checks the draft-11 shape of every member. */
function checkIetf(h: Record<string, string>): { policy: Member[]; current: Member[] } {
  const policy = parseSfList(h['ratelimit-policy']!)
  const current = parseSfList(h.ratelimit!)
  expect(current.map((m) => m.name)).toEqual(policy.map((m) => m.name))
  for (const { params } of policy) {
    expect(Object.keys(params).every((k) => ['q', 'w', 'qu'].includes(k))).toBe(true)
    expect(Number.isSafeInteger(params.q) && (params.q as number) >= 0).toBe(true)
    if ('w' in params) expect(Number.isSafeInteger(params.w) && (params.w as number) > 0).toBe(true)
    if ('qu' in params) expect(params.qu).toBe('concurrent-requests')
  }
  for (const { params } of current) {
    expect(Object.keys(params).every((k) => ['r', 't'].includes(k))).toBe(true)
    expect(Number.isSafeInteger(params.r) && (params.r as number) >= 0).toBe(true)
    if ('t' in params) expect(Number.isSafeInteger(params.t) && (params.t as number) >= 0).toBe(true)
  }
  return { policy, current }
}

const NOW = 1_700_000_000_000

function limit(over: Partial<LimitState> = {}): LimitState {
  return {
    rule: 'rpm',
    metric: 'requests',
    partition: { user: 'user-8932' },
    kind: 'rolling',
    windowMs: 60_000,
    limit: 100,
    used: 40,
    held: 0,
    remaining: 60,
    resetAt: NOW + 30_000,
    shadow: false,
    ...over,
  }
}

describe('parseSfList (test helper)', () => {
  it('accepts the draft-11 examples and rejects malformed lists', () => {
    expect(parseSfList('"permin";q=50;w=60,"perhr";q=1000;w=3600')).toEqual([
      { name: 'permin', params: { q: 50, w: 60 } },
      { name: 'perhr', params: { q: 1000, w: 3600 } },
    ])
    expect(parseSfList('"a\\"b\\\\c";r=0;t=5')).toEqual([{ name: 'a"b\\c', params: { r: 0, t: 5 } }])
    for (const bad of [
      '',
      'default;q=1',
      '"a";Q=1',
      '"a";q=1.5',
      '"a";q=1234567890123456',
      '"a",',
      '"a" "b"',
      '"a\\x"',
      '"a\nb"',
      '"é"',
      '"a";q',
    ]) {
      expect(() => parseSfList(bad), bad).toThrow()
    }
  })
})

describe('rateLimitHeaders', () => {
  it('returns {} with no limits or only shadow limits', () => {
    expect(rateLimitHeaders([], NOW)).toEqual({})
    expect(rateLimitHeaders([limit({ shadow: true })], NOW)).toEqual({})
  })

  it('emits exact IETF and OpenAI headers for one request limit', () => {
    expect(rateLimitHeaders([limit()], NOW)).toEqual({
      'ratelimit-policy': '"rpm.requests";q=100;w=60',
      ratelimit: '"rpm.requests";r=60;t=30',
      'x-ratelimit-limit-requests': '100',
      'x-ratelimit-remaining-requests': '60',
      'x-ratelimit-reset-requests': '30s',
    })
  })

  it('orders most constrained first, skips shadow limits, and sets qu only for concurrency', () => {
    const h = rateLimitHeaders(
      [
        limit(),
        limit({ rule: 'tpm', metric: 'tokens', limit: 10_000, remaining: 1_500, resetAt: NOW + 1_500 }),
        limit({
          rule: 'conc',
          metric: 'concurrency',
          kind: 'concurrency',
          windowMs: null,
          limit: 4,
          remaining: 3,
          resetAt: null,
        }),
        limit({ rule: 'shadowed', remaining: 0, shadow: true }),
        limit({
          rule: 'daily',
          metric: 'cost',
          kind: 'calendar',
          windowMs: 86_400_000,
          limit: 5_000_000,
          remaining: 0,
          resetAt: NOW + 3_600_000,
        }),
      ],
      NOW,
    )
    expect(h['ratelimit-policy']).toBe(
      '"daily.cost";q=5000000;w=86400, "tpm.tokens";q=10000;w=60, "rpm.requests";q=100;w=60, ' +
        '"conc.concurrency";q=4;qu="concurrent-requests"',
    )
    expect(h.ratelimit).toBe(
      '"daily.cost";r=0;t=3600, "tpm.tokens";r=1500;t=2, "rpm.requests";r=60;t=30, "conc.concurrency";r=3',
    )
    expect(h['x-ratelimit-reset-tokens']).toBe('1.5s')
    expect(h['x-ratelimit-remaining-tokens']).toBe('1500')
    expect(JSON.stringify(h)).not.toContain('shadowed')
    checkIetf(h)
  })

  it('picks the tightest limit per OpenAI trio and falls back to inputTokens', () => {
    const h = rateLimitHeaders(
      [
        limit({ rule: 'rpm', remaining: 60 }),
        limit({ rule: 'rpd', windowMs: 86_400_000, limit: 1000, remaining: 7, resetAt: NOW + 61_000 }),
        limit({ rule: 'itpm', metric: 'inputTokens', limit: 50_000, remaining: 49_000, resetAt: null }),
      ],
      NOW,
    )
    expect(h).toMatchObject({
      'x-ratelimit-limit-requests': '1000',
      'x-ratelimit-remaining-requests': '7',
      'x-ratelimit-reset-requests': '1m1s',
      'x-ratelimit-limit-tokens': '50000',
      'x-ratelimit-remaining-tokens': '49000',
    })
    expect(h).not.toHaveProperty('x-ratelimit-reset-tokens')
    const withTokens = rateLimitHeaders(
      [
        limit({ metric: 'inputTokens', remaining: 1 }),
        limit({ rule: 'tpm', metric: 'tokens', remaining: 99 }),
      ],
      NOW,
    )
    expect(withTokens['x-ratelimit-remaining-tokens']).toBe('99')
  })

  it('of limits tied on what remains, reports the one that resets last', () => {
    // a minute and an hour both used up: the minute's reset would only meet the hour's refusal
    const used = (rule: string, resetAt: number | null) => limit({ rule, limit: 10, remaining: 0, resetAt })
    const reset = (limits: LimitState[]) => rateLimitHeaders(limits, NOW)['x-ratelimit-reset-requests']
    expect(reset([used('rpm', NOW + 30_000), used('rph', NOW + 3_540_000)])).toBe('59m0s')
    expect(reset([used('rph', NOW + 3_540_000), used('rpm', NOW + 30_000)])).toBe('59m0s')
    // one that never resets (a lifetime allowance) binds for good: no reset to wait for
    expect(reset([used('rpm', NOW + 30_000), used('life', null)])).toBeUndefined()
    // in either order: listed first, the lifetime limit is still the one reported (no reset)
    expect(reset([used('life', null), used('rpm', NOW + 30_000)])).toBeUndefined()
    expect(
      reset([used('life', null), used('rpm', NOW + 30_000), used('rph', NOW + 3_540_000)]),
    ).toBeUndefined()
    // fewer remaining still comes first, whatever the resets
    expect(
      reset([limit({ rule: 'a', remaining: 1, resetAt: NOW + 5_000 }), used('rph', NOW + 3_540_000)]),
    ).toBe('59m0s')
  })

  it('omits trios with no matching limit and honours the options', () => {
    const cost = [limit({ metric: 'cost' })]
    expect(Object.keys(rateLimitHeaders(cost, NOW)).sort()).toEqual(['ratelimit', 'ratelimit-policy'])
    expect(rateLimitHeaders(cost, NOW, { ietf: false })).toEqual({})
    expect(Object.keys(rateLimitHeaders([limit()], NOW, { ietf: false })).sort()).toEqual([
      'x-ratelimit-limit-requests',
      'x-ratelimit-remaining-requests',
      'x-ratelimit-reset-requests',
    ])
    expect(Object.keys(rateLimitHeaders([limit()], NOW, { openai: false })).sort()).toEqual([
      'ratelimit',
      'ratelimit-policy',
    ])
  })

  it('clamps and rounds numbers into valid sf-integers', () => {
    const h = rateLimitHeaders(
      [
        limit({ limit: 10.7, remaining: -3, resetAt: NOW - 5_000, windowMs: 1_500 }),
        limit({
          rule: 'tiny',
          limit: Number.POSITIVE_INFINITY,
          remaining: Number.NaN,
          windowMs: 200,
          resetAt: NOW + 1,
        }),
        limit({ rule: 'never', limit: 0, remaining: 0, windowMs: 0, resetAt: Number.POSITIVE_INFINITY }),
      ],
      NOW,
    )
    const { policy, current } = checkIetf(h)
    expect(policy.find((m) => m.name === 'rpm.requests')!.params).toEqual({ q: 10, w: 2 })
    expect(current.find((m) => m.name === 'rpm.requests')!.params).toEqual({ r: 0, t: 0 })
    expect(policy.find((m) => m.name === 'tiny.requests')!.params).toEqual({ q: 999_999_999_999_999, w: 1 })
    expect(current.find((m) => m.name === 'tiny.requests')!.params).toEqual({ r: 0, t: 1 })
    expect(policy.find((m) => m.name === 'never.requests')!.params).toEqual({ q: 0 })
    expect(current.find((m) => m.name === 'never.requests')!.params).toEqual({ r: 0 })
    expect(h['x-ratelimit-remaining-requests']).toBe('0')
  })

  it('makes hostile rule ids safe sf-strings', () => {
    const h = rateLimitHeaders(
      [limit({ rule: 'a"b\\c, "d";q=9\r\nx-evil: 1\u0000é😀' }), limit({ rule: '', metric: '' })],
      NOW,
    )
    const { policy } = checkIetf(h)
    expect(policy.map((m) => m.name)).toEqual(['a"b\\c, "d";q=9__x-evil: 1___.requests', '.'])
    expect(h['ratelimit-policy']).toBe(
      '"a\\"b\\\\c, \\"d\\";q=9__x-evil: 1___.requests";q=100;w=60, ".";q=100;w=60',
    )
  })

  const hostileText = fc.oneof(
    fc.string({ unit: 'grapheme', maxLength: 12 }),
    fc.string({ unit: 'binary', maxLength: 12 }),
    fc.string({
      unit: fc.constantFrom('"', '\\', ',', ';', '=', ' ', '\n', '\r', '\t', 'a', 'é', '😀', '\u0000'),
      maxLength: 12,
    }),
  )
  const num = fc.oneof(fc.double(), fc.integer({ min: -1e6, max: 1e12 }))
  const MARK = '#PK#'
  const arbLimit = (partitionId: fc.Arbitrary<string>) =>
    fc.record({
      rule: hostileText.filter((s) => !s.includes(MARK)),
      metric: fc.oneof(
        fc.constantFrom('requests', 'tokens', 'inputTokens', 'concurrency', 'cost'),
        hostileText,
      ),
      partition: fc.dictionary(hostileText, partitionId, { maxKeys: 3 }),
      kind: fc.constantFrom('calendar', 'rolling', 'bucket', 'concurrency'),
      windowMs: fc.option(num),
      limit: num,
      used: num,
      held: num,
      remaining: num,
      resetAt: fc.option(
        fc.oneof(
          num.map((n) => NOW + n),
          fc.constant(Number.POSITIVE_INFINITY),
        ),
      ),
      shadow: fc.boolean(),
    }) as fc.Arbitrary<LimitState>

  it('always produces parseable IETF fields and valid OpenAI values (property)', () => {
    fc.assert(
      fc.property(fc.array(arbLimit(hostileText), { maxLength: 6 }), (limits) => {
        const h = rateLimitHeaders(limits, NOW)
        if (limits.every((l) => l.shadow)) {
          expect(h).toEqual({})
          return
        }
        for (const [name, value] of Object.entries(h)) {
          expect(name).toBe(name.toLowerCase())
          expect(value).toMatch(/^[\x20-\x7e]*$/)
        }
        checkIetf(h)
        for (const k of ['limit', 'remaining'] as const) {
          for (const s of ['requests', 'tokens']) {
            const v = h[`x-ratelimit-${k}-${s}`]
            if (v !== undefined) expect(v).toMatch(/^(0|[1-9][0-9]{0,14})$/)
          }
        }
      }),
      { numRuns: 300 },
    )
  })

  it('never puts partition ids in any header value (property)', () => {
    const partitionId = hostileText.map((s) => `${MARK}${s}`)
    fc.assert(
      fc.property(fc.array(arbLimit(partitionId), { maxLength: 6 }), (limits) => {
        const h = rateLimitHeaders(limits, NOW)
        for (const value of Object.values(h)) expect(value).not.toContain(MARK)
        // Stronger: the output does not depend on partitions at all.
        expect(
          rateLimitHeaders(
            limits.map((l) => ({ ...l, partition: {} })),
            NOW,
          ),
        ).toEqual(h)
      }),
      { numRuns: 300 },
    )
  })
})

describe('formatResetDuration', () => {
  it.each([
    [0, '0s'],
    [-5, '0s'],
    [Number.NaN, '0s'],
    [Number.POSITIVE_INFINITY, '0s'],
    [1, '1ms'],
    [20, '20ms'],
    [999.2, '1s'],
    [1000, '1s'],
    [1500, '1.5s'],
    [1250, '1.25s'],
    [1001, '1.001s'],
    [59_999, '59.999s'],
    [60_000, '1m0s'],
    [61_000, '1m1s'],
    [360_000, '6m0s'],
    [3_600_000, '1h0m0s'],
    [3_661_500, '1h1m1.5s'],
    [90_000_000, '25h0m0s'],
  ])('%s ms -> %s', (ms, text) => {
    expect(formatResetDuration(ms)).toBe(text)
  })
})

describe('retryHeaders', () => {
  it('rounds retry-after up to whole seconds and keeps ms', () => {
    expect(retryHeaders(1500, true)).toEqual({
      'retry-after': '2',
      'retry-after-ms': '1500',
      'x-should-retry': 'true',
    })
    expect(retryHeaders(1000, true)).toEqual({
      'retry-after': '1',
      'retry-after-ms': '1000',
      'x-should-retry': 'true',
    })
    expect(retryHeaders(0.4, true)).toEqual({
      'retry-after': '1',
      'retry-after-ms': '1',
      'x-should-retry': 'true',
    })
    expect(retryHeaders(0, true)).toEqual({
      'retry-after': '0',
      'retry-after-ms': '0',
      'x-should-retry': 'true',
    })
    expect(retryHeaders(-200, true)).toEqual({
      'retry-after': '0',
      'retry-after-ms': '0',
      'x-should-retry': 'true',
    })
  })

  it('omits retry-after when waiting does not help', () => {
    expect(retryHeaders(null, false)).toEqual({ 'x-should-retry': 'false' })
    expect(retryHeaders(null, true)).toEqual({ 'x-should-retry': 'true' })
    expect(retryHeaders(Number.POSITIVE_INFINITY, false)).toEqual({ 'x-should-retry': 'false' })
    expect(retryHeaders(30_000, false)).toEqual({
      'retry-after': '30',
      'retry-after-ms': '30000',
      'x-should-retry': 'false',
    })
  })
})
