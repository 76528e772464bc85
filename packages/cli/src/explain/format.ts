/** `tollgate explain` output: the evaluation order as readable text. */
import { amount, partitionText, time } from '../format.js'
import type { ExplainStep, Explanation } from './types.js'

const MARK: Record<ExplainStep['outcome'], string> = {
  pass: 'pass',
  refuse: 'REFUSE',
  downgrade: 'DOWNGRADE',
  'shadow-refuse': 'would refuse (shadow)',
  skip: 'does not apply',
  invalid: 'INVALID',
}

function stepLines(step: ExplainStep, currency: string): string[] {
  const head = `  ${step.label}: ${MARK[step.outcome]}`
  if (!step.applies) return [`${head} (${step.reason})`]
  const lines = [`${head}${step.detail ? ` — ${step.detail}` : ''}`, `      when: ${step.reason}`]
  if (step.partition)
    lines.push(`      partition: ${partitionText(step.partition)}${step.shadow ? ' (shadow)' : ''}`)
  for (const limit of step.limits ?? [])
    lines.push(
      `      ${limit.metric}: ${amount(limit.metric, limit.amount, currency)} of ${amount(limit.metric, limit.cap, currency)} ` +
        `${limit.window} → ${limit.admits ? 'admits' : `${limit.code} (${limit.status})`}`,
    )
  return lines
}

/** The explanation as text: the request, each step in evaluation order, the decision. */
export function formatExplanation(explanation: Explanation, currency: string): string {
  const e = explanation
  const out: string[] = []
  const named = (model: string | null, tier: string | null) =>
    `${model ?? '(none)'}${tier ? ` (tier ${tier})` : ''}`
  const d = e.decision
  if ('error' in d && e.steps.length === 0 && e.estimate.inputTokens === undefined) {
    // refused as malformed before any rule could be walked (see `Explanation.estimate`)
    out.push(`Request at ${time(e.at)}: malformed: no rule is walked`)
    out.push('', 'Decision (the engine, from an empty store):', `  error ${d.error}: ${d.message}`)
    return out.join('\n')
  }
  const effective = e.model !== e.requestedModel ? `; limits see ${named(e.model, e.tier)}` : ''
  out.push(`Request at ${time(e.at)}: model ${named(e.requestedModel, e.requestedTier)}${effective}`)
  const est = e.estimate
  out.push(
    `Estimate: ${est.inputTokens} input + ${est.outputTokens} output tokens, ` +
      `cost ${amount('cost', est.cost ?? 0, currency)}${e.unpriced ? ' (model has no price)' : ''}`,
  )
  const groups: [ExplainStep['step'], string][] = [
    ['cap', '1. Per-call caps'],
    ['access', '2. Model access'],
    ['rule', '3. Limits (every matching rule at once, from an empty store)'],
  ]
  for (const [kind, title] of groups) {
    const steps = e.steps.filter((s) => s.step === kind)
    out.push('', title)
    if (steps.length === 0) out.push('  (none in the policy)')
    let model = e.requestedModel
    for (const step of steps) {
      if (kind !== 'cap' && step.model !== model) out.push(`  then, for ${step.model ?? '(none)'}:`)
      model = step.model
      out.push(...stepLines(step, currency))
    }
  }
  out.push('', 'Decision (the engine, from an empty store):')
  if ('error' in d) out.push(`  error ${d.error}: ${d.message}`)
  else if (d.allowed) {
    const swap = d.downgrade
      ? ` (${d.downgrade.reason} downgrade from ${d.downgrade.from} by ${d.downgrade.rule})`
      : ''
    out.push(`  allowed, model ${d.model || '(none)'}${swap}`)
    if (d.warnings.length > 0) out.push(`  warnings: ${d.warnings.join('; ')}`)
    if (d.flags.length > 0) out.push(`  flags: ${d.flags.join(', ')}`)
  } else {
    out.push(`  refused: ${d.code} (${d.status}) by ${d.rule ?? '(identity)'}`, `  ${d.message}`)
    if (d.violations.length > 1) out.push(`  every refusing rule: ${d.violations.join(', ')}`)
  }
  if (!('error' in d) && d.shadowRules.length > 0)
    out.push(`  shadow rules that would refuse: ${d.shadowRules.join(', ')}`)
  return out.join('\n')
}
