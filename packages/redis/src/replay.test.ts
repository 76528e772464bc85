/**
 * A reserve is idempotent by reservation id, and a reserve whose answer is lost is cleaned up.
 *
 * Against a private redis-server. An answer is lost on purpose by a TCP proxy (test/proxy.ts) that
 * lets Redis run the command and then cuts the connection before the reply reaches the client; it
 * can refuse reconnections, so that the test looks at the hold that landed before the client is
 * ready again. Nothing waits for time but reconnection (bounded polls); windows and expiry run on a
 * fake clock.
 */
import { type CounterSpec, createTollgate, type PolicyInput, type StoreReserve } from '@tollgate/core'
import { fakeClock } from '@tollgate/core/testing'
import { Redis, type RedisOptions } from 'ioredis'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { type RedisStore, RedisStoreError, redisStore, redisStoreWithoutLeanScripts } from './store.js'
import { startProxy, type TestProxy } from './test/proxy.js'
import { startRedis, type TestServer } from './test/server.js'

let server: TestServer
let proxy: TestProxy
/** A client straight to Redis, to look at what a test's store left there. */
let direct: Redis
const clients: Redis[] = []

/** A client as the docs recommend, unless `extra` says otherwise; through the proxy by default. */
function clientOf(extra: RedisOptions = {}, url = proxy.url): Redis {
  const client = new Redis(url, {
    enableOfflineQueue: false,
    autoResendUnfulfilledCommands: false,
    maxRetriesPerRequest: 0,
    retryStrategy: () => 20,
    ...extra,
  })
  client.on('error', () => {}) // the lost connections are on purpose
  clients.push(client)
  return client
}

const ready = (client: Redis) =>
  client.status === 'ready'
    ? Promise.resolve()
    : new Promise<void>((resolve) => client.once('ready', () => resolve()))

/** Polls `check` until it holds (at most about 5 s): for a client to reconnect and its clean-up to land. */
async function eventually(check: () => Promise<boolean>, ms = 5_000): Promise<boolean> {
  for (let i = 0; i < ms / 20; i++) {
    if (await check().catch(() => false)) return true
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  return false
}

beforeAll(async () => {
  server = await startRedis()
  proxy = await startProxy(server.port)
  direct = clientOf({}, server.url)
  await ready(direct)
})

// A test that failed half-way must not leave the proxy refusing the next test's client.
afterEach(() => proxy.refuse(false))

afterAll(async () => {
  for (const client of clients) client.disconnect()
  await proxy?.close()
  await server?.kill()
})

const START = Date.parse('2026-03-02T10:00:00.000Z')
const DAY = [Date.parse('2026-03-02T00:00:00.000Z'), Date.parse('2026-03-03T00:00:00.000Z')]
const LIFETIME = [0, Number.MAX_SAFE_INTEGER]

/** A counter of `amount` at its cap: a second hold would be refused. */
function counter(key: string, window: CounterSpec['window'], amount = 10): CounterSpec {
  return { key, metric: 'tokens', amount, cap: amount, enforce: true, window, expiry: 'keep' }
}

/** Calendar windows only (the lean reserve), and every other kind (the general reserve). */
const calendar = (key: string) => [
  counter(`${key}:life`, { kind: 'fixed', bounds: LIFETIME }),
  counter(`${key}:day`, { kind: 'fixed', bounds: DAY }),
]
const general = (key: string) => [
  { ...counter(`${key}:breaker`, { kind: 'fixed', bounds: DAY }), trip: { cooldownMs: 60_000 } },
  counter(`${key}:lease`, { kind: 'lease', ttlMs: 60_000 }, 1),
  counter(`${key}:roll`, { kind: 'sliding', sizeMs: 60_000, slotMs: 10_000 }, 3),
  counter(`${key}:bucket`, { kind: 'bucket', intervalMs: 1_000 }, 2),
]

const reserveOf = (id: string, counters: CounterSpec[]): StoreReserve => ({
  id,
  counters,
  ttlMs: 60_000,
  blocks: [],
  meta: { model: 'm' },
})

const usedHeld = async (store: RedisStore, specs: CounterSpec[]) =>
  (await store.read(specs)).map((s) => [s.used, s.held])

let n = 0
const prefix = () => `replay-${++n}`

describe('a reserve replayed under its id', () => {
  const flavours = {
    lean: (client: Redis, p: string) => redisStore({ client, prefix: p, clock: fakeClock(START) }),
    general: (client: Redis, p: string) =>
      redisStoreWithoutLeanScripts({ client, prefix: p, clock: fakeClock(START) }),
    batch: (client: Redis, p: string) =>
      redisStore({ client, prefix: p, clock: fakeClock(START), batch: true }),
  }
  for (const [name, make] of Object.entries(flavours)) {
    it(`holds nothing more and answers as the first did, then nothing once closed (${name})`, async () => {
      const store = make(direct, prefix())
      for (const specs of [calendar('c'), general('g')]) {
        const input = reserveOf(`r-${specs.length}`, specs)
        const first = await store.reserve(input)
        expect(first.status).toBe('ok')
        // Every counter is at its cap: a second hold would be refused (and trip the breaker).
        expect(await store.reserve(input)).toEqual(first)
        expect(await usedHeld(store, specs)).toEqual(
          specs.map((s) => (s.window.kind === 'bucket' ? [s.amount, 0] : [s.amount, s.amount])),
        )
        expect(await store.commit({ id: input.id, amounts: null })).toMatchObject({ status: 'released' })
        const empty = specs.map(() => [0, 0])
        // bucket holds refill with time, not on release (as in the memory store): left out here
        const unbucketed = (rows: number[][]) => rows.filter((_, i) => specs[i]!.window.kind !== 'bucket')
        expect(unbucketed(await usedHeld(store, specs))).toEqual(unbucketed(empty))
        // Closed: a replay holds nothing and says so; the release stays the last word.
        await expect(store.reserve(input)).rejects.toThrow(/was used before and is closed/)
        // the code the store contract names, which a storeHandler answers with a 409
        await expect(store.reserve(input)).rejects.toMatchObject({ code: 'reservation_closed' })
        expect(unbucketed(await usedHeld(store, specs))).toEqual(unbucketed(empty))
        expect(await store.lookup(input.id)).toMatchObject({ state: 'released' })
        // No breaker was tripped by the replays: a new reservation at the cap passes.
        const other = reserveOf(`other-${specs.length}`, specs.slice(0, 1))
        expect(await store.reserve(other)).toMatchObject({ status: 'ok' })
      }
    })
  }

  for (const [name, make] of Object.entries(flavours)) {
    it(`is not refused by a block set since: it was admitted before the block (${name})`, async () => {
      const store = make(direct, prefix())
      await store.block('marker', 'blocked')
      for (const specs of [calendar('c'), general('g')]) {
        const input = reserveOf(`b-${specs.length}`, specs)
        const first = await store.reserve(input)
        expect(first.status).toBe('ok')
        expect(await store.reserve({ ...input, blocks: ['marker'] })).toEqual(first)
        expect(await usedHeld(store, specs.slice(0, 1))).toEqual([[10, 10]])
        expect(
          await store.reserve({ ...reserveOf(`new-${specs.length}`, []), blocks: ['marker'] }),
        ).toMatchObject({
          status: 'blocked',
        })
      }
    })
  }

  it('twice in one batch script: the second answers as the first, one hold', async () => {
    const store = flavours.batch(direct, prefix())
    for (const specs of [calendar('c'), general('g')]) {
      const input = reserveOf(`both-${specs.length}`, specs)
      const [a, b] = await Promise.all([store.reserve(input), store.reserve(input)])
      expect(a.status).toBe('ok')
      expect(b).toEqual(a)
      expect((await usedHeld(store, specs))[0]).toEqual([10, 10])
    }
  })
})

describe('a reserve whose answer is lost', () => {
  for (const batch of [false, true]) {
    it(`has its holds returned once the client is ready again, and a resend holds nothing${batch ? ' (batch)' : ''}`, async () => {
      const client = clientOf()
      await ready(client)
      const p = prefix()
      const store = redisStore({ client, prefix: p, clock: fakeClock(START), batch })
      const observer = redisStore({ client: direct, prefix: p, clock: fakeClock(START) })
      const specs = calendar('lost')
      // Scripts loaded first: the reserve below is one EVALSHA, which Redis runs.
      await store.reserve(reserveOf('warm', [counter('warm', { kind: 'fixed', bounds: LIFETIME })]))
      const input = reserveOf('lost-one', specs)
      // A second reserve in the same batch (batch: one script for both, one answer lost for both).
      const neighbour = reserveOf('neighbour', calendar('neighbour'))
      proxy.refuse(true)
      proxy.dropReplyOf('lost:life')
      const cuts = proxy.cuts
      const answers = await Promise.allSettled([
        store.reserve(input),
        ...(batch ? [store.reserve(neighbour)] : []),
      ])
      expect(proxy.cuts).toBe(cuts + 1)
      for (const answer of answers) expect(answer.status).toBe('rejected')
      // Redis ran it: the holds are there, and nobody will settle them.
      expect(await observer.lookup(input.id)).toMatchObject({ state: 'held' })
      expect(await usedHeld(observer, specs)).toEqual([
        [10, 10],
        [10, 10],
      ])
      proxy.refuse(false)
      // The client reconnects; the store returns the holds by itself and remembers the id.
      const cleaned = await eventually(async () => (await observer.lookup(input.id))?.state === 'released')
      expect(cleaned).toBe(true)
      expect(await usedHeld(observer, specs)).toEqual([
        [0, 0],
        [0, 0],
      ])
      if (batch) expect(await observer.lookup(neighbour.id)).toMatchObject({ state: 'released' })
      // A resend arriving after the clean-up (the same command again) holds nothing.
      await ready(client)
      await expect(store.reserve(input)).rejects.toThrow(/was used before and is closed/)
      expect(await usedHeld(observer, specs)).toEqual([
        [0, 0],
        [0, 0],
      ])
    })
  }

  it('has its clean-up tried again when an attempt fails, until it lands', async () => {
    // Redis refuses the first attempt: the client's user may not run scripts for a moment (NOPERM).
    await direct.call('ACL', 'SETUSER', 'app', 'reset', 'on', '>secret', '~*', '&*', '+@all')
    const client = clientOf({ username: 'app', password: 'secret' })
    await ready(client)
    const p = prefix()
    // timeoutMs is also the pause between two attempts while the client stays ready
    const store = redisStore({ client, prefix: p, clock: fakeClock(START), timeoutMs: 200 })
    const observer = redisStore({ client: direct, prefix: p, clock: fakeClock(START) })
    await store.reserve(reserveOf('warm', [counter('warm', { kind: 'fixed', bounds: LIFETIME })]))
    const input = reserveOf('retried', calendar('retried'))
    proxy.refuse(true)
    proxy.dropReplyOf('retried:life')
    await expect(store.reserve(input)).rejects.toThrow()
    expect(await observer.lookup(input.id)).toMatchObject({ state: 'held' })
    await direct.call('ACL', 'LOG', 'RESET')
    await direct.call('ACL', 'SETUSER', 'app', '-evalsha', '-eval')
    proxy.refuse(false)
    // the first attempt, refused (EVAL: ioredis sends a script in full on a new connection)
    const denied = async () => /"eval(sha)?"/.test(JSON.stringify(await direct.call('ACL', 'LOG')))
    expect(await eventually(denied, 2_000)).toBe(true)
    expect(await observer.lookup(input.id)).toMatchObject({ state: 'held' })
    await direct.call('ACL', 'SETUSER', 'app', '+evalsha', '+eval')
    const cleaned = await eventually(
      async () => (await observer.lookup(input.id))?.state === 'released',
      2_000,
    )
    expect(cleaned).toBe(true)
    expect(await usedHeld(observer, input.counters)).toEqual([
      [0, 0],
      [0, 0],
    ])
    await expect(store.reserve(input)).rejects.toMatchObject({ code: 'reservation_closed' })
  })

  it('is resent by ioredis (its default) and holds once', async () => {
    for (const batch of [false, true]) {
      // ioredis' defaults: unanswered commands are sent again after the reconnect
      const client = clientOf({ autoResendUnfulfilledCommands: true, maxRetriesPerRequest: 20 })
      await ready(client)
      const store = redisStore({ client, prefix: prefix(), clock: fakeClock(START), batch })
      await store.reserve(reserveOf('warm', [counter('warm', { kind: 'fixed', bounds: LIFETIME })]))
      const a = reserveOf('resent-a', calendar('resent-a'))
      const b = reserveOf('resent-b', general('resent-b'))
      const cuts = proxy.cuts
      proxy.dropReplyOf('resent-a:life')
      // batch: both in one script; else only the first loses its answer
      const [first, second] = await Promise.all([store.reserve(a), store.reserve(b)])
      expect(proxy.cuts).toBe(cuts + 1)
      expect(first.status).toBe('ok')
      expect(second.status).toBe('ok')
      expect(await usedHeld(store, a.counters)).toEqual([
        [10, 10],
        [10, 10],
      ])
      expect((await usedHeld(store, b.counters)).slice(0, 3)).toEqual([
        [10, 10],
        [1, 1],
        [3, 3],
      ])
      expect(await store.commit({ id: a.id, amounts: { tokens: 4 } })).toMatchObject({ status: 'settled' })
      expect(await usedHeld(store, a.counters)).toEqual([
        [4, 0],
        [4, 0],
      ])
    }
  })

  it('left unanswered by ioredis (no resend, retries left) times out and is cleaned up', async () => {
    // Without resending, ioredis drops an unanswered command at the reconnect and never settles its
    // promise: only the store's timeout ends the call.
    const client = clientOf({ maxRetriesPerRequest: 20 })
    await ready(client)
    const p = prefix()
    const store = redisStore({ client, prefix: p, clock: fakeClock(START), timeoutMs: 300 })
    const observer = redisStore({ client: direct, prefix: p, clock: fakeClock(START) })
    await store.reserve(reserveOf('warm', [counter('warm', { kind: 'fixed', bounds: LIFETIME })]))
    const input = reserveOf('dropped', calendar('dropped'))
    proxy.dropReplyOf('dropped:life')
    const error = await store.reserve(input).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(RedisStoreError)
    expect(error).toMatchObject({ code: 'timeout' })
    expect(await eventually(async () => (await observer.lookup(input.id))?.state === 'released')).toBe(true)
    expect(await usedHeld(observer, input.counters)).toEqual([
      [0, 0],
      [0, 0],
    ])
  })
})

describe('through the gate, a reserve whose answer is lost', () => {
  const models = { m: { price: { input: 1_000_000, output: 1_000_000 } } } // $1 a token
  const ask = (user: string) => ({
    subject: { user },
    model: 'm',
    estimate: { inputTokens: 10, maxOutputTokens: 0 },
  })

  it('refused by a budget that fails closed: the request is not charged', async () => {
    const policy: PolicyInput = {
      models,
      rules: [{ id: 'budget', per: 'user', limits: { cost: 100 }, window: 'month' }],
    }
    const client = clientOf()
    await ready(client)
    const clock = fakeClock(START)
    const p = prefix()
    const gate = createTollgate({ policy, store: redisStore({ client, prefix: p, clock }), clock })
    const observer = createTollgate({
      policy,
      store: redisStore({ client: direct, prefix: p, clock }),
      clock,
    })
    await gate.usage({ subject: { user: 'warm' } }) // scripts loaded
    proxy.refuse(true)
    proxy.dropReplyOf('user=victim')
    expect(await gate.reserve(ask('victim'))).toMatchObject({ allowed: false, code: 'store_unavailable' })
    const budget = async () => (await observer.usage({ subject: { user: 'victim' } }))[0]!
    const landed = await budget() // it landed: $10 held, in micro-dollars
    expect(landed.used).toBeGreaterThan(0)
    expect(landed.held).toBe(landed.used)
    proxy.refuse(false)
    expect(await eventually(async () => (await budget()).used === 0)).toBe(true)
    // The hold's TTL passes: nothing was kept charged.
    clock.advance('11m')
    expect(await budget()).toMatchObject({ used: 0, held: 0 })
  })

  it('admitted degraded under a concurrency limit: no lease is left to refuse the next call', async () => {
    const policy: PolicyInput = {
      models,
      rules: [{ id: 'one-at-a-time', per: 'user', limits: { concurrency: 1 }, failure: 'open' }],
    }
    const client = clientOf()
    await ready(client)
    const clock = fakeClock(START)
    const p = prefix()
    const gate = createTollgate({ policy, store: redisStore({ client, prefix: p, clock }), clock })
    const observer = createTollgate({
      policy,
      store: redisStore({ client: direct, prefix: p, clock }),
      clock,
    })
    await gate.usage({ subject: { user: 'warm' } })
    proxy.refuse(true)
    proxy.dropReplyOf('user=alice')
    const first = await gate.reserve(ask('alice'))
    expect(first).toMatchObject({ allowed: true, flags: ['store_degraded'] })
    if (first.allowed)
      expect(await gate.settle(first.reservation.id, { inputTokens: 10 })).toMatchObject({
        status: 'degraded',
      })
    // The lease landed: until the client is back, alice is refused with nothing in flight.
    expect(await observer.reserve(ask('alice'))).toMatchObject({
      allowed: false,
      code: 'concurrency_limited',
    })
    proxy.refuse(false)
    const lease = async () => (await observer.usage({ subject: { user: 'alice' } }))[0]!
    expect(await eventually(async () => (await lease()).used === 0)).toBe(true)
    await ready(client)
    const next = await gate.reserve(ask('alice'))
    expect(next).toMatchObject({ allowed: true, flags: [] })
  })
})
