import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { lintPolicy, renderReport, simulateFile } from '@tollgate/cli'
import { describe, expect, it } from 'vitest'
import { generateTraffic, HEAVY, ORGS, toJsonl } from './generate.js'

const policy = readFileSync(new URL('./policy.yaml', import.meta.url), 'utf8')
const dir = mkdtempSync(join(tmpdir(), 'tollgate-example-'))

describe('the bundled simulation', () => {
  const traffic = generateTraffic()
  const path = join(dir, 'traffic.jsonl')
  writeFileSync(path, toJsonl(traffic))

  it('generates a deterministic day: a few hundred users, a diurnal rhythm, two heavy users', () => {
    expect(generateTraffic()).toEqual(traffic)
    expect(generateTraffic({ seed: 7 })).not.toEqual(traffic)
    const users = new Set(traffic.map((line) => line.subject.user))
    expect(users.size).toBeGreaterThan(200)
    expect(users.size).toBeLessThanOrEqual(ORGS.reduce((sum, org) => sum + org.users, 0))
    const times = traffic.map((line) => Date.parse(String(line.t)))
    expect([...times].sort((a, b) => a - b)).toEqual(times)
    const hour = (h: number) => times.filter((t) => new Date(t).getUTCHours() === h).length
    expect(hour(13)).toBeGreaterThan(3 * hour(3))
    const heavy = (user: string) => traffic.filter((line) => line.subject.user === user).length
    expect(heavy(HEAVY.burst.user)).toBe(1500)
    expect(heavy(HEAVY.tokens.user)).toBe(150)
  })

  it('lints clean', () => {
    expect(lintPolicy(policy)).toMatchObject({ ok: true, errors: [], warnings: [] })
  })

  it('replays the day: counts add up, the heavy users are the ones refused, the report has charts', async () => {
    const { summary, charts } = await simulateFile(policy, path, { series: true })
    expect(summary.requests).toBe(traffic.length)
    expect(summary.allowed + summary.refused + summary.failed).toBe(summary.requests)
    expect(summary.failed).toBe(0)
    expect(summary.refusals.reduce((sum, row) => sum + row.refused, 0)).toBe(summary.refused)
    expect(summary.downgrades.reduce((sum, row) => sum + row.count, 0)).toBe(summary.downgraded)
    expect(summary.downgraded).toBeGreaterThan(0)
    expect(summary.shadowRefused).toBeGreaterThan(0)

    const hit = (rule: string) => summary.capsHit.find((row) => row.rule === rule && row.metric !== '')!
    // the policy's tenant is the org: rows of rules counted within one name it
    expect(hit('key-burst').top[0]!.partition).toEqual({ key: HEAVY.burst.key, org: HEAVY.burst.org })
    expect(hit('user-daily').top[0]!.partition).toEqual({ user: HEAVY.burst.user, org: HEAVY.burst.org })
    expect(hit('user-daily-free').top[0]!.partition).toEqual({
      user: HEAVY.tokens.user,
      org: HEAVY.tokens.org,
    })
    expect(hit('org-hourly-requests').shadow).toBe(true)
    // the heavy users get most of the refusals
    const refusedHeavy = ['key-burst', 'user-daily', 'user-daily-free'].reduce(
      (sum, rule) => sum + hit(rule).top[0]!.hits,
      0,
    )
    expect(refusedHeavy).toBeGreaterThan(summary.refused / 2)

    const report = join(dir, 'report.html')
    writeFileSync(report, renderReport({ summary, charts }))
    const html = readFileSync(report, 'utf8')
    expect(html).toContain('<svg')
    expect(html).toContain(HEAVY.burst.key)
  }, 60_000)
})
