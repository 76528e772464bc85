import { describe, expect, it, vi } from 'vitest'
import { createTollgate } from '../../engine/gate.js'
import { describeStoreConformance } from '../../testing/conformance/index.js'
import { fakeClock } from '../../testing/fake-clock.js'
import { calendarBounds } from '../../windows/calendar.js'
import type { CounterSpec, CounterState } from '../contract.js'
import { memoryStore } from './store.js'

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
  const laneReserve = (store: ReturnType<typeof memoryStore>, spec: CounterSpec) => {
    store.lane!.now()
    return store.lane!.reserve({ counters: [spec], ttlMs: 60_000, blocks: [], meta: { model: '' } }, [])
  }

  it('a counter with alerts (its crossings are reported by the general path)', () => {
    expect(laneReserve(memoryStore({ clock: fakeClock() }), { ...base, alerts: [0.5] })).toBeUndefined()
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
    expect(laneReserve(store, base)).toBeUndefined()
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
        const id = store.lane!.reserve(
          { counters: specs, ttlMs: 60_000, blocks: [], meta: { model: '' } },
          [],
        )
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
    const id = store.lane!.reserve(laneInput, [])!
    expect(id).toBeTypeOf('string')
    const again = await store.reserve({ id, ...laneInput })
    expect(again).toMatchObject({ status: 'ok', counters: [{ used: 5, held: 5, denied: false }] })
    expect((await store.read([counter]))[0]).toMatchObject({ used: 5, held: 5 })
    expect(await store.commit({ id, amounts: null, abandon: true })).toMatchObject({ status: 'released' })
    expect(() => store.reserve({ id, ...laneInput })).toThrow(/closed; nothing was held/)
    expect((await store.read([counter]))[0]).toMatchObject({ used: 0, held: 0 })
    // past its TTL (before the sweep has processed it), a held reservation is closed too
    store.lane!.now()
    const late = store.lane!.reserve(laneInput, [])!
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
