/**
 * The model-access step, explained: each plan and access entry in order, for the requested
 * model and again for each model it is downgraded to, as the engine walks them.
 */
import type { CompiledPolicy, MatchInput } from '@tollgate/core'
import type { ExplainStep } from './types.js'
import { conditions, type MatchView, whyNot } from './why.js'

type Entry = CompiledPolicy['access'][number]

/** The source `match` of an access entry (`plans.<name>` entries match on the plan). */
function matchOf(policy: CompiledPolicy, entry: Entry): MatchInput | undefined {
  if (entry.label.startsWith('plans.')) return { plan: entry.label.slice('plans.'.length) }
  return policy.source.access?.[Number(entry.label.slice('access.'.length))]?.match
}

/**
 * A prepaid balance from an empty store, as the engine reads it (`balanceOf`): the rule's opening
 * balance, or 0 when the rule's `match` does not hold for the request as asked (another plan's
 * balance unlocks nothing; the model is the requested one, absent matching anything) or its
 * counter cannot be read (the subject lacks a `per` dimension, or the tenant).
 */
function openingBalance(policy: CompiledPolicy, name: string, requested: MatchView): number {
  const rule = policy.rulesById.get(name)
  if (!rule?.match(requested, true)) return 0
  const { tenant } = policy
  const needs = tenant !== undefined && rule.per.length > 0 ? [...rule.per, tenant] : rule.per
  const { subject } = requested
  if (needs.some((d) => typeof subject[d] !== 'string' || subject[d] === '')) return 0
  return rule.limits.find((l) => l.metric === 'cost')?.cap ?? 0
}

/**
 * Why an applicable entry lets the model through or not; `null` when it does. `requested`: the
 * request before any downgrade, which the engine reads balances for.
 */
function failure(policy: CompiledPolicy, entry: Entry, view: MatchView, requested: MatchView): string | null {
  const model = view.model
  if (entry.allow && model !== undefined) {
    const ok =
      entry.allow.includes(model) || (view.tier !== undefined && entry.allow.includes(`tier:${view.tier}`))
    if (!ok) return `${model} is not in [${entry.allow.join(', ')}]`
  }
  const require = entry.require
  if (!require) return null
  const flags = view.attributes.flags
  const has = Array.isArray(flags) ? flags : typeof flags === 'string' ? [flags] : []
  if (require.flags?.some((flag) => has.includes(flag))) return null
  const balance = require.balance
  if (balance && openingBalance(policy, balance.rule, requested) >= balance.atLeast) return null
  const needs = [
    require.flags && `a flag of [${require.flags.join(', ')}]`,
    balance && `a "${balance.rule}" balance of at least ${balance.atLeast / 1e6}`,
  ].filter(Boolean)
  return `needs ${needs.join(' or ')}`
}

/** Every access entry the engine looks at, and the model that comes out. */
export function explainAccess(
  policy: CompiledPolicy,
  start: MatchView,
): { steps: ExplainStep[]; model: string | undefined } {
  const steps: ExplainStep[] = []
  let view = start
  const seen = new Set([view.model])
  for (let hop = 0; hop < 4; hop++) {
    let failed: { entry: Entry; why: string } | undefined
    for (const entry of policy.access) {
      const match = matchOf(policy, entry)
      const applies = entry.match(view)
      const reason = applies
        ? conditions(match, view, policy.aliases)
            .map((c) => c.text)
            .join('; ') || 'always'
        : whyNot(match, view, policy.aliases) || 'does not match'
      const step: ExplainStep = {
        step: 'access',
        label: entry.label,
        applies,
        reason,
        outcome: 'skip',
        detail: '',
        model: view.model ?? null,
      }
      steps.push(step)
      if (!applies) continue
      const why = failure(policy, entry, view, start)
      if (why === null) {
        step.outcome = 'pass'
        step.detail = `${view.model ?? '(no model)'} allowed`
        continue
      }
      const next = 'downgrade' in entry.otherwise ? entry.otherwise.downgrade : undefined
      step.outcome = next && !seen.has(next) ? 'downgrade' : 'refuse'
      step.detail =
        step.outcome === 'downgrade' ? `${why}: downgrade to ${next}` : `model_not_allowed (403): ${why}`
      failed = { entry, why }
      break
    }
    if (!failed || !('downgrade' in failed.entry.otherwise) || seen.has(failed.entry.otherwise.downgrade))
      return { steps, model: view.model }
    const model = failed.entry.otherwise.downgrade
    seen.add(model)
    view = { ...view, model, tier: policy.models.get(model)?.tier }
  }
  return { steps, model: view.model }
}
