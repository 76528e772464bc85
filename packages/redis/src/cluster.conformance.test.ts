/**
 * The core conformance suite against a real three-master Redis Cluster started for this file:
 * once as the engine uses a policy without a tenant (every key in the shared slot, one script
 * per call), and once with each counter given a scope by its key (`scoped`), so that most
 * reservations span two or three slots and run the Cluster protocol of cluster.ts.
 */
import type { CounterSpec, Store } from '@tollgate/core'
import { describeStoreConformance } from '@tollgate/core/testing'
import { afterAll, beforeAll, expect } from 'vitest'
import { type RedisStore, redisStore } from './store.js'
import { scanCluster, startCluster } from './test/cluster.js'
import { prefixes } from './test/redis.js'

const cluster = startCluster()
const client = cluster.then((c) => c.client())
const prefix = prefixes('cluster-conformance')

// Starting the cluster takes a few seconds: wait for it before the first test's own timeout starts.
beforeAll(async () => {
  await client
}, 30_000)

/** Overrides, blocks and lifetime windows live until cleared; everything else expires. */
const permanent = (key: string) => /^\{[^{}]*\}:(o|so|b):/.test(key) || /^\{[^{}]*\}:f:0:/.test(key)

afterAll(async () => {
  const c = await cluster
  try {
    const redis = await client
    const keys = await scanCluster(redis, prefix.pattern)
    expect(keys.length).toBeGreaterThan(1_000)
    const ttls = await Promise.all(keys.map((key) => redis.pttl(key)))
    const forever = keys.filter((key, i) => ttls[i]! < 0 && !permanent(key))
    expect(forever.map((key) => key.slice(0, 100))).toEqual([])
    // The scoped suite left counters in tenant slots as well as in the shared one.
    expect(keys.some((key) => key.includes(':acme}'))).toBe(true)
  } finally {
    await c.stop()
  }
}, 30_000)

/** Tenants for `scoped`: none (the shared slot), a plain one, and one that needs escaping. */
const SCOPES = [undefined, 'acme', 'b{}:%/é'] as const

/** The same scope for a key every time (FNV-1a of its code units). */
function scopeOf(key: string): string | undefined {
  let h = 0x811c9dc5
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193)
  return SCOPES[(h >>> 0) % SCOPES.length]
}

/**
 * The store with every counter scoped by its key, as the engine scopes counters by tenant; a
 * counter the suite gives a scope of its own keeps it.
 */
function scoped(store: RedisStore): Store {
  const scope = (spec: CounterSpec): CounterSpec => {
    const s = spec.scope === undefined ? scopeOf(spec.key) : undefined
    return s === undefined ? spec : { ...spec, scope: s }
  }
  return {
    ...store,
    reserve: (input) => store.reserve({ ...input, counters: input.counters.map(scope) }),
    read: (specs) => store.read(specs.map(scope)),
    adjust: (spec, amount) => store.adjust(scope(spec), amount),
    setOverride: (key, cap, s) => store.setOverride(key, cap, s ?? scopeOf(key)),
  }
}

describeStoreConformance(
  'redisStore on a Redis Cluster',
  async (clock) => redisStore({ client: await client, prefix: prefix.next(), clock }),
  { numRuns: 25 },
)

describeStoreConformance(
  'redisStore on a Redis Cluster, counters spread over slots',
  async (clock) => scoped(redisStore({ client: await client, prefix: prefix.next(), clock })),
  { numRuns: 25 },
)
