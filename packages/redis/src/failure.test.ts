/**
 * Failure behaviour: the factory's checks, a Redis that does not answer, one that is paused,
 * one that is killed mid-load and restarted, and a script cache that was flushed.
 * These tests wait real time only for the store's timeouts (a few hundred ms), never for windows.
 */
import { createTollgate, type PolicyInput } from '@tollgate/core'
import { fakeClock } from '@tollgate/core/testing'
import { Cluster, Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { RedisStoreError, redisStore } from './store.js'
import { startRedis, type TestServer } from './test/server.js'

const TIMEOUT = 200
/** What a busy CI machine may add to a deadline. A call that did not time out would wait far longer. */
const SLACK = 1_000

const models = { m: { price: { input: 1, output: 1 } } }
/** A rate limit (fails open by default) and a budget (fails closed by default). */
const rate: PolicyInput = {
  models,
  rules: [{ id: 'rpm', per: 'user', limits: { requests: 5 }, window: 'minute' }],
}
const budget: PolicyInput = {
  models,
  rules: [{ id: 'budget', per: 'user', limits: { cost: 1 }, window: 'month' }],
}
const ask = (user = 'u1') => ({
  subject: { user },
  model: 'm',
  estimate: { inputTokens: 10, maxOutputTokens: 0 },
})

let server: TestServer
const clients: Redis[] = []

function clientOf(url: string, extra: Record<string, unknown> = {}): Redis {
  const client = new Redis(url, {
    enableOfflineQueue: false,
    autoResendUnfulfilledCommands: false,
    maxRetriesPerRequest: 0,
    retryStrategy: () => 20,
    ...extra,
  })
  client.on('error', () => {}) // connection errors are expected here; the store reports its own
  clients.push(client)
  return client
}

const ready = (client: Redis) =>
  client.status === 'ready'
    ? Promise.resolve()
    : new Promise<void>((resolve) => client.once('ready', () => resolve()))

beforeAll(async () => {
  server = await startRedis()
})

afterAll(async () => {
  for (const client of clients) client.disconnect()
  await server.kill()
})

describe('the factory', () => {
  it('refuses a client with the offline queue on (Cluster too), a bad prefix and bad options', () => {
    const queued = new Redis({ lazyConnect: true })
    expect(() => redisStore({ client: queued })).toThrow(/enableOfflineQueue: false/)
    const queuedCluster = new Cluster([{ host: '127.0.0.1', port: 1 }], { lazyConnect: true })
    expect(() => redisStore({ client: queuedCluster })).toThrow(/enableOfflineQueue: false/)
    const cluster = new Cluster([{ host: '127.0.0.1', port: 1 }], {
      lazyConnect: true,
      enableOfflineQueue: false,
    })
    expect(redisStore({ client: cluster }).prefix).toBe('tollgate')
    const client = new Redis({ lazyConnect: true, enableOfflineQueue: false })
    for (const prefix of ['', '{x}', 'a}b', 'x\uD800'])
      expect(() => redisStore({ client, prefix })).toThrow(/prefix/)
    expect(() => redisStore({ client, timeoutMs: 0 })).toThrow(/timeoutMs/)
    expect(() => redisStore({ client, sweepLimit: 0.5 })).toThrow(/sweepLimit/)
    // an object with no prototype made the message itself throw, naming nothing
    expect(() => redisStore({ client, sweepLimit: Object.create(null) })).toThrow(/sweepLimit/)
    expect(() => redisStore({ client, graceMs: Object.create(null) })).toThrow(/graceMs/)
    expect(() => redisStore({ client: {} as Redis })).toThrow(/ioredis client/)
    for (const batch of ['true', 1, null, 1n])
      expect(() => redisStore({ client, batch: batch as never })).toThrow(/batch must be true or false/)
    // these threw bare TypeErrors (destructuring undefined, a BigInt JSON cannot write)
    expect(() => redisStore(undefined as never)).toThrow(/redisStore needs \{ client \}/)
    expect(() => redisStore({ client, prefix: 1n as never })).toThrow(/prefix must be a non-empty string/)
    for (const clock of [{}, Date.now, null])
      expect(() => redisStore({ client, clock: clock as never })).toThrow(/clock must have a now\(\)/)
    for (const now of [() => undefined, () => Number.NaN, () => new Date()])
      expect(() => redisStore({ client, clock: { now } as never })).toThrow(
        /clock.now\(\) must return milliseconds/,
      )
    expect(redisStore({ client, batch: false }).prefix).toBe('tollgate')
    expect(redisStore({ client }).prefix).toBe('tollgate')
  })

  it('refuses a client with a keyPrefix, which the scripts cannot honour (Cluster too)', () => {
    // With one, blocks and overrides were written under the client's prefix and read without it:
    // a blocked id was admitted.
    const prefixed = new Redis({ lazyConnect: true, enableOfflineQueue: false, keyPrefix: 'app:' })
    expect(() => redisStore({ client: prefixed })).toThrow(/without `keyPrefix`/)
    for (const options of [{ keyPrefix: 'app:' }, { redisOptions: { keyPrefix: 'app:' } }]) {
      const cluster = new Cluster([{ host: '127.0.0.1', port: 1 }], {
        lazyConnect: true,
        enableOfflineQueue: false,
        ...options,
      })
      expect(() => redisStore({ client: cluster })).toThrow(/without `keyPrefix`/)
    }
  })
})

describe('a Redis that does not answer', () => {
  it('every call rejects within the timeout, and the gate applies each rule’s failure mode', async () => {
    const nobody = clientOf('redis://127.0.0.1:1')
    const store = redisStore({ client: nobody, prefix: 'down', timeoutMs: TIMEOUT })
    const started = Date.now()
    const calls = [
      store.reserve({ id: 'r', counters: [], ttlMs: 1_000, blocks: [], meta: { model: 'm' } }),
      store.commit({ id: 'r', amounts: null }),
      store.read([
        {
          key: 'k',
          metric: 'requests',
          amount: 0,
          cap: 1,
          enforce: true,
          window: { kind: 'bucket', intervalMs: 1 },
          expiry: 'keep',
        },
      ]),
      store.lookup('r'),
      store.setOverride('k', 1),
      store.block('m', 'blocked'),
      store.blocked(['m']),
    ]
    const results = await Promise.allSettled(calls)
    expect(results.map((r) => r.status)).toEqual(calls.map(() => 'rejected'))
    for (const r of results) expect((r as PromiseRejectedResult).reason).toBeInstanceOf(RedisStoreError)
    expect(Date.now() - started).toBeLessThan(TIMEOUT + SLACK)

    const errors: unknown[] = []
    const open = createTollgate({
      policy: rate,
      store,
      timeoutMs: 1_000,
      onStoreError: (e) => errors.push(e),
    })
    const closed = createTollgate({ policy: budget, store, timeoutMs: 1_000 })
    const [a, b] = await Promise.all([open.reserve(ask()), closed.reserve(ask())])
    expect(a).toMatchObject({ allowed: true, flags: ['store_degraded'] })
    expect(b).toMatchObject({ allowed: false, code: 'store_unavailable', status: 503, retryable: true })
    expect(errors).toHaveLength(1)
    expect(String((errors[0] as Error).message)).toMatch(/did not answer within 200 ms/)
  })
})

describe('a Redis that is paused, killed and restarted', () => {
  it('a hold that lands after its reserve timed out is returned', async () => {
    const client = clientOf(server.url)
    await ready(client)
    const admin = clientOf(server.url)
    await ready(admin)
    const clock = fakeClock()
    const store = redisStore({ client, prefix: 'paused', timeoutMs: TIMEOUT, clock })
    const spec = {
      key: 'k',
      metric: 'tokens',
      amount: 5,
      cap: 10,
      enforce: true,
      window: { kind: 'fixed' as const, bounds: [0, Number.MAX_SAFE_INTEGER] },
      expiry: 'keep' as const,
    }
    await admin.call('CLIENT', 'PAUSE', String(TIMEOUT + 2 * SLACK), 'WRITE')
    const started = Date.now()
    await expect(
      store.reserve({ id: 'late', counters: [spec], ttlMs: 60_000, blocks: [], meta: { model: 'm' } }),
    ).rejects.toThrow(RedisStoreError)
    expect(Date.now() - started).toBeLessThan(TIMEOUT + SLACK)
    // Once Redis runs again the hold lands, and the store releases it by itself.
    let state: Awaited<ReturnType<typeof store.lookup>> = null
    for (let i = 0; i < 250 && state?.state !== 'released'; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20))
      state = await store.lookup('late').catch(() => null)
    }
    expect(state).toMatchObject({ state: 'released' })
    expect((await store.read([spec]))[0]).toMatchObject({ used: 0, held: 0 })
  })

  it('killed mid-load: every decision follows the failure modes within the timeout; enforcement resumes after a restart', async () => {
    const client = clientOf(server.url)
    await ready(client)
    const store = redisStore({ client, prefix: 'killed', timeoutMs: TIMEOUT })
    const open = createTollgate({ policy: rate, store, timeoutMs: 1_000 })
    const closed = createTollgate({ policy: budget, store, timeoutMs: 1_000 })
    const burst = (n: number) =>
      Promise.all(Array.from({ length: n }, (_, i) => (i % 2 ? closed : open).reserve(ask(`u${i % 10}`))))
    const before = await burst(40)
    expect(before.filter((d) => !d.allowed || d.flags.length > 0)).toEqual([])

    const inFlight = burst(200)
    await server.kill()
    const started = Date.now()
    const during = [...(await inFlight), ...(await burst(100))]
    expect(Date.now() - started).toBeLessThan(2 * TIMEOUT + SLACK)
    for (const [i, d] of during.entries()) {
      if (d.allowed) expect(d.flags.length === 0 || d.flags.includes('store_degraded')).toBe(true)
      else if (i % 2 === 1) expect(['store_unavailable', 'budget_exceeded']).toContain(d.code)
    }
    expect(during.some((d) => d.allowed && d.flags.includes('store_degraded'))).toBe(true)
    expect(during.some((d) => !d.allowed && d.code === 'store_unavailable')).toBe(true)

    await server.restart()
    await ready(client)
    const after = await burst(20)
    expect(after.every((d) => d.allowed && d.flags.length === 0)).toBe(true)
    // Enforcement is back: the minute's 5 requests per user are counted again.
    const user = await Promise.all(Array.from({ length: 8 }, () => open.reserve(ask('fresh'))))
    expect(user.filter((d) => d.allowed)).toHaveLength(5)
    for (const d of user.filter((d) => !d.allowed)) expect(d).toMatchObject({ rule: 'rpm', flags: [] })
  })

  it('a flushed script cache is reloaded on NOSCRIPT', async () => {
    const client = clientOf(server.url)
    await ready(client)
    const gate = createTollgate({
      policy: rate,
      store: redisStore({ client, prefix: 'noscript', clock: fakeClock() }),
    })
    expect(await gate.reserve(ask())).toMatchObject({ allowed: true })
    await client.script('FLUSH')
    expect(await gate.reserve(ask())).toMatchObject({ allowed: true })
    expect((await gate.usage({ subject: { user: 'u1' } }))[0]).toMatchObject({ used: 2 })
  })
})

describe('a Redis out of memory (maxmemory-policy noeviction)', () => {
  it('reserves follow the failure modes, settles and releases still close holds, usage is intact; enforcement resumes', async () => {
    const client = clientOf(server.url)
    await ready(client)
    const policy: PolicyInput = { models, rules: [...rate.rules!, ...budget.rules!] }
    const gate = createTollgate({ policy, store: redisStore({ client, prefix: 'oom' }) })
    const settled = await gate.reserve(ask())
    const released = await gate.reserve(ask())
    expect([settled.allowed, released.allowed]).toEqual([true, true])
    const ballast = 'x'.repeat(2_000_000)
    await client.set('oom-ballast', ballast)
    await client.config('SET', 'maxmemory-policy', 'noeviction')
    await client.config('SET', 'maxmemory', '1mb')
    try {
      // every write is refused: the budget fails closed, the rate limit open (flagged)
      expect(await gate.reserve(ask())).toMatchObject({ allowed: false, code: 'store_unavailable' })
      const rateOnly = createTollgate({ policy: rate, store: redisStore({ client, prefix: 'oom' }) })
      expect(await rateOnly.reserve(ask('u2'))).toMatchObject({ allowed: true, flags: ['store_degraded'] })
      // a commit's first write frees memory (ZREM), so Redis lets the script through: holds close
      await expect(gate.settle(settled.allowed ? settled.id : '', { inputTokens: 4 })).resolves.toMatchObject(
        {
          status: 'settled',
        },
      )
      await expect(gate.release(released.allowed ? released.id : '')).resolves.toMatchObject({
        status: 'released',
      })
      const during = await gate.usage({ subject: ask().subject })
      expect(during.map((s) => [s.rule, s.used, s.held])).toEqual([
        ['rpm', 1, 0],
        ['budget', 4, 0],
      ])
    } finally {
      await client.config('SET', 'maxmemory', '0')
      await client.del('oom-ballast')
    }
    expect(await gate.reserve(ask())).toMatchObject({ allowed: true, flags: [] })
    const after = await gate.usage({ subject: ask().subject })
    expect(after.map((s) => [s.rule, s.used, s.held])).toEqual([
      ['rpm', 2, 1], // used counts what is held
      ['budget', 14, 10],
    ])
  })
})

describe('many calls waiting for the connection', () => {
  it('share one pair of listeners and all settle within the timeout', async () => {
    const nobody = clientOf('redis://127.0.0.1:1')
    const store = redisStore({ client: nobody, prefix: 'crowd', timeoutMs: TIMEOUT })
    for (let round = 0; round < 3; round++) {
      const calls = Array.from({ length: 500 }, (_, i) => store.lookup(`r${i}`))
      expect(nobody.listenerCount('ready')).toBeLessThanOrEqual(2)
      const results = await Promise.allSettled(calls)
      expect(results.every((r) => r.status === 'rejected')).toBe(true)
    }
    expect(nobody.listenerCount('ready')).toBeLessThanOrEqual(2)
  })
})
