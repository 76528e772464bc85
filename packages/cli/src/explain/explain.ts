/**
 * `explain`: which parts of a policy apply to one request, in the engine's evaluation order
 * (per-call caps, model access, limits), what each would decide from an empty store, and
 * the decision the real engine makes.
 */
import {
  type CompiledPolicy,
  createTollgate,
  type Decision,
  type MatchInput,
  type PolicyInput,
  parsePolicy,
  statusOf,
  TollgateError,
} from '@tollgate/core'
import { inFourDigitYears, virtualClock } from '../clock.js'
import { windowText } from '../lint/hierarchy.js'
import { explainAccess } from './access.js'
import { baseCode, estimateOf, isShadow, partitionOf } from './engine.js'
import type {
  ExplainDecision,
  ExplainInput,
  ExplainLimit,
  ExplainOptions,
  ExplainStep,
  Explanation,
} from './types.js'
import { conditions, type MatchView, whyNot } from './why.js'

const BUILTIN = new Set(['requests', 'inputTokens', 'outputTokens', 'tokens', 'cost', 'concurrency'])

/**
 * Explain how `policy` treats one request.
 *
 * @example
 * const explanation = await explain(policyText, { subject: { user: 'u1' }, model: 'gpt-4o', inputTokens: 900 })
 * for (const step of explanation.steps) console.log(step.label, step.outcome, step.detail)
 */
export async function explain(
  policy: PolicyInput | CompiledPolicy | string,
  input: ExplainInput,
  options: ExplainOptions = {},
): Promise<Explanation> {
  const compiled = parsePolicy(policy)
  const at = options.at ?? Date.now()
  if (typeof at !== 'number' || !inFourDigitYears(at))
    throw new TollgateError(
      'invalid_request',
      `explain(): at must be ms since the epoch in the years 1000 to 9999, got ${typeof at === 'number' ? at : typeof at}`,
    )
  if (typeof input !== 'object' || input === null)
    throw new TollgateError('invalid_request', 'explain() needs a request object with a subject')
  const inputTokens = input.estimate?.inputTokens ?? input.inputTokens ?? 0
  const outputTokens = input.estimate?.maxOutputTokens ?? input.maxOutputTokens ?? compiled.maxOutputTokens
  const decision = await decide(compiled, input, at, inputTokens, outputTokens)
  // a request the engine refuses under a policy without rules is malformed in itself (a subject,
  // id, amount or attribute of the wrong kind): that refusal is the whole explanation, since the
  // rules cannot be walked with it. A refusal that depends on the rules (a partition dimension the
  // request lacks) is walked, so that the step that needs it shows.
  if ('error' in decision && 'error' in (await decide(NO_RULES, input, at, inputTokens, outputTokens)))
    return {
      at,
      requestedModel: null,
      requestedTier: null,
      model: null,
      tier: null,
      estimate: {},
      unpriced: false,
      steps: [],
      decision,
    }
  const requested = input.model === undefined ? undefined : (compiled.aliases.get(input.model) ?? input.model)
  const units = input.estimate?.units
  const view: MatchView = {
    subject: input.subject,
    attributes: input.attributes ?? {},
    model: requested,
    tier: requested === undefined ? undefined : compiled.models.get(requested)?.tier,
    feature: input.feature,
  }
  const requestedTier = view.tier
  const steps: ExplainStep[] = []
  const reasonOf = reasonIn(view, compiled.aliases)

  // 2. per-call caps
  compiled.caps.forEach((cap, i) => {
    const match = compiled.source.caps?.[i]?.match as MatchInput | undefined
    const applies = cap.match(view)
    const over =
      cap.maxInputTokens !== undefined && inputTokens > cap.maxInputTokens
        ? `${inputTokens} input tokens > ${cap.maxInputTokens}`
        : cap.maxOutputTokens !== undefined && outputTokens > cap.maxOutputTokens
          ? `${outputTokens} output tokens > ${cap.maxOutputTokens}`
          : cap.maxTokens !== undefined && inputTokens + outputTokens > cap.maxTokens
            ? `${inputTokens + outputTokens} tokens > ${cap.maxTokens}`
            : null
    steps.push({
      step: 'cap',
      label: cap.label,
      applies,
      reason: reasonOf(match, applies),
      outcome: !applies ? 'skip' : over ? 'refuse' : 'pass',
      detail: !applies
        ? ''
        : over
          ? `${cap.code ?? 'request_too_large'} (413): ${over}`
          : 'within the per-call caps',
      model: requested ?? null,
    })
  })

  // 3. model access
  const access = explainAccess(compiled, view)
  steps.push(...access.steps)
  view.model = access.model
  view.tier = access.model === undefined ? undefined : compiled.models.get(access.model)?.tier
  const { amounts, unpriced } = estimateOf(compiled, view.model, inputTokens, outputTokens, units)
  const unpricedStep = explainUnpriced(compiled, view, unpriced)
  if (unpricedStep) steps.push(unpricedStep)

  // 4. limits
  steps.push(...walkLimits(compiled, view, amounts))
  // a refusal by a rule with a fallback model: the engine decided again for that model, and served it
  if (decision.allowed && decision.downgrade?.reason === 'fallback') {
    const { rule, to } = decision.downgrade
    const primary = steps.find((s) => s.step === 'rule' && s.label === rule && s.outcome === 'refuse')
    const over = primary?.limits?.find((l) => !l.admits)
    if (primary && over) {
      primary.outcome = 'downgrade'
      primary.detail = `${overText(over)}: serves ${to} instead (fallback)`
    }
    const served: MatchView = { ...view, model: to, tier: compiled.models.get(to)?.tier }
    const again = estimateOf(compiled, to, inputTokens, outputTokens, units)
    steps.push(...walkLimits(compiled, served, again.amounts))
  }

  return {
    at,
    requestedModel: requested ?? null,
    requestedTier: requestedTier ?? null,
    model: view.model ?? null,
    tier: view.tier ?? null,
    estimate: amounts,
    unpriced,
    steps,
    decision,
  }
}

/** A limit this request would go past, in words: its code and status, and by how much. */
const overText = (limit: ExplainLimit) =>
  `${limit.code} (${limit.status}): ${limit.metric} ${limit.amount} > ${limit.cap}`

/** Why an entry's `match` holds for a request (the conditions met), or why not. */
function reasonIn(view: MatchView, aliases: ReadonlyMap<string, string>) {
  return (match: MatchInput | undefined, applies: boolean): string =>
    applies
      ? conditions(match, view, aliases)
          .map((c) => c.text)
          .join('; ') || 'always'
      : whyNot(match, view, aliases) || 'does not match'
}

/** The limits step by step for one model, as the engine checks them from an empty store. */
function walkLimits(
  compiled: CompiledPolicy,
  view: MatchView,
  amounts: Record<string, number>,
): ExplainStep[] {
  const steps: ExplainStep[] = []
  const reasonOf = reasonIn(view, compiled.aliases)
  for (const [i, rule] of compiled.rules.entries()) {
    const match = compiled.source.rules[i]!.match
    const applies = rule.match(view)
    const base = {
      step: 'rule' as const,
      label: rule.id,
      applies,
      reason: reasonOf(match, applies),
      model: view.model ?? null,
    }
    if (!applies) {
      steps.push({ ...base, outcome: 'skip', detail: '' })
      continue
    }
    const { partition, missing } = partitionOf(rule, view)
    if (missing !== undefined) {
      const detail = `invalid_subject (400): counts per "${missing}", and the request has none`
      steps.push({ ...base, outcome: 'invalid', detail, partition })
      continue
    }
    const shadow = isShadow(rule, partition, view)
    const limits: ExplainLimit[] = []
    for (const { metric, cap } of rule.limits) {
      const amount = amounts[metric] ?? 0
      if (amount === 0 && !BUILTIN.has(metric)) continue // a custom unit this call does not use
      const code = baseCode(rule, metric)
      limits.push({
        metric,
        amount,
        cap,
        window: windowText(rule, metric),
        admits: amount <= cap,
        code: rule.code ?? code,
        status: rule.status ?? statusOf[code],
      })
    }
    const refusing = limits.find((l) => !l.admits)
    const notes = [
      rule.throttle &&
        `throttles to ${rule.throttle.limit}/${rule.throttle.periodMs / 1000}s from ${rule.throttle.at * 100}%`,
      rule.fallback && `at 100% serves ${rule.fallback} instead`,
      rule.cooldownMs !== undefined && `at 100% trips a ${rule.cooldownMs / 1000}s breaker`,
      rule.alerts && `alerts at ${rule.alerts.map((a) => `${a * 100}%`).join(', ')}`,
    ].filter(Boolean)
    steps.push({
      ...base,
      outcome: refusing ? (shadow ? 'shadow-refuse' : 'refuse') : 'pass',
      detail: (refusing ? overText(refusing) : 'admits') + (notes.length > 0 ? `; ${notes.join('; ')}` : ''),
      partition,
      shadow,
      limits,
    })
  }
  return steps
}

/**
 * What the engine does, after model access and before the limits, with a model that has no price
 * when a rule that counts cost applies (shadow ones too): the policy's `unpriced` action.
 */
function explainUnpriced(
  compiled: CompiledPolicy,
  view: MatchView,
  unpriced: boolean,
): ExplainStep | undefined {
  if (!unpriced) return undefined
  const costRules = compiled.rules
    .filter((rule) => rule.limits.some((l) => l.metric === 'cost') && rule.match(view))
    .map((rule) => rule.id)
  if (costRules.length === 0) return undefined
  const { action } = compiled.unpriced
  const model = view.model ?? '(none)'
  return {
    step: 'access',
    label: 'unpriced',
    applies: true,
    reason: `model ${model} has no price, and ${costRules.join(', ')} ${costRules.length === 1 ? 'counts' : 'count'} cost`,
    outcome: action === 'deny' ? 'refuse' : 'pass',
    detail:
      action === 'deny'
        ? 'model_not_allowed (403): the policy refuses unpriced models (unpriced: deny)'
        : action === 'reserve'
          ? "holds the policy's flat amount as its cost (unpriced: reserve)"
          : 'admits and flags unpriced_model, counting no cost (unpriced: flag)',
    model: view.model ?? null,
  }
}

const NO_RULES = parsePolicy({ rules: [] })

/** The real engine's decision for the request on a fresh memory store at `at`. */
async function decide(
  policy: CompiledPolicy,
  input: ExplainInput,
  at: number,
  inputTokens: number,
  maxOutputTokens: number,
): Promise<ExplainDecision> {
  const gate = createTollgate({ policy, clock: virtualClock(at) })
  let decision: Decision
  try {
    decision = await gate.reserve({
      subject: input.subject,
      attributes: input.attributes,
      model: input.model,
      feature: input.feature,
      estimate: { inputTokens, maxOutputTokens, units: input.estimate?.units },
    })
  } catch (error) {
    if (!TollgateError.isInstance(error)) throw error
    return { allowed: false, error: error.code, message: error.message }
  }
  const shadowRules = decision.shadowViolations.map((v) => v.rule)
  if (decision.allowed) {
    return {
      allowed: true,
      model: decision.model,
      downgrade: decision.downgrade && { ...decision.downgrade },
      warnings: decision.warnings.map((w) => `${w.rule} ${w.metric} past ${w.threshold * 100}%`),
      shadowRules,
      flags: decision.flags,
    }
  }
  return {
    allowed: false,
    code: String(decision.code),
    status: decision.status,
    rule: decision.rule,
    message: decision.message,
    violations: decision.violations.map((v) => v.rule),
    retryAfterMs: decision.retryAfterMs,
    shadowRules,
  }
}
