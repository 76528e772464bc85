/**
 * Bad input is refused with a typed error: whatever value stands anywhere in a request, a usage
 * report or an id, the gate answers or throws a `TollgateError`, never another error, on every
 * scenario policy.
 */
import { readdirSync, readFileSync } from 'node:fs'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import { TollgateError } from '../errors.js'
import type { PolicyInput } from '../policy/input.js'
import { memoryStore } from '../store/memory/store.js'
import { fakeClock } from '../testing/fake-clock.js'
import { replaceAt } from '../testing/replace.js'
import { createTollgate } from './gate.js'

const dir = new URL('../../../../examples/policies/', import.meta.url)
const scenarios = readdirSync(dir)
  .filter((file) => file.endsWith('.yaml'))
  .map((file) => [file, parse(readFileSync(new URL(file, dir), 'utf8'))] as const)

/** A request that names every dimension, attribute and estimate the scenarios use. */
const base = {
  subject: {
    tenant: 't1',
    org: 'o1',
    team: 'tm1',
    project: 'p1',
    user: 'u1',
    key: 'k1',
    environment: 'prod',
  },
  model: 'gpt-4o',
  feature: 'chat',
  attributes: { plan: 'pro', environment: 'production', flags: ['beta'] },
  estimate: { inputTokens: 100, maxOutputTokens: 100, units: { image_final: 1 } },
}
const usage = { inputTokens: 50, outputTokens: 20, cachedInputTokens: 10, units: { image_final: 1 } }

const anything = fc.anything({
  maxDepth: 2,
  withBigInt: true,
  withDate: true,
  withMap: true,
  withSet: true,
  withTypedArray: true,
  withSparseArray: true,
  withNullPrototype: true,
  withBoxedValues: true,
  // keys every object answers to as well: a unit named `constructor` once turned a count into text
  key: fc.oneof(
    fc.string(),
    fc.constantFrom('constructor', 'toString', 'valueOf', 'hasOwnProperty', '__proto__', 'image_final'),
  ),
})
const path = fc.array(fc.nat(20), { maxLength: 4 })

/** Runs `call`; `false` when it throws anything but a `TollgateError`. */
async function typed(call: () => unknown): Promise<boolean> {
  try {
    await call()
    return true
  } catch (error) {
    return TollgateError.isInstance(error)
  }
}

/** Runs `call`; `false` when it throws at all (a valid call on the memory store must answer). */
async function intact(call: () => unknown): Promise<boolean> {
  try {
    await call()
    return true
  } catch {
    return false
  }
}

describe('the gate on hostile input', () => {
  it('has the scenario policies to play', () => {
    expect(scenarios.length).toBeGreaterThanOrEqual(6)
  })

  it('an attribute with no prototype matches nothing, instead of throwing a TypeError (found by the property)', async () => {
    const policy: PolicyInput = {
      rules: [{ id: 'pro', match: { plan: 'pro' }, per: 'user', limits: { requests: 1 }, window: 'day' }],
    }
    const gate = createTollgate({ policy })
    const attributes = { plan: Object.create(null) }
    expect(await gate.reserve({ subject: { user: 'u' }, attributes })).toMatchObject({
      allowed: true,
      limits: [],
    })
  })

  it('a block code or an override of no prototype is refused with a TollgateError, not a TypeError about the message (found by the property)', async () => {
    const gate = createTollgate({ policy: scenarios[0]![1] })
    const code = Object.create(null)
    const error = await gate.block('user', 'u1', code).catch((e: unknown) => e)
    expect(TollgateError.isInstance(error) && error.code).toBe('invalid_request')
    expect(() => createTollgate({ policy: scenarios[0]![1], timeoutMs: code })).toThrow(TollgateError)
  })

  for (const [file, policy] of scenarios) {
    const rules: string[] = (policy.rules ?? []).map((rule: { id: string }) => rule.id)
    it(`${file}: any value anywhere in an override, a credit, a block or a top query answers or throws a TollgateError`, async () => {
      const clock = fakeClock()
      const gate = createTollgate({ policy, store: memoryStore({ clock }), clock })
      const metric = fc.constantFrom(undefined, 'requests', 'tokens', 'inputTokens', 'outputTokens', 'cost')
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom(...rules),
          metric,
          path,
          anything,
          anything,
          anything,
          async (rule, metric, at, value, amount, name) => {
            const ref = replaceAt({ rule, subject: base.subject, metric }, at, value) as never
            const query = replaceAt({ rule, metric, limit: 5 }, at, value) as never
            return (
              (await typed(() => gate.override(ref, amount as never))) &&
              (await typed(() => gate.credit(ref, amount as never))) &&
              (await typed(() => gate.top(query))) &&
              (await typed(() => gate.block(name as never, 'u1', amount as never))) &&
              (await typed(() => gate.unblock(name as never, amount as never))) &&
              (await typed(() => gate.reserve(base as never)))
            )
          },
        ),
        { numRuns: 400 },
      )
    })
  }

  for (const [file, policy] of scenarios) {
    it(`${file}: custom units of any name, in an estimate and a usage report, answer or throw a TollgateError and leave every counter sound`, async () => {
      const clock = fakeClock()
      const gate = createTollgate({ policy, store: memoryStore({ clock }), clock })
      const units = fc.dictionary(
        fc.oneof(
          fc.string({ maxLength: 6 }),
          fc.constantFrom('constructor', 'toString', 'valueOf', 'hasOwnProperty', '__proto__', 'image_final'),
        ),
        fc.nat(1_000),
        { maxKeys: 3 },
      )
      await fc.assert(
        fc.asyncProperty(
          units,
          units,
          fc.constantFrom('gpt-4o', 'gpt-4o-mini', undefined),
          async (estimated, used, model) => {
            let allowed: string | undefined
            const request = { ...base, model, estimate: { ...base.estimate, units: estimated } }
            return (
              (await typed(async () => {
                const decision = await gate.reserve(request as never)
                if (decision.allowed) allowed = decision.id
              })) &&
              (await typed(() => allowed && gate.settle(allowed, { ...usage, units: used }))) &&
              (await intact(() => gate.usage(base as never)))
            )
          },
        ),
        { numRuns: 200 },
      )
    })
  }

  for (const [file, policy] of scenarios) {
    it(`${file}: any value anywhere in a request, a usage or an id answers or throws a TollgateError`, async () => {
      const clock = fakeClock()
      const gate = createTollgate({ policy, store: memoryStore({ clock }), clock })
      await fc.assert(
        fc.asyncProperty(
          path,
          anything,
          path,
          anything,
          anything,
          async (at, value, usageAt, usageValue, id) => {
            const request = replaceAt(base, at, value) as never
            let allowed: string | undefined
            const reserved = await typed(async () => {
              const decision = await gate.reserve(request)
              if (decision.allowed) allowed = decision.id
            })
            return (
              reserved &&
              (await typed(() => gate.usage(request))) &&
              (await typed(
                () => allowed && gate.settle(allowed, replaceAt(usage, usageAt, usageValue) as never),
              )) &&
              (await typed(() => gate.settle(id as never, usage))) &&
              (await typed(() => gate.release(id as never))) &&
              // the memory store never fails: a store_error here means a counter went bad
              (await intact(() => gate.usage(base as never)))
            )
          },
        ),
        { numRuns: 800 },
      )
    })
  }
})
