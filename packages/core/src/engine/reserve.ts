/**
 * `reserve`: the evaluation order of SPEC §3. Input checks, per-call caps and model
 * access run here; every limit is then checked and held in one store call.
 */

import type { Decision, Downgrade, Violation, Warning } from '../decision.js'
import { TollgateError } from '../errors.js'
import { type MatchContext, NO_ATTRIBUTES } from '../policy/match.js'
import type { StoreReserve, StoreReserveResult } from '../store/contract.js'
import { balanceOf } from './admin.js'
import { allowedOf, type StoreAnswer } from './allowed.js'
import { readAnswer, reserveAnswer, timeOf } from './answers.js'
import { checkCaps } from './caps.js'
import type { Engine } from './context.js'
import { refusal } from './decide.js'
import { decideLocally } from './local.js'
import { decideAccess, estimateAmounts, metaOf, resolveModel, tierOf } from './models.js'
import { applyBaselines, specsOf } from './plan.js'
import {
  type Asked,
  blockRefusal,
  refusalOf,
  refuse,
  refuseLocally,
  sortViolations,
  warn,
} from './refusal.js'
import type { ReserveRequest } from './types.js'
import { checkRequest, readEstimate, snapshotRequest } from './validate.js'

/** One request through the evaluation order. `fallbackOf` is set when serving a rule's fallback model. */
export async function decide(
  engine: Engine,
  given: ReserveRequest,
  fallbackOf?: Violation,
): Promise<Decision> {
  const { policy, store, call } = engine
  // each field read once, and the estimate checked into a copy: what is checked is what is held,
  // whatever the caller's objects do while this awaits the store
  const request = snapshotRequest(given)
  checkRequest(request, engine.maxIdLength)
  request.estimate = readEstimate(request.estimate)
  const id = engine.nextId()
  const requested = resolveModel(policy, request.model)
  const context: MatchContext = {
    subject: request.subject,
    attributes: request.attributes ?? NO_ATTRIBUTES,
    model: requested,
    tier: tierOf(policy, requested),
    feature: request.feature,
  }
  // a store whose clock fails is a store that does not answer: the failure modes below decide, at
  // the local time (the windows offered then are the local clock's)
  let clockFailure: unknown
  let storeNow: number
  try {
    const read = call(() => store.now(), '', null)
    storeNow = timeOf(typeof read === 'number' ? read : await read)
  } catch (error) {
    if (TollgateError.isInstance(error) && error.code === 'store_error') throw error
    clockFailure = error
    storeNow = Date.now()
  }
  const asked: Asked = {
    id,
    requestedModel: requested ?? '',
    flags: [],
    now: storeNow,
    engine,
    downgrade: null,
  }
  const { flags } = asked

  if (policy.caps.length > 0) {
    const capRefusal = checkCaps(policy, request.estimate, context)
    if (capRefusal) return refuseLocally(asked, request, capRefusal, 'request_too_large')
  }

  const access =
    policy.access.length === 0
      ? ({ ok: true, model: context.model, downgrade: null } as const)
      : await decideAccess(policy, context, (rule) => balanceOf(engine, rule, context))
  if (!access.ok)
    return refuseLocally(
      asked,
      request,
      refusal('model_not_allowed', 'model_not_allowed', access.message, access.rule),
      'model_not_allowed',
    )
  const model = access.model
  asked.downgrade = access.downgrade
  if (model !== context.model) {
    context.model = model
    context.tier = tierOf(policy, model)
  }

  const plan = engine.plans.of(context)
  const { amounts, unpriced } = estimateAmounts(policy, model, request.estimate)
  if (unpriced && plan.costly) {
    if (policy.unpriced.action === 'deny') {
      const message = `Model "${model ?? '(none)'}" has no price, and the policy refuses unpriced models.`
      return refuseLocally(
        asked,
        request,
        refusal('model_not_allowed', 'model_not_allowed', message, 'unpriced'),
        'model_not_allowed',
      )
    }
    flags.push('unpriced_model')
  }
  const { ttlMs, blocks } = plan
  const meta = metaOf(model, amounts, request.estimate)
  let { used, specs } = specsOf(plan, amounts, asked.now, engine.windows)
  let result: StoreReserveResult
  try {
    if (clockFailure !== undefined) throw clockFailure
    if (plan.baselines) {
      const read = call(() => store.read(specs), '', null)
      applyBaselines(used, specs, readAnswer(read instanceof Promise ? await read : read, specs.length))
    }
    const answer = hold(engine, { id, counters: specs, ttlMs, blocks, meta })
    result = answer instanceof Promise ? await answer : answer
    if (result.status === 'skew') {
      asked.now = result.now
      ;({ used, specs } = specsOf(plan, amounts, asked.now, engine.windows))
      if (plan.baselines) {
        const read = call(() => store.read(specs), '', null)
        applyBaselines(used, specs, readAnswer(read instanceof Promise ? await read : read, specs.length))
      }
      const again = hold(engine, { id, counters: specs, ttlMs, blocks, meta })
      result = again instanceof Promise ? await again : again
    }
  } catch (error) {
    // Failure modes are for a store that does not answer; one that cannot work is the caller's to see.
    if (TollgateError.isInstance(error) && error.code === 'store_error') throw error
    const i = specs.findIndex((spec, i) => spec.enforce && used[i]!.rule.failure === 'closed')
    flags.push('store_degraded')
    const local = engine.options.localFallback
    if (local && (i < 0 || local.closed === 'enforce'))
      return decideLocally(engine, asked, model, access.downgrade, plan, amounts, meta)
    if (i >= 0) {
      const { rule, matched } = used[i]!
      const message = `The quota store is unavailable and rule "${rule.id}" fails closed.`
      // the rule's metric and partition, as a refusal by a rule names them (the body said `partition: null`)
      const where = { retryAfterMs: 1_000, metric: specs[i]!.metric, partition: matched.partition }
      return refuse(
        asked,
        [refusal('store_unavailable', 'store_unavailable', message, rule.id, where)],
        'store_unavailable',
      )
    }
    engine.held.set(id, { model: model ?? '', amounts, degraded: true })
    return allowedOf(
      {
        id,
        requestedModel: asked.requestedModel,
        model: model ?? '',
        downgrade: access.downgrade,
        reservation: { id, expiresAt: asked.now, amounts },
        warnings: [],
        shadowViolations: [],
        flags,
      },
      null,
      asked.now,
      engine.options.headers,
    )
  }
  const now = result.now
  asked.now = now
  if (result.status === 'skew')
    throw new TollgateError('store_error', 'The store clock lies outside every window the engine offered.')
  if (result.status === 'blocked') return blockRefusal(asked, result.block, result.code)

  const answer: StoreAnswer = { used, specs, counters: result.counters }
  if (result.status === 'denied') return refuseOrServe(engine, request, asked, model, answer, fallbackOf)
  let shadowViolations: Violation[] = []
  let warnings: Warning[] = []
  let refusing = false
  let crossing = false
  for (const counter of answer.counters) {
    if (counter.denied || counter.trippedNow) refusing = true
    if (counter.crossed.length > 0) crossing = true
  }
  if (refusing) shadowViolations = sortViolations(engine, answer, now).shadowViolations
  if (crossing) warnings = warn(engine, answer, now)
  engine.held.set(id, { model: model ?? '', amounts })
  return allowedOf(
    {
      id,
      requestedModel: asked.requestedModel,
      model: model ?? '',
      downgrade: access.downgrade,
      reservation: { id, expiresAt: now + ttlMs, amounts },
      warnings,
      shadowViolations,
      flags,
    },
    answer,
    now,
    engine.options.headers,
  )
}

/** A refusal by the limits, or the decision of the primary rule's fallback model when it passes. */
async function refuseOrServe(
  engine: Engine,
  request: ReserveRequest,
  asked: Asked,
  model: string | undefined,
  answer: StoreAnswer,
  fallbackOf: Violation | undefined,
): Promise<Decision> {
  const { primary, refuseAll, throttle } = refusalOf(engine, asked, answer)
  const fallback = engine.policy.rulesById.get(primary.rule)!.fallback
  // a rule's fallback is for its cap: its throttle (from `at`, below the cap) slows, it serves nothing
  if (!fallbackOf && !throttle && fallback && fallback !== model) {
    const served = await decide(engine, { ...request, model: fallback }, primary)
    if (served.allowed) {
      const downgrade: Downgrade = {
        from: asked.requestedModel,
        to: served.model,
        reason: 'fallback',
        rule: primary.rule,
      }
      return Object.assign(served, { requestedModel: asked.requestedModel, downgrade })
    }
  }
  return refuseAll()
}

/** One store reserve within the timeout; a synchronous store answers with no promise in between. */
function hold(engine: Engine, input: StoreReserve): Promise<StoreReserveResult> | StoreReserveResult {
  const { store, call } = engine
  try {
    const answer = store.reserve(input)
    const counters = input.counters.length
    return answer instanceof Promise
      ? call.wait(answer, input.id, store).then((result) => reserveAnswer(result, counters))
      : reserveAnswer(answer, counters)
  } catch (error) {
    return call.fail(error)
  }
}
