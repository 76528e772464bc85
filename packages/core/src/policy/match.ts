/**
 * `match` conditions compiled to a predicate over the request's context.
 */
import type { Subject } from '../decision.js'
import type { MatchInput } from './input.js'

/** A value JSON can write: a string, a number, a boolean, `null`, or a list or object of them. */
export type JsonValue = string | number | boolean | null | readonly JsonValue[] | JsonObject
/** A JSON object: name → JSON value (a property set to `undefined` is left out, as JSON leaves it). */
export interface JsonObject {
  readonly [key: string]: JsonValue | undefined
}

/**
 * The value of one attribute of a request. Strings, finite numbers, booleans and lists of strings
 * are what rules match on; `null` and `undefined` are taken as absent values; other JSON (objects,
 * lists of numbers) is accepted but matches nothing.
 * @example 'pro'
 * @example ['beta', 'enterprise']
 */
export type AttributeValue = string | number | boolean | readonly string[] | null | undefined | JsonValue
/**
 * A request's attributes: name → value, matched by rules' `match` (`plan`, `environment`,
 * `flags`, `attributes`).
 * @example { plan: 'pro', environment: 'production', flags: ['beta'] }
 */
export type Attributes = Readonly<Record<string, AttributeValue>>

/** The attributes of a request that gives none (one object, so that a plan look-up can tell it at once). */
export const NO_ATTRIBUTES: Attributes = Object.freeze({})

/** What a match condition looks at. Absent fields in a loose context match anything. */
export interface MatchContext {
  subject: Subject
  attributes: Attributes
  model: string | undefined
  tier: string | undefined
  feature: string | undefined
}

/** A compiled condition; `loose` lets absent model, tier and feature pass (used by `usage`). */
export type Matcher = (context: MatchContext, loose?: boolean) => boolean

const list = <T>(value: T | readonly T[] | undefined): readonly T[] | undefined =>
  value === undefined ? undefined : Array.isArray(value) ? value : [value as T]

const flagsOf = (attributes: Attributes): readonly string[] => {
  const flags = attributes.flags
  return Array.isArray(flags) ? flags : typeof flags === 'string' ? [flags] : []
}

/**
 * Whether an attribute is one of the names a policy lists (`5` and `true` as `'5'` and `'true'`);
 * anything else is no name: `String()` of an object without a prototype throws.
 */
function named(names: readonly string[], value: unknown): boolean {
  if (typeof value === 'string') return names.includes(value)
  return (typeof value === 'number' || typeof value === 'boolean') && names.includes(String(value))
}

/** Compile a `match` object; `undefined` compiles to "always". */
export function compileMatch(
  match: MatchInput | undefined,
  canonical: (model: string) => string = (model) => model,
): Matcher {
  if (!match) return () => true
  const checks: Matcher[] = []
  const plan = list(match.plan)
  const environment = list(match.environment)
  const feature = list(match.feature)
  // requests are matched by the model an alias names: an alias listed here means that model
  const model = list(match.model)?.map(canonical)
  const tier = list(match.tier)
  const flags = list(match.flags)
  if (plan) checks.push(({ attributes }) => named(plan, attributes.plan))
  if (environment) checks.push(({ attributes }) => named(environment, attributes.environment))
  if (feature)
    checks.push((c, loose) => (loose && c.feature === undefined) || feature.includes(c.feature as string))
  if (model) checks.push((c, loose) => (loose && c.model === undefined) || model.includes(c.model as string))
  if (tier) checks.push((c, loose) => (loose && c.model === undefined) || tier.includes(c.tier as string))
  if (flags) checks.push(({ attributes }) => flagsOf(attributes).some((flag) => flags.includes(flag)))
  for (const [dimension, ids] of Object.entries(match.subject ?? {})) {
    const wanted = list(ids)!
    checks.push(({ subject }) => subject[dimension] !== undefined && wanted.includes(subject[dimension]!))
  }
  for (const [attribute, values] of Object.entries(match.attributes ?? {})) {
    const wanted = list(values)!
    checks.push(({ attributes }) => {
      const value = attributes[attribute]
      return Array.isArray(value) ? value.some((v) => wanted.includes(v)) : wanted.includes(value as string)
    })
  }
  return (context, loose) => {
    for (const check of checks) if (!check(context, loose)) return false
    return true
  }
}

export { flagsOf }
