/**
 * Policy smells: things a valid policy says that are probably not what its author meant.
 * Each check takes the compiled policy and returns warnings with paths.
 */
import type { CompiledPolicy, MatchInput } from '@tollgate/core'
import { childCapsAboveParents } from './hierarchy.js'
import { deadValues, modelsOf, tierOf } from './match.js'
import type { Finding } from './types.js'

type Path = (string | number)[]
const warning = (code: string, path: Path, message: string): Finding => ({
  severity: 'warning',
  code,
  path,
  message,
})
const percent = (fraction: number) => `${Math.round(fraction * 1000) / 10}%`

/** Every smell check, in a stable order. */
export function smells(policy: CompiledPolicy): Finding[] {
  return [
    ...childCapsAboveParents(policy),
    ...neverMatches(policy),
    ...unpricedModels(policy),
    ...tokenPrices(policy),
    ...thresholds(policy),
    ...rollouts(policy),
    ...fallbacks(policy),
    ...misc(policy),
    ...milliseconds(policy),
    ...aliasSmells(policy),
  ]
}

/** `match` conditions on models, tiers or plans the policy's own tables do not have. */
export function neverMatches(policy: CompiledPolicy): Finding[] {
  const findings: Finding[] = []
  const { source } = policy
  const check = (what: string, match: MatchInput | undefined, path: Path) => {
    for (const dead of deadValues(policy, match)) {
      // a tier comes only from the models table; a model or plan name may still arrive on a request
      const never = dead.all && dead.field === 'tier'
      const table =
        dead.field === 'plan'
          ? `"plans" (if it is a plan, list it, even as \`${dead.value}: {}\`)`
          : dead.field === 'tier'
            ? 'any model\'s "tier"'
            : '"models" or "aliases" (so it has no tier and no price)'
      findings.push(
        warning(
          never ? 'never-matches' : 'unknown-match-value',
          [...path, 'match', dead.field],
          `${what} matches ${dead.field} "${dead.value}", which is not in ${table}` +
            (never ? ': it never applies.' : '; if it is a typo, this condition never holds.'),
        ),
      )
    }
  }
  source.rules.forEach((rule, i) => {
    check(`Rule "${rule.id}"`, rule.match, ['rules', i])
  })
  source.access?.forEach((entry, i) => {
    check(`access.${i}`, entry.match, ['access', i])
  })
  source.caps?.forEach((cap, i) => {
    check(`caps.${i}`, cap.match as MatchInput | undefined, ['caps', i])
  })
  return findings
}

/** Models without a price while a cost rule could apply to them. */
export function unpricedModels(policy: CompiledPolicy): Finding[] {
  const costRules = policy.source.rules.filter((rule) => rule.balance || rule.limits.cost !== undefined)
  if (costRules.length === 0) return []
  const { action, amount } = policy.unpriced
  const outcome =
    action === 'deny'
      ? 'is refused (model_not_allowed) wherever a cost rule applies'
      : action === 'reserve'
        ? `is charged a flat ${amount / 1e6} ${policy.currency} a call`
        : 'is admitted and charged nothing (flagged `unpriced_model`)'
  const noPrices = warning(
    'no-prices',
    ['models'],
    `A cost rule exists but no model has a price: every call ${outcome}.`,
  )
  if (policy.models.size === 0) return [noPrices]
  const findings: Finding[] = []
  for (const [model, entry] of policy.models) {
    if (entry.price) continue
    const applies = costRules.some((rule) => {
      const match = rule.match
      const models = modelsOf(policy, match)
      const tiers = match?.tier === undefined ? undefined : [match.tier].flat()
      return (!models || models.includes(model)) && (!tiers || tiers.includes(tierOf(policy, model) ?? ''))
    })
    if (applies)
      findings.push(
        warning(
          'unpriced-model',
          ['models', model],
          `Model "${model}" has no price: a call to it ${outcome}.`,
        ),
      )
  }
  // no model priced: one finding for the policy (as without a models table), not one per model
  const priced = [...policy.models.values()].some((entry) => entry.price)
  return !priced && findings.length > 0 ? [noPrices] : findings
}

/** Below this, a price per million tokens (in currency units) is far under any model's (the cheapest are about 0.01). */
const FLOOR_PER_MILLION = 0.001

/** Token prices so low that they were probably written per token instead of per million tokens. */
export function tokenPrices(policy: CompiledPolicy): Finding[] {
  const findings: Finding[] = []
  for (const [model, entry] of Object.entries(policy.source.models ?? {})) {
    for (const field of ['input', 'output', 'cachedInput'] as const) {
      const value = entry.price?.[field]
      if (value === undefined || value === 0 || value >= FLOOR_PER_MILLION) continue
      findings.push(
        warning(
          'price-per-token',
          ['models', model, 'price', field],
          `Model "${model}" costs ${value} ${policy.currency} per million ${field} tokens, far below any model's: ` +
            `prices are per million tokens; written per token, it would be ${value * 1e6} per million.`,
        ),
      )
    }
  }
  return findings
}

/** Soft thresholds that cannot help: alerts or throttles at 100%, a throttle before an alert. */
export function thresholds(policy: CompiledPolicy): Finding[] {
  const findings: Finding[] = []
  const defaults = policy.source.defaults?.alerts
  if (defaults?.includes(1))
    findings.push(
      warning(
        'alert-at-cap',
        ['defaults', 'alerts'],
        'An alert at 100% fires as the cap is reached, warning no one ahead of refusals; use a fraction below 1.',
      ),
    )
  policy.source.rules.forEach((input, i) => {
    const rule = policy.rules[i]!
    const path = ['rules', i]
    if (input.alerts?.includes(1))
      findings.push(
        warning(
          'alert-at-cap',
          [...path, 'alerts'],
          `Rule "${rule.id}" alerts at 100%, as the cap is reached: that warns no one ahead of refusals; use a fraction below 1.`,
        ),
      )
    const counted = rule.limits.some((l) => l.metric !== 'concurrency')
    if (input.alerts && (rule.window.kind === 'bucket' || !counted))
      findings.push(
        warning(
          'ignored-alerts',
          [...path, 'alerts'],
          `Rule "${rule.id}" has alerts, but alerts fire only on calendar and rolling windows.`,
        ),
      )
    if (!rule.throttle) return
    if (rule.throttle.at >= 1)
      findings.push(
        warning(
          'throttle-at-cap',
          [...path, 'throttle', 'at'],
          `Rule "${rule.id}" throttles at 100%, where it refuses anyway: the throttle never acts.`,
        ),
      )
    const later = (rule.alerts ?? []).filter((alert) => alert >= rule.throttle!.at)
    if (later.length > 0 && rule.throttle.at < 1)
      findings.push(
        warning(
          'thresholds-out-of-order',
          [...path, 'throttle', 'at'],
          `Rule "${rule.id}" throttles from ${percent(rule.throttle.at)} but alerts at ${later.map(percent).join(', ')}: ` +
            'the alert comes after the slowdown. Order them alert < throttle < cap.',
        ),
      )
  })
  return findings
}

/** Shadow and canary settings that contradict each other. */
export function rollouts(policy: CompiledPolicy): Finding[] {
  const findings: Finding[] = []
  policy.source.rules.forEach((input, i) => {
    const path = ['rules', i, 'rollout']
    if (input.mode === 'shadow' && input.rollout)
      findings.push(
        warning(
          'rollout-ignored',
          path,
          `Rule "${input.id}" is in shadow mode, so its rollout never enforces anything.`,
        ),
      )
    else if (input.rollout && !input.rollout.sample && !input.rollout.targets?.length)
      findings.push(
        warning(
          'never-enforced',
          path,
          `Rule "${input.id}" rolls out to no sample and no targets: it only ever runs in shadow.`,
        ),
      )
  })
  return findings
}

/** Fallback models that land on the very counter that refused. */
export function fallbacks(policy: CompiledPolicy): Finding[] {
  const findings: Finding[] = []
  policy.source.rules.forEach((input, i) => {
    const rule = policy.rules[i]!
    const fallback = rule.fallback
    if (!fallback || rule.limits.some((l) => l.metric === 'cost')) return
    // the compiled fallback and match name models as the engine does: aliases read as their models
    const model = policy.aliases.get(fallback) ?? fallback
    const models = modelsOf(policy, input.match)
    const tiers = input.match?.tier === undefined ? undefined : [input.match.tier].flat()
    const stillMatches =
      (!models || models.includes(model)) && (!tiers || tiers.includes(tierOf(policy, model) ?? ''))
    const samePartition = !rule.per.includes('model') && !rule.per.includes('tier')
    if (stillMatches && samePartition)
      findings.push(
        warning(
          'fallback-never-helps',
          ['rules', i, 'fallback'],
          `Rule "${rule.id}" falls back to "${input.fallback}", which it also matches and counts in the same partition: ` +
            'the fallback is refused by the same full counter. Match the rule on the models it should stop, or count it per model.',
        ),
      )
  })
  return findings
}

/** Zero caps and settings that have no effect. */
export function misc(policy: CompiledPolicy): Finding[] {
  const findings: Finding[] = []
  policy.source.rules.forEach((input, i) => {
    const rule = policy.rules[i]!
    if (input.timezone && rule.window.kind !== 'calendar')
      findings.push(
        warning(
          'ignored-timezone',
          ['rules', i, 'timezone'],
          `Rule "${rule.id}" sets a time zone, which only calendar windows use.`,
        ),
      )
    if (rule.balance) return
    for (const { metric, cap } of rule.limits) {
      if (cap === 0)
        findings.push(
          warning(
            'zero-cap',
            ['rules', i, 'limits', metric],
            `Rule "${rule.id}" caps ${metric} at 0: it refuses every request it matches.`,
          ),
        )
    }
  })
  return findings
}

/**
 * Durations written as a bare number under a second: a number is milliseconds, so `window: 60`
 * is a 60 ms window where its author most likely meant a minute.
 */
export function milliseconds(policy: CompiledPolicy): Finding[] {
  const findings: Finding[] = []
  const check = (value: unknown, path: Path, what: string) => {
    if (typeof value === 'number' && value < 1_000)
      findings.push(
        warning(
          'milliseconds',
          path,
          `${what} of ${value} ms: a bare number is milliseconds. Write "${value}s" for ${value} seconds, or "${value}ms" to keep it.`,
        ),
      )
  }
  const { source } = policy
  check(source.defaults?.holds?.ttl, ['defaults', 'holds', 'ttl'], 'Defaults have a hold time-to-live')
  source.rules.forEach((rule, i) => {
    const { window } = rule
    const has = `Rule "${rule.id}" has`
    if (typeof window === 'object' && window !== null) {
      if ('rolling' in window)
        check(window.rolling, ['rules', i, 'window', 'rolling'], `${has} a rolling window`)
      if ('bucket' in window) check(window.bucket, ['rules', i, 'window', 'bucket'], `${has} a bucket refill`)
    } else check(window, ['rules', i, 'window'], `${has} a window`)
    check(rule.holds?.ttl, ['rules', i, 'holds', 'ttl'], `${has} a hold time-to-live`)
  })
  return findings
}

/**
 * Aliases that hide something: one given two models (the last one wins, `aliases` after the models), and
 * one named like a model of the table, whose own entry no request can then reach.
 */
export function aliasSmells(policy: CompiledPolicy): Finding[] {
  const findings: Finding[] = []
  const { source } = policy
  const first = new Map<string, { model: string; path: Path }>()
  const declare = (alias: string, model: string, path: Path) => {
    const before = first.get(alias)
    if (!before) first.set(alias, { model, path })
    else if (before.model !== model)
      findings.push(
        warning(
          'alias-twice',
          path,
          `Alias "${alias}" names "${before.model}" (${before.path.join('.')}) and "${model}" here: requests for it go to "${policy.aliases.get(alias)}".`,
        ),
      )
  }
  for (const [model, entry] of Object.entries(source.models ?? {}))
    entry.aliases?.forEach((alias, i) => {
      declare(alias, model, ['models', model, 'aliases', i])
    })
  for (const [alias, model] of Object.entries(source.aliases ?? {})) declare(alias, model, ['aliases', alias])
  for (const [alias, model] of policy.aliases)
    if (alias !== model && policy.models.has(alias))
      findings.push(
        warning(
          'alias-shadows-model',
          ['models', alias],
          `Model "${alias}" is never used: the alias "${alias}" sends its requests to "${model}".`,
        ),
      )
  return findings
}
