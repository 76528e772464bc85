import fc from 'fast-check'
import { describe, expect, it, vi } from 'vitest'
import { createTollgate } from '../../engine/gate.js'
import { describeStoreConformance } from '../../testing/conformance/index.js'
import { fakeClock } from '../../testing/fake-clock.js'
import { calendarBounds } from '../../windows/calendar.js'
import type { CounterSpec, CounterState, LaneReserve, StoreReserve, StoreReserveResult } from '../contract.js'
import { type MemoryStore, memoryStore } from './store.js'

/**
 * `store.lane.reserve` for a store reserve's fields, sending the same input object again for the
 * same counters array (and TTL and blocks), as the engine does: so the lane's memo is used.
 */
const inputs = new WeakMap<CounterSpec[], LaneReserve>()
function laneReserve(store: MemoryStore, given: Omit<StoreReserve, 'id'>, out: number[]): string | undefined {
  const { counters, ttlMs, blocks, meta } = given
  let input = inputs.get(counters)
  if (input === undefined || input.ttlMs !== ttlMs || input.blocks.join() !== blocks.join()) {
    input = { counters, ttlMs, blocks, memo: undefined }
    inputs.set(counters, input)
  }
  return store.lane!.reserve(input, meta, out)
}

describeStoreConformance('memoryStore', (clock) => memoryStore({ clock }))

describe('the lane declines what only the general path reports', () => {
  const base: CounterSpec = {
    key: 'r:requests:user=u',
    metric: 'requests',
    amount: 1,
    cap: 1,
    enforce: true,
    window: { kind: 'fixed', bounds: [0, Number.MAX_SAFE_INTEGER] },
    expiry: 'keep',
  }
  const reserveOne = (store: ReturnType<typeof memoryStore>, spec: CounterSpec) => {
    store.lane!.now()
    return laneReserve(store, { counters: [spec], ttlMs: 60_000, blocks: [], meta: { model: '' } }, [])
  }

  it('a counter with alerts (its crossings are reported by the general path)', () => {
    expect(reserveOne(memoryStore({ clock: fakeClock() }), { ...base, alerts: [0.5] })).toBeUndefined()
  })

  it('a counter whose breaker is open (a policy sharing the store may have dropped the breaker)', () => {
    const store = memoryStore({ clock: fakeClock() })
    const tripping = { ...base, trip: { cooldownMs: 60_000 } }
    const input = (id: string) => ({
      id,
      counters: [tripping],
      ttlMs: 60_000,
      blocks: [],
      meta: { model: '' },
    })
    expect(store.reserve(input('a'))).toMatchObject({ status: 'ok' })
    expect(store.reserve(input('b'))).toMatchObject({ status: 'denied' }) // trips the breaker
    store.commit({ id: 'a', amounts: null }) // room again, but the breaker is open for its cool-down
    expect(reserveOne(store, base)).toBeUndefined()
  })
})

describe('the lane’s tickets', () => {
  it('share their lists between counters alike, never between other caps or amounts', () => {
    // a ticket's metrics, amounts and caps are one copy for every partition of the same rules
    const clock = fakeClock()
    const store = memoryStore({ clock })
    const counters = (key: string, amount: number, cap: number): CounterSpec[] => [
      {
        key,
        metric: 'tokens',
        amount,
        cap,
        enforce: true,
        window: { kind: 'fixed', bounds: [0, Number.MAX_SAFE_INTEGER] },
        expiry: 'keep',
      },
    ]
    const admitted = (specs: CounterSpec[], times: number) => {
      let n = 0
      for (let i = 0; i < times; i++) {
        store.lane!.now()
        const id = laneReserve(store, { counters: specs, ttlMs: 60_000, blocks: [], meta: { model: '' } }, [])
        if (id !== undefined) {
          n++
          // settled at half the hold: the settle reads the hold's amount from the ticket's lists
          const settled = store.commit({ id, amounts: { tokens: specs[0]!.amount / 2 }, brief: true })
          // within its cap: a brief commit lists no counter (one listed would be an overdraft)
          expect(settled).toMatchObject({ status: 'settled', counters: [] })
        }
      }
      return n
    }
    // each array sent again and again, as a plan does: the second call on holds again from its ticket
    expect(admitted(counters('free:u1', 2, 4), 10)).toBe(3) // 1, 2, 3 charged; 3 + 2 > 4
    expect(admitted(counters('free:u2', 2, 4), 10)).toBe(3)
    expect(admitted(counters('pro:u3', 2, 10), 10)).toBe(9)
    expect(admitted(counters('big:u4', 4, 10), 10)).toBe(4) // 2 charged a call; 8 + 4 > 10
    expect((store.read(counters('pro:u3', 0, 10)) as CounterState[])[0]).toMatchObject({ used: 9, held: 0 })
    expect((store.read(counters('big:u4', 0, 10)) as CounterState[])[0]).toMatchObject({ used: 8, held: 0 })
  })
})

describe('memoryStore only', () => {
  const spec = (key: string, now: number): CounterSpec => ({
    key,
    metric: 'tokens',
    amount: 1,
    cap: 100,
    enforce: true,
    window: { kind: 'fixed', bounds: calendarBounds('day', 'UTC', now, 1) },
    expiry: 'keep',
  })

  it('maxCounters bounds the windows kept: the least recently used one is forgotten', async () => {
    const clock = fakeClock()
    const store = memoryStore({ clock, maxCounters: 3 })
    const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((key) => spec(key, clock.now()))
    let n = 0
    for (const counter of [a!, b!, c!])
      await store.reserve({
        id: `r${n++}`,
        counters: [counter],
        ttlMs: 60_000,
        blocks: [],
        meta: { model: 'm' },
      })
    expect((await store.read([a!]))[0]!.used).toBe(1) // touches a: b is now the least recently used
    await store.reserve({ id: `r${n++}`, counters: [d!], ttlMs: 60_000, blocks: [], meta: { model: 'm' } })
    expect((await store.read([a!, b!, c!, d!])).map((s) => s.used)).toEqual([1, 0, 1, 1])
  })

  it('maxReservations bounds the closed ids remembered, even within one hour', async () => {
    const clock = fakeClock()
    const store = memoryStore({ clock, maxReservations: 100 })
    const counter = { ...spec('k', clock.now()), cap: 10_000 }
    for (let n = 0; n < 1_000; n++) {
      const input = { id: `r${n}`, counters: [counter], ttlMs: 60_000, blocks: [], meta: { model: 'm' } }
      await store.reserve(input)
      await store.commit({ id: input.id, amounts: { tokens: 1 } })
    }
    // the newest are still known as closed; the oldest are forgotten (a settle of them changes nothing)
    expect(await store.commit({ id: 'r999', amounts: null })).toEqual({
      status: 'duplicate',
      previous: 'settled',
    })
    expect(await store.commit({ id: 'r0', amounts: null })).toEqual({ status: 'unknown' })
    expect((await store.read([counter]))[0]!.used).toBe(1_000)
  })

  it('ids abandoned before their reserve are remembered as closed ids are, within maxReservations', async () => {
    const clock = fakeClock()
    const store = memoryStore({ clock, maxReservations: 100 })
    const counter = spec('k', clock.now())
    const input = (id: string) => ({
      id,
      counters: [counter],
      ttlMs: 60_000,
      blocks: [],
      meta: { model: 'm' },
    })
    for (let n = 0; n < 1_000; n++)
      expect(await store.commit({ id: `lost${n}`, amounts: null, abandon: true })).toEqual({
        status: 'unknown',
      })
    // the newest are remembered as released: their reserve, arriving late, holds nothing
    expect(() => store.reserve(input('lost999'))).toThrow(/closed; nothing was held/)
    let thrown: unknown
    try {
      store.reserve(input('lost999'))
    } catch (error) {
      thrown = error
    }
    expect(thrown).toMatchObject({ code: 'reservation_closed' })
    expect(await store.commit({ id: 'lost999', amounts: null })).toEqual({
      status: 'duplicate',
      previous: 'released',
    })
    expect((await store.read([counter]))[0]).toMatchObject({ used: 0, held: 0 })
    // the oldest are forgotten (bounded memory): an id is then free again
    expect((await store.reserve(input('lost0'))).status).toBe('ok')
    expect((await store.read([counter]))[0]).toMatchObject({ used: 1, held: 1 })
    // forgotten after idempotencyMs too
    const short = memoryStore({ clock, idempotencyMs: 1_000 })
    await short.commit({ id: 'gone', amounts: null, abandon: true })
    clock.advance(3_601_000)
    expect((await short.reserve(input('gone'))).status).toBe('ok')
  })

  it('abandon: true only releases (a settle with it settles), and a plain release remembers no unknown id', async () => {
    const clock = fakeClock()
    const store = memoryStore({ clock })
    const counter = spec('k', clock.now())
    const input = (id: string) => ({
      id,
      counters: [counter],
      ttlMs: 60_000,
      blocks: [],
      meta: { model: 'm' },
    })
    expect(await store.commit({ id: 'plain', amounts: null })).toEqual({ status: 'unknown' })
    expect((await store.reserve(input('plain'))).status).toBe('ok') // a release before the reserve did not stop it
    await store.reserve(input('settled'))
    expect(await store.commit({ id: 'settled', amounts: { tokens: 3 }, abandon: true })).toMatchObject({
      status: 'settled',
    })
    expect((await store.read([counter]))[0]).toMatchObject({ used: 4, held: 1 })
  })

  it('a reserve under the id of a reservation the lane made: held, ok and nothing more; closed, it throws', async () => {
    const clock = fakeClock()
    const store = memoryStore({ clock })
    const counter = { ...spec('k', clock.now()), amount: 5, cap: 5 }
    const laneInput = { counters: [counter], ttlMs: 60_000, blocks: [], meta: { model: 'm' } }
    store.lane!.now()
    const id = laneReserve(store, laneInput, [])!
    expect(id).toBeTypeOf('string')
    const again = await store.reserve({ id, ...laneInput })
    expect(again).toMatchObject({ status: 'ok', counters: [{ used: 5, held: 5, denied: false }] })
    expect((await store.read([counter]))[0]).toMatchObject({ used: 5, held: 5 })
    expect(await store.commit({ id, amounts: null, abandon: true })).toMatchObject({ status: 'released' })
    expect(() => store.reserve({ id, ...laneInput })).toThrow(/closed; nothing was held/)
    expect((await store.read([counter]))[0]).toMatchObject({ used: 0, held: 0 })
    // past its TTL (before the sweep has processed it), a held reservation is closed too
    store.lane!.now()
    const late = laneReserve(store, laneInput, [])!
    clock.advance(60_000)
    expect(() => store.reserve({ id: late, ...laneInput })).toThrow(/closed; nothing was held/)
  })

  it('an open reservation dropped past maxReservations expires at once, and only once', async () => {
    const clock = fakeClock()
    const store = memoryStore({ clock, maxReservations: 10 })
    const tokens = { ...spec('k', clock.now()), cap: 10_000 }
    const lease: CounterSpec = {
      ...tokens,
      key: 'l',
      metric: 'concurrency',
      window: { kind: 'lease', ttlMs: 60_000 },
    }
    for (let n = 0; n < 100; n++)
      await store.reserve({
        id: `r${n}`,
        counters: [tokens, lease],
        ttlMs: 60_000,
        blocks: [],
        meta: { model: 'm' },
      })
    // the ten kept are still held; the rest expired when dropped: tokens stay charged, leases free
    const [k, l] = await store.read([tokens, lease])
    expect(k).toMatchObject({ used: 100, held: 10 })
    expect(l).toMatchObject({ used: 10 })
    expect(await store.commit({ id: 'r0', amounts: { tokens: 0 } })).toEqual({ status: 'unknown' })
    expect(await store.commit({ id: 'r99', amounts: { tokens: 0 } })).toMatchObject({ status: 'settled' })
    clock.advance(61_000) // past every TTL: what was dropped is not expired again
    const [k2, l2] = await store.read([tokens, lease])
    expect(k2).toMatchObject({ used: 99, held: 0 })
    expect(l2).toMatchObject({ used: 0 })
  })

  it('never goes back in time when its clock does, so no window starts afresh', async () => {
    let t = Date.UTC(2026, 0, 10, 12, 0, 30)
    const clock = { now: () => t }
    const store = memoryStore({ clock })
    const gate = createTollgate({
      policy: { rules: [{ id: 'u', per: 'user', limits: { requests: 3 }, window: 'minute' }] },
      store,
      clock,
    })
    const subject = { user: 'a' }
    const reserve = () => gate.reserve({ subject })
    expect(await reserve()).toMatchObject({ allowed: true })
    t -= 2 * 3_600_000 // the clock steps back two hours
    expect(store.now()).toBe(Date.UTC(2026, 0, 10, 12, 0, 30))
    expect(await reserve()).toMatchObject({ allowed: true })
    t += 2 * 3_600_000 + 5_000 // and comes forward again, within the same minute
    expect(await reserve()).toMatchObject({ allowed: true })
    expect(await reserve()).toMatchObject({ allowed: false, rule: 'u' })
    expect((await gate.usage({ subject }))[0]).toMatchObject({ used: 3, held: 3 })
    // a read that is no time at all keeps the store's time too
    const at = store.now() as number
    t = Number.NaN
    expect(store.now()).toBe(at)
    t = `${at + 60_000}` as never
    expect(store.now()).toBe(at)
  })

  it('refuses bad options with a TypeError naming the option', () => {
    const bad: [string, unknown][] = [
      ['maxCounters', 0],
      ['maxCounters', 1.5],
      ['maxCounters', Number.NaN],
      ['maxReservations', -1],
      ['maxReservations', '100'],
      ['maxReservations', Number.POSITIVE_INFINITY],
      ['idempotencyMs', -1],
      ['idempotencyMs', Number.NaN],
      ['graceMs', Number.POSITIVE_INFINITY],
      ['graceMs', '1h'],
      // an object with no prototype made the message itself throw ("Cannot convert object to primitive value")
      ['maxCounters', Object.create(null)],
      ['graceMs', Object.create(null)],
      ['clock', {}],
      // a clock that reads no time left the store at its first instant for good (a spent limit never reset)
      ['clock', { now: () => undefined }],
      ['clock', { now: () => Number.NaN }],
      ['clock', { now: () => new Date() }],
      ['clock', { now: () => `${Date.now()}` }],
    ]
    for (const [name, value] of bad)
      expect(() => memoryStore({ [name]: value } as never), `${name}: ${typeof value}`).toThrow(
        new RegExp(`^memoryStore: ${name}`),
      )
    expect(() =>
      memoryStore({ maxCounters: 1, maxReservations: 1, idempotencyMs: 0, graceMs: 0 }),
    ).not.toThrow()
  })

  it('creates no timer per key', async () => {
    const clock = fakeClock()
    const store = memoryStore({ clock })
    const timeout = vi.spyOn(globalThis, 'setTimeout')
    const interval = vi.spyOn(globalThis, 'setInterval')
    try {
      for (let i = 0; i < 2_000; i++) {
        const counter = spec(`key-${i}`, clock.now())
        await store.reserve({
          id: `r${i}`,
          counters: [counter],
          ttlMs: 1_000 + i,
          blocks: [],
          meta: { model: 'm' },
        })
        if (i % 2 === 0) await store.commit({ id: `r${i}`, amounts: { tokens: 1 } })
        clock.advance(7)
      }
      clock.advance(60_000)
      await store.read([spec('key-1', clock.now())])
      expect(timeout).not.toHaveBeenCalled()
      expect(interval).not.toHaveBeenCalled()
    } finally {
      timeout.mockRestore()
      interval.mockRestore()
    }
  })
})

describe('the lane answers and counts as the general path does', () => {
  // a store reserving through its lane and a twin reserving through `reserve`, on one clock: every
  // answer and every read must agree
  const t0 = Date.UTC(2026, 0, 5)
  const fixed: CounterSpec = {
    key: 'f',
    metric: 'tokens',
    amount: 2,
    cap: 7,
    enforce: true,
    // windows of 10 s, for long enough
    window: { kind: 'fixed', bounds: Array.from({ length: 2_000 }, (_, i) => t0 + i * 10_000) },
    expiry: 'keep',
  }
  const rolling: CounterSpec = {
    key: 'r',
    metric: 'requests',
    amount: 1,
    cap: 4,
    enforce: true,
    window: { kind: 'sliding', sizeMs: 30_000, slotMs: 5_000 },
    expiry: 'release',
  }
  const half: CounterSpec = {
    ...fixed,
    key: 'h',
    amount: 1,
    cap: 12,
    // windows of 30 s: a ticket holding in both may hold again only until the 10 s one ends
    window: { kind: 'fixed', bounds: Array.from({ length: 700 }, (_, i) => t0 + i * 30_000) },
  }
  const life: CounterSpec = {
    ...fixed,
    key: 'l',
    amount: 1,
    cap: 9,
    window: { kind: 'fixed', bounds: [0, Number.MAX_SAFE_INTEGER] },
  }
  // the same arrays sent again and again, as the engine does: the lane holds again from its ticket
  const plans: CounterSpec[][] = [
    [fixed],
    [rolling],
    [fixed, rolling],
    [rolling, life],
    [life],
    [fixed, half],
  ]
  const all = [fixed, rolling, half, life]
  type Step =
    | { kind: 'reserve'; plan: number }
    | { kind: 'commit'; pick: number; amount: number | null }
    | { kind: 'advance'; ms: number }
    | { kind: 'override'; cap: number | null }
    | { kind: 'read' }
  const step: fc.Arbitrary<Step> = fc.oneof(
    { weight: 5, arbitrary: fc.record({ kind: fc.constant('reserve' as const), plan: fc.nat(5) }) },
    {
      weight: 3,
      arbitrary: fc.record({
        kind: fc.constant('commit' as const),
        pick: fc.nat(),
        amount: fc.option(fc.nat(3)),
      }),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        kind: fc.constant('advance' as const),
        // whole seconds too, so that windows end and slots leave exactly at a reserve
        ms: fc.oneof(
          fc.nat(12_000),
          fc.nat(12).map((s) => s * 1_000),
        ),
      }),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        kind: fc.constant('override' as const),
        cap: fc.option(fc.integer({ min: 2, max: 9 })),
      }),
    },
    // a read drops a rolling window's old slots: not after every step, so that the lane must
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('read' as const) }) },
  )

  // grace 0 forgets a home as its window ends (a home kept a slot too short shows); a grace of a
  // minute keeps the home, and its last window's cell, when the next window starts
  it.each([0, 60_000])(
    'for calendar and rolling windows, held again, settled, released and expired (grace %i)',
    (graceMs) => {
      fc.assert(
        fc.property(fc.array(step, { minLength: 20, maxLength: 200 }), (steps) => {
          const clock = fakeClock(t0)
          const lane = memoryStore({ clock, graceMs })
          const twin = memoryStore({ clock, graceMs })
          /** Open ids: the lane's and the twin's. */
          const open: [string, string][] = []
          let n = 0
          const out: number[] = []
          for (const s of steps) {
            if (s.kind === 'advance') clock.advance(s.ms)
            else if (s.kind === 'read') expect(lane.read(all)).toEqual(twin.read(all))
            else if (s.kind === 'override') {
              // the calendar window's cap overridden, or the override lifted
              lane.setOverride('f', s.cap)
              twin.setOverride('f', s.cap)
            } else if (s.kind === 'reserve') {
              const counters = plans[s.plan]!
              const input = { counters, ttlMs: 20_000, blocks: [], meta: { model: '' } }
              const id = `t${n++}`
              const expected = twin.reserve({ id, ...input }) as StoreReserveResult
              lane.lane!.now()
              const made = laneReserve(lane, input, out)
              if (made === undefined) {
                // the lane declines only what the general path refuses
                expect(expected.status).toBe('denied')
                expect(lane.reserve({ id, ...input })).toEqual(expected)
                continue
              }
              expect(expected.status).toBe('ok')
              if (expected.status !== 'ok') continue
              const answered = counters.map((_, i) => {
                const [cap, used, held, resetAt, windowStart] = out.slice(i * 5, i * 5 + 5)
                return { cap, used, held, resetAt: Number.isNaN(resetAt) ? null : resetAt, windowStart }
              })
              expect(answered).toEqual(
                expected.counters.map(({ cap, used, held, resetAt, windowStart }) => ({
                  cap,
                  used,
                  held,
                  resetAt,
                  windowStart,
                })),
              )
              open.push([made, id])
            } else {
              if (open.length === 0) continue
              const [made, id] = open.splice(s.pick % open.length, 1)[0]!
              const amounts = s.amount === null ? null : { tokens: s.amount, requests: s.amount }
              expect(lane.commit({ id: made, amounts })).toEqual(twin.commit({ id, amounts }))
            }
          }
          expect(lane.read(all)).toEqual(twin.read(all))
        }),
        { numRuns: 200 },
      )
    },
  )
})

describe('the counters’ edges', () => {
  const t0 = Date.UTC(2026, 0, 5)
  const input = (id: string, counters: CounterSpec[], ttlMs = 60_000) => ({
    id,
    counters,
    ttlMs,
    blocks: [],
    meta: { model: '' },
  })

  it('a calendar window refusing an amount of exactly its cap says when it resets', () => {
    const clock = fakeClock(t0)
    const store = memoryStore({ clock })
    const day: CounterSpec = {
      key: 'd',
      metric: 'tokens',
      amount: 1,
      cap: 5,
      enforce: true,
      window: { kind: 'fixed', bounds: [t0, t0 + 60_000] },
      expiry: 'keep',
    }
    expect(store.reserve(input('a', [day]))).toMatchObject({ status: 'ok' })
    clock.advance(15_000)
    // the whole cap fits in the next window: waiting helps
    expect(store.reserve(input('b', [{ ...day, amount: 5 }]))).toMatchObject({
      status: 'denied',
      counters: [{ denied: true, retryAfterMs: 45_000 }],
    })
    // more than the cap never fits
    expect(store.reserve(input('c', [{ ...day, amount: 6 }]))).toMatchObject({
      status: 'denied',
      counters: [{ denied: true, retryAfterMs: null }],
    })
  })

  it('a lease refusal waits for the earliest lease to end when that is under a second', () => {
    const clock = fakeClock(t0)
    const store = memoryStore({ clock })
    const lease: CounterSpec = {
      key: 'c',
      metric: 'concurrency',
      amount: 1,
      cap: 1,
      enforce: true,
      window: { kind: 'lease', ttlMs: 300 },
      expiry: 'keep',
    }
    expect(store.reserve(input('a', [lease]))).toMatchObject({ status: 'ok' })
    clock.advance(100)
    expect(store.reserve(input('b', [lease]))).toMatchObject({
      status: 'denied',
      counters: [{ retryAfterMs: 200 }],
    })
    clock.advance(200) // the lease's TTL: it is free
    expect(store.reserve(input('c', [lease]))).toMatchObject({ status: 'ok' })
  })

  it('a late settle of a hold whose slot has left the rolling window changes nothing', () => {
    const clock = fakeClock(t0)
    const store = memoryStore({ clock })
    const rolling: CounterSpec = {
      key: 'r',
      metric: 'tokens',
      amount: 3,
      cap: 10,
      enforce: true,
      window: { kind: 'sliding', sizeMs: 60_000, slotMs: 10_000 },
      expiry: 'keep',
    }
    expect(store.reserve(input('a', [rolling], 5_000))).toMatchObject({ status: 'ok' })
    expect(store.reserve(input('b', [rolling], 5_000))).toMatchObject({ status: 'ok' })
    clock.advance(70_000) // both expired (kept charged), and their slot has left the window
    expect((store.read([rolling]) as CounterState[])[0]).toMatchObject({ used: 0, held: 0 })
    expect(store.commit({ id: 'a', amounts: { tokens: 9 } })).toMatchObject({ status: 'settled', late: true })
    expect(store.commit({ id: 'b', amounts: null })).toMatchObject({ status: 'released', late: true })
    expect((store.read([rolling]) as CounterState[])[0]).toMatchObject({ used: 0, held: 0 })
    expect(store.reserve(input('c', [{ ...rolling, amount: 10 }]))).toMatchObject({ status: 'ok' })
  })

  it('an adjustment of a token bucket that has refilled counts from now', () => {
    const clock = fakeClock(t0)
    const store = memoryStore({ clock })
    const bucket: CounterSpec = {
      key: 'b',
      metric: 'requests',
      amount: 1,
      cap: 10,
      enforce: true,
      window: { kind: 'bucket', intervalMs: 1_000 },
      expiry: 'keep',
    }
    expect(store.reserve(input('a', [bucket]))).toMatchObject({ status: 'ok' })
    store.commit({ id: 'a', amounts: { requests: 1 } })
    clock.advance(60_000) // refilled long ago
    store.adjust(bucket, 5)
    expect((store.read([bucket]) as CounterState[])[0]).toMatchObject({ used: 5 })
    // the five are spent now: six more do not fit in a burst of ten
    for (let i = 0; i < 5; i++)
      expect(store.reserve(input(`b${i}`, [bucket]))).toMatchObject({ status: 'ok' })
    expect(store.reserve(input('over', [bucket]))).toMatchObject({ status: 'denied' })
  })

  const laneInput = (counters: CounterSpec[], ttlMs = 60_000) => ({
    counters,
    ttlMs,
    blocks: [],
    meta: { model: '' },
  })
  const day = (key: string): CounterSpec => ({
    key,
    metric: 'tokens',
    amount: 1,
    cap: 100,
    enforce: true,
    window: { kind: 'fixed', bounds: [t0, t0 + 86_400_000] },
    expiry: 'keep',
  })

  it('a replayed reserve at the instant its reservation expires throws, before any sweep', () => {
    const clock = fakeClock(t0 + 500) // expiring between two whole seconds: not swept yet
    const store = memoryStore({ clock })
    expect(store.reserve(input('a', [day('k')], 1_000))).toMatchObject({ status: 'ok' })
    clock.advance(1_000)
    expect(() => store.reserve(input('a', [day('k')], 1_000))).toThrow(/closed; nothing was held/)
  })

  it('the lane holds again only in a home the store still keeps', () => {
    const clock = fakeClock(t0)
    const store = memoryStore({ clock, maxCounters: 1 })
    const a = [day('a')]
    const b = [day('b')]
    const out: number[] = []
    for (const counters of [a, a, b, a]) {
      store.lane!.now()
      expect(laneReserve(store, laneInput(counters), out)).toBeTypeOf('string')
    }
    // a's home was dropped for b's; a's last hold went to a new home, not the dropped one's cell
    expect((store.read(a) as CounterState[])[0]).toMatchObject({ used: 1, held: 1 })
    expect(out.slice(0, 3)).toEqual([100, 1, 1])
  })

  /** Reserve `input` through `store`'s lane, which must hold it. */
  const holdsThrough = (store: MemoryStore, input: LaneReserve) => {
    store.lane!.now()
    expect(store.lane!.reserve(input, { model: '' }, [])).toBeTypeOf('string')
  }

  it('a lane input sent to another store holds on that store, never through the first one’s memo', () => {
    const clock = fakeClock(t0)
    const first = memoryStore({ clock })
    const second = memoryStore({ clock })
    const counters = [day('k')]
    // one input object, as a plan keeps it, sent to two stores in turn
    const input = { counters, ttlMs: 60_000, blocks: [], memo: undefined }
    for (const store of [first, first, second, second, first]) holdsThrough(store, input)
    expect((first.read(counters) as CounterState[])[0]).toMatchObject({ used: 3, held: 3 })
    expect((second.read(counters) as CounterState[])[0]).toMatchObject({ used: 2, held: 2 })
  })

  // guards the memo's specs check: an input object given new counters holds on those, not the memo's
  it('a lane input whose counters were replaced holds on the new counters', () => {
    const store = memoryStore({ clock: fakeClock(t0) })
    const a = [day('a')]
    const b = [day('b')]
    const input: LaneReserve = { counters: a, ttlMs: 60_000, blocks: [], memo: undefined }
    for (const counters of [a, a, b]) {
      input.counters = counters
      holdsThrough(store, input)
    }
    expect((store.read(a) as CounterState[])[0]).toMatchObject({ used: 2, held: 2 })
    expect((store.read(b) as CounterState[])[0]).toMatchObject({ used: 1, held: 1 })
  })

  // guards lane.close's checks: it closes only the record lane.meta has just found, for that id
  it('lane.close declines an id lane.meta did not just find, and changes nothing', () => {
    const store = memoryStore({ clock: fakeClock(t0) })
    const lane = store.lane!
    const counters = [day('k')]
    const ids: string[] = []
    for (let i = 0; i < 2; i++) {
      lane.now()
      ids.push(laneReserve(store, laneInput(counters), [])!)
    }
    const [a, b] = ids as [string, string]
    expect(lane.meta(a)).toBeDefined()
    expect(lane.close(b, null)).toBeUndefined() // another id than the one just found
    lane.now()
    expect(lane.close(a, null)).toBeUndefined() // found, but something came in between
    expect((store.read(counters) as CounterState[])[0]).toMatchObject({ used: 2, held: 2 })
    expect(lane.meta(a)).toBeDefined()
    expect(lane.close(a, null)).toEqual([])
    expect((store.read(counters) as CounterState[])[0]).toMatchObject({ used: 1, held: 1 })
  })

  it('a settle with abandon: true of an unknown id remembers nothing', () => {
    const store = memoryStore({ clock: fakeClock(t0) })
    expect(store.commit({ id: 'early', amounts: { tokens: 3 }, abandon: true })).toEqual({
      status: 'unknown',
    })
    expect(store.reserve(input('early', [day('k')]))).toMatchObject({ status: 'ok' })
  })

  it('keeps a lane reservation still open when the ring comes round to its slot', () => {
    // a ring of 4: the fifth reservation takes the first one's slot
    const store = memoryStore({ clock: fakeClock(t0), maxReservations: 4 })
    const counters = [day('k')]
    const ids: string[] = []
    for (let i = 0; i < 5; i++) {
      store.lane!.now()
      ids.push(laneReserve(store, laneInput(counters), [])!)
    }
    for (const id of ids)
      expect(store.commit({ id, amounts: { tokens: 2 } })).toMatchObject({ status: 'settled' })
    expect((store.read(counters) as CounterState[])[0]).toMatchObject({ used: 10, held: 0 })
  })

  it('forgets an expired lane reservation idempotencyMs after its expiry, to the millisecond', () => {
    const clock = fakeClock(t0)
    const store = memoryStore({ clock, idempotencyMs: 5_000 })
    const counters = [day('k')]
    store.lane!.now()
    const id = laneReserve(store, laneInput(counters, 1_000), [])!
    clock.advance(1_000) // expired at the sweep of this second
    store.lane!.now()
    clock.advance(4_999)
    store.lane!.now()
    expect(store.lane!.meta(id)).toEqual({ model: '' })
    clock.advance(1) // between the engine's meta and its commit, the reservation is forgotten
    expect(store.commit({ id, amounts: { tokens: 0 } })).toEqual({ status: 'unknown' })
  })
})
