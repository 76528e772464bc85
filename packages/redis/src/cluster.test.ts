/**
 * The engine end to end on a real three-master Redis Cluster started for this file, with a
 * policy that has a tenant (counters in the tenant's slot) and a global ceiling (the shared
 * slot), chosen so that the two slots live on different masters: all or nothing across slots,
 * no over-admission under concurrency, settle and release from any process, duplicates,
 * expiry, blocks, overrides, and keys in the slots the docs name.
 */
import { createTollgate, type PolicyInput } from '@tollgate/core'
import { type FakeClock, fakeClock } from '@tollgate/core/testing'
import type { Cluster, Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { redisStore } from './store.js'
import { scanCluster, startCluster, type TestCluster } from './test/cluster.js'
import { hostileNames, mixedRun, models } from './test/mixed.js'
import { prefixes } from './test/redis.js'

let cluster: TestCluster
let client: Cluster
let other: Cluster
let probe: Redis
const prefix = prefixes('cluster-engine')

beforeAll(async () => {
  cluster = await startCluster()
  ;[client, other] = await Promise.all([cluster.client(), cluster.client()])
  probe = cluster.node()
}, 30_000)

afterAll(() => cluster?.stop())

const slotOf = async (key: string) => Number(await probe.cluster('KEYSLOT', key))

/** A fresh prefix and `count` tenants whose slots live on other masters than the shared slot. */
async function layout(count: number): Promise<{ p: string; orgs: string[] }> {
  const p = prefix.next()
  const home = await cluster.portOf(await slotOf(`{${p}}`))
  const orgs: string[] = []
  for (let i = 0; orgs.length < count; i++) {
    if ((await cluster.portOf(await slotOf(`{${p}:org-${i}}`))) !== home) orgs.push(`org-${i}`)
  }
  return { p, orgs }
}

/** Requests per org a day and a global ceiling per day; both return unsettled holds on expiry. */
const ceiling = (perOrg: number, global: number): PolicyInput => ({
  tenant: 'org',
  models,
  rules: [
    {
      id: 'org-requests',
      per: 'org',
      limits: { requests: perOrg },
      window: 'day',
      holds: { ttl: '2m', expiry: 'release' },
    },
    { id: 'user-tokens', per: 'user', limits: { tokens: 1_000_000 }, window: 'day' },
    { id: 'global', limits: { requests: global }, window: 'day', holds: { ttl: '2m', expiry: 'release' } },
  ],
})

function gateOn(c: Cluster, p: string, policy: PolicyInput, clock: FakeClock) {
  const store = redisStore({ client: c, prefix: p, clock, timeoutMs: 10_000 })
  return { store, gate: createTollgate({ policy, store, timeoutMs: 10_000 }) }
}

const ask = (org: string, user = 'u1', inputTokens = 100) => ({
  subject: { org, user },
  model: 'gpt-4o-mini',
  estimate: { inputTokens, maxOutputTokens: 0 },
})

/** `rule.metric` → [used, held] for a subject. */
async function counters(gate: ReturnType<typeof gateOn>['gate'], org: string, user = 'u1') {
  const limits = await gate.usage({ subject: { org, user } })
  return Object.fromEntries(limits.map((l) => [`${l.rule}.${l.metric}`, [l.used, l.held]]))
}

describe('the engine on a Redis Cluster', () => {
  it('keeps a tenant’s keys in its slot and shared keys in the shared slot, on different masters', async () => {
    const { p, orgs } = await layout(1)
    const org = orgs[0]!
    const { gate } = gateOn(client, p, ceiling(10, 10), fakeClock())
    const decision = await gate.reserve(ask(org))
    expect(decision.allowed).toBe(true)
    const shared = await slotOf(`{${p}}`)
    const tenant = await slotOf(`{${p}:${org}}`)
    expect(await cluster.portOf(shared)).not.toBe(await cluster.portOf(tenant))
    const keys = (await scanCluster(client, `{${p}*`)).sort()
    for (const key of keys) {
      expect(await slotOf(key), key).toBe(key.startsWith(`{${p}:`) ? tenant : shared)
    }
    const id = decision.id
    expect(keys).toEqual(
      expect.arrayContaining([
        `{${p}}:x`,
        `{${p}}:r:${id}`,
        expect.stringMatching(new RegExp(`^\\{${p}\\}:f:\\d+:global:requests:$`)),
        `{${p}:${org}}:x`,
        `{${p}:${org}}:r:${id}`,
        expect.stringMatching(new RegExp(`^\\{${p}:${org}\\}:f:\\d+:org-requests:requests:org=${org}$`)),
        expect.stringMatching(new RegExp(`^\\{${p}:${org}\\}:f:\\d+:user-tokens:tokens:user=u1$`)),
      ]),
    )
    expect(keys.filter((k) => k.startsWith(`{${p}}:`) && k.includes('org-'))).toEqual([])
  })

  it('is all or nothing across slots: a refusal in one slot leaves the other unchanged', async () => {
    const { p, orgs } = await layout(3)
    const [a, b, c] = orgs as [string, string, string]
    const { gate, store } = gateOn(client, p, ceiling(3, 5), fakeClock())
    for (let i = 0; i < 3; i++) expect((await gate.reserve(ask(a))).allowed).toBe(true)
    // The tenant rule refuses: the global ceiling keeps only the three holds.
    const byTenant = await gate.reserve(ask(a))
    expect(byTenant).toMatchObject({ allowed: false, rule: 'org-requests' })
    expect(await counters(gate, a)).toMatchObject({
      'org-requests.requests': [3, 3],
      'user-tokens.tokens': [300, 300],
      'global.requests': [3, 3],
    })
    expect(await store.lookup(byTenant.id)).toBeNull()
    for (let i = 0; i < 2; i++) expect((await gate.reserve(ask(b))).allowed).toBe(true)
    // The global ceiling refuses: the tenants' counters are untouched.
    for (const org of [b, c]) {
      const byGlobal = await gate.reserve(ask(org, 'u2'))
      expect(byGlobal).toMatchObject({ allowed: false, rule: 'global' })
      expect(await store.lookup(byGlobal.id)).toBeNull()
    }
    expect(await counters(gate, b, 'u2')).toMatchObject({
      'org-requests.requests': [2, 2],
      'user-tokens.tokens': [0, 0],
      'global.requests': [5, 5],
    })
    expect(await counters(gate, c, 'u2')).toMatchObject({
      'org-requests.requests': [0, 0],
      'user-tokens.tokens': [0, 0],
    })
  })

  it('never over-admits: 200 concurrent reserves against a cap of 50 admit exactly 50', async () => {
    // The global ceiling binds (the shared slot refuses first) …
    const { p, orgs } = await layout(4)
    const global = gateOn(client, p, ceiling(1_000, 50), fakeClock())
    const first = await Promise.all(
      Array.from({ length: 200 }, (_, i) => global.gate.reserve(ask(orgs[i % 4]!, `u${i % 7}`))),
    )
    expect(first.filter((d) => d.allowed)).toHaveLength(50)
    const perOrg = await Promise.all(orgs.map((org) => counters(global.gate, org)))
    expect(perOrg[0]!['global.requests']).toEqual([50, 50])
    expect(perOrg.reduce((sum, c) => sum + c['org-requests.requests']![0]!, 0)).toBe(50)
    // … and a tenant's cap binds (its slot refuses after the shared slot held: compensation).
    const tenant = await layout(1)
    const org = tenant.orgs[0]!
    const one = gateOn(client, tenant.p, ceiling(50, 1_000), fakeClock())
    const second = await Promise.all(Array.from({ length: 200 }, () => one.gate.reserve(ask(org))))
    expect(second.filter((d) => d.allowed)).toHaveLength(50)
    expect(await counters(one.gate, org)).toMatchObject({
      'org-requests.requests': [50, 50],
      'user-tokens.tokens': [5_000, 5_000],
      'global.requests': [50, 50],
    })
  })

  it('settles and releases across slots from any process, once', async () => {
    const { p, orgs } = await layout(1)
    const org = orgs[0]!
    const clock = fakeClock()
    const a = gateOn(client, p, ceiling(10, 10), clock)
    const b = gateOn(other, p, ceiling(10, 10), clock)
    const r1 = await a.gate.reserve(ask(org, 'u1', 500))
    const r2 = await a.gate.reserve(ask(org, 'u1', 200))
    expect(await counters(a.gate, org)).toMatchObject({
      'org-requests.requests': [2, 2],
      'user-tokens.tokens': [700, 700],
      'global.requests': [2, 2],
    })
    // b never saw r1: it finds every slot group from the id alone.
    expect(await b.store.lookup(r1.id)).toMatchObject({ state: 'held', meta: { model: 'gpt-4o-mini' } })
    expect(await b.gate.settle(r1.id, { inputTokens: 120, outputTokens: 0 })).toMatchObject({
      status: 'settled',
    })
    expect(await a.gate.settle(r1.id, { inputTokens: 999 })).toMatchObject({ status: 'duplicate' })
    expect(await a.gate.release(r1.id)).toMatchObject({ status: 'duplicate' })
    expect(await a.gate.release(r2.id)).toMatchObject({ status: 'released' })
    expect(await b.gate.release(r2.id)).toMatchObject({ status: 'duplicate' })
    expect(await b.gate.settle(r2.id, { inputTokens: 5 })).toMatchObject({ status: 'duplicate' })
    expect(await counters(b.gate, org)).toMatchObject({
      'org-requests.requests': [1, 0],
      'user-tokens.tokens': [120, 0],
      'global.requests': [1, 0],
    })
    expect(await a.store.lookup(r1.id)).toMatchObject({ state: 'settled' })
    expect(await a.store.lookup(r2.id)).toMatchObject({ state: 'released' })
  })

  it('expires every slot group with the TTL, and a late settle still trues up each', async () => {
    const { p, orgs } = await layout(1)
    const org = orgs[0]!
    const clock = fakeClock('2026-01-05T08:00:00.000Z')
    const { gate, store } = gateOn(client, p, ceiling(10, 10), clock)
    const held = await gate.reserve(ask(org, 'u1', 400))
    clock.advance('11m') // the reservation lives as long as its longest rule's TTL (10 min by default)
    // requests return on expiry (`expiry: release`); tokens stay charged (`keep`).
    expect(await counters(gate, org)).toMatchObject({
      'org-requests.requests': [0, 0],
      'user-tokens.tokens': [400, 0],
      'global.requests': [0, 0],
    })
    expect(await store.lookup(held.id)).toMatchObject({ state: 'expired' })
    expect(await gate.settle(held.id, { inputTokens: 150, outputTokens: 0 })).toMatchObject({
      status: 'settled',
      late: true,
    })
    expect(await counters(gate, org)).toMatchObject({
      'org-requests.requests': [1, 0],
      'user-tokens.tokens': [150, 0],
      'global.requests': [1, 0],
    })
  })

  it('applies blocks and overrides to tenant counters (kept in the shared slot)', async () => {
    const { p, orgs } = await layout(1)
    const org = orgs[0]!
    const { gate } = gateOn(client, p, ceiling(10, 10), fakeClock())
    await gate.block('user', 'mallory', 'key_revoked')
    expect(await gate.reserve(ask(org, 'mallory'))).toMatchObject({ allowed: false, code: 'key_revoked' })
    await gate.override({ rule: 'org-requests', subject: { org } }, 1)
    expect(await gate.reserve(ask(org))).toMatchObject({ allowed: true })
    expect(await gate.reserve(ask(org))).toMatchObject({ allowed: false, rule: 'org-requests' })
    const limits = await gate.usage({ subject: { org, user: 'u1' } })
    expect(limits.find((l) => l.rule === 'org-requests')).toMatchObject({ limit: 1, used: 1, remaining: 0 })
    expect(await counters(gate, org, 'mallory')).toMatchObject({
      'user-tokens.tokens': [0, 0],
      'global.requests': [1, 1],
    })
  })

  it('decides exactly as on the memory store over a long mixed run', { timeout: 60_000 }, async () => {
    await mixedRun((clock) => redisStore({ client, prefix: prefix.next(), clock, timeoutMs: 10_000 }))
  })

  it('decides the same with hostile ids, in the tenants’ slots', { timeout: 60_000 }, async () => {
    await mixedRun(
      (clock) => redisStore({ client, prefix: prefix.next(), clock, timeoutMs: 10_000 }),
      (id) => hostileNames[id]!,
    )
  })
})
