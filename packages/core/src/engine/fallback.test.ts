import { describe, expect, it } from 'vitest'
import { TollgateError } from '../errors.js'
import type { PolicyInput } from '../policy/schema.js'
import type { Store } from '../store/contract.js'
import { memoryStore } from '../store/memory/store.js'
import { fakeClock } from '../testing/fake-clock.js'
import { createTollgate } from './gate.js'

const policy: PolicyInput = {
  models: { m: { price: { input: 1, output: 1 } } },
  rules: [
    { id: 'rpm', per: 'user', limits: { requests: 40 }, window: 'minute' },
    { id: 'budget', per: 'user', limits: { cost: 1 }, window: 'month' },
  ],
}
const rateOnly: PolicyInput = { rules: [policy.rules[0]!] }

/** A store whose every call fails, as one that is down; `up` switches it back to `inner`. */
function flaky(inner: Store) {
  let down = true
  const store = new Proxy(inner, {
    get(target, name, receiver) {
      const value = Reflect.get(target, name, receiver)
      if (typeof value !== 'function' || name === 'now') return value
      return (...args: unknown[]) => {
        if (down) throw new Error('connection refused')
        return value.apply(target, args)
      }
    },
  })
  return { store, up: () => (down = false) }
}

const ask = { subject: { user: 'u1' }, model: 'm', estimate: { inputTokens: 10, maxOutputTokens: 0 } }

describe('a store that answers but cannot work', () => {
  it('throws store_error to the caller: no failure mode, no local fallback, the hook still told', async () => {
    const clock = fakeClock()
    const inner = memoryStore({ clock })
    const broken = new TollgateError('store_error', 'this server is too old')
    const seen: unknown[] = []
    let failure: Error = broken
    const store: Store = { ...inner, lane: undefined, reserve: () => Promise.reject(failure) }
    const gate = createTollgate({
      policy: rateOnly, // a rate limit fails open when the store is down
      store,
      clock,
      localFallback: { share: 0.5 },
      onStoreError: (error) => seen.push(error),
    })
    await expect(gate.reserve(ask)).rejects.toBe(broken)
    expect(seen).toEqual([broken])
    // the same store failing for another reason is an outage: the local fallback decides
    failure = new Error('connection refused')
    expect(await gate.reserve(ask)).toMatchObject({
      allowed: true,
      flags: ['store_degraded', 'store_fallback'],
    })
  })
})

describe('local fallback', () => {
  it('enforces the share rounded down: four processes at a quarter never pass the cap together', async () => {
    const clock = fakeClock()
    const { store } = flaky(memoryStore({ clock }))
    const gate = createTollgate({
      policy: { rules: [{ id: 'rpm', per: 'user', limits: { requests: 10 }, window: 'minute' }] },
      store,
      clock,
      localFallback: { share: 0.25 }, // 4 × 2 = 8 ≤ 10; rounded up, 4 × 3 = 12 would over-admit
    })
    let allowed = 0
    for (let i = 0; i < 5; i++) if ((await gate.reserve({ subject: { user: 'u' } })).allowed) allowed++
    expect(allowed).toBe(2)
  })

  it('enforces its share of each cap locally while the store is down, then goes back to the store', async () => {
    const clock = fakeClock()
    const { store, up } = flaky(memoryStore({ clock }))
    const gate = createTollgate({ policy: rateOnly, store, clock, localFallback: { share: 0.25 } })
    const decisions = []
    for (let i = 0; i < 12; i++) decisions.push(await gate.reserve(ask))
    expect(decisions.filter((d) => d.allowed)).toHaveLength(10) // a quarter of 40
    expect(decisions[0]!.flags).toEqual(['store_degraded', 'store_fallback'])
    expect(decisions[11]).toMatchObject({ allowed: false, status: 429, rule: 'rpm' })
    expect(decisions[0]!.limits[0]).toMatchObject({ rule: 'rpm', limit: 10, used: 1 })
    // settles go to the local store: the holds come back there
    const first = decisions[0]!
    expect(await gate.release(first.id)).toMatchObject({ status: 'released' })
    expect((await gate.reserve(ask)).allowed).toBe(true)
    up()
    const back = await gate.reserve(ask)
    expect(back).toMatchObject({ allowed: true, flags: [] })
    expect(back.limits[0]).toMatchObject({ limit: 40, used: 1 })
  })

  it('keeps budgets closed unless told to enforce them locally', async () => {
    const clock = fakeClock()
    const refusing = createTollgate({
      policy,
      store: flaky(memoryStore({ clock })).store,
      clock,
      localFallback: { share: 0.5 },
    })
    expect(await refusing.reserve(ask)).toMatchObject({ allowed: false, code: 'store_unavailable' })
    const enforcing = createTollgate({
      policy,
      store: flaky(memoryStore({ clock })).store,
      clock,
      localFallback: { share: 0.5, closed: 'enforce' },
    })
    // $0.50 of a $1 budget locally: 10 input tokens at $1 per million cost 10 micro-units each
    const big = { ...ask, estimate: { inputTokens: 400_000, maxOutputTokens: 0 } }
    expect((await enforcing.reserve(big)).allowed).toBe(true)
    expect(await enforcing.reserve(big)).toMatchObject({ allowed: false, rule: 'budget' })
  })

  it('refuses a share outside (0, 1]', () => {
    for (const share of [0, -1, 1.5, Number.NaN])
      expect(() => createTollgate({ policy, localFallback: { share } })).toThrow(/share/)
  })
})
