import { describe, expect, it } from 'vitest'
import { checkRateLimitHeaders } from './headers.js'

/** What a denied request's response carries: draft-11 fields, the OpenAI trios, the retry headers. */
const good: Record<string, string> = {
  'ratelimit-policy':
    '"rpm.requests";q=100;w=60, "tpm.tokens";q=10000;w=60, "conc.concurrency";q=4;qu="concurrent-requests"',
  ratelimit: '"rpm.requests";r=0;t=30, "tpm.tokens";r=1500;t=0, "conc.concurrency";r=3',
  'x-ratelimit-limit-requests': '100',
  'x-ratelimit-remaining-requests': '0',
  'x-ratelimit-reset-requests': '30s',
  'x-ratelimit-limit-tokens': '999999999999999',
  'x-ratelimit-remaining-tokens': '1500',
  'x-ratelimit-reset-tokens': '1h2m1.5s',
  'retry-after': '30',
  'retry-after-ms': '29001',
}

describe('checkRateLimitHeaders', () => {
  it('passes well-formed headers, as a Headers or a Node header object, and answers the parsed lists', () => {
    const parsed = {
      policy: [
        { name: 'rpm.requests', params: { q: 100, w: 60 } },
        { name: 'tpm.tokens', params: { q: 10000, w: 60 } },
        { name: 'conc.concurrency', params: { q: 4, qu: 'concurrent-requests' } },
      ],
      current: [
        { name: 'rpm.requests', params: { r: 0, t: 30 } },
        { name: 'tpm.tokens', params: { r: 1500, t: 0 } },
        { name: 'conc.concurrency', params: { r: 3 } },
      ],
    }
    expect(checkRateLimitHeaders(good)).toEqual(parsed)
    expect(checkRateLimitHeaders(new Headers(good))).toEqual(parsed)
    const node = {
      ...good,
      ratelimit: ['"rpm.requests";r=0;t=30', '"tpm.tokens";r=1500;t=0, "conc.concurrency";r=3'],
      'retry-after': 30,
      'x-ratelimit-reset-tokens': '250ms',
      'x-should-retry': undefined,
    }
    expect(checkRateLimitHeaders(node)).toEqual(parsed)
    const { 'retry-after': _, 'retry-after-ms': __, ...allowed } = good
    expect(checkRateLimitHeaders(allowed)).toEqual(parsed)
  })

  it('passes a response with neither IETF field (every limit in shadow, or ietf: false), not one with one alone', () => {
    // it threw a TypeError of its own instead of checking the rest
    const { ratelimit: _, 'ratelimit-policy': __, ...openai } = good
    expect(checkRateLimitHeaders(openai)).toEqual({ policy: [], current: [] })
    expect(checkRateLimitHeaders({})).toEqual({ policy: [], current: [] })
    expect(() => checkRateLimitHeaders({ ratelimit: good.ratelimit! })).toThrow(/sent together/)
    expect(() => checkRateLimitHeaders({ 'ratelimit-policy': good['ratelimit-policy']! })).toThrow(
      /sent together/,
    )
    // the rest is still checked without them
    expect(() => checkRateLimitHeaders({ ...openai, 'retry-after': '1.5' })).toThrow()
  })

  it('fails on a quota unit the draft does not register', () => {
    const policy = (qu: string) => ({
      ...good,
      'ratelimit-policy': `"rpm.requests";q=100;w=60, "tpm.tokens";q=10000;w=60, "conc.concurrency";q=4;qu=${qu}`,
    })
    for (const qu of ['"requests"', '"content-bytes"', '"concurrent-requests"'])
      expect(() => checkRateLimitHeaders(policy(qu)), qu).not.toThrow()
    for (const qu of ['5', '"tokens"', '"Requests"', '""'])
      expect(() => checkRateLimitHeaders(policy(qu)), qu).toThrow()
  })

  it('fails on any one header that breaks the draft-11 grammar, the OpenAI values or the retry values', () => {
    const bad: [string, string][] = [
      ['ratelimit', '"tpm.tokens";r=1500;t=0, "rpm.requests";r=0;t=30, "conc.concurrency";r=3'],
      ['ratelimit', '"rpm.requests";r=0;t=30, "tpm.tokens";r=1500;t=0'],
      ['ratelimit', '"rpm.requests";r=0;t=30, "tpm.tokens";r=-1;t=0, "conc.concurrency";r=3'],
      ['ratelimit', '"rpm.requests";r=0;t=-1, "tpm.tokens";r=1500;t=0, "conc.concurrency";r=3'],
      ['ratelimit', '"rpm.requests";t=30, "tpm.tokens";r=1500;t=0, "conc.concurrency";r=3'],
      ['ratelimit', '"rpm.requests";r=0;t=30;q=100, "tpm.tokens";r=1500;t=0, "conc.concurrency";r=3'],
      ['ratelimit', '"rpm.requests";r=0;t="30", "tpm.tokens";r=1500;t=0, "conc.concurrency";r=3'],
      ['ratelimit', '"rpm.requests";r=0;t=30, "tpm.tokens";r=1500;t=0, "conc.concurrency";r=3,'],
      ['ratelimit-policy', '"rpm.requests";w=60, "tpm.tokens";q=10000;w=60, "conc.concurrency";q=4'],
      ['ratelimit-policy', '"rpm.requests";q=-1;w=60, "tpm.tokens";q=10000;w=60, "conc.concurrency";q=4'],
      ['ratelimit-policy', '"rpm.requests";q=100;w=0, "tpm.tokens";q=10000;w=60, "conc.concurrency";q=4'],
      [
        'ratelimit-policy',
        '"rpm.requests";q=100;w=60;r=0, "tpm.tokens";q=10000;w=60, "conc.concurrency";q=4',
      ],
      ['x-ratelimit-limit-requests', '0100'],
      ['x-ratelimit-limit-tokens', '1234567890123456'],
      ['x-ratelimit-remaining-tokens', '-1'],
      ['x-ratelimit-remaining-requests', '1.5'],
      ['x-ratelimit-reset-requests', '30'],
      ['x-ratelimit-reset-tokens', '1.5'],
      ['x-ratelimit-reset-tokens', '1m'],
      ['retry-after', '-1'],
      ['retry-after', '1.5'],
      ['retry-after', '030'],
      ['retry-after-ms', '29001.5'],
      ['retry-after-ms', '-1'],
    ]
    for (const [name, value] of bad) {
      expect(() => checkRateLimitHeaders({ ...good, [name]: value }), `${name}: ${value}`).toThrow()
      expect(
        () => checkRateLimitHeaders(new Headers({ ...good, [name]: value })),
        `${name}: ${value}`,
      ).toThrow()
    }
  })
})
