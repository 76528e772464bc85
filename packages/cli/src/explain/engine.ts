/**
 * What the engine computes for a request before it touches the store — the estimate, a
 * rule's partition, shadow state and default reason code — restated for explanations.
 * Core keeps these internal (see docs/cli.md); tests compare them with real decisions.
 */
import {
  type CompiledPolicy,
  type CompiledRule,
  costOf,
  partitionKey,
  type ReasonCode,
  type Subject,
  sampleOf,
} from '@tollgate/core'
import type { MatchView } from './why.js'

/** Held amounts per metric for a call to `model` (cost in micro-units), and whether it has no price. */
export function estimateOf(
  policy: CompiledPolicy,
  model: string | undefined,
  inputTokens: number,
  outputTokens: number,
  units: Readonly<Record<string, number>> = {},
): { amounts: Record<string, number>; unpriced: boolean } {
  const amounts: Record<string, number> = {
    requests: 1,
    concurrency: 1,
    inputTokens,
    outputTokens,
    tokens: inputTokens + outputTokens,
    cost: 0,
    ...units,
  }
  const price = model === undefined ? undefined : policy.models.get(model)?.price
  if (price) {
    amounts.cost = costOf(inputTokens, price.input) + costOf(outputTokens, price.output)
    for (const unit in units) amounts.cost += costOf(units[unit]!, price.units[unit] ?? 0)
  } else if (policy.unpriced.action === 'reserve') amounts.cost = policy.unpriced.amount
  return { amounts, unpriced: price === undefined }
}

/** A partition dimension's id: subject first, then model, tier, feature, then a string attribute. */
export function dimensionOf(view: MatchView, dimension: string): string | undefined {
  const id = view.subject[dimension]
  if (id !== undefined) return id
  if (dimension === 'model') return view.model
  if (dimension === 'tier') return view.tier
  if (dimension === 'feature') return view.feature
  const attribute = view.attributes[dimension]
  return typeof attribute === 'string' && attribute !== '' ? attribute : undefined
}

/** The rule's partition for this request, or the first `per` dimension it lacks. */
export function partitionOf(
  rule: CompiledRule,
  view: MatchView,
): { partition: Subject; missing: string | undefined } {
  const partition: Record<string, string> = {}
  let missing: string | undefined
  for (const dimension of rule.per) {
    const id = dimensionOf(view, dimension)
    if (id === undefined) missing ??= dimension
    else partition[dimension] = id
  }
  return { partition, missing }
}

/**
 * Whether the rule runs in shadow for this partition (shadow mode, or outside its canary): a target
 * names the request by the partition's ids, or the request's for dimensions outside `per`.
 */
export function isShadow(rule: CompiledRule, partition: Subject, view: MatchView): boolean {
  if (rule.shadow) return true
  if (!rule.rollout) return false
  const named = (target: Subject) =>
    Object.entries(target).every(([d, id]) => (partition[d] ?? dimensionOf(view, d)) === id)
  if (rule.rollout.targets.some(named)) return false
  return sampleOf(`${rule.id}\u0000${partitionKey(rule.per, partition)}`) >= rule.rollout.sample
}

/** The reason code a rule refuses with by default on `metric`. */
export function baseCode(rule: CompiledRule, metric: string): ReasonCode {
  if (rule.cooldownMs !== undefined) return 'circuit_open'
  if (rule.balance) return 'insufficient_balance'
  if (metric === 'cost') return 'budget_exceeded'
  if (metric === 'concurrency') return 'concurrency_limited'
  if (rule.window.kind === 'calendar' || rule.window.kind === 'lifetime') return 'quota_exceeded'
  return 'rate_limited'
}
