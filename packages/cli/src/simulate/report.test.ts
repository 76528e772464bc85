import type { PolicyInput } from '@tollgate/core'
import { describe, expect, it } from 'vitest'
import { escapeXml, svgChart } from './chart.js'
import { renderReport } from './report.js'
import { simulate } from './run.js'
import { formatSummary } from './summary.js'

const policy: PolicyInput = {
  models: { m: { price: { input: 1, output: 1 } } },
  rules: [
    { id: 'user-hour', per: 'user', limits: { tokens: 1000, cost: 0.002 }, window: 'hour' },
    { id: 'all-day', limits: { requests: 50 }, window: 'day', mode: 'shadow' },
  ],
}
const T0 = Date.parse('2026-01-05T00:00:00Z')
const traffic = Array.from({ length: 120 }, (_, i) => ({
  t: T0 + i * 60_000,
  subject: { user: i % 3 === 0 ? '<b>mallory</b>' : `u${i % 3}` },
  model: 'm',
  inputTokens: 40,
  maxOutputTokens: 20,
  outputTokens: 10,
}))

describe('renderReport', () => {
  it('writes one self-contained HTML file with an inline SVG chart per cap', async () => {
    const result = await simulate(policy, traffic, { series: true, bucketMs: 60_000 })
    expect(result.charts.map((c) => `${c.rule}/${c.metric}`)).toEqual([
      'user-hour/tokens',
      'user-hour/cost',
      'all-day/requests',
    ])
    const html = renderReport({ ...result, title: 'policy.yaml × traffic.jsonl' })
    expect(html.startsWith('<!doctype html>')).toBe(true)
    expect(html.match(/<svg /g)).toHaveLength(3)
    // nothing to fetch and nothing to run
    expect(html).not.toMatch(/<script|<link|<img|<iframe|@import|url\(|\ssrc=|\shref=/i)
    expect(html.match(/https?:\/\/[^"]+/g)).toEqual([
      'http://www.w3.org/2000/svg',
      'http://www.w3.org/2000/svg',
      'http://www.w3.org/2000/svg',
    ])
    // ids are escaped
    expect(html).toContain('user=&#60;b&#62;mallory&#60;/b&#62;')
    expect(html).not.toContain('<b>mallory')
    expect(html).toContain('all-day <span class="muted">(shadow)</span>')
    expect(html).toContain('cap 0.0020 USD')
  })

  it('has every table the text summary has, alerts and failed requests included', async () => {
    const alerting: PolicyInput = {
      ...policy,
      rules: [{ ...policy.rules![0]!, alerts: [0.5] }, policy.rules![1]!],
    }
    // a line without a user cannot be evaluated: a failed request
    const { summary } = await simulate(alerting, [
      ...traffic,
      { t: T0 + 120 * 60_000, subject: { org: 'o' } },
    ])
    expect(summary.alerts.length).toBeGreaterThan(0)
    expect(summary.failed).toBe(1)
    const text = formatSummary(summary)
    const html = renderReport({ summary, charts: [] })
    const titles = [
      'Refusals by rule and reason',
      'Caps first hit',
      'Alerts',
      'Spend per scope',
      'Failed requests',
    ]
    for (const title of titles) {
      expect(text).toMatch(new RegExp(`^${title}`, 'm'))
      expect(html).toContain(`<h2>${title}</h2>`)
    }
    expect(html).toMatch(/<td>invalid_subject<\/td><td class="n">1<\/td>/)
    expect(html).toMatch(/<td>failed<\/td><td class="n">1<\/td>/)
  })

  it('draws usage against the cap: one polyline per partition and a dashed cap line', () => {
    const svg = svgChart({
      rule: 'r',
      metric: 'tokens',
      cap: 100,
      window: 'per day',
      shadow: false,
      lines: [
        {
          partition: { user: 'a' },
          peak: 120,
          points: [
            [T0, 0],
            [T0 + 60_000, 50],
            [T0 + 120_000, 120],
          ],
        },
        {
          partition: { user: 'b' },
          peak: 10,
          points: [
            [T0, 10],
            [T0 + 60_000, 10],
            [T0 + 120_000, 0],
          ],
        },
      ],
    })
    expect(svg.match(/<polyline /g)).toHaveLength(2)
    expect(svg).toContain('stroke-dasharray')
    expect(svg).toContain('>cap 100<')
    expect(svgChart({ rule: 'r', metric: 'm', cap: 1, window: '', shadow: false, lines: [] })).toBe('')
    expect(escapeXml(`<a href="x">&'`)).toBe('&#60;a href=&#34;x&#34;&#62;&#38;&#39;')
  })
})
