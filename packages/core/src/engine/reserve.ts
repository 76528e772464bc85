/**
 * `reserve`: the evaluation order of SPEC §3. Input checks, per-call caps and model
 * access run here; every limit is then checked and held in one store call.
 */
import type {
  AllowedDecision,
  Decision,
  DeniedDecision,
  Downgrade,
  LimitState,
  Violation,
  Warning,
} from '../decision.js'
import type { ReasonCode } from '../errors.js'
import { TollgateError } from '../errors.js'
import { rateLimitHeaders } from '../headers.js'
import { blockKey } from '../keys.js'
import type { MatchContext } from '../policy/match.js'
import type { CounterResult, StoreReserveResult } from '../store/contract.js'
import { balanceOf } from './admin.js'
import { checkCaps } from './caps.js'
import type { Engine } from './context.js'
import { buildSlots, limitState, matchRules, type Slot } from './counters.js'
import { baseCode, byWait, denied, refusal, violation } from './decide.js'
import { decideAccess, estimateAmounts, resolveModel, tierOf } from './models.js'
import type { ReserveRequest } from './types.js'
import { checkRequest } from './validate.js'

/** One request through the evaluation order. `fallbackOf` is set when serving a rule's fallback model. */
export async function decide(
  engine: Engine,
  request: ReserveRequest,
  fallbackOf?: Violation,
): Promise<Decision> {
  const { policy, store, call, options } = engine
  checkRequest(request, engine.maxIdLength)
  const id = globalThis.crypto.randomUUID() // Web Crypto: Node 20+, browsers, Edge runtimes
  const requested = resolveModel(policy, request.model)
  const requestedModel = requested ?? ''
  const context: MatchContext = {
    subject: request.subject,
    attributes: request.attributes ?? {},
    model: requested,
    tier: tierOf(policy, requested),
    feature: request.feature,
  }
  const flags: string[] = []
  let now = await store.now()
  const blocks = Object.keys(request.subject).map((d) => blockKey(d, request.subject[d]!))
  const refuse = (
    violations: Violation[],
    base: string,
    limits: Decision['limits'] = [],
    shadow: Violation[] = [],
  ) =>
    denied({
      id,
      requestedModel,
      limits,
      shadowViolations: shadow,
      flags,
      now,
      headerOptions: options.headers,
      violations,
      base,
    })
  const blockRefusal = (marker: string, code: string) => {
    const what = marker.slice(0, marker.indexOf('='))
    const base: ReasonCode = code === 'key_revoked' ? 'key_revoked' : 'blocked'
    return refuse(
      [refusal(code, base, `This ${what} is ${base === 'key_revoked' ? 'revoked' : 'blocked'}.`, null)],
      base,
    )
  }
  /** A refusal decided before the store: identity blocks still come first. */
  const refuseLocally = async (v: Violation, base: ReasonCode) => {
    const block = await call(() => store.blocked(blocks), '', null).catch(() => null)
    return block ? blockRefusal(block.marker, block.code) : refuse([v], base)
  }

  const capRefusal = checkCaps(policy, request.estimate, context)
  if (capRefusal) return refuseLocally(capRefusal, 'request_too_large')

  const access =
    policy.access.length === 0
      ? ({ ok: true, model: context.model, downgrade: null } as const)
      : await decideAccess(policy, context, (rule) => balanceOf(engine, rule, context))
  if (!access.ok)
    return refuseLocally(
      refusal('model_not_allowed', 'model_not_allowed', access.message, access.rule),
      'model_not_allowed',
    )
  const model = access.model
  context.model = model
  context.tier = tierOf(policy, model)

  const matched = matchRules(policy, context)
  const { amounts, unpriced } = estimateAmounts(policy, model, request.estimate)
  if (unpriced && matched.some(({ rule }) => rule.limits.some((l) => l.metric === 'cost'))) {
    if (policy.unpriced.action === 'deny') {
      const message = `Model "${model ?? '(none)'}" has no price, and the policy refuses unpriced models.`
      return refuseLocally(
        refusal('model_not_allowed', 'model_not_allowed', message, 'unpriced'),
        'model_not_allowed',
      )
    }
    flags.push('unpriced_model')
  }
  const ttlMs = matched.reduce((ttl, { rule }) => Math.max(ttl, rule.ttlMs), 0) || 600_000
  const meta = { model: model ?? '', amounts }
  let slots = buildSlots(policy, request.subject, matched, amounts, now, engine.windows)
  const hold = () =>
    call(() => store.reserve({ id, counters: slots.map((s) => s.spec), ttlMs, blocks, meta }), id, store)
  let result: StoreReserveResult
  try {
    result = await hold()
    if (result.status === 'skew') {
      now = result.now
      slots = buildSlots(policy, request.subject, matched, amounts, now, engine.windows)
      result = await hold()
    }
  } catch {
    const closed = slots.find((slot) => slot.spec.enforce && slot.matched.rule.failure === 'closed')
    flags.push('store_degraded')
    if (closed) {
      const rule = closed.matched.rule.id
      const message = `The quota store is unavailable and rule "${rule}" fails closed.`
      return refuse(
        [refusal('store_unavailable', 'store_unavailable', message, rule, { retryAfterMs: 1_000 })],
        'store_unavailable',
      )
    }
    engine.held.set(id, { model, amounts, degraded: true })
    return allowed(
      {
        id,
        requestedModel,
        model: model ?? '',
        downgrade: access.downgrade,
        reservation: { id, expiresAt: now, amounts },
        warnings: [],
        shadowViolations: [],
        flags,
      },
      () => [],
      now,
      engine,
    )
  }
  now = result.now
  if (result.status === 'skew')
    throw new TollgateError('store_error', 'The store clock lies outside every window the engine offered.')
  if (result.status === 'blocked') return blockRefusal(result.block, result.code)

  const counters = result.counters
  const limitsOf = () => slots.map((slot, i) => limitState(slot, counters[i]!))
  const { violations, shadowViolations, bases } = sortViolations(engine, slots, counters, now)
  if (result.status === 'denied') {
    const ordered = byWait(violations)
    const primary = ordered[0]!
    const fallback = policy.rulesById.get(primary.rule)!.fallback
    if (!fallbackOf && fallback && fallback !== model) {
      const served = await decide(engine, { ...request, model: fallback }, primary)
      if (served.allowed) {
        const downgrade: Downgrade = {
          from: requestedModel,
          to: served.model,
          reason: 'fallback',
          rule: primary.rule,
        }
        return Object.assign(served, { requestedModel, downgrade })
      }
    }
    return refuse(ordered, bases.get(primary)!, limitsOf(), shadowViolations) satisfies DeniedDecision
  }
  const warnings = warn(engine, slots, counters, now)
  engine.held.set(id, { model, amounts })
  const reservation = { id, expiresAt: now + ttlMs, amounts }
  return allowed(
    {
      id,
      requestedModel,
      model: model ?? '',
      downgrade: access.downgrade,
      reservation,
      warnings,
      shadowViolations,
      flags,
    },
    limitsOf,
    now,
    engine,
  )
}

type AllowedFields = Omit<AllowedDecision, 'allowed' | 'headers' | 'limits'>

/** An allowed decision whose limits and headers are computed on first read (most callers never read them). */
function allowed(
  fields: AllowedFields,
  limitsOf: () => LimitState[],
  now: number,
  engine: Engine,
): AllowedDecision {
  let limits: LimitState[] | undefined
  let headers: Record<string, string> | undefined
  return {
    allowed: true,
    id: fields.id,
    requestedModel: fields.requestedModel,
    model: fields.model,
    downgrade: fields.downgrade,
    reservation: fields.reservation,
    warnings: fields.warnings,
    shadowViolations: fields.shadowViolations,
    flags: fields.flags,
    get limits() {
      limits ??= limitsOf()
      return limits
    },
    get headers() {
      headers ??= rateLimitHeaders(this.limits, now, engine.options.headers)
      return headers
    },
  }
}

/** Refusals of enforced and shadow counters, with their base codes; breaker trips alert here. */
function sortViolations(engine: Engine, slots: Slot[], counters: CounterResult[], now: number) {
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
function warn(engine: Engine, slots: Slot[], counters: CounterResult[], now: number): Warning[] {
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
