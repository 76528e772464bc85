/**
 * Aliases are only names: a scenario policy whose model names (in matches, allow lists,
 * downgrades, fallbacks) are written as aliases decides every request exactly as the policy
 * itself does. Before the policy's aliases were resolved, `match.model` on an alias never
 * matched, an allow list refused its alias, and a downgrade called the alias unpriced.
 */
import { readdirSync, readFileSync } from 'node:fs'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import type { PolicyInput } from '../policy/schema.js'
import { memoryStore } from '../store/memory/store.js'
import { fakeClock } from '../testing/fake-clock.js'
import { createTollgate } from './gate.js'
import type { ReserveRequest } from './types.js'

const dir = new URL('../../../../examples/policies/', import.meta.url)
const scenarios = readdirSync(dir)
  .filter((file) => file.endsWith('.yaml'))
  .map((file) => [file, parse(readFileSync(new URL(file, dir), 'utf8')) as PolicyInput] as const)

const aliasOf = (model: string) => `${model}@alias`

/**
 * The policy with every model name it writes replaced by an alias where `pick()` says so: the
 * aliases are declared, some in `aliases`, some in the models' own `aliases`.
 */
function aliased(policy: PolicyInput, pick: () => boolean): PolicyInput {
  const models = Object.keys(policy.models ?? {})
  if (models.length === 0) return policy
  const copy = structuredClone(policy) as Record<string, unknown> & PolicyInput
  const name = (model: string) => (models.includes(model) && pick() ? aliasOf(model) : model)
  const names = (list: string | readonly string[] | undefined) =>
    list === undefined ? undefined : typeof list === 'string' ? name(list) : list.map(name)
  const aliases: Record<string, string> = { ...copy.aliases }
  for (const [i, model] of models.entries()) {
    if (i % 2 === 0) aliases[aliasOf(model)] = model
    else
      copy.models![model] = {
        ...copy.models![model],
        aliases: [...(copy.models![model]!.aliases ?? []), aliasOf(model)],
      }
  }
  copy.aliases = aliases
  const otherwise = (o: unknown) =>
    typeof o === 'object' && o !== null && 'downgrade' in o ? { downgrade: name(String(o.downgrade)) } : o
  for (const rule of copy.rules) {
    if (rule.match?.model !== undefined) rule.match.model = names(rule.match.model)
    if (rule.fallback !== undefined) rule.fallback = name(rule.fallback)
  }
  for (const cap of copy.caps ?? []) {
    const match = cap.match as { model?: string | string[] } | undefined
    if (match?.model !== undefined) match.model = names(match.model)
  }
  for (const entry of copy.access ?? []) {
    if (entry.match?.model !== undefined) entry.match.model = names(entry.match.model)
    if (entry.allow) entry.allow = entry.allow.map(name)
    if (entry.otherwise !== undefined) entry.otherwise = otherwise(entry.otherwise) as typeof entry.otherwise
  }
  for (const plan of Object.values(copy.plans ?? {})) {
    if (plan.models) plan.models = plan.models.map(name)
    if (plan.otherwise !== undefined) plan.otherwise = otherwise(plan.otherwise) as typeof plan.otherwise
  }
  return copy
}

/** A decision without its random ids. */
const plain = (value: unknown) =>
  JSON.parse(JSON.stringify(value, (key, v) => (key === 'id' ? undefined : v))) as unknown

describe('a policy naming its models by alias', () => {
  it('has scenario policies that name models in matches, allow lists, downgrades and fallbacks', () => {
    const text = scenarios.map(([, policy]) => JSON.stringify(policy)).join()
    for (const field of ['"fallback"', '"downgrade"', '"allow"', '"model"']) expect(text).toContain(field)
  })

  for (const [file, policy] of scenarios) {
    const models = [undefined, ...Object.keys(policy.models ?? {})]
    it(`${file}: decides every request as the policy itself does`, async () => {
      const request = fc.record({
        subject: fc.record({
          tenant: fc.constantFrom('t1', 't2'),
          org: fc.constantFrom('o1', 'o2'),
          team: fc.constantFrom('tm1'),
          project: fc.constantFrom('p1', 'p2'),
          user: fc.constantFrom('u1', 'u2', 'u3'),
          key: fc.constantFrom('k1', 'k2'),
          environment: fc.constantFrom('prod', 'dev'),
          workspace: fc.constantFrom('w1', 'w2'),
          action: fc.constantFrom('a1', 'a2'),
        }),
        model: fc.constantFrom(...models),
        feature: fc.constantFrom('chat', 'search'),
        attributes: fc.record({
          plan: fc.constantFrom('trial', 'starter', 'pro', 'enterprise'),
          environment: fc.constantFrom('production', 'staging'),
          flags: fc.subarray(['beta', 'vip', 'upgraded']),
          attempt: fc.constantFrom('primary', 'fallback'),
        }),
        estimate: fc.record({
          inputTokens: fc.integer({ min: 0, max: 20_000 }),
          maxOutputTokens: fc.integer({ min: 0, max: 4_000 }),
        }),
      })
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.boolean(), { minLength: 1, maxLength: 64 }),
          fc.array(request, { maxLength: 12 }),
          async (choices, requests) => {
            let n = 0
            const other = aliased(policy, () => choices[n++ % choices.length]!)
            const clocks = [fakeClock('2026-03-02T10:00:00Z'), fakeClock('2026-03-02T10:00:00Z')]
            const [a, b] = [policy, other].map((p, i) =>
              createTollgate({ policy: p, store: memoryStore({ clock: clocks[i]! }) }),
            )
            for (const r of requests) {
              const answer = async (gate: typeof a) => {
                try {
                  return plain(await gate!.reserve(r as ReserveRequest))
                } catch (error) {
                  return { threw: (error as { code?: string }).code }
                }
              }
              expect(await answer(b)).toEqual(await answer(a))
              for (const clock of clocks) clock.advance('7s')
            }
          },
        ),
        { numRuns: 60 },
      )
    }, 60_000)
  }
})
