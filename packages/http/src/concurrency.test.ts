/**
 * No over-admission through HTTP: many gate decisions in flight at once, from several clients,
 * through one or two store servers, admit exactly the cap — with the memory store behind one
 * server, and with the Redis store behind two servers sharing one Redis.
 */
import { createTollgate, memoryStore, type PolicyInput } from '@tollgate/core'
import { fakeClock } from '@tollgate/core/testing'
import { redisStore } from '@tollgate/redis'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { httpStore } from './client.js'
import { SECRET, startServer, type TestServer } from './test/server.js'

const REDIS_URL = process.env.TOLLGATE_TEST_REDIS ?? 'redis://127.0.0.1:6379'
const prefix = `tgtest-http-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`

const policy: PolicyInput = {
  models: { m: { price: { input: 1, output: 1 } } },
  rules: [
    { id: 'daily', per: 'user', limits: { requests: 50 }, window: 'day' },
    { id: 'inflight', per: 'user', limits: { concurrency: 1_000 } },
  ],
}
const ask = { subject: { user: 'u1' }, model: 'm', estimate: { inputTokens: 1, maxOutputTokens: 0 } }

let servers: TestServer[] = []
let client: Redis
beforeAll(async () => {
  servers = [await startServer(), await startServer()]
  client = new Redis(REDIS_URL, { enableOfflineQueue: false, autoResendUnfulfilledCommands: false })
})
afterAll(async () => {
  for (const server of servers) await server.close()
  const keys = await client.keys(`{${prefix}*`)
  if (keys.length > 0) await client.unlink(...keys)
  await client.quit()
})

/**
 * `n` reserves spread over `gates`, all started before any answers. Timeouts are generous: this is
 * about admission under contention, not latency (a store call that timed out would be degraded).
 */
async function burst(gates: ReturnType<typeof createTollgate>[], n: number) {
  const decisions = await Promise.all(
    Array.from({ length: n }, (_, i) => gates[i % gates.length]!.reserve(ask)),
  )
  return {
    allowed: decisions.filter((d) => d.allowed && d.flags.length === 0).length,
    refused: decisions.filter((d) => !d.allowed && d.code === 'quota_exceeded').length,
  }
}

describe('many parallel reserves through HTTP', () => {
  it('memory store behind one server: exactly the cap is admitted', async () => {
    const url = servers[0]!.mount(memoryStore({ clock: fakeClock() }))
    const gates = Array.from({ length: 4 }, () =>
      createTollgate({
        policy,
        store: httpStore({ url, secret: SECRET, timeoutMs: 10_000 }),
        timeoutMs: 20_000,
      }),
    )
    expect(await burst(gates, 300)).toEqual({ allowed: 50, refused: 250 })
  })

  it('Redis store behind two servers: exactly the cap is admitted across both', async () => {
    await client.ping()
    const clock = fakeClock()
    const urls = servers.map((server) => server.mount(redisStore({ client, prefix, clock })))
    const gates = Array.from({ length: 6 }, (_, i) =>
      createTollgate({
        policy,
        store: httpStore({ url: urls[i % urls.length]!, secret: SECRET, timeoutMs: 10_000 }),
        timeoutMs: 20_000,
      }),
    )
    expect(await burst(gates, 300)).toEqual({ allowed: 50, refused: 250 })
  })
})
