import type { PolicyInput } from '@tollgate/core'
import { describe, expect, it } from 'vitest'
import { simulate } from './run.js'
import { formatSummary } from './summary.js'
import { TrafficError, type TrafficLine } from './traffic.js'

const policy: PolicyInput = {
  models: {
    mini: { tier: 'low', price: { input: 1, output: 2 } },
    big: { tier: 'premium', price: { input: 10, output: 20 } },
  },
  access: [{ match: { tier: 'premium' }, require: { flags: ['vip'] }, otherwise: { downgrade: 'mini' } }],
  rules: [
    {
      id: 'user-daily',
      per: 'user',
      limits: { tokens: 1000 },
      window: 'day',
      code: 'USER_QUOTA',
      alerts: [0.5],
    },
    { id: 'key-minute', per: 'key', limits: { requests: 3 }, window: 'minute' },
    { id: 'org-shadow', per: 'org', limits: { requests: 5 }, window: 'day', mode: 'shadow' },
  ],
}

const T0 = Date.parse('2026-01-05T10:00:00Z')
const call = (
  s: number,
  user: string,
  key: string | null,
  extra: Partial<TrafficLine> = {},
): TrafficLine => ({
  t: new Date(T0 + s * 1000).toISOString(),
  subject: key === null ? { org: 'a', user } : { org: 'a', user, key },
  model: 'mini',
  inputTokens: 100,
  maxOutputTokens: 100,
  outputTokens: 50,
  ...extra,
})

/** Ten calls; the comments give each one's expected fate. */
const traffic: TrafficLine[] = [
  call(0, 'u1', 'k1'), // allowed: u1 150 tokens settled, k1 1 request, org 1
  call(10, 'u1', 'k1'), // allowed: u1 300, k1 2, org 2
  call(20, 'u1', 'k1', { model: 'big' }), // downgraded big → mini; its hold takes u1 to 500 (the 50% alert)
  call(30, 'u1', 'k1'), // refused (quota_exceeded: a calendar minute): k1's 4th request this minute
  call(60, 'u1', 'k1'), // allowed: a new minute; u1 600, org 4
  call(70, 'u2', 'k2'), // allowed: u2 150, org 5
  call(80, 'u2', 'k2'), // allowed, but the shadow org rule would refuse its 6th request
  call(90, 'u1', 'k1', { inputTokens: 300, maxOutputTokens: 200 }), // refused: u1 600 + 500 > 1000 (and shadow)
  call(100, 'u3', null), // failed: key-minute counts per key, and there is none
  call(120, 'u1', 'k1', { model: 'big', attributes: { flags: ['vip'] } }), // allowed on big (shadow again)
]

describe('simulate', () => {
  it('refuses options and traffic that cannot work, naming them (a bucketMs of -1 ran out of memory)', async () => {
    const bad: [unknown, object, RegExp][] = [
      [traffic, { series: true, bucketMs: -1 }, /bucketMs must be a whole number of ms/],
      [traffic, { series: true, bucketMs: 1e-300 }, /bucketMs must be a whole number of ms/],
      [traffic, { top: 0 }, /top must be a whole number/],
      [traffic, { top: Object.create(null) }, /top must be a whole number/],
      [traffic, { series: 'yes' }, /series must be true or false/],
      [traffic, { skipInvalid: 1 }, /skipInvalid must be true or false/],
      [undefined, {}, /traffic must be lines/],
      [{ lines: traffic }, {}, /traffic must be lines/],
    ]
    for (const [lines, options, message] of bad)
      await expect(simulate(policy, lines as never, options as never)).rejects.toThrow(message)
    expect((await simulate(policy, traffic, null as never)).summary.requests).toBe(traffic.length)
  })

  it('counts a small day of traffic exactly', async () => {
    const { summary, charts } = await simulate(policy, traffic)
    expect(charts).toEqual([])
    expect(summary).toMatchObject({
      currency: 'USD',
      requests: 10,
      allowed: 7,
      refused: 2,
      downgraded: 1,
      shadowRefused: 3,
      failed: 1,
      outOfOrder: 0,
      from: T0,
      to: T0 + 120_000,
    })
    expect(summary.allowed + summary.refused + summary.failed).toBe(summary.requests)
    expect(summary.refusals).toEqual([
      { rule: 'org-shadow', code: 'quota_exceeded', status: 429, refused: 0, shadowRefused: 3 },
      { rule: 'key-minute', code: 'quota_exceeded', status: 429, refused: 1, shadowRefused: 0 },
      { rule: 'user-daily', code: 'USER_QUOTA', status: 429, refused: 1, shadowRefused: 0 },
    ])
    expect(summary.downgrades).toEqual([
      { from: 'big', to: 'mini', reason: 'access', rule: 'access.0', count: 1 },
    ])
    expect(
      summary.capsHit.map((h) => [
        h.rule,
        h.metric,
        h.firstAt - T0,
        h.partition,
        h.partitions,
        h.hits,
        h.shadow,
      ]),
    ).toEqual([
      ['key-minute', 'requests', 30_000, { key: 'k1' }, 1, 1, false],
      ['org-shadow', 'requests', 80_000, { org: 'a' }, 1, 3, true],
      ['user-daily', 'tokens', 90_000, { user: 'u1' }, 1, 1, false],
    ])
    expect(summary.alerts).toEqual([
      {
        rule: 'user-daily',
        metric: 'tokens',
        type: 'threshold',
        threshold: 0.5,
        count: 1,
        firstAt: T0 + 20_000,
      },
    ])
    expect(summary.errors).toEqual([
      { code: 'invalid_subject', count: 1, line: 9, example: expect.stringMatching(/^line 9: .*"key"/) },
    ])
  })

  it('spans every request it counts, the ones the engine refused to evaluate included', async () => {
    // the first and the last call have no key, which key-minute needs: both fail
    const { summary } = await simulate(policy, [
      call(0, 'u1', null),
      call(10, 'u1', 'k1'),
      call(30, 'u1', null),
    ])
    expect(summary).toMatchObject({ requests: 3, allowed: 1, failed: 2, from: T0, to: T0 + 30_000 })
    expect(formatSummary(summary)).toContain('2026-01-05T10:00:00Z → 2026-01-05T10:00:30Z (30s of traffic)')
  })

  it('charges actual usage (settled, not estimated) to every partition', async () => {
    const { summary } = await simulate(policy, traffic)
    const spend = Object.fromEntries(summary.spend.map((row) => [row.rule, row]))
    // mini: 100 in × $1/M + 50 out × $2/M = 200 micro-dollars; big: 100 × $10/M + 50 × $20/M = 2000
    expect(spend['user-daily']).toEqual({
      rule: 'user-daily',
      metric: 'tokens',
      partitions: 2,
      top: [
        { partition: { user: 'u1' }, requests: 5, inputTokens: 500, outputTokens: 250, cost: 4 * 200 + 2000 },
        { partition: { user: 'u2' }, requests: 2, inputTokens: 200, outputTokens: 100, cost: 400 },
      ],
    })
    expect(spend['key-minute']!.top.map((p) => [p.partition.key, p.requests])).toEqual([
      ['k1', 5],
      ['k2', 2],
    ])
    expect(spend['org-shadow']!.top).toEqual([
      { partition: { org: 'a' }, requests: 7, inputTokens: 700, outputTokens: 350, cost: 3200 },
    ])
  })

  it('reads JSON lines as text the same way, and stops at a bad line unless told to skip it', async () => {
    const lines = traffic.map((line) => JSON.stringify(line))
    const { summary } = await simulate(policy, ['# a comment', '', ...lines])
    expect(summary).toMatchObject({ requests: 10, allowed: 7, refused: 2, failed: 1 })

    await expect(simulate(policy, [lines[0]!, 'not json'])).rejects.toThrow(TrafficError)
    await expect(simulate(policy, [lines[0]!, '{"t": "yesterday", "subject": {}}'])).rejects.toThrow(
      /line 2: "t"/,
    )
    // times whose calendar windows a Date cannot hold are bad lines, not a run of failed requests
    for (const t of ['1e20', '8.64e15', '-8.64e15', '"+100000-01-01T00:00:00Z"'])
      await expect(simulate(policy, [`{"t": ${t}, "subject": {"org": "a"}}`])).rejects.toThrow(
        /line 1: "t" must be .* in the years 1000 to 9999/,
      )
    await expect(simulate(policy, ['{"t": 1, "subject": {}, "inputTokens": -1}'])).rejects.toThrow(
      /inputTokens/,
    )
    const skipped = await simulate(policy, [lines[0]!, 'not json'], { skipInvalid: true })
    expect(skipped.summary).toMatchObject({ requests: 2, allowed: 1, failed: 1 })
    expect(skipped.summary.errors[0]).toMatchObject({
      code: 'invalid_line',
      example: expect.stringMatching(/^line 2/),
    })
  })

  it('stops at a line whose usage the engine would refuse, or counts it under skipInvalid, holding nothing (it crashed at the settle)', async () => {
    // one call at a time per org: a hold a bad line left open would refuse the next line
    const one: PolicyInput = {
      models: policy.models,
      rules: [{ id: 'one-at-a-time', per: 'org', limits: { concurrency: 1 } }],
    }
    const line = (s: number, extra: object) => ({
      t: T0 + s * 1000,
      subject: { org: 'a' },
      model: 'mini',
      ...extra,
    })
    for (const [bad, reason] of [
      [
        { inputTokens: 10, cachedInputTokens: 50 },
        /line 1: "cachedInputTokens" \(50\) cannot exceed "inputTokens" \(10\)/,
      ],
      [{ cachedInputTokens: 1 }, /line 1: "cachedInputTokens" \(1\) cannot exceed "inputTokens" \(0\)/],
      [{ outputTokens: 2e12 }, /line 1: "outputTokens" must be a whole number from 0 to 1000000000000/],
      [{ units: { image: 2e12 } }, /line 1: "units" must be/],
    ] as const) {
      const lines = [line(0, { ...bad, durationMs: 5_000 }), line(1, { inputTokens: 10 })]
      for (const traffic of [lines, lines.map((l) => JSON.stringify(l))]) {
        await expect(simulate(one, traffic)).rejects.toThrow(TrafficError)
        await expect(simulate(one, traffic)).rejects.toThrow(reason)
        const { summary } = await simulate(one, traffic, { skipInvalid: true })
        expect(summary).toMatchObject({ requests: 2, allowed: 1, refused: 0, failed: 1 })
        expect(summary.errors).toEqual([
          { code: 'invalid_line', count: 1, line: 1, example: expect.stringMatching(reason) },
        ])
      }
    }
  })

  it('releases the hold of a call whose settle the engine refuses (a cost past its bound), and counts or stops on its line', async () => {
    // 1e6 a million output tokens: 2e9 of them cost 2e9 in the currency, past the 1e9 a call may cost
    const dear: PolicyInput = {
      models: { dear: { price: { input: 1, output: 1e6 } } },
      rules: [
        { id: 'one-at-a-time', per: 'org', limits: { concurrency: 1 } },
        { id: 'user-day', per: 'user', limits: { requests: 100 }, window: 'day' },
      ],
    }
    const line = (s: number, user: string, extra: object = {}) => ({
      t: T0 + s * 1000,
      subject: { org: 'a', user },
      model: 'dear',
      inputTokens: 10,
      maxOutputTokens: 10,
      ...extra,
    })
    for (const durationMs of [0, 5_000]) {
      const traffic = [line(0, 'spender', { outputTokens: 2e9, durationMs }), line(10, 'u1'), line(11, 'u1')]
      await expect(simulate(dear, traffic)).rejects.toThrow(TrafficError)
      await expect(simulate(dear, traffic)).rejects.toThrow(
        /^line 1: the engine refused its usage: The usage prices this call/,
      )
      const { summary } = await simulate(dear, traffic, { skipInvalid: true })
      // the concurrency hold was released: both later calls are admitted, one after the other
      expect(summary).toMatchObject({ requests: 3, allowed: 2, refused: 0, failed: 1 })
      expect(summary.allowed + summary.refused + summary.failed).toBe(summary.requests)
      expect(summary.errors).toEqual([
        {
          code: 'invalid_line',
          count: 1,
          line: 1,
          example: expect.stringMatching(/^line 1: the engine refused its usage/),
        },
      ])
      // the refused settle charges nothing: no spend row for its user
      const userDay = summary.spend.find((row) => row.rule === 'user-day')!
      expect(userDay.partitions).toBe(1)
      expect(userDay.top.map((row) => [row.partition, row.requests])).toEqual([[{ user: 'u1' }, 2]])
    }
  })

  it('ranks spend for a tokens rule by input plus output tokens', async () => {
    // a has more input tokens, b more in all: b spent more
    const tokens: PolicyInput = {
      rules: [{ id: 'tok', per: 'user', limits: { tokens: 1e6 }, window: 'day' }],
    }
    const { summary } = await simulate(tokens, [
      { t: T0, subject: { user: 'a' }, inputTokens: 900, outputTokens: 0 },
      { t: T0, subject: { user: 'b' }, inputTokens: 100, outputTokens: 2000 },
    ])
    expect(summary.spend[0]!.metric).toBe('tokens')
    expect(
      summary.spend[0]!.top.map((row) => [row.partition.user, row.inputTokens, row.outputTokens]),
    ).toEqual([
      ['b', 100, 2000],
      ['a', 900, 0],
    ])
    const top1 = await simulate(
      tokens,
      [
        { t: T0, subject: { user: 'a' }, inputTokens: 900, outputTokens: 0 },
        { t: T0, subject: { user: 'b' }, inputTokens: 100, outputTokens: 2000 },
      ],
      { top: 1 },
    )
    expect(top1.summary.spend[0]!.top.map((row) => row.partition.user)).toEqual(['b'])
  })

  it('holds concurrency leases for each call’s duration, and runs late lines at the previous time', async () => {
    const inflight: PolicyInput = { rules: [{ id: 'one-at-a-time', per: 'org', limits: { concurrency: 1 } }] }
    const at = (ms: number, durationMs: number) => ({ t: T0 + ms, subject: { org: 'a' }, durationMs })
    const { summary } = await simulate(inflight, [at(0, 1000), at(500, 0), at(1000, 0), at(900, 10)])
    // the second call overlaps the first; the third starts as the first ends; the fourth runs at 1000 ms
    expect(summary).toMatchObject({ requests: 4, allowed: 3, refused: 1, outOfOrder: 1, to: T0 + 1000 })
    expect(summary.refusals).toEqual([
      { rule: 'one-at-a-time', code: 'concurrency_limited', status: 429, refused: 1, shadowRefused: 0 },
    ])
  })

  it('records usage against each cap over time for reports', async () => {
    const { charts } = await simulate(policy, traffic, { series: true, bucketMs: 60_000, top: 1 })
    expect(charts.map((c) => [c.rule, c.metric, c.cap, c.shadow, c.lines.length])).toEqual([
      ['user-daily', 'tokens', 1000, false, 1],
      ['key-minute', 'requests', 3, false, 1],
      ['org-shadow', 'requests', 5, true, 1],
    ])
    const user = charts[0]!.lines[0]!
    expect(user.partition).toEqual({ user: 'u1' })
    expect(user.peak).toBe(800) // 600 settled + the last call's 200-token hold
    expect(user.points.map(([t]) => t - T0)).toEqual([0, 60_000, 120_000])
    // the highest `used` in each minute, holds included: 300 settled + 200 held, 450 + 200, 600 + 200
    expect(user.points.map(([, used]) => used)).toEqual([500, 650, 800])
  })

  it('formats a readable summary', async () => {
    const { summary } = await simulate(policy, traffic)
    const text = formatSummary(summary)
    expect(text).toMatch(/^Simulated 10 requests, 2026-01-05T10:00:00Z → 2026-01-05T10:02:00Z/)
    expect(text).toMatch(/allowed\s+7\s+70\.0%/)
    expect(text).toMatch(/org-shadow\s+quota_exceeded\s+429\s+0\s+3/)
    expect(text).toMatch(/user-daily \(2 partitions, by tokens\)\s+user=u1\s+5\s+750\s+0\.0028 USD/)
    expect(text).toContain('Failed requests')
  })
})
