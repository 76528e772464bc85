/**
 * The engine against a small reference model: random reserve / settle / release /
 * duplicate / clock steps never admit past a cap, a refusal changes nothing, and a
 * duplicate settle or release changes nothing.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import type { PolicyInput } from '../policy/schema.js'
import { memoryStore } from '../store/memory/store.js'
import { fakeClock } from '../testing/fake-clock.js'
import { createTollgate } from './gate.js'

const DAY = 86_400_000
const rules: PolicyInput['rules'] = [
  { id: 'user-tokens', per: 'user', limits: { tokens: 1000 }, window: 'day' },
  { id: 'org-tokens', per: 'org', limits: { tokens: 2500 }, window: 'day' },
  { id: 'user-requests', per: 'user', limits: { requests: 5 }, window: 'day' },
]
const users = [
  { user: 'u1', org: 'o1' },
  { user: 'u:2', org: 'o1' },
  { user: '{u3}', org: 'o1' },
  { user: 'u4', org: 'o:2' },
]

type Op =
  | { kind: 'reserve'; who: number; input: number; output: number }
  | { kind: 'settle'; pick: number; input: number; output: number }
  | { kind: 'release'; pick: number }
  | { kind: 'again'; pick: number }
  | { kind: 'advance'; ms: number }

const op: fc.Arbitrary<Op> = fc.oneof(
  {
    arbitrary: fc.record({
      kind: fc.constant('reserve' as const),
      who: fc.nat(3),

      input: fc.nat(150),
      output: fc.nat(100),
    }),
    weight: 5,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant('settle' as const),
      pick: fc.nat(),
      input: fc.nat(500),
      output: fc.nat(500),
    }),
    weight: 3,
  },
  { arbitrary: fc.record({ kind: fc.constant('release' as const), pick: fc.nat() }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant('again' as const), pick: fc.nat() }), weight: 1 },
  {
    arbitrary: fc.record({
      kind: fc.constant('advance' as const),
      ms: fc.integer({ min: 1, max: 4 * 3_600_000 }),
    }),
    weight: 1,
  },
)

/** The model: used per counter per day; open and closed reservations with what they hold. */
class Model {
  used = new Map<string, number>()
  open: { id: string; day: number; keys: [string, number][] }[] = []
  closed: string[] = []
  get(key: string) {
    return this.used.get(key) ?? 0
  }
  add(key: string, delta: number) {
    this.used.set(key, this.get(key) + delta)
  }
}

const keysOf = (who: number, day: number, tokens: number): [string, number, number][] => {
  const { user, org } = users[who]!
  return [
    [`user-tokens|${user}|${day}`, tokens, 1000],
    [`org-tokens|${org}|${day}`, tokens, 2500],
    [`user-requests|${user}|${day}`, 1, 5],
  ]
}

describe('engine against a reference model', () => {
  it('agrees on every decision and every counter', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 10, maxLength: 80, size: 'large' }), async (ops) => {
        const clock = fakeClock('2026-03-07T20:00:00Z')
        const start = clock.now()
        const gate = createTollgate({ policy: { rules }, store: memoryStore({ clock }) })
        const model = new Model()
        for (const step of ops) {
          const day = Math.floor(clock.now() / DAY)
          if (step.kind === 'advance') {
            // stay within the idempotency horizon (24 h), past which a store may forget closed ids
            if (clock.now() + step.ms < start + 20 * 3_600_000) clock.advance(step.ms)
          } else if (step.kind === 'reserve') {
            const tokens = step.input + step.output
            const keys = keysOf(step.who, day, tokens)
            const fits = keys.every(([key, amount, cap]) => model.get(key) + amount <= cap)
            const decision = await gate.reserve({
              subject: users[step.who]!,
              estimate: { inputTokens: step.input, maxOutputTokens: step.output },
            })
            expect(decision.allowed).toBe(fits)
            if (decision.allowed) {
              for (const [key, amount] of keys) model.add(key, amount)
              model.open.push({ id: decision.id, day, keys: keys.map(([key, amount]) => [key, amount]) })
            }
          } else if (step.kind === 'again') {
            const id = model.closed[step.pick % Math.max(1, model.closed.length)]
            if (id) {
              expect(await gate.settle(id, { inputTokens: 999, outputTokens: 999 })).toMatchObject({
                status: 'duplicate',
              })
              expect(await gate.release(id)).toMatchObject({ status: 'duplicate' })
            }
          } else if (model.open.length > 0) {
            const [held] = model.open.splice(step.pick % model.open.length, 1)
            const actual = step.kind === 'settle' ? step.input + step.output : 0
            const result =
              step.kind === 'settle'
                ? await gate.settle(held!.id, { inputTokens: step.input, outputTokens: step.output })
                : await gate.release(held!.id)
            expect(result.status).toBe(step.kind === 'settle' ? 'settled' : 'released')
            for (const [key, amount] of held!.keys) {
              const isRequests = key.startsWith('user-requests')
              model.add(key, (isRequests ? (step.kind === 'settle' ? 1 : 0) : actual) - amount)
            }
            model.closed.push(held!.id)
          }
          // every counter of today matches the model
          const today = Math.floor(clock.now() / DAY)
          for (let who = 0; who < users.length; who++) {
            const usage = await gate.usage({ subject: users[who]! })
            for (const [key, , cap] of keysOf(who, today, 0)) {
              const rule = key.slice(0, key.indexOf('|'))
              const state = usage.find((l) => l.rule === rule)!
              expect(state.used, key).toBe(model.get(key))
              expect(state.limit).toBe(cap)
            }
          }
        }
      }),
      { numRuns: 100 },
    )
  }, 60_000)
})
