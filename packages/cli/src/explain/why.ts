/**
 * Why a `match` condition does not hold for a request, in words. The engine's compiled
 * matcher decides; this only names the first field that fails, for the explanation.
 */
import type { Attributes, MatchInput, Subject } from '@tollgate/core'

/** The request as a match sees it. */
export interface MatchView {
  subject: Subject
  attributes: Attributes
  model: string | undefined
  tier: string | undefined
  feature: string | undefined
}

const list = (value: unknown): unknown[] => (Array.isArray(value) ? value : [value])
const show = (value: unknown) => (value === undefined ? '(none)' : JSON.stringify(value))
const wants = (values: unknown) => list(values).join(' | ')

/**
 * The fields of `match` that hold or fail for `view`, as short phrases. `aliases`: the policy's
 * alias → model table; a model listed by its alias stands for that model, as in the engine.
 */
export function conditions(
  match: MatchInput | undefined,
  view: MatchView,
  aliases: ReadonlyMap<string, string> = new Map(),
): { holds: boolean; text: string }[] {
  if (!match) return []
  const out: { holds: boolean; text: string }[] = []
  const check = (name: string, actual: unknown, wanted: unknown) => {
    const holds = list(wanted).includes(actual as never)
    out.push({ holds, text: `${name} ${show(actual)}${holds ? '' : `, wants ${wants(wanted)}`}` })
  }
  if (match.plan !== undefined) check('plan', view.attributes.plan, match.plan)
  if (match.environment !== undefined) check('environment', view.attributes.environment, match.environment)
  if (match.feature !== undefined) check('feature', view.feature, match.feature)
  if (match.model !== undefined)
    check(
      'model',
      view.model,
      list(match.model).map((model) => aliases.get(model as string) ?? model),
    )
  if (match.tier !== undefined) check('tier', view.tier, match.tier)
  if (match.flags !== undefined) {
    const flags = list(view.attributes.flags ?? [])
    const holds = list(match.flags).some((flag) => flags.includes(flag))
    out.push({ holds, text: `flags ${show(flags)}${holds ? '' : `, wants any of ${wants(match.flags)}`}` })
  }
  for (const [dimension, ids] of Object.entries(match.subject ?? {}))
    check(`subject.${dimension}`, view.subject[dimension], ids)
  for (const [name, values] of Object.entries(match.attributes ?? {})) {
    const actual = view.attributes[name]
    const holds = list(actual).some((v) => list(values).includes(v))
    out.push({ holds, text: `${name} ${show(actual)}${holds ? '' : `, wants ${wants(values)}`}` })
  }
  return out
}

/** Why a condition fails, e.g. `plan "free", wants starter | pro`, or `''` when it holds. */
export function whyNot(
  match: MatchInput | undefined,
  view: MatchView,
  aliases: ReadonlyMap<string, string> = new Map(),
): string {
  return conditions(match, view, aliases)
    .filter((c) => !c.holds)
    .map((c) => c.text)
    .join('; ')
}
