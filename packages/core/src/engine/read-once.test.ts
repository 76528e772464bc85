/**
 * What is checked is what is held and charged: a request, estimate, subject or usage report is read
 * once. A getter that answers differently on its second read, or a caller changing its object while
 * the engine awaits the store, used to put unchecked values in the counters (a negative estimate
 * admitted a million tokens past a cap of 1000; NaN made the partition unreadable).
 */
import { describe, expect, it } from 'vitest'
import type { PolicyInput } from '../policy/schema.js'
import { memoryStore } from '../store/memory/store.js'
import { fakeClock } from '../testing/fake-clock.js'
import { createTollgate } from './gate.js'

const models = { m: { price: { input: 1, output: 1 } } }
const rules: PolicyInput['rules'] = [
  { id: 'tok', per: 'user', limits: { tokens: 1000 }, window: 'day' },
  { id: 'money', per: 'user', limits: { cost: 0.001 }, window: 'month' },
]
/** The memory store's lane decides `plain`; model access rules send `gated` down the general path. */
const policies: Record<string, PolicyInput> = {
  plain: { models, rules },
  gated: { models, plans: { free: { models: ['m'] } }, rules },
}

function setup(kind: string) {
  const clock = fakeClock()
  const gate = createTollgate({ policy: policies[kind]!, store: memoryStore({ clock }) })
  const ask = (user: string, estimate: object) => ({
    subject: { user },
    model: 'm',
    attributes: kind === 'gated' ? { plan: 'free' } : undefined,
    estimate,
  })
  /** used and held of every counter of `user`: never negative, never NaN */
  const counters = async (user: string) =>
    (await gate.usage({ subject: { user }, model: 'm' })).map((s) => [s.used, s.held])
  return { gate, ask, counters }
}

/** A value that reads `first` once, then `then` ever after. */
function twoFaced<T>(first: T, then: T) {
  let reads = 0
  return () => (reads++ === 0 ? first : then)
}

describe.each(['plain', 'gated'])('read once (%s policy)', (kind) => {
  it('an estimate whose getter changes is held as checked', async () => {
    const { gate, ask, counters } = setup(kind)
    const input = twoFaced(10, -1_000_000)
    const decision = await gate.reserve(
      ask('u1', {
        get inputTokens() {
          return input()
        },
        maxOutputTokens: 10,
      }),
    )
    expect(decision).toMatchObject({ allowed: true, reservation: { amounts: { inputTokens: 10 } } })
    expect(await counters('u1')).toEqual([
      [20, 20],
      [20, 20],
    ])
  })

  it('an estimate changed right after reserve() is called is held as it was', async () => {
    const { gate, ask, counters } = setup(kind)
    const estimate = { inputTokens: 10, maxOutputTokens: 10 }
    const pending = gate.reserve(ask('u1', estimate))
    estimate.inputTokens = -1_000_000
    expect(await pending).toMatchObject({ allowed: true, reservation: { amounts: { inputTokens: 10 } } })
    estimate.maxOutputTokens = Number.NaN
    expect(await counters('u1')).toEqual([
      [20, 20],
      [20, 20],
    ])
    // and the cap still binds: 980 more tokens fit, not 981
    expect((await gate.reserve(ask('u1', { inputTokens: 981, maxOutputTokens: 0 }))).allowed).toBe(false)
  })

  it('a subject whose id changes on a second read is charged to the id checked', async () => {
    const { gate, ask, counters } = setup(kind)
    const id = twoFaced('u1', '')
    const request = {
      ...ask('ignored', { inputTokens: 5, maxOutputTokens: 0 }),
      subject: {
        get user() {
          return id()
        },
      },
    }
    expect((await gate.reserve(request)).allowed).toBe(true)
    expect((await counters('u1'))[0]).toEqual([5, 5])
  })

  it('a usage report whose getter changes, or that changes after settle() is called, is charged as checked', async () => {
    const { gate, ask, counters } = setup(kind)
    const first = await gate.reserve(ask('u1', { inputTokens: 10, maxOutputTokens: 10 }))
    const second = await gate.reserve(ask('u1', { inputTokens: 10, maxOutputTokens: 10 }))
    if (!first.allowed || !second.allowed) throw new Error('refused')
    const output = twoFaced(5, -1_000_000)
    await gate.settle(first.id, {
      inputTokens: 5,
      get outputTokens() {
        return output()
      },
    })
    const usage = { inputTokens: 5, outputTokens: 5 }
    const settling = gate.settle(second.id, usage)
    usage.outputTokens = -1_000_000
    expect(await settling).toMatchObject({ status: 'settled', amounts: { tokens: 10 } })
    expect((await counters('u1'))[0]).toEqual([20, 0])
  })
})
