/**
 * The core store conformance suite against `httpStore` → `storeHandler(redisStore)` on the real
 * Redis (127.0.0.1:6379 unless TOLLGATE_TEST_REDIS says otherwise): the whole path a deployment
 * uses. One fresh prefix per store; time from the suite's fake clock (the Redis store's test clock).
 */
import { describeStoreConformance } from '@tollgate/core/testing'
import { redisStore } from '@tollgate/redis'
import { Redis } from 'ioredis'
import { afterAll, beforeAll } from 'vitest'
import { httpStore } from './client.js'
import { SECRET, startServer, type TestServer } from './test/server.js'

const REDIS_URL = process.env.TOLLGATE_TEST_REDIS ?? 'redis://127.0.0.1:6379'
const base = `tgtest-httpconf-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}-`
const client = new Redis(REDIS_URL, { enableOfflineQueue: false, autoResendUnfulfilledCommands: false })
let server: TestServer
let n = 0

beforeAll(async () => {
  server = await startServer()
})
afterAll(async () => {
  await server.close()
  let cursor = '0'
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', `{${base}*`, 'COUNT', 1_000)
    cursor = next
    if (keys.length > 0) await client.unlink(...keys)
  } while (cursor !== '0')
  await client.quit()
})

describeStoreConformance(
  'httpStore → storeHandler(redisStore)',
  (clock) =>
    httpStore({
      url: server.mount(redisStore({ client, prefix: `${base}${++n}`, clock })),
      secret: SECRET,
      clockMaxAgeMs: 0,
    }),
  { numRuns: 25 },
)
