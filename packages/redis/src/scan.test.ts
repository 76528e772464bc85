/**
 * `scan` on Redis: the key layout decoded back to the engine's counter keys, and `gate.top`
 * end to end over `redisStore` (shared and tenant-scoped counters, hostile ids, overrides).
 */
import { counterKey, createTollgate, escapeId, type PolicyInput } from '@tollgate/core'
import { fakeClock } from '@tollgate/core/testing'
import { afterAll, describe, expect, it } from 'vitest'
import { globEscape, parseCounterKey, scanPattern } from './scan.js'
import { redisStore } from './store.js'
import { deleteKeys, prefixes, testClient } from './test/redis.js'

const client = testClient()
const prefix = prefixes('scan')

afterAll(async () => {
  await deleteKeys(client, prefix.pattern)
  await client.quit()
})

const DAY_START = Date.UTC(2026, 2, 10)
const HOUR = 3_600_000
const HOSTILE = ['a:b', '{x}', 'st*r', 'q?', '[set]', 'back\\slash', 'ü🦀', '%0025', 'c,d=e', 'tag}:f:1:']

const models = {
  'gpt-4o-mini': { price: { input: 1, output: 1 } },
  'gpt-4o': { price: { input: 10, output: 10 } },
}

function setup(policy: PolicyInput) {
  const clock = fakeClock(DAY_START + HOUR)
  const gate = createTollgate({ policy, store: redisStore({ client, prefix: prefix.next(), clock }) })
  const spend = async (subject: Record<string, string>, tokens: number, model = 'gpt-4o-mini') => {
    const d = await gate.reserve({ subject, model, estimate: { inputTokens: tokens, maxOutputTokens: 0 } })
    if (!d.allowed) throw new Error(d.message)
    await gate.settle(d.id, { inputTokens: tokens, outputTokens: 0 })
  }
  return { clock, gate, spend }
}

describe('scan key layout', () => {
  it('escapes glob characters', () => {
    expect(globEscape('a*b?c[d]e\\f')).toBe('a\\*b\\?c\\[d\\]e\\\\f')
  })

  it('decodes shared and tenant keys back to the counter key, and nothing else', () => {
    const key = counterKey('r:1', 'tokens', `user=${escapeId('a:{b}*')}`)
    expect(parseCounterKey(`{p}:f:123:${key}`, 'p', 'f')).toEqual({
      tag: '{p}',
      scope: undefined,
      key,
      start: 123,
    })
    const tag = `{p:${escapeId('o}rg')}}`
    expect(parseCounterKey(`${tag}:s:${key}`, 'p', 's')).toEqual({
      tag,
      scope: 'o}rg',
      key,
      start: undefined,
    })
    expect(parseCounterKey(`{p}:o:${key}`, 'p', 'f')).toBeNull()
    expect(parseCounterKey(`{pq}:f:1:${key}`, 'p', 'f')).toBeNull()
    expect(parseCounterKey(`{p}:f:x:${key}`, 'p', 'f')).toBeNull()
    expect(scanPattern('p*', 'r:tokens:', 'f')).toBe('{p\\*[}:]*:f:*:r:tokens:*')
  })
})

describe('gate.top on Redis', () => {
  const policy: PolicyInput = {
    models,
    rules: [
      { id: 'user-day', per: 'user', limits: { tokens: 10_000 }, window: 'day' },
      { id: 'project-users', per: ['project', 'user'], limits: { requests: 1_000 }, window: 'day' },
      { id: 'model-spend', per: 'model', limits: { cost: 100 }, window: 'month' },
      { id: 'rpm', per: 'user', limits: { requests: 100 }, window: '60s' },
    ],
  }

  it('lists the busiest partitions of a rule in order, hostile ids included', async () => {
    const { gate, spend } = setup(policy)
    await spend({ user: 'a', project: 'p1' }, 100)
    await spend({ user: 'b', project: 'p1' }, 300)
    for (const [i, user] of HOSTILE.entries()) await spend({ user, project: 'p1' }, 10 + i)
    await spend({ user: 'c', project: 'p1' }, 200)
    const top = await gate.top({ rule: 'user-day', limit: 3 })
    expect(top.map((r) => [r.partition.user, r.used])).toEqual([
      ['b', 300],
      ['c', 200],
      ['a', 100],
    ])
    expect(top[0]).toMatchObject({ limit: 10_000, remaining: 9_700, held: 0 })
    const all = await gate.top({ rule: 'user-day', limit: 100 })
    expect(all).toHaveLength(3 + HOSTILE.length)
    expect(all.slice(3).map((r) => [r.partition.user, r.used])).toEqual(
      HOSTILE.map((user, i) => [user, 10 + i]).reverse(),
    )
    // A rolling window is listed too, in its own layout.
    const rpm = await gate.top({ rule: 'rpm', limit: 100 })
    expect(rpm).toHaveLength(3 + HOSTILE.length)
    expect(rpm.every((r) => r.used === 1 && r.limit === 100)).toBe(true)
  })

  it('narrows to one parent, and applies overrides', async () => {
    const { gate, spend } = setup(policy)
    await spend({ user: 'a', project: 'p*1' }, 1)
    await spend({ user: 'a', project: 'p*1' }, 1)
    await spend({ user: 'b?', project: 'p*1' }, 1)
    await spend({ user: 'z', project: 'p*10' }, 1)
    await spend({ user: 'z', project: 'pX1' }, 1)
    await gate.override({ rule: 'project-users', subject: { project: 'p*1', user: 'b?' } }, 5)
    const users = await gate.top({ rule: 'project-users', where: { project: 'p*1' } })
    expect(users.map((r) => [r.partition, r.used, r.limit])).toEqual([
      [{ project: 'p*1', user: 'a' }, 2, 1_000],
      [{ project: 'p*1', user: 'b?' }, 1, 5],
    ])
  })

  it('ranks models by spend, and forgets what the window has left behind', async () => {
    const { clock, gate, spend } = setup(policy)
    await spend({ user: 'a', project: 'p' }, 5_000, 'gpt-4o')
    await spend({ user: 'b', project: 'p' }, 5_000)
    expect((await gate.top({ rule: 'model-spend' })).map((r) => [r.partition.model, r.used])).toEqual([
      ['gpt-4o', 50_000],
      ['gpt-4o-mini', 5_000],
    ])
    clock.advance(24 * HOUR)
    await spend({ user: 'c', project: 'p' }, 7)
    expect((await gate.top({ rule: 'user-day' })).map((r) => [r.partition.user, r.used])).toEqual([['c', 7]])
  })

  it('finds tenant-scoped counters and shared ones alike', async () => {
    const tenantPolicy: PolicyInput = {
      models,
      tenant: 'org',
      rules: [
        { id: 'org-day', per: 'org', limits: { tokens: 100_000 }, window: 'day' },
        { id: 'org-users', per: ['org', 'user'], limits: { tokens: 10_000 }, window: 'day' },
        { id: 'model-day', per: 'model', limits: { tokens: 1_000_000 }, window: 'day' },
        { id: 'user-day', per: 'user', limits: { tokens: 1_000 }, window: 'day' },
      ],
    }
    const { gate, spend } = setup(tenantPolicy)
    await spend({ org: 'acme', user: 'u1' }, 30)
    await spend({ org: 'acme', user: 'u:2' }, 50)
    await spend({ org: 'o{r}g*', user: 'u1' }, 70)
    await spend({ org: 'o{r}g*', user: '🦀' }, 5)
    await spend({ org: 'ü', user: 'u1' }, 1)
    expect((await gate.top({ rule: 'org-day' })).map((r) => [r.partition.org, r.used])).toEqual(
      [
        ['o{r}g*', 75],
        ['acme', 80],
        ['ü', 1],
      ].sort((x, y) => (y[1] as number) - (x[1] as number)),
    )
    expect(
      (await gate.top({ rule: 'org-users', where: { org: 'o{r}g*' } })).map((r) => [
        r.partition.user,
        r.used,
      ]),
    ).toEqual([
      ['u1', 70],
      ['🦀', 5],
    ])
    expect((await gate.top({ rule: 'org-users', limit: 2 })).map((r) => r.used)).toEqual([70, 50])
    expect((await gate.top({ rule: 'model-day' })).map((r) => [r.partition.model, r.used])).toEqual([
      ['gpt-4o-mini', 156],
    ])
    // a rule per user counts within each tenant: u1 of three orgs is three rows, each naming its org,
    // and an override for one of them caps that one only
    await gate.override({ rule: 'user-day', subject: { org: 'o{r}g*', user: 'u1' } }, 80)
    const users = await gate.top({ rule: 'user-day', where: { user: 'u1' } })
    expect(users.map((r) => [r.partition, r.used, r.limit])).toEqual([
      [{ user: 'u1', org: 'o{r}g*' }, 70, 80],
      [{ user: 'u1', org: 'acme' }, 30, 1_000],
      [{ user: 'u1', org: 'ü' }, 1, 1_000],
    ])
    const ofAcme = await gate.top({ rule: 'user-day', where: { org: 'acme' } })
    expect(ofAcme.map((r) => [r.partition.user, r.used])).toEqual([
      ['u:2', 50],
      ['u1', 30],
    ])
  })
})
