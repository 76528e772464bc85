/**
 * How many output tokens the budget leaves a call, from the limit states of its decision:
 * for stream cut-off (an allowed decision, whose `used` includes the call's own hold) and for
 * shrinking the output cap (a refusal, whose `used` does not). Only `tokens`, `outputTokens`
 * and `cost` limits bound output; `cost` is turned into tokens at the model's output price.
 */
import { type Amounts, costOf, type Decision, type LimitState, MICROS, type Tollgate } from '@tollgate/core'

/** Metrics whose limits a smaller output can satisfy. */
const OUTPUT_METRICS: ReadonlySet<string> = new Set(['tokens', 'outputTokens', 'cost'])

type Price = { input: number; output: number } | undefined

/** Output tokens one limit leaves, given `room` (its cap minus what others use) and the input. */
function outputRoom(metric: string, room: number, inputTokens: number, price: Price): number {
  if (metric === 'outputTokens') return room
  if (metric === 'tokens') return room - inputTokens
  // cost: what is left after the input, at the output price (a free or unpriced output is unbounded)
  if (!price || price.output <= 0) return Number.POSITIVE_INFINITY
  return Math.floor(((room - costOf(inputTokens, price.input)) * MICROS) / price.output)
}

/**
 * Output tokens the enforced `tokens` / `outputTokens` / `cost` limits leave for a call with
 * `inputTokens` of input; `held` is what the call itself holds (its decision's `used` includes
 * it), `null` for a refusal. `Infinity` when no such limit applies.
 *
 * @example
 * outputAllowance(decision.limits, decision.reservation.amounts, 1200, price) // 3800
 */
export function outputAllowance(
  limits: readonly LimitState[],
  held: Amounts | null,
  inputTokens: number,
  price: Price,
): number {
  let allowance = Number.POSITIVE_INFINITY
  for (const limit of limits) {
    if (limit.shadow || !OUTPUT_METRICS.has(limit.metric)) continue
    const room = limit.limit - limit.used + (held?.[limit.metric] ?? 0)
    allowance = Math.min(allowance, outputRoom(limit.metric, room, inputTokens, price))
  }
  return Math.max(0, allowance)
}

/** The price of a model in the gate's policy (micro-units per million tokens). */
export function priceOf(gate: Tollgate, model: string | undefined): Price {
  return model === undefined ? undefined : gate.policy.models.get(model)?.price
}

/**
 * Output tokens a refused call could have instead, when only `tokens` / `outputTokens` /
 * `cost` limits refused it; `null` when any other limit (requests, concurrency, input tokens,
 * a block, a per-call cap, model access…) refused it too.
 *
 * @example
 * shrinkRoom(denied, 1200, price) // 800: reserve again with maxOutputTokens 800
 */
export function shrinkRoom(decision: Decision, inputTokens: number, price: Price): number | null {
  if (decision.allowed) return null
  if (decision.violations.some((v) => !OUTPUT_METRICS.has(v.metric))) return null
  const room = outputAllowance(decision.limits, null, inputTokens, price)
  return Number.isFinite(room) ? room : null
}
