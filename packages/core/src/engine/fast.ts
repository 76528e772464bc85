/**
 * The fast path of reserve. A request that meets no per-call cap and no model access rule,
 * and whose counters are all plain calendar or rolling windows (see `Plan.plain`), is held by the store's
 * lane (`Store.lane`) in one synchronous step. The lane declines, having changed nothing, when
 * anything needs the general answer — a refusal, a block, a breaker, a new window — and
 * `reserve.ts` then decides the request from the start.
 */

import type { CompiledPolicy } from '../policy/compile.js'
import { type MatchContext, NO_ATTRIBUTES } from '../policy/match.js'
import type { CounterSpec, Lane, LaneReserve, Store } from '../store/contract.js'
import { LANE_FIELDS } from '../store/contract.js'
import { Allowed } from './allowed.js'
import type { Engine } from './context.js'
import { estimateAmounts, metaOf, resolveModel, tierOf } from './models.js'
import { type Plan, specsOf, type Template } from './plan.js'
import type { ReserveRequest } from './types.js'
import { checkParts, checkRequest, copySubject, readEstimate } from './validate.js'

/** The lane a gate may use: the store's, unless the policy has per-call caps or model access rules. */
export function laneOf(policy: CompiledPolicy, store: Store): Lane | undefined {
  const lane = store.lane
  if (lane === undefined || lane.store !== store) return undefined // a wrapper: its methods decide
  return policy.caps.length === 0 && policy.access.length === 0 ? lane : undefined
}

/** An allowed decision from the lane, or `undefined` when the general path must decide. */
export function decideFast(engine: Engine, lane: Lane, request: ReserveRequest): Allowed | undefined {
  const { policy, plans, maxIdLength } = engine
  if (typeof request !== 'object' || request === null) checkRequest(request, maxIdLength) // throws
  // every field read once: what is checked is what is held (a getter cannot answer twice)
  const { subject, model: asked, feature, attributes, attempt, estimate } = request
  const model = resolveModel(policy, asked)
  // a known plan vouches for the subject's ids (read once, by the look-up that found it); a new
  // plan is made from a copy of the ids checked. The rest of the request is checked every time.
  const plan =
    attributes === undefined && typeof subject === 'object' && subject !== null
      ? plans.knownOf(model, feature, subject)
      : undefined
  if (plan !== undefined) checkParts(subject, asked, feature, attributes, attempt, maxIdLength, true)
  const found = plan ?? planOf(engine, model, subject, asked, feature, attributes, attempt)
  return planned(engine, lane, found, model, estimate)
}

/** The plan of a request whose plan was not found from its parts (its context is needed). */
function planOf(
  engine: Engine,
  model: string | undefined,
  subject: ReserveRequest['subject'],
  asked: string | undefined,
  feature: string | undefined,
  attributes: ReserveRequest['attributes'],
  attempt: number | undefined,
): Plan {
  const { policy, plans, maxIdLength } = engine
  const context: MatchContext = {
    subject,
    attributes: attributes ?? NO_ATTRIBUTES,
    model,
    tier: tierOf(policy, model),
    feature,
  }
  const known = attributes === undefined ? undefined : plans.known(context)
  if (known === undefined) context.subject = copySubject(subject)
  checkParts(context.subject, asked, feature, attributes, attempt, maxIdLength, known !== undefined)
  return known ?? plans.of(context)
}

/** The lane's decision for a request whose plan is found (`undefined`: the general path decides). */
function planned(
  engine: Engine,
  lane: Lane,
  plan: Plan,
  model: string | undefined,
  estimate: ReserveRequest['estimate'],
): Allowed | undefined {
  const { policy } = engine
  if (!plan.plain) return undefined
  const read = readEstimate(estimate)
  const { amounts, unpriced } = estimateAmounts(policy, model, read)
  if (unpriced && plan.costly) return undefined // the general path refuses or flags it
  const now = lane.now()
  const found =
    sentAgain(plan, amounts, now) ?? sent(plan, amounts, specsOf(plan, amounts, now, engine.windows))
  const { used, specs } = found
  // the plan is the lane's input while it sends the same specs again (the lane's memo kept there)
  const input: LaneReserve =
    found === plan ? plan : { counters: specs, ttlMs: plan.ttlMs, blocks: plan.blocks, memo: undefined }
  const packed: number[] = new Array(specs.length * LANE_FIELDS)
  const id = lane.reserve(input, metaOf(model, amounts, read), packed)
  if (id === undefined) return undefined
  // nothing in `engine.held`: settle reads the lane's record back from the store (`lookup`)
  return new Allowed(
    { id, expiresAt: now + plan.ttlMs, amounts },
    model ?? '',
    { used, specs, packed },
    now,
    engine.options.headers,
  )
}

type Specs = { used: Template[]; specs: CounterSpec[] }

/**
 * What a plan last sent to the lane (see {@link sentAgain}), kept on the plan itself, which is then
 * the lane's input too: one object per plan (a plan is kept per user, thousands at once, and each
 * object more is one more read from memory a reserve waits for).
 */
export interface Sent extends Specs, LaneReserve {
  /** While `now` is in [from, until), every counter's window layout still holds (empty: nothing sent). */
  from: number
  until: number
  /**
   * When every metric is a builtin one: which ({@link BUILTIN_BITS}), and the amounts sent for all
   * six below, which the check reads by name; otherwise `-1` (and 0 below).
   */
  builtin: number
  requests: number
  concurrency: number
  inputTokens: number
  outputTokens: number
  tokens: number
  cost: number
  /** Otherwise the plan's distinct metrics and the amount sent for each (empty when builtin). */
  metrics: string[]
  values: number[]
}

const NO_METRICS: string[] = []
const NO_VALUES: number[] = []

/** Bits of the builtin metrics in {@link Sent.builtin}. */
const BUILTIN_BITS: Readonly<Record<string, number>> = {
  requests: 1,
  concurrency: 2,
  inputTokens: 4,
  outputTokens: 8,
  tokens: 16,
  cost: 32,
}

/**
 * The specs `plan` last sent, when they are still what `specsOf` would make: the same amount for
 * every metric, in window layouts that still hold `now` (key, cap, mode and expiry come from the
 * templates, which never change). Another plan sharing a template may have made that template a
 * new spec object since, with the same content: either object says the same. Specs are never
 * changed once sent, so the array can be sent again as it is.
 */
function sentAgain(plan: Plan, amounts: Readonly<Record<string, number>>, now: number): Specs | undefined {
  if (!(plan.from <= now && now < plan.until)) return undefined
  const b = plan.builtin
  if (b > 0) {
    // read by name: a look-up by a computed name costs more than the whole rest of this check
    return ((b & 1) !== 0 && amounts.requests !== plan.requests) ||
      ((b & 2) !== 0 && amounts.concurrency !== plan.concurrency) ||
      ((b & 4) !== 0 && amounts.inputTokens !== plan.inputTokens) ||
      ((b & 8) !== 0 && amounts.outputTokens !== plan.outputTokens) ||
      ((b & 16) !== 0 && amounts.tokens !== plan.tokens) ||
      ((b & 32) !== 0 && amounts.cost !== plan.cost)
      ? undefined
      : plan
  }
  const { metrics } = plan
  for (let i = 0; i < metrics.length; i++)
    if ((amounts[metrics[i]!] ?? 0) !== plan.values[i]) return undefined
  return plan
}

/**
 * Remember what `plan` sent for `amounts`, when it holds every template (no custom unit left out),
 * and answer it (the lane's input too, sent again while it holds).
 */
function sent(plan: Plan, amounts: Readonly<Record<string, number>>, specs: Specs): Specs {
  const { templates } = plan
  // specs that leave a template out are sent once: what the plan sent before still holds
  if (specs.used !== templates) return specs
  let from = Number.NEGATIVE_INFINITY
  let until = Number.POSITIVE_INFINITY
  const metrics: string[] = []
  const values: number[] = []
  for (let i = 0; i < templates.length; i++) {
    const t = templates[i]!
    from = Math.max(from, t.layoutFrom)
    until = Math.min(until, t.layoutUntil)
    if (!metrics.includes(t.metric)) {
      metrics.push(t.metric)
      values.push(specs.specs[i]!.amount)
    }
  }
  let builtin = 0
  for (const metric of metrics)
    builtin = Object.hasOwn(BUILTIN_BITS, metric) ? builtin | BUILTIN_BITS[metric]! : -1
  const all = builtin > 0 // the amounts sent, copied: the call's amounts are its decision's too
  plan.used = specs.used
  plan.specs = specs.specs
  plan.counters = specs.specs // the lane's memo stays: it checks which counters it is for
  plan.from = from
  plan.until = until
  plan.builtin = builtin
  plan.requests = all ? amounts.requests! : 0
  plan.concurrency = all ? amounts.concurrency! : 0
  plan.inputTokens = all ? amounts.inputTokens! : 0
  plan.outputTokens = all ? amounts.outputTokens! : 0
  plan.tokens = all ? amounts.tokens! : 0
  plan.cost = all ? amounts.cost! : 0
  // made to fit (see makePlan); read only when a metric is not builtin
  plan.metrics = all ? NO_METRICS : metrics.slice()
  plan.values = all ? NO_VALUES : values.slice()
  return plan
}
