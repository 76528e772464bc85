/**
 * The core conformance suite against the real Redis (127.0.0.1:6379 unless TOLLGATE_TEST_REDIS
 * says otherwise), one fresh prefix per store, time from the suite's fake clock. After the run
 * every key the suite left must carry a TTL, save the documented permanent ones.
 */
import { describeStoreConformance } from '@tollgate/core/testing'
import { afterAll, expect } from 'vitest'
import { redisStore } from './store.js'
import { deleteKeys, prefixes, scanKeys, testClient } from './test/redis.js'

const client = testClient()
const prefix = prefixes('conformance')

/** Overrides, blocks and lifetime windows live until cleared; everything else expires. */
const permanent = (key: string) => /^\{[^{}]*\}:(o|so|b):/.test(key) || /^\{[^{}]*\}:f:0:/.test(key)

afterAll(async () => {
  try {
    const keys = await scanKeys(client, prefix.pattern)
    expect(keys.length).toBeGreaterThan(1_000)
    const pipeline = client.pipeline()
    for (const key of keys) pipeline.pttl(key)
    const ttls = (await pipeline.exec())!.map(([, ttl]) => ttl as number)
    const forever = keys.filter((key, i) => ttls[i]! < 0 && !permanent(key))
    expect(forever.map((key) => key.slice(0, 100))).toEqual([])
  } finally {
    await deleteKeys(client, prefix.pattern)
    await client.quit()
  }
})

describeStoreConformance('redisStore', (clock) => redisStore({ client, prefix: prefix.next(), clock }), {
  numRuns: 50,
})

describeStoreConformance(
  'redisStore (batch: true)',
  (clock) => redisStore({ client, prefix: prefix.next(), clock, batch: true }),
  { numRuns: 25 },
)
