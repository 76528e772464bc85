/**
 * The reference-model property: a few lines of obviously right bookkeeping (a map of
 * counter window → used) predict every answer of the store over random sequences of
 * reserve, settle, release, duplicate or unknown commits and clock advances.
 */
import fc from 'fast-check'
import { expect, it } from 'vitest'
import type { CommitCounter, StoreCommitResult } from '../../store/contract.js'
import { counter, type Harness, harness, minute, type Suite } from './specs.js'

/** The counters the model plays with: two share a metric, so one settle amount lands on both. */
const COUNTERS = [
  { label: 'a', metric: 'tokens', cap: 10 },
  { label: 'b', metric: 'tokens', cap: 25 },
  { label: 'c', metric: 'requests', cap: 4 },
] as const

type Op =
  | { kind: 'reserve'; picks: number[]; amounts: number[]; ttlMs: number }
  | { kind: 'settle'; pick: number; amounts: { tokens?: number; requests?: number } }
  | { kind: 'release'; pick: number }
  | { kind: 'unknown' }
  | { kind: 'advance'; ms: number }

const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('reserve' as const),
      picks: fc.shuffledSubarray([0, 1, 2], { minLength: 1 }),
      amounts: fc.array(fc.integer({ min: 0, max: 12 }), { minLength: 3, maxLength: 3 }),
      ttlMs: fc.constantFrom(2_000, 30_000, 3_600_000),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('settle' as const),
      pick: fc.nat(),
      amounts: fc.record(
        { tokens: fc.integer({ min: 0, max: 15 }), requests: fc.integer({ min: 0, max: 5 }) },
        { requiredKeys: [] },
      ),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('release' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'unknown' as const }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('advance' as const),
      ms: fc.oneof(
        fc.integer({ min: 0, max: 999 }),
        fc.integer({ min: 1_000, max: 30_000 }),
        fc.integer({ min: 30_000, max: 90_000 }),
      ),
    }),
  },
)

interface Entry {
  counter: number
  windowStart: number
  charged: number
}
interface Reservation {
  id: string
  state: 'held' | 'settled' | 'released' | 'denied'
  expiresAt: number
  entries: Entry[]
}

/** The model: used per counter window, and the reservations made so far. */
class Model {
  private readonly used = new Map<string, number>()
  readonly reservations: Reservation[] = []

  usedAt(counter: number, windowStart: number): number {
    return this.used.get(`${counter}@${windowStart}`) ?? 0
  }
  add(counter: number, windowStart: number, delta: number): number {
    const value = this.usedAt(counter, windowStart) + delta
    this.used.set(`${counter}@${windowStart}`, value)
    return value
  }
  /** Open holds in a window, or `null` while some reservation is inside its expiry second. */
  heldAt(counter: number, windowStart: number, now: number): number | null {
    let held = 0
    for (const r of this.reservations) {
      if (r.state !== 'held' || now >= r.expiresAt + 1_000) continue
      if (now >= r.expiresAt) return null
      for (const e of r.entries) if (e.counter === counter && e.windowStart === windowStart) held += e.charged
    }
    return held
  }
}

async function check(h: Harness, keys: string[], model: Model, step: string): Promise<void> {
  const window = minute(h.clock.now())
  const start = window.bounds[1]!
  const specs = COUNTERS.map((c, i) => counter(keys[i]!, window, c.cap, 0, { metric: c.metric }))
  const states = await h.store.read(specs)
  const want = COUNTERS.map((_, i) => model.usedAt(i, start))
  expect(
    states.map((s) => s.used),
    `used after ${step}`,
  ).toEqual(want)
  COUNTERS.forEach((_, i) => {
    const held = model.heldAt(i, start, h.clock.now())
    if (held !== null) expect(states[i]!.held, `held of ${COUNTERS[i]!.label} after ${step}`).toBe(held)
  })
}

function byKey(counters: CommitCounter[]): CommitCounter[] {
  return [...counters].sort((x, y) => (x.key < y.key ? -1 : x.key > y.key ? 1 : 0))
}

export function describeReferenceModel(suite: Suite, timeout: number): void {
  it('a reference model predicts every answer', { timeout }, async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 40 }), async (ops) => {
        const h = await harness(suite)
        const { store, clock } = h
        const keys = COUNTERS.map((c) => h.key(c.label))
        const model = new Model()
        for (const [index, o] of ops.entries()) {
          const step = `step ${index} ${JSON.stringify(o)}`
          const now = clock.now()
          if (o.kind === 'advance') {
            clock.advance(o.ms)
          } else if (o.kind === 'reserve') {
            const window = minute(now)
            const start = window.bounds[1]!
            const specs = o.picks.map((i) =>
              counter(keys[i]!, window, COUNTERS[i]!.cap, o.amounts[i]!, { metric: COUNTERS[i]!.metric }),
            )
            const denied = o.picks.map((i) => model.usedAt(i, start) + o.amounts[i]! > COUNTERS[i]!.cap)
            const ok = !denied.some(Boolean)
            const id = h.id()
            const result = await store.reserve({
              id,
              counters: specs,
              ttlMs: o.ttlMs,
              blocks: [],
              meta: { model: 'm' },
            })
            expect(result.status, step).toBe(ok ? 'ok' : 'denied')
            if (result.status !== 'ok' && result.status !== 'denied') throw new Error('unreachable')
            expect(
              result.counters.map((c) => c.denied),
              step,
            ).toEqual(denied)
            const entries = o.picks.map((i) => ({ counter: i, windowStart: start, charged: o.amounts[i]! }))
            if (ok) {
              const after = entries.map((e) => model.add(e.counter, start, e.charged))
              expect(
                result.counters.map((c) => c.used),
                step,
              ).toEqual(after)
            }
            model.reservations.push({ id, state: ok ? 'held' : 'denied', expiresAt: now + o.ttlMs, entries })
          } else {
            const target =
              o.kind === 'unknown'
                ? undefined
                : model.reservations[o.pick % Math.max(1, model.reservations.length)]
            const id = target?.id ?? h.id('unknown')
            const amounts = o.kind === 'settle' ? o.amounts : null
            const result: StoreCommitResult = await store.commit({ id, amounts })
            if (!target || target.state === 'denied') {
              expect(result, step).toEqual({ status: 'unknown' })
            } else if (target.state !== 'held') {
              expect(result, step).toEqual({ status: 'duplicate', previous: target.state })
            } else {
              const counters = target.entries.map((e): CommitCounter => {
                const metric = COUNTERS[e.counter]!.metric
                const charged = amounts === null ? 0 : (amounts[metric] ?? e.charged)
                const used = model.add(e.counter, e.windowStart, charged - e.charged)
                const overdraft = Math.max(0, used - COUNTERS[e.counter]!.cap)
                const held = e.charged
                e.charged = charged
                return { key: keys[e.counter]!, metric, held, charged, overdraft }
              })
              target.state = amounts === null ? 'released' : 'settled'
              expect(result.status, step).toBe(target.state)
              if (result.status !== 'settled' && result.status !== 'released') throw new Error('unreachable')
              expect(byKey(result.counters), step).toEqual(byKey(counters))
              if (now < target.expiresAt) expect(result.late, `late ${step}`).toBe(false)
              if (now >= target.expiresAt + 1_000) expect(result.late, `late ${step}`).toBe(true)
            }
          }
          await check(h, keys, model, step)
        }
      }),
      { numRuns: suite.numRuns },
    )
  })
}
