/**
 * The Cluster protocol's own guarantees, on a real three-master Redis Cluster started for this
 * file: how many scripts each call runs, what a failure or a crash between two steps leaves,
 * that a hold landing after its step timed out is taken back, and that a cancelled hold leaves
 * no trace in alerts or throttles.
 */
import { type CounterSpec, createTollgate, type PolicyInput } from '@tollgate/core'
import { fakeClock } from '@tollgate/core/testing'
import type { Cluster, Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { RedisStoreError, redisStore } from './store.js'
import { startCluster, type TestCluster } from './test/cluster.js'
import { models } from './test/mixed.js'
import { prefixes } from './test/redis.js'

let cluster: TestCluster
let client: Cluster
let probe: Redis
const prefix = prefixes('cluster-protocol')

beforeAll(async () => {
  cluster = await startCluster()
  client = await cluster.client()
  probe = cluster.node()
}, 30_000)

afterAll(() => cluster?.stop())

/** The client with every script call of the store passed through `hook` (named reserve, commit, …). */
function instrument(target: Cluster, hook: (name: string, call: () => Promise<unknown>) => Promise<unknown>) {
  return new Proxy(target, {
    get(t, property) {
      const value = Reflect.get(t, property)
      if (typeof value !== 'function') return value
      if (typeof property === 'string' && property.startsWith('tollgate_')) {
        const name = property.split('_')[1]!.replace(/^c/, '')
        return (...args: unknown[]) => hook(name, () => value.apply(t, args))
      }
      return value.bind(t)
    },
  })
}

const policy = (tenant: boolean): PolicyInput => ({
  ...(tenant ? { tenant: 'org' } : {}),
  models,
  rules: [
    { id: 'org', per: 'org', limits: { requests: 2 }, window: 'day', holds: { expiry: 'release' } },
    { id: 'global', limits: { requests: 3 }, window: 'day', holds: { expiry: 'release' } },
  ],
})

const ask = (org: string) => ({ subject: { org }, model: 'gpt-4o-mini', estimate: { inputTokens: 10 } })

/** [used, held] of the org and global counters. */
async function state(gate: ReturnType<typeof createTollgate>, org: string) {
  const limits = await gate.usage({ subject: { org } })
  return limits.map((l) => [l.rule, l.used, l.held])
}

/** A day counter of one request (or `amount`), in the shared slot unless `scope` is given. */
function spec(key: string, extra: Partial<CounterSpec> = {}): CounterSpec {
  const now = Date.parse('2026-01-05T00:00:00.000Z')
  return {
    key,
    metric: 'requests',
    amount: 1,
    cap: 5,
    enforce: true,
    window: { kind: 'fixed', bounds: [now - 1, now + 86_400_000] },
    expiry: 'release',
    ...extra,
  }
}

const reserveOf = (id: string, counters: CounterSpec[]) => ({
  id,
  counters,
  ttlMs: 60_000,
  blocks: [],
  meta: { model: 'm' },
})

/** A tenant whose slot is served by another master than the shared slot of `p`. */
async function remoteTenant(p: string): Promise<{ org: string; port: number }> {
  const slotOf = async (key: string) => Number(await probe.cluster('KEYSLOT', key))
  const home = await cluster.portOf(await slotOf(`{${p}}`))
  for (let i = 0; ; i++) {
    const port = await cluster.portOf(await slotOf(`{${p}:org-${i}}`))
    if (port !== home) return { org: `org-${i}`, port }
  }
}

describe('the Cluster protocol', () => {
  it('runs one script when every counter is in the shared slot, one per slot otherwise', async () => {
    const calls: string[] = []
    const counted = instrument(client, (name, call) => {
      calls.push(name)
      return call()
    })
    const take = () => calls.splice(0).join(' ')
    const clock = fakeClock()
    const flat = createTollgate({
      policy: policy(false),
      store: redisStore({ client: counted, prefix: prefix.next(), clock }),
    })
    const one = await flat.reserve(ask('acme'))
    expect(take()).toBe('fast') // the lean reserve: calendar windows only, all in the shared slot
    await flat.settle(one.id, {})
    expect(take()).toBe('commit')

    const p = prefix.next()
    const gate = () =>
      createTollgate({ policy: policy(true), store: redisStore({ client: counted, prefix: p, clock }) })
    const tenant = gate()
    const held = await tenant.reserve(ask('acme'))
    expect(take()).toBe('reserve reserve') // the shared slot, then the tenant's
    await tenant.settle(held.id, {})
    expect(take()).toBe('commit commit') // both at once: this process knows the groups
    // Another process settles from the id alone: look-up, then the home record, then the tenant's.
    const second = await tenant.reserve(ask('acme'))
    take()
    await gate().settle(second.id, {})
    expect(take()).toBe('lookup commit commit')
    // The tenant refuses after the shared slot held: the shared hold is cancelled.
    expect(await tenant.reserve(ask('acme'))).toMatchObject({ allowed: false, rule: 'org' })
    expect(take()).toBe('reserve reserve commit')
    // The shared slot refuses: the tenant's counters are only evaluated, to report them.
    await tenant.reserve(ask('other'))
    take()
    expect(await tenant.reserve(ask('third'))).toMatchObject({ allowed: false, rule: 'global' })
    expect(take()).toBe('reserve reserve')
    expect(await state(tenant, 'third')).toEqual([
      ['org', 0, 0],
      ['global', 3, 1],
    ])
  })

  it('a step that fails cancels the steps before it, and the call rejects', async () => {
    let reserves = 0
    const failing = instrument(client, (name, call) =>
      name === 'reserve' && ++reserves === 2 ? Promise.reject(new Error('node lost')) : call(),
    )
    const p = prefix.next()
    const store = redisStore({ client: failing, prefix: p, clock: fakeClock() })
    const specs = [spec('g'), spec('t', { scope: 'acme' })]
    await expect(store.reserve(reserveOf('r1', specs))).rejects.toThrow('node lost')
    expect((await store.read(specs)).map((s) => [s.used, s.held])).toEqual([
      [0, 0],
      [0, 0],
    ])
    expect(await store.lookup('r1')).toBeNull()
  })

  it('a step whose answer is lost is taken back as well, and its resend holds nothing', async () => {
    let reserves = 0
    let resend: (() => Promise<unknown>) | undefined
    const losing = instrument(client, (name, call) => {
      if (name !== 'reserve' || ++reserves !== 2) return call()
      resend = call
      // Redis runs the tenant's step; its answer is lost with the connection.
      return call().then(() => {
        throw new Error('Connection is closed.')
      })
    })
    const p = prefix.next()
    const clock = fakeClock()
    const store = redisStore({ client: losing, prefix: p, clock })
    const observer = redisStore({ client, prefix: p, clock })
    const specs = [spec('g'), spec('t', { scope: 'acme' })]
    const look = async () => (await observer.read(specs)).map((s) => [s.used, s.held])
    await expect(store.reserve(reserveOf('lost', specs))).rejects.toThrow('Connection is closed.')
    // Both steps are taken back in the background (bounded polling).
    let states: number[][] = []
    for (let i = 0; i < 100; i++) {
      states = await look()
      if (states.every(([used, held]) => used === 0 && held === 0)) break
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    expect(states).toEqual([
      [0, 0],
      [0, 0],
    ])
    expect(await observer.lookup('lost')).toBeNull()
    // ioredis sends the step again (after a reconnect): the id is closed in its slot, nothing is held.
    expect(((await resend!()) as unknown[])[0]).toBe('again')
    expect(await look()).toEqual([
      [0, 0],
      [0, 0],
    ])
  })

  it('a process that dies between two steps leaves a hold that expires with the TTL', async () => {
    let reserves = 0
    const dying = instrument(client, (name, call) =>
      name === 'reserve' && ++reserves === 1 ? call() : new Promise(() => {}),
    )
    const p = prefix.next()
    const clock = fakeClock()
    const store = redisStore({ client: dying, prefix: p, clock, timeoutMs: 100 })
    const specs = [spec('returned'), spec('kept', { expiry: 'keep' }), spec('t', { scope: 'acme' })]
    await expect(store.reserve(reserveOf('crash', specs))).rejects.toBeInstanceOf(RedisStoreError)
    const survivor = redisStore({ client, prefix: p, clock })
    const look = async () => (await survivor.read(specs)).map((s) => [s.used, s.held])
    expect(await look()).toEqual([
      [1, 1],
      [1, 1],
      [0, 0],
    ])
    expect(await survivor.lookup('crash')).toMatchObject({ state: 'held' })
    clock.advance(60_000)
    // As for any reservation nobody settled: `release` holds return, `keep` holds stay charged.
    expect(await look()).toEqual([
      [0, 0],
      [1, 0],
      [0, 0],
    ])
    expect(await survivor.lookup('crash')).toMatchObject({ state: 'expired' })
  })

  it('a hold that lands after its step timed out is cancelled, as are the steps before it', async () => {
    const p = prefix.next()
    const { org, port } = await remoteTenant(p)
    const clock = fakeClock()
    const store = redisStore({ client, prefix: p, clock, timeoutMs: 150 })
    const patient = redisStore({ client, prefix: p, clock, timeoutMs: 5_000 })
    const specs = [spec('g'), spec('t', { scope: org })]
    await cluster.node(cluster.ports.indexOf(port)).call('CLIENT', 'PAUSE', '400', 'WRITE')
    const error = await store.reserve(reserveOf('slow', specs)).catch((e: unknown) => e)
    expect(error).toMatchObject({ name: 'RedisStoreError', code: 'timeout' })
    // The paused node answers after the pause; the late hold is then taken back (bounded polling).
    let states: number[][] = []
    for (let i = 0; i < 40; i++) {
      states = (await patient.read(specs)).map((s) => [s.used, s.held])
      if (states.every(([used]) => used === 0) && (await patient.lookup('slow')) === null) break
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    expect(states).toEqual([
      [0, 0],
      [0, 0],
    ])
    expect(await patient.lookup('slow')).toBeNull()
  })

  it('a cancelled hold leaves no trace: its alerts fire later, its throttle unit is returned', async () => {
    const clock = fakeClock()
    const store = redisStore({ client, prefix: prefix.next(), clock })
    const shared = spec('g', {
      metric: 'tokens',
      amount: 6,
      cap: 10,
      alerts: [0.5],
      throttle: { at: 0, limit: 1, periodMs: 60_000 },
    })
    const never = spec('t', { amount: 2, cap: 1, scope: 'acme' })
    const refused = await store.reserve(reserveOf('a', [shared, never]))
    expect(refused).toMatchObject({ status: 'denied' })
    if (refused.status !== 'denied') return
    expect(refused.counters[0]).toMatchObject({
      denied: false,
      used: 0,
      held: 0,
      crossed: [],
      throttled: false,
    })
    expect(refused.counters[1]).toMatchObject({ denied: true, used: 0 })
    const admitted = await store.reserve(reserveOf('b', [shared]))
    expect(admitted).toMatchObject({ status: 'ok' })
    if (admitted.status === 'ok') expect(admitted.counters[0]).toMatchObject({ used: 6, crossed: [0.5] })
    expect(await store.reserve(reserveOf('c', [{ ...shared, amount: 1 }]))).toMatchObject({
      status: 'denied',
    })
  })
})
