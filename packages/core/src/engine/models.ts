/**
 * Models: aliases, tiers, prices, and the access step (allow lists, premium
 * requirements, downgrades) of the evaluation order.
 */
import type { Downgrade } from '../decision.js'
import { TollgateError } from '../errors.js'
import { costOf } from '../money.js'
import type { CompiledPolicy, Price } from '../policy/compile.js'
import { flagsOf, type MatchContext } from '../policy/match.js'
import type { Estimate, Usage } from './types.js'

/** The model an alias stands for (or the name itself). */
export function resolveModel(policy: CompiledPolicy, model: string | undefined): string | undefined {
  return model === undefined ? undefined : (policy.aliases.get(model) ?? model)
}

export function tierOf(policy: CompiledPolicy, model: string | undefined): string | undefined {
  return model === undefined ? undefined : policy.models.get(model)?.tier
}

export function priceOf(policy: CompiledPolicy, model: string | undefined): Price | undefined {
  return model === undefined ? undefined : policy.models.get(model)?.price
}

export type AccessOutcome =
  | { ok: true; model: string | undefined; downgrade: Downgrade | null }
  | { ok: false; model: string | undefined; rule: string; message: string }

/** Reads what is left of a balance rule for the request's subject, in micro-units. */
export type BalanceReader = (rule: string) => Promise<number>

/** Apply the policy's access entries to the requested model, following at most a few downgrades. */
export async function decideAccess(
  policy: CompiledPolicy,
  context: MatchContext,
  readBalance: BalanceReader,
): Promise<AccessOutcome> {
  const requested = context.model
  let model = requested
  let downgrade: Downgrade | null = null
  const seen = new Set<string | undefined>([model])
  for (let hop = 0; hop < 4; hop++) {
    const here: MatchContext = { ...context, model, tier: tierOf(policy, model) }
    let failed: (typeof policy.access)[number] | undefined
    for (const entry of policy.access) {
      if (!entry.match(here)) continue
      if (entry.allow && !allows(entry.allow, model, here.tier)) {
        failed = entry
        break
      }
      if (entry.require && !(await satisfies(entry.require, here, readBalance))) {
        failed = entry
        break
      }
    }
    if (!failed) return { ok: true, model, downgrade }
    if ('refuse' in failed.otherwise || seen.has(failed.otherwise.downgrade)) {
      return {
        ok: false,
        model,
        rule: failed.label,
        message: `Model "${model ?? '(none)'}" is not allowed for this request (${failed.label}).`,
      }
    }
    const next = failed.otherwise.downgrade
    downgrade = { from: requested ?? '', to: next, reason: 'access', rule: failed.label }
    seen.add(next)
    model = next
  }
  return { ok: false, model, rule: 'access', message: 'Model access rules downgrade in a loop.' }
}

function allows(allow: readonly string[], model: string | undefined, tier: string | undefined): boolean {
  if (model === undefined) return true
  return allow.includes(model) || (tier !== undefined && allow.includes(`tier:${tier}`))
}

async function satisfies(
  require: NonNullable<CompiledPolicy['access'][number]['require']>,
  context: MatchContext,
  readBalance: BalanceReader,
): Promise<boolean> {
  if (require.flags && flagsOf(context.attributes).some((flag) => require.flags!.includes(flag))) return true
  if (require.balance && (await readBalance(require.balance.rule)) >= require.balance.atLeast) return true
  return false
}

/** Estimated amounts per metric for a call, and whether its model has no price. */
export function estimateAmounts(
  policy: CompiledPolicy,
  model: string | undefined,
  estimate: Estimate | undefined,
): { amounts: Record<string, number>; unpriced: boolean } {
  const inputTokens = estimate?.inputTokens ?? 0
  const outputTokens = estimate?.maxOutputTokens ?? policy.maxOutputTokens
  const amounts: Record<string, number> = {
    requests: 1,
    concurrency: 1,
    inputTokens,
    outputTokens,
    tokens: inputTokens + outputTokens,
    cost: 0,
  }
  for (const unit in estimate?.units) amounts[unit] = estimate.units[unit]!
  const price = priceOf(policy, model)
  if (price) amounts.cost = priceCall(price, inputTokens, 0, outputTokens, estimate?.units, 'estimate')
  else if (policy.unpriced.action === 'reserve') amounts.cost = policy.unpriced.amount
  return { amounts, unpriced: price === undefined }
}

/**
 * Actual amounts per metric from reported usage; absent fields keep what was held. `units: false`
 * when `held` is known to have no custom units (see {@link metaOf}), which saves looking for them.
 */
export function actualAmounts(
  policy: CompiledPolicy,
  model: string | undefined,
  held: Readonly<Record<string, number>>,
  usage: Usage,
  units = true,
): Record<string, number> {
  const inputTokens = usage.inputTokens ?? held.inputTokens ?? 0
  const outputTokens = usage.outputTokens ?? held.outputTokens ?? 0
  // readUsage compares cached with reported input tokens; input tokens left out are the estimate's
  if ((usage.cachedInputTokens ?? 0) > inputTokens) {
    throw new TollgateError(
      'invalid_amount',
      `usage.cachedInputTokens (${usage.cachedInputTokens}) cannot exceed the call's input tokens (${inputTokens}${usage.inputTokens === undefined ? ', the estimate' : ''})`,
    )
  }
  const { requests, concurrency, cost } = held
  // a literal where the estimate's builtins are all there (always, but in a foreign store's meta):
  // a spread of `held` cost every settle a slow copy
  const amounts: Record<string, number> =
    requests !== undefined && concurrency !== undefined && cost !== undefined
      ? { requests, concurrency, inputTokens, outputTokens, tokens: inputTokens + outputTokens, cost }
      : { ...held, inputTokens, outputTokens, tokens: inputTokens + outputTokens }
  if (units) for (const metric in held) if (!(metric in amounts)) amounts[metric] = held[metric]!
  for (const unit in usage.units) amounts[unit] = usage.units[unit]!
  const price = priceOf(policy, model)
  if (usage.cost !== undefined) amounts.cost = usage.cost
  else if (price) {
    const units: Record<string, number> = {}
    for (const unit of policy.units) if (amounts[unit] !== undefined) units[unit] = amounts[unit]
    amounts.cost = priceCall(price, inputTokens, usage.cachedInputTokens ?? 0, outputTokens, units, 'usage')
  }
  return amounts
}

/** The most one call may cost, in micro-units: 1e9 in the policy's currency, its largest money amount. */
export const MAX_COST = 1e15

function priceCall(
  price: Price,
  inputTokens: number,
  cachedInputTokens: number,
  outputTokens: number,
  units: Readonly<Record<string, number>> | undefined,
  what: 'estimate' | 'usage',
): number {
  // never a negative part: cached input is part of the input (callers check; this keeps cost ≥ 0)
  let cost =
    costOf(Math.max(0, inputTokens - cachedInputTokens), price.input) +
    costOf(cachedInputTokens, price.cachedInput) +
    costOf(outputTokens, price.output)
  for (const unit in units) cost += costOf(units[unit]!, price.units[unit] ?? 0)
  // Past the largest money amount a policy can state, a cost is refused before anything moves: a
  // few such would already sum past 2^53 micro-units, where counting stops being exact.
  if (cost > MAX_COST) {
    throw new TollgateError(
      'invalid_amount',
      `The ${what} prices this call at ${cost} micro-units, more than ${MAX_COST} (1e9 in the policy's currency, the largest amount a policy can state).`,
      { issues: [{ path: [what], message: 'priced at more than 1e15 micro-units' }] },
    )
  }
  return cost
}

/**
 * A reservation's meta as the engine writes it to the store: the model (`''` for none) and the
 * amounts held, with `units: true` when the estimate gave custom units. A settle through the memory
 * store's lane (which keeps this very object) looks for custom units in the amounts only then; any
 * other settle always does, so a meta written without the mark (by an older version) loses nothing.
 */
export function metaOf(
  model: string | undefined,
  amounts: Readonly<Record<string, number>>,
  estimate: Estimate | undefined,
): { model: string; amounts: Readonly<Record<string, number>>; units?: true } {
  const meta = { model: model ?? '', amounts }
  return estimate?.units === undefined ? meta : { ...meta, units: true }
}
