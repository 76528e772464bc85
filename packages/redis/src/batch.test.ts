/**
 * Batching (standalone Redis): reserves and commits made in the same tick go to Redis as one script
 * call, each applied on its own, in order, all or nothing, with its own answer.
 */
import {
  type CounterSpec,
  createTollgate,
  type PolicyInput,
  type StoreReserve,
  TollgateError,
} from '@tollgate/core'
import { fakeClock, replaceAt } from '@tollgate/core/testing'
import fc from 'fast-check'
import { afterAll, describe, expect, it } from 'vitest'
import { redisStore } from './store.js'
import { deleteKeys, prefixes, testClient } from './test/redis.js'

const client = testClient()
const prefix = prefixes('batch')

afterAll(async () => {
  await deleteKeys(client, prefix.pattern)
  await client.quit()
})

const DAY = 86_400_000
const T0 = Date.UTC(2026, 2, 10, 12)

function counter(key: string, cap: number, amount: number, extra: Partial<CounterSpec> = {}): CounterSpec {
  const start = Math.floor(T0 / DAY) * DAY
  return {
    key,
    metric: 'tokens',
    amount,
    cap,
    enforce: true,
    window: { kind: 'fixed', bounds: [start, start + DAY] },
    expiry: 'keep',
    ...extra,
  }
}

const ask = (id: string, counters: CounterSpec[]): StoreReserve => ({
  id,
  counters,
  ttlMs: 60_000,
  blocks: [],
  meta: { model: 'm' },
})

/** Counts the script calls the client sends (EVALSHA, or EVAL after NOSCRIPT). */
function scriptCalls(): { count(): number; stop(): void } {
  const original = client.sendCommand.bind(client)
  let n = 0
  client.sendCommand = ((command: { name: string }, ...rest: unknown[]) => {
    if (command.name === 'evalsha' || command.name === 'eval') n++
    return (original as (...args: unknown[]) => unknown)(command, ...rest)
  }) as typeof client.sendCommand
  return {
    count: () => n,
    stop: () => {
      client.sendCommand = original
    },
  }
}

describe('batching', () => {
  it('concurrent reserves go out together and never over-admit; each sees the holds before it', async () => {
    const clock = fakeClock(T0)
    const store = redisStore({ client, prefix: prefix.next(), clock, batch: true })
    const calls = scriptCalls()
    try {
      const answers = await Promise.all(
        Array.from({ length: 200 }, (_, i) =>
          store.reserve(ask(`r${i}`, [counter('org', 500, 10), counter(`user${i % 7}`, 30, 10)])),
        ),
      )
      // 200 calls in 13 batches of at most 16 (a batch is sent once 16 wait or the tick ends).
      expect(calls.count()).toBeLessThanOrEqual(13)
      const ok = answers.filter((a) => a.status === 'ok')
      // 7 users × 3 holds of 10 fit under 30 each: 21 admitted, whatever the order.
      expect(ok).toHaveLength(21)
      // Admitted in the order sent: the first three of each user.
      expect(answers.map((a, i) => (a.status === 'ok' ? i : -1)).filter((i) => i >= 0)).toEqual(
        Array.from({ length: 21 }, (_, i) => i),
      )
      const last = answers[199]!
      expect(last.status).toBe('denied')
      if (last.status === 'denied') expect(last.counters[0]).toMatchObject({ used: 210, held: 210 })
      const [org] = await store.read([counter('org', 500, 0)])
      expect(org).toMatchObject({ used: 210, held: 210 })
    } finally {
      calls.stop()
    }
  })

  it('commits in one batch are idempotent: the same settle twice answers settled, then duplicate', async () => {
    const clock = fakeClock(T0)
    const store = redisStore({ client, prefix: prefix.next(), clock, batch: true })
    await Promise.all([0, 1, 2].map((i) => store.reserve(ask(`s${i}`, [counter('c', 100, 20)]))))
    const calls = scriptCalls()
    try {
      const results = await Promise.all([
        store.commit({ id: 's0', amounts: { tokens: 5 } }),
        store.commit({ id: 's0', amounts: { tokens: 7 } }),
        store.commit({ id: 's1', amounts: null }),
        store.commit({ id: 'nope', amounts: null }),
        store.reserve(ask('s3', [counter('c', 100, 60)])),
      ])
      expect(calls.count()).toBe(1)
      expect(results.map((r) => r.status)).toEqual(['settled', 'duplicate', 'released', 'unknown', 'ok'])
      const [c] = await store.read([counter('c', 100, 0)])
      expect(c).toMatchObject({ used: 5 + 20 + 60, held: 80 })
    } finally {
      calls.stop()
    }
  })

  it('a call that fails fails alone; the others of its batch keep their answers', async () => {
    const clock = fakeClock(T0)
    const store = redisStore({ client, prefix: prefix.next(), clock, batch: true })
    const results = await Promise.allSettled([
      store.reserve(ask('a', [counter('k', 100, 10)])),
      // An amount the script cannot add (the engine never sends one): a Lua error in that call alone.
      store.reserve(ask('b', [counter('k', 100, 'ten' as unknown as number)])),
      store.reserve(ask('c', [counter('k', 100, 10)])),
    ])
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled'])
    expect(await store.commit({ id: 'c', amounts: null })).toMatchObject({ status: 'released' })
    const [k] = await store.read([counter('k', 100, 0)])
    expect(k).toMatchObject({ used: 10, held: 10 })
  })

  it('any request in a batch, however hostile, never fails its neighbours (property, through the gate)', async () => {
    const policy: PolicyInput = {
      models: { m: { price: { input: 1, output: 1 } } },
      rules: [
        { id: 'day', per: 'user', limits: { requests: 1e6, tokens: 1e12 }, window: 'day' },
        { id: 'inflight', per: 'user', limits: { concurrency: 1000 } },
        { id: 'rolling', per: 'user', limits: { requests: 1e6 }, window: { rolling: '1m' } },
        // a budget fails closed: a batch that failed would refuse the good requests, not admit them degraded
        { id: 'budget', per: 'user', limits: { cost: 1000 }, window: 'month' },
      ],
    }
    const gate = createTollgate({ policy, store: redisStore({ client, prefix: prefix.next(), batch: true }) })
    const good = (i: number) => ({
      subject: { user: `u${i}` },
      model: 'm',
      estimate: { inputTokens: 10, maxOutputTokens: 10 },
    })
    const hostile = fc.tuple(fc.array(fc.nat(4), { maxLength: 3 }), fc.anything({ maxDepth: 2 }))
    await fc.assert(
      fc.asyncProperty(fc.array(hostile, { minLength: 1, maxLength: 6 }), async (requests) => {
        // one tick: the good and the hostile requests go out in the same batch
        const answers = await Promise.all([
          ...Array.from({ length: 8 }, (_, i) =>
            gate.reserve(good(i)).then(
              (d) => (d.allowed && !d.flags.includes('store_degraded') ? 'held' : JSON.stringify(d)),
              (e: unknown) => String(e),
            ),
          ),
          ...requests.map(([at, value]) =>
            gate.reserve(replaceAt(good(99), at, value) as never).then(
              () => 'held',
              (e: unknown) => (TollgateError.isInstance(e) ? 'held' : String(e)),
            ),
          ),
        ])
        return answers.every((answer) => answer === 'held')
      }),
      { numRuns: 100 },
    )
  })

  it('a batch that cannot be sent fails every call in it, within the timeout', async () => {
    const broken = testClient()
    await new Promise((resolve) => broken.once('ready', resolve))
    const store = redisStore({ client: broken, prefix: prefix.next(), timeoutMs: 200, batch: true })
    broken.disconnect()
    const started = Date.now()
    const results = await Promise.allSettled(
      Array.from({ length: 5 }, (_, i) => store.reserve(ask(`x${i}`, [counter('k', 100, 1)]))),
    )
    expect(results.every((r) => r.status === 'rejected')).toBe(true)
    expect(Date.now() - started).toBeLessThan(1_000)
  })

  it('batch: false sends one script per call', async () => {
    const clock = fakeClock(T0)
    const store = redisStore({ client, prefix: prefix.next(), clock, batch: false })
    const calls = scriptCalls()
    try {
      const answers = await Promise.all(
        Array.from({ length: 10 }, (_, i) => store.reserve(ask(`n${i}`, [counter('k', 35, 10)]))),
      )
      expect(calls.count()).toBe(10)
      expect(answers.filter((a) => a.status === 'ok')).toHaveLength(3)
    } finally {
      calls.stop()
    }
  })
})
