/**
 * `reserve`: the evaluation order of SPEC §3. Input checks, per-call caps and model
 * access run here; every limit is then checked and held in one store call.
 */
import type { Decision, DeniedDecision, Downgrade, Subject, Violation, Warning } from '../decision.js'
import type { ReasonCode } from '../errors.js'
import { TollgateError } from '../errors.js'
import type { Attributes, MatchContext } from '../policy/match.js'
import type { ReservationMeta, StoreReserve, StoreReserveResult } from '../store/contract.js'
import { balanceOf } from './admin.js'
import { Allowed, type Answer, limitsOf } from './allowed.js'
import { checkCaps } from './caps.js'
import type { Engine } from './context.js'
import { baseCode, byWait, denied, refusal, violation } from './decide.js'
import { decideAccess, estimateAmounts, resolveModel, tierOf } from './models.js'
import { applyBaselines, blocksOf, type Plan, slotsOf, specsOf } from './plan.js'
import type { ReserveRequest } from './types.js'
import { checkRequest } from './validate.js'

/** What a refusal needs of the request being decided. */
interface Asked {
  id: string
  requestedModel: string
  flags: string[]
  now: number
  engine: Engine
}

function refuse(
  asked: Asked,
  violations: Violation[],
  base: string,
  limits: Decision['limits'] = [],
  shadow: Violation[] = [],
): DeniedDecision {
  return denied({
    id: asked.id,
    requestedModel: asked.requestedModel,
    limits,
    shadowViolations: shadow,
    flags: asked.flags,
    now: asked.now,
    headerOptions: asked.engine.options.headers,
    violations,
    base,
  })
}

function blockRefusal(asked: Asked, marker: string, code: string): DeniedDecision {
  const what = marker.slice(0, marker.indexOf('='))
  const base: ReasonCode = code === 'key_revoked' ? 'key_revoked' : 'blocked'
  const message = `This ${what} is ${base === 'key_revoked' ? 'revoked' : 'blocked'}.`
  return refuse(asked, [refusal(code, base, message, null)], base)
}

/** A refusal decided before the store: identity blocks still come first. */
async function refuseLocally(asked: Asked, subject: Subject, v: Violation, base: ReasonCode) {
  const { store, call } = asked.engine
  const block = await Promise.resolve()
    .then(() => call(() => store.blocked(blocksOf(subject)), '', null))
    .catch(() => null)
  return block ? blockRefusal(asked, block.marker, block.code) : refuse(asked, [v], base)
}

/** One request through the evaluation order. `fallbackOf` is set when serving a rule's fallback model. */
export async function decide(
  engine: Engine,
  request: ReserveRequest,
  fallbackOf?: Violation,
): Promise<Decision> {
  const { policy, store, call } = engine
  checkRequest(request, engine.maxIdLength)
  const id = globalThis.crypto.randomUUID() // Web Crypto: Node 20+, browsers, Edge runtimes
  const requested = resolveModel(policy, request.model)
  const context: MatchContext = {
    subject: request.subject,
    attributes: request.attributes ?? EMPTY,
    model: requested,
    tier: tierOf(policy, requested),
    feature: request.feature,
  }
  const storeNow = store.now()
  const asked: Asked = {
    id,
    requestedModel: requested ?? '',
    flags: [],
    now: typeof storeNow === 'number' ? storeNow : await storeNow,
    engine,
  }
  const { flags } = asked

  if (policy.caps.length > 0) {
    const capRefusal = checkCaps(policy, request.estimate, context)
    if (capRefusal) return refuseLocally(asked, request.subject, capRefusal, 'request_too_large')
  }

  const access =
    policy.access.length === 0
      ? ({ ok: true, model: context.model, downgrade: null } as const)
      : await decideAccess(policy, context, (rule) => balanceOf(engine, rule, context))
  if (!access.ok)
    return refuseLocally(
      asked,
      request.subject,
      refusal('model_not_allowed', 'model_not_allowed', access.message, access.rule),
      'model_not_allowed',
    )
  const model = access.model
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
        request.subject,
        refusal('model_not_allowed', 'model_not_allowed', message, 'unpriced'),
        'model_not_allowed',
      )
    }
    flags.push('unpriced_model')
  }
  const { ttlMs, blocks } = plan
  const meta = { model: model ?? '', amounts }
  let { used, specs } = specsOf(plan, amounts, asked.now, engine.windows)
  let result: StoreReserveResult
  try {
    if (plan.baselines) {
      const read = call(() => store.read(specs), '', null)
      applyBaselines(used, specs, read instanceof Promise ? await read : read)
    }
    const answer = hold(engine, { id, counters: specs, ttlMs, blocks, meta })
    result = answer instanceof Promise ? await answer : answer
    if (result.status === 'skew') {
      asked.now = result.now
      ;({ used, specs } = specsOf(plan, amounts, asked.now, engine.windows))
      if (plan.baselines) {
        const read = call(() => store.read(specs), '', null)
        applyBaselines(used, specs, read instanceof Promise ? await read : read)
      }
      const again = hold(engine, { id, counters: specs, ttlMs, blocks, meta })
      result = again instanceof Promise ? await again : again
    }
  } catch {
    const i = specs.findIndex((spec, i) => spec.enforce && used[i]!.rule.failure === 'closed')
    flags.push('store_degraded')
    const local = engine.options.localFallback
    if (local && (i < 0 || local.closed === 'enforce'))
      return decideLocally(engine, asked, model, access.downgrade, plan, amounts, meta)
    if (i >= 0) {
      const rule = used[i]!.rule.id
      const message = `The quota store is unavailable and rule "${rule}" fails closed.`
      return refuse(
        asked,
        [refusal('store_unavailable', 'store_unavailable', message, rule, { retryAfterMs: 1_000 })],
        'store_unavailable',
      )
    }
    engine.held.set(id, { model, amounts, degraded: true })
    return new Allowed(
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

  const answer: Answer = { used, specs, counters: result.counters }
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
  engine.held.set(id, { model, amounts })
  return new Allowed(
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
  answer: Answer,
  fallbackOf: Violation | undefined,
): Promise<Decision> {
  const { primary, refuseAll } = refusalOf(engine, asked, answer)
  const fallback = engine.policy.rulesById.get(primary.rule)!.fallback
  if (!fallbackOf && fallback && fallback !== model) {
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

/** The refusal a store's answer makes: its primary violation (the longest wait) and the decision. */
function refusalOf(engine: Engine, asked: Asked, answer: Answer) {
  const { violations, shadowViolations, bases } = sortViolations(engine, answer, asked.now)
  const ordered = byWait(violations)
  const primary = ordered[0]!
  const refuseAll = () => refuse(asked, ordered, bases.get(primary)!, limitsOf(answer), shadowViolations)
  return { primary, refuseAll }
}

const EMPTY: Attributes = Object.freeze({})

/** Refusals of enforced and shadow counters, with their base codes; breaker trips alert here. */
function sortViolations(engine: Engine, answer: Answer, now: number) {
  const slots = slotsOf(answer.used, answer.specs)
  const { counters } = answer
  const violations: Violation[] = []
  const shadowViolations: Violation[] = []
  const bases = new Map<Violation, string>()
  slots.forEach((slot, i) => {
    const counter = counters[i]!
    const { rule, partition } = slot.matched
    if (counter.denied) {
      const v = violation(slot, counter, engine.policy.currency)
      bases.set(v, baseCode(rule, slot.metric, counter))
      ;(slot.spec.enforce ? violations : shadowViolations).push(v)
    }
    if (counter.trippedNow) {
      engine.emit(engine.options.onAlert, {
        type: 'circuit',
        rule: rule.id,
        owner: rule.owner ?? null,
        scope: scopeText(partition),
        metric: slot.metric,
        partition,
        threshold: null,
        used: counter.used,
        limit: counter.cap,
        at: now,
      })
    }
  })
  return { violations, shadowViolations, bases }
}

/** Soft thresholds this request crossed, as warnings and alerts. */
function warn(engine: Engine, answer: Answer, now: number): Warning[] {
  const slots = slotsOf(answer.used, answer.specs)
  const { counters } = answer
  const warnings: Warning[] = []
  slots.forEach((slot, i) => {
    const counter = counters[i]!
    for (const threshold of counter.crossed) {
      const { rule, partition } = slot.matched
      const warning = {
        rule: rule.id,
        metric: slot.metric,
        partition,
        threshold,
        used: counter.used,
        limit: counter.cap,
      }
      warnings.push(warning)
      const alert = { type: 'threshold' as const, owner: rule.owner ?? null, scope: scopeText(partition) }
      engine.emit(engine.options.onAlert, { ...alert, ...warning, at: now })
    }
  })
  return warnings
}

/** A partition as alert text: `team=t1, user=u2`, or `global` for a rule without `per`. */
function scopeText(partition: Readonly<Record<string, string>>): string {
  const parts = Object.entries(partition).map(([dimension, id]) => `${dimension}=${id}`)
  return parts.length === 0 ? 'global' : parts.join(', ')
}

/** One store reserve within the timeout; a synchronous store answers with no promise in between. */
function hold(engine: Engine, input: StoreReserve): Promise<StoreReserveResult> | StoreReserveResult {
  const { store, call } = engine
  try {
    const answer = store.reserve(input)
    return answer instanceof Promise ? call.wait(answer, input.id, store) : answer
  } catch (error) {
    return call.fail(error)
  }
}

/**
 * The store is down and a local fallback is configured: hold on the local store, each counter
 * at its share of the cap. The engine's window bounds came from the store's last known time;
 * a local clock outside them gets fresh bounds once.
 */
async function decideLocally(
  engine: Engine,
  asked: Asked,
  model: string | undefined,
  downgrade: Downgrade | null,
  plan: Plan,
  amounts: Record<string, number>,
  meta: ReservationMeta,
): Promise<Decision> {
  const store = engine.local!
  const share = engine.options.localFallback!.share
  asked.flags.push('store_fallback')
  const attempt = async (now: number) => {
    const { used, specs: shared } = specsOf(plan, amounts, now, engine.windows)
    // copies: specs are shared between calls and never changed once made
    const specs = shared.map((spec) =>
      spec.cap < Number.MAX_SAFE_INTEGER ? { ...spec, cap: Math.floor(spec.cap * share) } : spec,
    )
    const input = { id: asked.id, counters: specs, ttlMs: plan.ttlMs, blocks: [], meta }
    return { used, specs, result: await store.reserve(input) }
  }
  let { used, specs, result } = await attempt(asked.now)
  if (result.status === 'skew') ({ used, specs, result } = await attempt(result.now))
  if (result.status !== 'ok' && result.status !== 'denied')
    throw new TollgateError('store_error', `The local fallback store answered ${result.status}.`)
  asked.now = result.now
  const answer: Answer = { used, specs, counters: result.counters }
  if (result.status === 'denied') return refusalOf(engine, asked, answer).refuseAll()
  engine.held.set(asked.id, { model, amounts, local: true })
  return new Allowed(
    {
      id: asked.id,
      requestedModel: asked.requestedModel,
      model: model ?? '',
      downgrade,
      reservation: { id: asked.id, expiresAt: asked.now + plan.ttlMs, amounts },
      warnings: [],
      shadowViolations: [],
      flags: asked.flags,
    },
    answer,
    asked.now,
    engine.options.headers,
  )
}
