/**
 * The gate's local fallback with a real Redis that is killed and restarted: while Redis is
 * down each process enforces its share of every cap on a local memory store; when Redis is
 * back, decisions count in Redis again.
 */
import { createTollgate, type PolicyInput } from '@tollgate/core'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { redisStore } from './store.js'
import { startRedis, type TestServer } from './test/server.js'

// a lifetime window: the test's calls must not straddle a window's end, which a calendar minute
// of wall-clock time did now and then under load (six admitted locally: five, then one more)
const policy: PolicyInput = {
  rules: [{ id: 'rpm', per: 'user', limits: { requests: 20 }, window: 'lifetime' }],
}
const ask = (user: string) => ({ subject: { user } })

let server: TestServer
let client: Redis

beforeAll(async () => {
  server = await startRedis()
  client = new Redis(server.url, {
    enableOfflineQueue: false,
    autoResendUnfulfilledCommands: false,
    maxRetriesPerRequest: 0,
    retryStrategy: () => 20,
  })
  client.on('error', () => {}) // expected while the server is down
})

afterAll(async () => {
  client.disconnect()
  await server.kill()
})

const ready = () =>
  client.status === 'ready'
    ? Promise.resolve()
    : new Promise<void>((resolve) => client.once('ready', () => resolve()))

describe('local fallback with Redis killed and restarted', () => {
  it('enforces a quarter of each cap locally while Redis is down, and counts in Redis again after', async () => {
    await ready()
    const store = redisStore({ client, prefix: 'fallback', timeoutMs: 200 })
    const gate = createTollgate({ policy, store, timeoutMs: 500, localFallback: { share: 0.25 } })
    const before = await Promise.all(Array.from({ length: 3 }, () => gate.reserve(ask('a'))))
    expect(before.every((d) => d.allowed && d.flags.length === 0)).toBe(true)

    await server.kill()
    const during = []
    for (let i = 0; i < 8; i++) during.push(await gate.reserve(ask('b')))
    // a quarter of 20: five admitted locally, then 429 from the local count
    expect(during.filter((d) => d.allowed)).toHaveLength(5)
    expect(during.every((d) => d.flags.includes('store_fallback'))).toBe(true)
    expect(during.at(-1)).toMatchObject({ allowed: false, status: 429, rule: 'rpm' })
    const held = during.find((d) => d.allowed)!
    expect(await gate.settle(held.id)).toMatchObject({ status: 'settled' }) // settled locally

    await server.restart()
    await ready()
    const after = await gate.reserve(ask('a'))
    expect(after).toMatchObject({ allowed: true, flags: [] })
    expect(after.limits[0]).toMatchObject({ limit: 20 })
  })
})
