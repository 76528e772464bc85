/**
 * The lean reserve (lua/fast.ts) and the lean commit (lua/commit.ts) against the general scripts: the
 * same random sequence of reserves, settles, releases, overrides, blocks, breakers and clock moves on
 * two stores, one that takes the lean paths whenever it may and one that never does, must give the
 * same answers and leave the same keys, with the same contents and TTLs.
 */
import type { CounterSpec, StoreReserve } from '@tollgate/core'
import { fakeClock } from '@tollgate/core/testing'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fastEligible } from './codec.js'
import { type RedisStore, redisStore, redisStoreWithoutLeanScripts } from './store.js'
import { deleteKeys, prefixes, scanKeys, testClient } from './test/redis.js'
import { startRedis, type TestServer } from './test/server.js'

// A private Redis: the test reads every key of its stores after each step with SCAN, which walks the
// whole database, so a shared Redis holding many other keys would make it slow.
let server: TestServer
let client: ReturnType<typeof testClient>
const prefix = prefixes('fast')

// The 'forget' step sends plain commands, which fail (no offline queue) before the client is connected.
beforeAll(async () => {
  server = await startRedis()
  client = testClient(server.url)
  if (client.status !== 'ready') await new Promise((resolve) => client.once('ready', resolve))
})

afterAll(async () => {
  await deleteKeys(client, prefix.pattern)
  await client.quit()
  await server.kill()
})

const MINUTE = 60_000
const NEVER = Number.MAX_SAFE_INTEGER
const T0 = Date.UTC(2026, 2, 10, 12)

/** Calls of a lean script the client has made so far (ioredis defines each script as a method). */
function leanCalls(script: 'fast' | 'leanCommit'): { count(): number; stop(): void } {
  redisStore({ client, prefix: prefix.next() }) // defines the scripts on the client
  const target = client as unknown as Record<string, (...args: unknown[]) => unknown>
  const name = Object.keys(target).find((k) => k.startsWith(`tollgate_${script}_`))
  if (!name) throw new Error(`the ${script} script is not defined`)
  const original = target[name]!
  let n = 0
  target[name] = (...args: unknown[]) => {
    n++
    return original.apply(client, args)
  }
  return {
    count: () => n,
    stop: () => {
      target[name] = original
    },
  }
}

/**
 * Every key under a prefix, with its contents and whether it has a TTL; the prefix is cut out of keys
 * and values alike (records hold msgpack: compared byte for byte, so both prefixes have one length).
 */
async function layout(p: string): Promise<Record<string, { ttl: boolean; value: unknown }>> {
  const keys = await scanKeys(client, `{${p}*`)
  const text = (b: Buffer | string) => b.toString('latin1').replaceAll(p, '')
  const read = async (k: string) => {
    const type = await client.type(k)
    let value: unknown
    if (type === 'hash')
      value = Object.fromEntries(Object.entries(await client.hgetallBuffer(k)).map(([f, v]) => [f, text(v)]))
    else if (type === 'zset') value = await client.zrange(k, 0, -1, 'WITHSCORES')
    else value = text((await client.getBuffer(k)) ?? '')
    return { ttl: (await client.pttl(k)) > 0, value }
  }
  const values = await Promise.all(keys.map(read))
  return Object.fromEntries(keys.map((k, i) => [k.replace(p, ''), values[i]!]))
}

/** A counter as the engine would send it; `shape` picks what makes it (in)eligible for the lean path. */
interface Shape {
  key: string
  scope?: 't1' | 't2'
  amount: number
  cap: number
  enforce: boolean
  expiry: 'keep' | 'release'
  window: 'minute' | 'lifetime' | 'skewed' | 'sliding'
  trip: boolean
  alerts: boolean
}

const shape: fc.Arbitrary<Shape> = fc.record({
  key: fc.constantFrom('a', 'b', 'c', 'd', 'x:{y}', '%ü'),
  scope: fc.constantFrom(undefined, 't1', 't2'),
  amount: fc.integer({ min: 0, max: 40 }),
  cap: fc.integer({ min: 0, max: 100 }),
  enforce: fc.boolean(),
  expiry: fc.constantFrom('keep', 'release'),
  window: fc.constantFrom('minute', 'minute', 'minute', 'minute', 'minute', 'lifetime', 'skewed', 'sliding'),
  trip: fc.constantFrom(false, false, false, false, false, true),
  alerts: fc.constantFrom(false, false, false, false, false, true),
}) as fc.Arbitrary<Shape>

function spec(s: Shape, now: number): CounterSpec {
  const start = Math.floor(now / MINUTE) * MINUTE
  const bounds =
    s.window === 'lifetime'
      ? [0, NEVER]
      : s.window === 'skewed'
        ? [start - 3 * MINUTE, start - 2 * MINUTE]
        : [start - MINUTE, start, start + MINUTE, start + 2 * MINUTE]
  const c: CounterSpec = {
    key: s.key,
    metric: s.key === 'a' ? 'requests' : 'tokens',
    amount: s.amount,
    cap: s.cap,
    enforce: s.enforce,
    window:
      s.window === 'sliding'
        ? { kind: 'sliding', sizeMs: MINUTE, slotMs: 10_000 }
        : { kind: 'fixed', bounds },
    expiry: s.expiry,
  }
  if (s.scope) c.scope = s.scope
  if (s.trip) c.trip = { cooldownMs: 30_000 }
  if (s.alerts) c.alerts = [0.5, 0.9]
  return c
}

type Op =
  | { op: 'reserve'; counters: Shape[]; blocks: string[]; ttl: number }
  | { op: 'commit'; which: number; settle: boolean; amount: number; brief: boolean }
  | { op: 'override'; key: string; cap: number | null }
  | { op: 'block'; marker: string; on: boolean }
  | { op: 'advance'; ms: number }
  | { op: 'forget' }
  | { op: 'trip'; key: string; scope?: 't1' }

const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      op: fc.constant('reserve' as const),
      counters: fc.array(shape, { minLength: 1, maxLength: 4 }),
      blocks: fc.subarray(['m1', 'm2']),
      ttl: fc.constantFrom(5_000, 90_000),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant('commit' as const),
      which: fc.nat(30),
      settle: fc.boolean(),
      amount: fc.integer({ min: 0, max: 50 }),
      brief: fc.boolean(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('override' as const),
      key: fc.constantFrom('a', 'b', 'c'),
      cap: fc.option(fc.integer({ min: 0, max: 60 })),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('block' as const),
      marker: fc.constantFrom('m1', 'm2'),
      on: fc.boolean(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ op: fc.constant('advance' as const), ms: fc.constantFrom(1_000, 20_000, 61_000) }),
  },
  // Redis forgets every calendar window (their TTLs ran out): a late settle finds none to charge.
  { weight: 1, arbitrary: fc.constant({ op: 'forget' as const }) },
  // A refusal that trips the counter's breaker (general path on both stores): later reserves see it.
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('trip' as const),
      key: fc.constantFrom('a', 'b'),
      scope: fc.constantFrom(undefined, 't1'),
    }),
  },
)

/** Runs one operation on a store; the answer, with what depends on the prefix left out. */
async function apply(store: RedisStore, o: Op, ids: string[], step: number): Promise<unknown> {
  const now = store.now()
  switch (o.op) {
    case 'reserve': {
      const id = `r${step}`
      const input: StoreReserve = {
        id,
        counters: o.counters.map((s) => spec(s, now)),
        ttlMs: o.ttl,
        blocks: o.blocks,
        meta: { model: 'm', step },
      }
      const answer = await store.reserve(input)
      // Commits mostly pick held reservations (an id never held answers unknown alike).
      if (answer.status === 'ok') ids.push(id)
      return answer
    }
    case 'commit': {
      const id = ids[o.which % Math.max(ids.length, 1)] ?? 'none'
      const amounts = o.settle ? { requests: o.amount, tokens: o.amount } : null
      return store.commit({ id, amounts, brief: o.brief })
    }
    case 'override':
      return store.setOverride(o.key, o.cap)
    case 'block':
      return store.block(o.marker, o.on ? 'blocked_here' : null)
    case 'advance':
      return undefined
    case 'forget':
      return deleteKeys(client, `{${store.prefix}*:f:*`)
    case 'trip': {
      const counter = {
        key: o.key,
        scope: o.scope,
        amount: 1,
        cap: 0,
        enforce: true,
        expiry: 'keep',
        window: 'minute',
        trip: true,
        alerts: false,
      } as const
      return store.reserve({
        id: `t${step}`,
        counters: [spec(counter, now)],
        ttlMs: 5_000,
        blocks: [],
        meta: { model: 'm' },
      })
    }
  }
}

describe('the lean reserve', () => {
  it('is taken only for calendar windows without alerts, breaker or throttle, each key once', () => {
    const plain = spec(
      {
        key: 'a',
        amount: 1,
        cap: 5,
        enforce: true,
        expiry: 'keep',
        window: 'minute',
        trip: false,
        alerts: false,
      },
      T0,
    )
    expect(fastEligible([plain, { ...plain, key: 'b' }])).toBe(true)
    expect(fastEligible([plain, plain])).toBe(false)
    expect(fastEligible([{ ...plain, alerts: [0.5] }])).toBe(false)
    expect(fastEligible([{ ...plain, trip: { cooldownMs: 1 } }])).toBe(false)
    expect(fastEligible([{ ...plain, throttle: { at: 0.5, limit: 1, periodMs: 1_000 } }])).toBe(false)
    expect(fastEligible([{ ...plain, window: { kind: 'sliding', sizeMs: 60_000, slotMs: 1_000 } }])).toBe(
      false,
    )
  })

  it('answer as the general scripts do and leave the same keys, on any sequence', async () => {
    const reserves = leanCalls('fast')
    const commits = leanCalls('leanCommit')
    try {
      await fc.assert(
        fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 40, size: 'large' }), async (ops) => {
          const clock = fakeClock(T0 + 17_000)
          const p = prefix.next()
          const lean = redisStore({ client, prefix: `${p}L`, clock })
          const general = redisStoreWithoutLeanScripts({ client, prefix: `${p}G`, clock })
          const ids = { lean: [] as string[], general: [] as string[] }
          const seen = new Map<string, CounterSpec>()
          for (const [step, o] of ops.entries()) {
            if (o.op === 'advance') clock.advance(o.ms)
            const a = await apply(lean, o, ids.lean, step)
            const b = await apply(general, o, ids.general, step)
            expect(a).toEqual(b)
            if (o.op === 'reserve')
              for (const s of o.counters) {
                const c = spec(s, clock.now())
                if (s.window !== 'skewed') seen.set(`${s.scope}:${s.key}:${s.window}`, { ...c, amount: 0 })
              }
          }
          // The same keys, with the same contents, each with a TTL or without one alike.
          expect(await layout(lean.prefix)).toEqual(await layout(general.prefix))
          const counters = [...seen.values()]
          expect(await lean.read(counters)).toEqual(await general.read(counters))
          for (const id of ids.lean) expect(await lean.lookup(id)).toEqual(await general.lookup(id))
        }),
        { numRuns: 150 },
      )
      // The sequences took the lean paths, not only the general ones.
      expect(reserves.count()).toBeGreaterThan(100)
      expect(commits.count()).toBeGreaterThan(100)
    } finally {
      reserves.stop()
      commits.stop()
    }
  }, 60_000)
})
