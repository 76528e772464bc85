/**
 * The fast path (the memory store's lane, `fast.ts`) against the general path: the same random
 * steps on two gates over two memory stores — one used directly, so its lane decides what it can,
 * one behind a spread copy, which turns the lane off — give the same answers and the same usage.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import type { Decision } from '../decision.js'
import type { PolicyInput, WindowInput } from '../policy/input.js'
import type { Store } from '../store/contract.js'
import { memoryStore } from '../store/memory/store.js'
import { fakeClock } from '../testing/fake-clock.js'
import type { SettleRecord } from './audit.js'
import { createTollgate } from './gate.js'
import type { ReserveRequest, Tollgate } from './types.js'

const policy: PolicyInput = {
  models: { m: { price: { input: 2, output: 3 } } },
  rules: [
    { id: 'user-rpm', per: 'user', limits: { requests: 4, tokens: 600 }, window: 'minute' },
    { id: 'team-hour', per: 'team', limits: { tokens: 1_500 }, window: 'hour' },
    { id: 'org-spend', per: 'org', limits: { cost: 9_000 }, window: 'lifetime' },
    { id: 'trial', per: 'user', limits: { tokens: 300 }, window: 'minute', mode: 'shadow' },
    { id: 'user-burst', per: 'user', limits: { requests: 3 }, window: { rolling: '30s', slots: 6 } },
  ],
}
const subjects = [
  { user: 'u1', team: 't1', org: 'o1' },
  { user: 'u:2', team: 't1', org: 'o1' },
  { user: '{u3}', team: 't:2', org: 'o1' },
]

type Op =
  | { kind: 'reserve'; who: number; input: number; output: number; priced: boolean }
  | { kind: 'settle'; pick: number; input: number; output: number }
  | { kind: 'release'; pick: number }
  | { kind: 'advance'; ms: number }
  | { kind: 'override'; who: number; cap: number | null }
  | { kind: 'block'; who: number; on: boolean }

const op: fc.Arbitrary<Op> = fc.oneof(
  {
    arbitrary: fc.record({
      kind: fc.constant('reserve' as const),
      who: fc.nat(2),
      input: fc.oneof(fc.nat(40), fc.nat(300)),
      output: fc.nat(60),
      priced: fc.boolean(),
    }),
    weight: 6,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant('settle' as const),
      pick: fc.nat(),
      input: fc.nat(400),
      output: fc.nat(400),
    }),
    weight: 3,
  },
  { arbitrary: fc.record({ kind: fc.constant('release' as const), pick: fc.nat() }), weight: 1 },
  {
    arbitrary: fc.record({
      kind: fc.constant('advance' as const),
      // mostly within a minute, sometimes past the hour
      ms: fc.oneof(
        { arbitrary: fc.integer({ min: 1, max: 20_000 }), weight: 4 },
        { arbitrary: fc.integer({ min: 1, max: 5_400_000 }), weight: 1 },
      ),
    }),
    weight: 2,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant('override' as const),
      who: fc.nat(2),
      cap: fc.option(fc.nat(8), { nil: null }),
    }),
    weight: 1,
  },
  {
    arbitrary: fc.record({ kind: fc.constant('block' as const), who: fc.nat(2), on: fc.boolean() }),
    weight: 1,
  },
)

/** What a decision says, without its id (each gate makes its own). */
function shape(decision: Decision) {
  const { id: _, ...rest } = JSON.parse(JSON.stringify(decision)) as Decision & { reservation?: object }
  if ('reservation' in rest && rest.reservation) delete (rest.reservation as { id?: string }).id
  return rest
}

function gates(maxCounters?: number, rules: PolicyInput = policy) {
  const clock = fakeClock()
  const fast = memoryStore({ clock, maxCounters })
  const inner = memoryStore({ clock, maxCounters })
  const wrapped: Store = { ...inner } // a copy: its lane belongs to `inner`, so the engine skips it
  return {
    clock,
    fast: createTollgate({ policy: rules, store: fast, clock }),
    general: createTollgate({ policy: rules, store: wrapped, clock }),
  }
}

/** `request` reserved on both gates of {@link gates}, which must decide it alike: both decisions. */
async function reserveBoth(fast: Tollgate, general: Tollgate, request: ReserveRequest) {
  const decisions = [await fast.reserve(request), await general.reserve(request)] as const
  expect(shape(decisions[0])).toEqual(shape(decisions[1]))
  return decisions
}

describe('the fast path', () => {
  // with few counters kept, the stores forget windows all the time: the lane must never count in one
  // that its store no longer keeps
  // without a money rule the lane also takes unpriced calls, whose amounts differ in tokens only
  const moneyless = { ...policy, rules: policy.rules!.filter((rule) => rule.id !== 'org-spend') }
  // with calendar windows only, the lane holds again in the cells it last held in, and settles
  // from its ticket (store.ts, `holdAgain` and `closeHeld`)
  const calendar = { ...policy, rules: policy.rules!.filter((rule) => rule.id !== 'user-burst') }
  // priced calls hold for 90 s, the others for 30 s: the lane's ring lists for expiry those made in
  // the order they expire, the store's lists the others (`Ledger.expireRing`); holds given back
  // at expiry show in the usage compared
  const ttls: PolicyInput = {
    models: policy.models,
    rules: [
      {
        id: 'user-rpm',
        per: 'user',
        limits: { requests: 8, tokens: 600 },
        window: 'minute',
        holds: { ttl: '30s', expiry: 'release' },
      },
      {
        id: 'team-hour',
        per: 'team',
        limits: { tokens: 1_500 },
        window: 'hour',
        holds: { ttl: '20s', expiry: 'release' },
      },
      {
        id: 'model-day',
        per: 'user',
        match: { model: 'm' },
        limits: { tokens: 2_000 },
        window: 'day',
        holds: { ttl: '90s' },
      },
    ],
  }
  it.each([
    ['', undefined, policy, 150],
    [', with 4 counters kept', 4, policy, 60],
    [', without a money rule', undefined, moneyless, 100],
    [', on calendar windows only', undefined, calendar, 100],
    [', with two hold TTLs', undefined, ttls, 300],
  ])('answers every step as the general path does%s', async (_, maxCounters, rules, numRuns) => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 60 }), async (ops) => {
        const { clock, fast, general } = gates(maxCounters, rules)
        const both: [Tollgate, Tollgate] = [fast, general]
        const open: [string, string][] = []
        for (const [index, o] of ops.entries()) {
          const step = `step ${index} ${JSON.stringify(o)}`
          if (o.kind === 'advance') clock.advance(o.ms)
          else if (o.kind === 'reserve') {
            const request = {
              subject: subjects[o.who]!,
              ...(o.priced ? { model: 'm' } : {}),
              estimate: { inputTokens: o.input, maxOutputTokens: o.output },
            }
            const [a, b] = await Promise.all(both.map((g) => g.reserve(request)))
            expect(shape(a!), step).toEqual(shape(b!))
            if (a!.allowed && b!.allowed) open.push([a!.id, b!.id])
          } else if (o.kind === 'settle' || o.kind === 'release') {
            if (open.length === 0) continue
            const [x, y] = open[o.pick % open.length]!
            const usage = o.kind === 'settle' ? { inputTokens: o.input, outputTokens: o.output } : null
            const [a, b] = await Promise.all(
              [
                [fast, x],
                [general, y],
              ].map(([g, id]) =>
                usage ? (g as Tollgate).settle(id as string, usage) : (g as Tollgate).release(id as string),
              ),
            )
            expect(a, step).toEqual(b)
          } else if (o.kind === 'override') {
            const ref = { rule: 'user-rpm', metric: 'requests', subject: { user: subjects[o.who]!.user } }
            await Promise.all(both.map((g) => g.override(ref, o.cap)))
          } else {
            const id = subjects[o.who]!.team
            await Promise.all(both.map((g) => (o.on ? g.block('team', id) : g.unblock('team', id))))
          }
          for (const subject of subjects) {
            const [a, b] = await Promise.all(both.map((g) => g.usage({ subject })))
            expect(a, `usage of ${subject.user} after ${step}`).toEqual(b)
          }
        }
      }),
      { numRuns },
    )
  })

  it('refuses a bad request as the general path does, once the shape of its subject is known', async () => {
    const { fast, general } = gates()
    const known = subjects[1]!
    const estimate = { inputTokens: 1, maxOutputTokens: 1 }
    for (const g of [fast, general])
      expect((await g.reserve({ subject: known, model: 'm', estimate })).allowed).toBe(true)
    const bad: unknown[] = [
      null,
      { subject: known, model: '' },
      { subject: known, model: 5 },
      { subject: known, feature: '' },
      { subject: known, feature: 'f'.repeat(16_385) },
      { subject: known, attempt: 0 },
      { subject: known, estimate: { inputTokens: -1 } },
      { subject: known, estimate: { maxOutputTokens: Number.NaN } },
      { subject: known, estimate: { units: { x: 1.5 } } },
      { subject: { ...known, user: 5 } },
      { subject: { ...known, user: '' } },
      { subject: { ...known, user: 'u'.repeat(16_385) } },
      { subject: { ...known, user: 'u:2 ' } },
      { subject: { ...known, user: 5 }, model: '' }, // the ids are checked first
      { subject: 'u:2' },
      { subject: [known.user, known.team, known.org] },
      { subject: Object.values(known) },
    ]
    const outcome = async (g: Tollgate, request: unknown) => {
      try {
        const asked = request && typeof request === 'object' ? { model: 'm', estimate, ...request } : request
        const decision = await g.reserve(asked as never)
        return decision.allowed ? 'allowed' : decision.code
      } catch (error) {
        return `${(error as { code: string }).code}: ${(error as Error).message}`
      }
    }
    for (const request of bad) {
      const [a, b] = [await outcome(fast, request), await outcome(general, request)]
      expect(a, JSON.stringify(request)).toEqual(b)
      expect(a, JSON.stringify(request)).toMatch(/^invalid_|^allowed$/)
    }
    // only the subject with a trailing space is a valid request (another user)
    const allowed = (await Promise.all(bad.map((r) => outcome(fast, r)))).filter((o) => o === 'allowed')
    expect(allowed).toHaveLength(1)
  })

  it('is used by a plain policy on the memory store itself, and never through a wrapper', async () => {
    const clock = fakeClock()
    const store = memoryStore({ clock })
    const reserve = store.reserve
    let reserves = 0
    store.reserve = (input) => {
      reserves++
      return reserve(input)
    }
    const request = { subject: subjects[0]!, model: 'm', estimate: { inputTokens: 1, maxOutputTokens: 1 } }
    const lane = createTollgate({ policy, store, clock })
    expect((await lane.reserve(request)).allowed).toBe(true)
    expect(reserves).toBe(0) // the lane held it
    expect((await lane.reserve(request)).allowed).toBe(true)
    clock.advance(61_000) // the minute rolls over: the lane holds in the new one
    expect((await lane.reserve(request)).allowed).toBe(true)
    clock.advance(3_600_000)
    expect((await lane.reserve(request)).allowed).toBe(true)
    expect(reserves).toBe(0)
    await createTollgate({ policy, store: { ...store }, clock }).reserve(request)
    expect(reserves).toBe(1)
    await createTollgate({ policy, store: new Proxy(store, {}), clock }).reserve(request)
    expect(reserves).toBe(2)
    // a refusal is the general path's answer, on the store itself too
    const big = { ...request, estimate: { inputTokens: 10_000, maxOutputTokens: 1 } }
    const refused = await createTollgate({ policy, store, clock }).reserve(big)
    expect(refused).toMatchObject({ allowed: false, rule: 'user-rpm' })
    expect(reserves).toBe(3)
  })
})

describe("the lane's reservation ids", () => {
  const plain: PolicyInput = {
    rules: [{ id: 'user', per: 'user', limits: { requests: 1e9, tokens: 1e12 }, window: 'hour' }],
  }
  const request = (user: string) => ({
    subject: { user },
    estimate: { inputTokens: 10, maxOutputTokens: 10 },
  })

  it('find a reservation made a ring ago, and every closed one, by id', async () => {
    const clock = fakeClock()
    const store = memoryStore({ clock })
    const gate = createTollgate({ policy: plain, store, clock })
    const first = await gate.reserve(request('a'))
    const second = await gate.reserve(request('a'))
    if (!first.allowed || !second.allowed) throw new Error('refused')
    expect(second.id).not.toBe(first.id)
    // more reservations than the ring holds (16,384) made and closed after them
    const ids: string[] = []
    for (let i = 0; i < 20_000; i++) {
      const d = await gate.reserve(request(`u${i % 7}`))
      if (!d.allowed) throw new Error('refused')
      ids.push(d.id)
      if (i % 2 === 0) await gate.settle(d.id, { inputTokens: 1, outputTokens: 1 })
    }
    expect(new Set(ids).size).toBe(ids.length)
    // still open after the ring came round: settled once, then a duplicate
    expect(await store.lookup(first.id)).toMatchObject({ state: 'held' })
    expect(await gate.settle(first.id, { inputTokens: 3, outputTokens: 2 })).toMatchObject({
      status: 'settled',
    })
    expect(await gate.settle(first.id, {})).toMatchObject({ status: 'duplicate' })
    expect(await gate.release(second.id)).toMatchObject({ status: 'released' })
    expect(await store.lookup(second.id)).toMatchObject({ state: 'released' })
    expect(await gate.settle(ids[0]!, {})).toMatchObject({ status: 'duplicate' })
    expect(await gate.release(ids[1]!)).toMatchObject({ status: 'released' })
    const usage = await gate.usage({ subject: { user: 'a' } })
    // the first settled at 3 + 2 tokens; the second, released, gave back its request and its 20 tokens
    expect(usage.find((l) => l.metric === 'requests')).toMatchObject({ used: 1 })
    expect(usage.find((l) => l.metric === 'tokens')).toMatchObject({ used: 5 })
  })

  it('expire at once when dropped past maxReservations', async () => {
    const clock = fakeClock()
    const store = memoryStore({ clock, maxReservations: 100 })
    const gate = createTollgate({ policy: plain, store, clock })
    const ids: string[] = []
    for (let i = 0; i < 20_000; i++) {
      const d = await gate.reserve(request('a'))
      if (!d.allowed) throw new Error('refused')
      ids.push(d.id)
    }
    // kept open: the lane's ring (128, the power of two from 100) and up to 100 beyond it in the
    // store's cache (which drops 6, a sixteenth, when full); the older ones expired when dropped
    const tokens = () =>
      gate.usage({ subject: { user: 'a' } }).then((u) => u.find((l) => l.metric === 'tokens')!)
    const kept = await tokens()
    expect(kept.used).toBe(20_000 * 20)
    expect(kept.held).toBeGreaterThanOrEqual((128 + 94) * 20)
    expect(kept.held).toBeLessThanOrEqual((128 + 100) * 20)
    expect(await gate.settle(ids[0]!, {})).toMatchObject({ status: 'unknown' })
    expect(await gate.settle(ids.at(-1)!, { inputTokens: 1, outputTokens: 1 })).toMatchObject({
      status: 'settled',
    })
    clock.advance('11m') // past the hold TTL: the rest expire, the dropped ones not a second time
    expect(await tokens()).toMatchObject({ used: 19_999 * 20 + 2, held: 0 })
  })

  it('never take an id they did not make for one of theirs', async () => {
    const clock = fakeClock()
    const store = memoryStore({ clock })
    const gate = createTollgate({ policy: plain, store, clock })
    const d = await gate.reserve(request('a'))
    if (!d.allowed) throw new Error('refused')
    const { id } = d
    const last = id.at(-1)!
    // one letter in the other case (an id of all capitals was once "forged" by toUpperCase())
    const recased = id.replace(/[a-z]/i, (c) => (c === c.toUpperCase() ? c.toLowerCase() : c.toUpperCase()))
    const forgeries = [`${id}0`, `${id.slice(0, -1)}0${last}`, recased, `${id} `, id.slice(1)]
    for (const forged of forgeries.filter((f) => f !== id))
      expect(await gate.settle(forged, {}), forged).toMatchObject({ status: 'unknown' })
    expect(
      await createTollgate({ policy: plain, store: memoryStore({ clock }), clock }).settle(id, {}),
    ).toMatchObject({ status: 'unknown' })
    // a store asked for one reservation's meta and then told to commit another commits that other
    const e = await gate.reserve(request('b'))
    if (!e.allowed) throw new Error('refused')
    expect(store.lane?.meta(id)).toBeDefined()
    expect(await store.commit({ id: e.id, amounts: null })).toMatchObject({ status: 'released' })
    expect(await store.lookup(id)).toMatchObject({ state: 'held' })
    expect(await gate.settle(id, {})).toMatchObject({ status: 'settled' })
  })

  it('expire, then settle late, then forget', async () => {
    const clock = fakeClock()
    const store = memoryStore({ clock, idempotencyMs: 60_000 })
    const policy: PolicyInput = { rules: [{ ...plain.rules[0]!, holds: { ttl: '10s' } }] }
    const gate = createTollgate({ policy, store, clock })
    const d = await gate.reserve(request('a'))
    if (!d.allowed) throw new Error('refused')
    clock.advance(11_000)
    expect(await store.lookup(d.id)).toMatchObject({ state: 'expired' })
    expect(await gate.settle(d.id, { inputTokens: 1, outputTokens: 1 })).toMatchObject({
      status: 'settled',
      late: true,
    })
    expect(await gate.settle(d.id, {})).toMatchObject({ status: 'duplicate' })
    clock.advance(61_000)
    expect(await gate.settle(d.id, {})).toMatchObject({ status: 'unknown' })
    const e = await gate.reserve(request('a'))
    if (!e.allowed) throw new Error('refused')
    clock.advance(11_000)
    expect(await store.lookup(e.id)).toMatchObject({ state: 'expired' })
    clock.advance(61_000) // forgotten unsettled
    expect(await store.lookup(e.id)).toBeNull()
    expect(await gate.settle(e.id, {})).toMatchObject({ status: 'unknown' })
  })

  // the ring lists for expiry the reservations that expire in the order they were made; one with
  // a shorter TTL than one before it, and one the ring hands to the store's cache, expire anyway
  it('expire each at its TTL, made in order or not, in the ring or past it', async () => {
    const clock = fakeClock() // on a whole second: a hold expires at its TTL to the millisecond
    const store = memoryStore({ clock, maxReservations: 100 }) // a ring of 128
    const rule = (feature: string, ttl: '10s' | '60s'): PolicyInput['rules'][number] => ({
      id: feature,
      per: 'user',
      match: { feature },
      limits: { tokens: 1e12 },
      window: 'day',
      holds: { ttl },
    })
    const gate = createTollgate({ policy: { rules: [rule('long', '60s'), rule('short', '10s')] }, store })
    const reserve = async (feature: string) => {
      const d = await gate.reserve({ ...request('a'), feature })
      if (!d.allowed) throw new Error('refused')
      return d.id
    }
    const state = async (id: string) => (await store.lookup(id))?.state
    const long = await reserve('long')
    const short = await reserve('short') // expires before the one made before it
    const later = await reserve('long')
    clock.advance(9_999)
    expect([await state(long), await state(short), await state(later)]).toEqual(['held', 'held', 'held'])
    clock.advance(1)
    expect([await state(long), await state(short), await state(later)]).toEqual(['held', 'expired', 'held'])
    clock.advance(49_999)
    expect(await state(long)).toBe('held')
    clock.advance(1)
    expect([await state(long), await state(later)]).toEqual(['expired', 'expired'])
    // more open than the ring holds: those it hands on expire from the store's cache
    const open: string[] = []
    for (let i = 0; i < 300; i++) open.push(await reserve(i % 2 === 0 ? 'long' : 'short'))
    clock.advance('60s')
    const states = new Set(await Promise.all(open.map(state)))
    expect(states.has('held')).toBe(false)
    expect(states.has('expired')).toBe(true)
  })
})

/** A calendar window and a rolling one of the same length: the lane holds again in either. */
const windows: [string, WindowInput][] = [
  ['calendar', 'hour'],
  ['rolling', { rolling: '1h', slots: 60 }],
]

describe("the lane's homes", () => {
  it.each(windows)(
    'stay while the lane holds in them (%s): its holds count as reads of their homes when the store makes room',
    async (_, window) => {
      const clock = fakeClock()
      const store = memoryStore({ clock, maxCounters: 16 })
      const gate = createTollgate({
        policy: { rules: [{ id: 'u', per: 'user', limits: { requests: 1_000 }, window }] },
        store,
        clock,
      })
      const used = async (user: string) => (await gate.usage({ subject: { user } }))[0]!.used
      // `a` reserves between newcomers, each pushing the store past its bound: the lane holds a's
      // requests again in its cell (never reading its home), which keeps it through every eviction pass
      for (let i = 0; i < 40; i++) {
        expect((await gate.reserve({ subject: { user: 'a' } })).allowed).toBe(true)
        expect((await gate.reserve({ subject: { user: `n${i}` } })).allowed).toBe(true)
      }
      expect(await used('a')).toBe(40)
      // idle, it goes once newcomers push it out, and a's next reserve counts in a new window
      for (let i = 0; i < 40; i++) await gate.reserve({ subject: { user: `m${i}` } })
      expect((await gate.reserve({ subject: { user: 'a' } })).allowed).toBe(true)
      expect(await used('a')).toBe(1)
    },
  )

  it.each(windows)('are never counted in once the store has forgotten them (%s)', async (_, window) => {
    const clock = fakeClock()
    // two counters per user and room for four: the oldest user's windows go when a third one comes
    const store = memoryStore({ clock, maxCounters: 4 })
    const gate = createTollgate({
      policy: { rules: [{ id: 'u', per: 'user', limits: { requests: 100, tokens: 1e6 }, window }] },
      store,
      clock,
    })
    const estimate = { inputTokens: 5, maxOutputTokens: 5 }
    const reserve = async (user: string) => {
      const decision = await gate.reserve({ subject: { user }, estimate })
      if (!decision.allowed) throw new Error('refused')
      return decision.limits.find((l) => l.metric === 'requests')?.used
    }
    expect(await reserve('a')).toBe(1)
    await reserve('b')
    await reserve('c') // a's windows, never read since, are forgotten (and their counts with them)
    expect(await reserve('a')).toBe(1) // a new window, not the forgotten one
    const usage = await gate.usage({ subject: { user: 'a' } })
    expect(usage.find((l) => l.metric === 'requests')?.used).toBe(1)
    expect(usage.find((l) => l.metric === 'tokens')?.used).toBe(10)
  })
})

/** A gate on the memory store (its lane) counting a custom unit `image_final` and tokens per user and day. */
const imageGate = () =>
  createTollgate({
    policy: {
      units: ['image_final'],
      rules: [{ id: 'img', per: 'user', limits: { image_final: 100, tokens: 1000 }, window: 'day' }],
    },
    store: memoryStore({ clock: fakeClock() }),
  })

describe('the lane, where a mutation audit found no test', () => {
  it('settles a rolling hold in the slot it was placed in, when two holds share a cell a slot apart', async () => {
    const clock = fakeClock()
    const gate = createTollgate({
      policy: {
        rules: [{ id: 'roll', per: 'user', limits: { tokens: 1000 }, window: { rolling: '60s', slots: 6 } }],
      },
      store: memoryStore({ clock }),
    })
    const ask = (inputTokens: number) => ({
      subject: { user: 'u' },
      estimate: { inputTokens, maxOutputTokens: 0 },
    })
    const a = await gate.reserve(ask(100)) // slot [0s, 10s)
    clock.advance('10s')
    const b = await gate.reserve(ask(100)) // slot [10s, 20s), the same counter
    expect(a.allowed && b.allowed).toBe(true)
    await gate.settle(a.id, { inputTokens: 100, outputTokens: 0 })
    await gate.settle(b.id, { inputTokens: 900, outputTokens: 0 }) // b used 900, at 10s
    clock.set(clock.now() + 60_000) // 70s: a's slot has left the window, b's 900 has not
    expect((await gate.usage(ask(1))).find((l) => l.metric === 'tokens')).toMatchObject({ used: 900 })
    expect((await gate.reserve(ask(200))).allowed).toBe(false) // 900 + 200 within 60s would pass 1000
  })

  it('reports when a rolling window frees up as the general path does, its slot emptied by releases', async () => {
    const rules: PolicyInput = {
      rules: [{ id: 'roll', per: 'user', limits: { requests: 5 }, window: { rolling: '60s', slots: 6 } }],
    }
    const { clock, fast, general } = gates(undefined, rules)
    const t0 = clock.now() // a whole number of 10 s slots since the epoch
    const ask = { subject: { user: 'u' } }
    const step = () => reserveBoth(fast, general, ask)
    const released = async () => {
      const [a, b] = await step()
      await fast.release(a.allowed ? a.id : '')
      await general.release(b.allowed ? b.id : '')
    }
    await released() // slot [0s, 10s) stays, counting nothing
    clock.advance('25s')
    await released() // slot [20s, 30s): the window counts nothing again
    clock.advance('1s')
    // held again in the same slot, on an empty window: it frees up when this slot leaves (90s),
    // not when the oldest slot kept does (70s)
    const [a] = await step()
    expect(a.allowed && a.limits[0]!.resetAt).toBe(t0 + 90_000)
  })

  it("drops a rolling window's oldest slot within the slot it holds in, as the general path does", async () => {
    // 10 s in 3 slots: slots of 3,334 ms, so a slot leaves the window 2 ms before a slot starts
    const rules: PolicyInput = {
      rules: [{ id: 'roll', per: 'user', limits: { requests: 5 }, window: { rolling: '10s', slots: 3 } }],
    }
    const { clock, fast, general } = gates(undefined, rules)
    const slotMs = 3_334
    const step = async () => (await reserveBoth(fast, general, { subject: { user: 'u' } }))[0]
    const base = (Math.floor(clock.now() / slotMs) + 1) * slotMs // the start of a slot k
    clock.set(base)
    await step() // slot k
    clock.set(base + 3 * slotMs)
    await step() // slot k + 3; slot k is still in the window
    clock.set(base + slotMs + 10_000)
    // still slot k + 3, and slot k has just left the window: counted 2 (this hold and the last)
    const a = await step()
    expect(a.allowed && a.limits[0]!.used).toBe(2)
  })

  it('settles a custom unit at what was used, a builtin metric beside it too', async () => {
    const gate = imageGate()
    const ask = {
      subject: { user: 'u' },
      estimate: { inputTokens: 10, maxOutputTokens: 0, units: { image_final: 2 } },
    }
    for (let i = 0; i < 3; i++) {
      // the same request each time: the lane holds again in the cells it held in last
      const decision = await gate.reserve(ask)
      if (!decision.allowed) throw new Error('refused')
      await gate.settle(decision.id, { inputTokens: 7, outputTokens: 0, units: { image_final: 5 } })
    }
    const usage = await gate.usage(ask)
    expect(usage.find((l) => l.metric === 'image_final')).toMatchObject({ used: 15, held: 0 })
    expect(usage.find((l) => l.metric === 'tokens')).toMatchObject({ used: 21, held: 0 })
  })

  it('a settle on the lane answers the held custom units it was not told of, and none it never held', async () => {
    const gate = imageGate()
    const subject = { user: 'u' }
    const onUnits = await gate.reserve({
      subject,
      estimate: { inputTokens: 10, maxOutputTokens: 0, units: { image_final: 2 } },
    })
    if (!onUnits.allowed) throw new Error('refused')
    // the usage does not report the unit: it is charged at the hold, and the answer says so
    const settled = await gate.settle(onUnits.id, { inputTokens: 7, outputTokens: 0 })
    expect(settled.amounts).toMatchObject({ image_final: 2, inputTokens: 7, tokens: 7 })
    const plain = await gate.reserve({ subject, estimate: { inputTokens: 10, maxOutputTokens: 0 } })
    if (!plain.allowed) throw new Error('refused')
    const noUnits = await gate.settle(plain.id, { inputTokens: 7, outputTokens: 0 })
    expect(Object.keys(noUnits.amounts).sort()).toEqual(
      ['concurrency', 'cost', 'inputTokens', 'outputTokens', 'requests', 'tokens'].sort(),
    )
    const usage = await gate.usage({ subject })
    expect(usage.find((l) => l.metric === 'image_final')).toMatchObject({ used: 2, held: 0 })
  })

  // guards lane.close's tick(): a hold past its TTL that no sweep has expired yet is settled late
  it('settles late a lane hold past its TTL, with no store call in between to sweep it', async () => {
    const clock = fakeClock()
    const gate = createTollgate({
      policy: {
        rules: [{ id: 'day', per: 'user', limits: { tokens: 1000 }, window: 'day', holds: { ttl: '10s' } }],
      },
      store: memoryStore({ clock }),
    })
    const decision = await gate.reserve({
      subject: { user: 'u' },
      estimate: { inputTokens: 10, maxOutputTokens: 0 },
    })
    if (!decision.allowed) throw new Error('refused')
    clock.advance('11s')
    expect(await gate.settle(decision.id, { inputTokens: 7, outputTokens: 0 })).toMatchObject({
      status: 'settled',
      late: true,
    })
  })

  // guards the meta's '' for no model: the settle record of a lane reservation says null, as ever
  it('records model null for the settle of a lane reservation made without a model', async () => {
    const records: SettleRecord[] = []
    const gate = createTollgate({
      policy: { rules: [{ id: 'day', per: 'user', limits: { tokens: 1000 }, window: 'day' }] },
      store: memoryStore({ clock: fakeClock() }),
      onSettle: (r) => records.push(r),
    })
    const decision = await gate.reserve({
      subject: { user: 'u' },
      estimate: { inputTokens: 10, maxOutputTokens: 0 },
    })
    if (!decision.allowed) throw new Error('refused')
    await gate.settle(decision.id, { inputTokens: 7, outputTokens: 0 })
    expect(records).toHaveLength(1)
    expect(records[0]!.model).toBeNull()
  })

  // guards the blocks of the lane input a plan does not remember (its estimate left a custom unit out)
  it('refuses a blocked subject on the lane when the estimate leaves a custom unit out', async () => {
    const gate = imageGate()
    const ask = { subject: { user: 'u' }, estimate: { inputTokens: 10, maxOutputTokens: 0 } }
    expect(await gate.reserve(ask)).toMatchObject({ allowed: true })
    await gate.block('user', 'u', 'key_revoked')
    expect(await gate.reserve(ask)).toMatchObject({ allowed: false, code: 'key_revoked' })
  })

  it('keeps a rolling count for the whole window, also one longer than graceMs', async () => {
    const clock = fakeClock()
    const gate = createTollgate({
      policy: { rules: [{ id: 'roll', per: 'user', limits: { requests: 1 }, window: '2h' }] },
      store: memoryStore({ clock, graceMs: 0 }),
    })
    const ask = { subject: { user: 'u' } }
    const first = await gate.reserve(ask)
    expect(first.allowed).toBe(true)
    await gate.settle(first.id, {})
    clock.advance('90m') // still inside the two-hour window
    expect((await gate.reserve(ask)).allowed).toBe(false)
  })

  it("settles a hold in its own cell, not in the cell its counters' latest hold went to", async () => {
    const clock = fakeClock()
    // room for one counter: a user's home is dropped as soon as another user's is kept
    const gate = createTollgate({
      policy: { rules: [{ id: 'day', per: 'user', limits: { tokens: 1000 }, window: 'day' }] },
      store: memoryStore({ clock, maxCounters: 1 }),
    })
    const ask = (user: string) => ({ subject: { user }, estimate: { inputTokens: 500, maxOutputTokens: 0 } })
    const a = await gate.reserve(ask('u'))
    expect(a.allowed).toBe(true)
    expect((await gate.reserve(ask('v'))).allowed).toBe(true) // u's home is dropped
    const b = await gate.reserve(ask('u')) // a new home and cell for u, the same counters
    expect(b.allowed).toBe(true)
    expect(await gate.settle(a.id, { inputTokens: 0, outputTokens: 0 })).toMatchObject({ status: 'settled' })
    // whatever a's dropped cell does, u's current day still counts b's 500 held
    expect((await gate.usage(ask('u'))).find((l) => l.metric === 'tokens')).toMatchObject({
      used: 500,
      held: 500,
    })
  })
})

describe("the lane's held cells", () => {
  it('are held in again only while they are their counters’ windows (two policies share a key)', async () => {
    // two gates on one store whose rule `u` counts the same key over another window: each one's
    // windows replace the other's, so a cell the lane held in last may be gone by its next reserve
    const run = async (shared: (store: Store) => Store) => {
      const clock = fakeClock()
      clock.advance(90_000) // a minute that does not start the hour
      const store = memoryStore({ clock })
      const gate = (window: WindowInput) =>
        createTollgate({
          policy: { rules: [{ id: 'u', per: 'user', limits: { requests: 100 }, window }] },
          store: shared(store),
          clock,
        })
      const [minute, hour] = [gate('minute'), gate('hour')]
      const subject = { user: 'a' }
      for (const g of [minute, minute, hour, minute, minute, hour, hour, minute])
        expect((await g.reserve({ subject })).allowed).toBe(true)
      return [await minute.usage({ subject }), await hour.usage({ subject })]
    }
    const [fast, general] = [await run((store) => store), await run((store) => ({ ...store }))]
    expect(fast).toEqual(general)
    expect(fast[0]![0]).toMatchObject({ metric: 'requests', used: 1 })
  })
})
