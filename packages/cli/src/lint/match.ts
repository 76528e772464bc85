/**
 * Reasoning about `match` conditions without a request: whether one condition implies
 * another, and which listed values can never occur.
 */
import type { CompiledPolicy, MatchInput } from '@tollgate/core'

const FIELDS = ['plan', 'environment', 'feature', 'model', 'tier', 'flags'] as const

const list = (value: string | readonly string[] | undefined): string[] | undefined =>
  value === undefined ? undefined : typeof value === 'string' ? [value] : [...value]

const values = (value: unknown): unknown[] => (Array.isArray(value) ? value : [value])

/**
 * Whether every request `child` matches is also matched by `parent` (so where the child
 * applies, the parent does too). Conservative: `false` when it cannot tell.
 */
export function implies(
  policy: CompiledPolicy,
  child: MatchInput | undefined,
  parent: MatchInput | undefined,
): boolean {
  if (!parent) return true
  const narrower = (wanted: unknown[] | undefined, given: unknown[] | undefined) =>
    wanted === undefined || (given?.every((v) => wanted.includes(v)) ?? false)
  // a model listed by its alias stands for that model, as in the engine
  const named = (field: (typeof FIELDS)[number], values: string[] | undefined) =>
    field === 'model' ? values?.map((model) => policy.aliases.get(model) ?? model) : values
  for (const field of FIELDS) {
    const wanted = named(field, list(parent[field]))
    if (wanted === undefined) continue
    if (narrower(wanted, named(field, list(child?.[field])))) continue
    // a child listing models whose tiers all sit in the parent's tiers
    const models = list(child?.model)
    if (field === 'tier' && models?.every((m) => wanted.includes(tierOf(policy, m) ?? '\u0000'))) continue
    return false
  }
  for (const key of ['subject', 'attributes'] as const) {
    for (const [name, wanted] of Object.entries(parent[key] ?? {})) {
      const given = child?.[key]?.[name]
      if (!narrower(values(wanted), given === undefined ? undefined : values(given))) return false
    }
  }
  return true
}

/**
 * The models a `match.model` lists, each read through the aliases as the engine compiles it (an
 * alias stands for its model); `undefined` when the match does not name models.
 */
export function modelsOf(policy: CompiledPolicy, match: MatchInput | undefined): string[] | undefined {
  return list(match?.model)?.map((model) => policy.aliases.get(model) ?? model)
}

/** A model's tier after aliases, `undefined` when unknown or untiered. */
export function tierOf(policy: CompiledPolicy, model: string): string | undefined {
  return policy.models.get(policy.aliases.get(model) ?? model)?.tier
}

/** One `match` field value that no request can carry, given the policy's own tables. */
export interface DeadValue {
  field: 'model' | 'tier' | 'plan'
  value: string
  /** Every value of the field is dead: the condition never holds. */
  all: boolean
}

/** Values in `match.model`, `match.tier` and `match.plan` that the policy's tables rule out. */
export function deadValues(policy: CompiledPolicy, match: MatchInput | undefined): DeadValue[] {
  if (!match) return []
  const dead: DeadValue[] = []
  const tiers = new Set([...policy.models.values()].map((m) => m.tier).filter((t) => t !== undefined))
  const plans = Object.keys(policy.source.plans ?? {})
  const checks = {
    model: (m: string) => policy.models.size === 0 || policy.models.has(policy.aliases.get(m) ?? m),
    tier: (t: string) => policy.models.size === 0 || tiers.has(t),
    plan: (p: string) => plans.length === 0 || plans.includes(p),
  }
  for (const field of ['model', 'tier', 'plan'] as const) {
    const given = list(match[field])
    if (!given) continue
    const unknown = given.filter((value) => !checks[field](value))
    const all = unknown.length === given.length
    for (const value of unknown) dead.push({ field, value, all })
  }
  return dead
}
