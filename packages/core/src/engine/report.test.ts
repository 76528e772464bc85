import { describe, expect, it } from 'vitest'
import type { PolicyInput } from '../policy/schema.js'
import { memoryStore } from '../store/memory/store.js'
import { fakeClock } from '../testing/fake-clock.js'
import { createTollgate } from './gate.js'

const DAY_START = Date.UTC(2026, 2, 10) // a Tuesday, UTC midnight
const HOUR = 3_600_000

const policy: PolicyInput = {
  models: {
    'gpt-4o-mini': { price: { input: 1, output: 1 } },
    'gpt-4o': { price: { input: 10, output: 10 } },
  },
  rules: [
    { id: 'user-day', per: 'user', limits: { tokens: 10_000 }, window: 'day' },
    { id: 'project-users', per: ['project', 'user'], limits: { requests: 1_000 }, window: 'day' },
    { id: 'model-spend', per: 'model', limits: { cost: 100 }, window: 'month' },
    { id: 'rpm', per: 'user', limits: { requests: 100 }, window: '60s' },
  ],
}

function setup() {
  const clock = fakeClock(DAY_START)
  const gate = createTollgate({ policy, store: memoryStore({ clock }) })
  const spend = async (user: string, project: string, tokens: number, model = 'gpt-4o-mini') => {
    const d = await gate.reserve({
      subject: { user, project },
      model,
      estimate: { inputTokens: tokens, maxOutputTokens: 0 },
    })
    if (!d.allowed) throw new Error(d.message)
    await gate.settle(d.id, { inputTokens: tokens, outputTokens: 0 })
  }
  return { clock, gate, spend }
}

describe('usage', () => {
  it('projects a calendar window to its end at the rate seen so far', async () => {
    const { clock, gate, spend } = setup()
    clock.advance(6 * HOUR) // a quarter of the day
    await spend('u1', 'p1', 2_000)
    const [day] = (await gate.usage({ subject: { user: 'u1', project: 'p1' } })).filter(
      (l) => l.rule === 'user-day',
    )
    expect(day).toMatchObject({ used: 2_000, utilization: 0.2, projected: 8_000, exhaustsAt: null })
    // 4,000 in 6 h: the cap of 10,000 is reached at 15 h, before the day ends
    await spend('u1', 'p1', 2_000)
    const [again] = (await gate.usage({ subject: { user: 'u1', project: 'p1' } })).filter(
      (l) => l.rule === 'user-day',
    )
    expect(again).toMatchObject({ used: 4_000, projected: 16_000, exhaustsAt: DAY_START + 15 * HOUR })
  })

  it('has no projection for rolling windows, and says exhausted once the cap is reached', async () => {
    const { clock, gate, spend } = setup()
    clock.advance(HOUR)
    await spend('u2', 'p1', 10_000)
    const limits = await gate.usage({ subject: { user: 'u2', project: 'p1' } })
    expect(limits.find((l) => l.rule === 'rpm')).toMatchObject({ projected: null, exhaustsAt: null })
    expect(limits.find((l) => l.rule === 'user-day')).toMatchObject({
      utilization: 1,
      exhaustsAt: DAY_START + HOUR,
    })
  })
})

describe('a zero limit', () => {
  it('has no utilization (null, as documented), whether or not anything was used', async () => {
    const { gate, spend } = setup()
    await gate.override({ rule: 'rpm', subject: { user: 'u1' } }, 0)
    const rpm = async () =>
      (await gate.usage({ subject: { user: 'u1', project: 'p1' } })).find((l) => l.rule === 'rpm')
    expect(await rpm()).toMatchObject({ limit: 0, used: 0, utilization: null })
    await gate.override({ rule: 'rpm', subject: { user: 'u1' } }, null)
    await spend('u1', 'p1', 10)
    await gate.override({ rule: 'rpm', subject: { user: 'u1' } }, 0)
    expect(await rpm()).toMatchObject({ limit: 0, used: 1, utilization: null })
    expect(JSON.parse(JSON.stringify(await rpm()))).toMatchObject({ utilization: null })
  })

  it('a rule of several metrics asks which one to list', async () => {
    const { gate } = setup()
    const several = createTollgate({
      policy: { rules: [{ id: 'r', per: 'user', limits: { requests: 1, tokens: 1 }, window: 'day' }] },
      store: memoryStore(),
    })
    await expect(several.top({ rule: 'r' })).rejects.toMatchObject({
      code: 'invalid_request',
      message: 'Rule "r" has several metrics: name one.',
    })
    await expect(gate.top({ rule: 'rpm', metric: 'tokens' })).rejects.toMatchObject({
      message: 'Rule "rpm" has no "tokens" limit.',
    })
  })
})

describe('top', () => {
  it('lists the busiest partitions of a rule, biggest first', async () => {
    const { gate, spend } = setup()
    await spend('a', 'p1', 100)
    await spend('b', 'p1', 300)
    await spend('c', 'p1', 200)
    await spend('a:{weird}', 'p1', 50)
    const top = await gate.top({ rule: 'user-day', limit: 3 })
    expect(top.map((r) => [r.partition.user, r.used])).toEqual([
      ['b', 300],
      ['c', 200],
      ['a', 100],
    ])
    expect(top[0]).toMatchObject({ limit: 10_000, remaining: 9_700, utilization: 0.03 })
    const all = await gate.top({ rule: 'user-day', limit: 10 })
    expect(all.map((r) => r.partition.user)).toContain('a:{weird}')
  })

  it('narrows to the partitions of one parent: the users of one project', async () => {
    const { gate, spend } = setup()
    await spend('a', 'p1', 1)
    await spend('a', 'p1', 1)
    await spend('b', 'p1', 1)
    await spend('z', 'p10', 1)
    await spend('z', 'p10', 1)
    await spend('z', 'p10', 1)
    const users = await gate.top({ rule: 'project-users', where: { project: 'p1' } })
    expect(users.map((r) => [r.partition, r.used])).toEqual([
      [{ project: 'p1', user: 'a' }, 2],
      [{ project: 'p1', user: 'b' }, 1],
    ])
  })

  it('ranks models by spend in micro-units', async () => {
    const { gate, spend } = setup()
    await spend('a', 'p1', 5_000, 'gpt-4o')
    await spend('b', 'p1', 5_000)
    const models = await gate.top({ rule: 'model-spend' })
    // $10 and $1 per million tokens: 5,000 tokens cost 50,000 and 5,000 micro-units
    expect(models.map((r) => [r.partition.model, r.used])).toEqual([
      ['gpt-4o', 50_000],
      ['gpt-4o-mini', 5_000],
    ])
  })

  it('refuses an unknown rule, a metric the rule lacks and a silly limit', async () => {
    const { gate } = setup()
    await expect(gate.top({ rule: 'nope' })).rejects.toMatchObject({ code: 'unknown_rule' })
    await expect(gate.top({ rule: 'user-day', metric: 'cost' })).rejects.toMatchObject({
      code: 'invalid_request',
    })
    await expect(gate.top({ rule: 'user-day', limit: 0 })).rejects.toMatchObject({ code: 'invalid_request' })
  })
})

describe('top with a tenant', () => {
  it('names the tenant of each partition counted within one, and filters by it', async () => {
    const clock = fakeClock(DAY_START)
    const gate = createTollgate({
      policy: {
        tenant: 'org',
        rules: [
          { id: 'user-day', per: 'user', limits: { requests: 100 }, window: 'day' },
          { id: 'org-day', per: 'org', limits: { requests: 100 }, window: 'day' },
        ],
      },
      store: memoryStore({ clock }),
    })
    const calls = async (org: string, user: string, n: number) => {
      for (let i = 0; i < n; i++) expect((await gate.reserve({ subject: { org, user } })).allowed).toBe(true)
    }
    await calls('a', 'u1', 3)
    await calls('b', 'u1', 2)
    await calls('a', 'u2', 1)
    await gate.override({ rule: 'user-day', subject: { org: 'b', user: 'u1' } }, 50)
    const rows = (await gate.top({ rule: 'user-day' })).map((r) => [r.partition, r.used, r.limit])
    expect(rows).toEqual([
      [{ user: 'u1', org: 'a' }, 3, 100],
      [{ user: 'u1', org: 'b' }, 2, 50],
      [{ user: 'u2', org: 'a' }, 1, 100],
    ])
    const ofA = await gate.top({ rule: 'user-day', where: { org: 'a' } })
    expect(ofA.map((r) => [r.partition, r.used])).toEqual([
      [{ user: 'u1', org: 'a' }, 3],
      [{ user: 'u2', org: 'a' }, 1],
    ])
    const orgs = await gate.top({ rule: 'org-day' })
    expect(orgs.map((r) => [r.partition, r.used])).toEqual([
      [{ org: 'a' }, 4],
      [{ org: 'b' }, 2],
    ])
  })
})

describe('a hold still open (mutation audit)', () => {
  it('is counted once: in used, utilization and remaining, for usage and top alike', async () => {
    const { gate } = setup()
    const subject = { user: 'u1', project: 'p1' }
    const d = await gate.reserve({
      subject,
      model: 'gpt-4o-mini',
      estimate: { inputTokens: 2_000, maxOutputTokens: 0 },
    })
    expect(d.allowed).toBe(true)
    const day = (await gate.usage({ subject })).find((l) => l.rule === 'user-day')
    expect(day).toMatchObject({ used: 2_000, held: 2_000, remaining: 8_000, utilization: 0.2 })
    expect(await gate.top({ rule: 'user-day' })).toEqual([
      expect.objectContaining({
        partition: { user: 'u1' },
        used: 2_000,
        held: 2_000,
        remaining: 8_000,
        utilization: 0.2,
      }),
    ])
  })

  it('says exhausted now when the limit is reached exactly at the start of the window', async () => {
    const { gate, spend } = setup()
    await spend('u1', 'p1', 10_000)
    const day = (await gate.usage({ subject: { user: 'u1', project: 'p1' } })).find(
      (l) => l.rule === 'user-day',
    )
    expect(day).toMatchObject({ used: 10_000, limit: 10_000, exhaustsAt: DAY_START })
  })
})
