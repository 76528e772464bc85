/**
 * Refusals: the decision a violation makes, identity blocks first, and the violations, warnings
 * and alerts a store's answer holds.
 */
import type { Decision, DeniedDecision, Downgrade, Violation, Warning } from '../decision.js'
import type { ReasonCode } from '../errors.js'
import { limitsOf, type StoreAnswer } from './allowed.js'
import type { Engine } from './context.js'
import { baseCode, byWait, denied, refusal, violation } from './decide.js'
import { blocksOf, slotsOf } from './plan.js'
import { limitsNow } from './report.js'
import type { ReserveRequest } from './types.js'

/** What a refusal needs of the request being decided. */
export interface Asked {
  id: string
  requestedModel: string
  flags: string[]
  now: number
  engine: Engine
  /** The downgrade model access made before the limits were checked, if any. */
  downgrade: Downgrade | null
}

export function refuse(
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
    downgrade: asked.downgrade,
    now: asked.now,
    headerOptions: asked.engine.options.headers,
    violations,
    base,
  })
}

export function blockRefusal(asked: Asked, marker: string, code: string): DeniedDecision {
  const what = marker.slice(0, marker.indexOf('='))
  const base: ReasonCode = code === 'key_revoked' ? 'key_revoked' : 'blocked'
  const message = `This ${what} is ${base === 'key_revoked' ? 'revoked' : 'blocked'}.`
  // a block refuses whatever the model: no downgrade is part of it
  return refuse({ ...asked, downgrade: null }, [refusal(code, base, message, null)], base)
}

/**
 * A refusal decided before the store (a per-call cap, model access): identity blocks still come
 * first, and the decision carries the request's limits as they stand, so that its response has
 * rate-limit headers like every other (a store that cannot be read leaves them out).
 */
export async function refuseLocally(
  asked: Asked,
  request: Omit<ReserveRequest, 'estimate'>,
  v: Violation,
  base: ReasonCode,
) {
  const { engine } = asked
  const { store, call } = engine
  const block = await Promise.resolve()
    .then(() => call(() => store.blocked(blocksOf(request.subject)), '', null))
    .catch(() => null)
  if (block) return blockRefusal(asked, block.marker, block.code)
  const limits = await limitsNow(engine, request).catch(() => [])
  return refuse(asked, [v], base, limits)
}

/**
 * The refusal a store's answer makes: its primary violation (the longest wait), the decision, and
 * whether that violation is its rule's throttle (which slows requests from `at`, before the cap,
 * and never serves the rule's fallback: that is for the cap).
 */
export function refusalOf(engine: Engine, asked: Asked, answer: StoreAnswer) {
  const { violations, shadowViolations, bases, throttled } = sortViolations(engine, answer, asked.now)
  const ordered = byWait(violations)
  const primary = ordered[0]!
  const refuseAll = () => refuse(asked, ordered, bases.get(primary)!, limitsOf(answer), shadowViolations)
  return { primary, refuseAll, throttle: throttled.has(primary) }
}

/** Refusals of enforced and shadow counters, with their base codes; breaker trips alert here. */
export function sortViolations(engine: Engine, answer: StoreAnswer, now: number) {
  const slots = slotsOf(answer.used, answer.specs)
  const { counters } = answer
  const violations: Violation[] = []
  const shadowViolations: Violation[] = []
  const bases = new Map<Violation, string>()
  const throttled = new Set<Violation>()
  slots.forEach((slot, i) => {
    const counter = counters[i]!
    const { rule, partition } = slot.matched
    if (counter.denied) {
      const v = violation(slot, counter, engine.policy.currency)
      bases.set(v, baseCode(rule, slot.metric, counter))
      if (counter.throttled) throttled.add(v)
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
  return { violations, shadowViolations, bases, throttled }
}

/** Soft thresholds this request crossed, as warnings and alerts. */
export function warn(engine: Engine, answer: StoreAnswer, now: number): Warning[] {
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
