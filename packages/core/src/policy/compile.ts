/**
 * A validated policy compiled into what the engine runs on: matchers, windows,
 * caps in integer units, prices in micro-units per million.
 */
import { parseDuration, parseRate } from '../duration.js'
import type { Issue } from '../errors.js'
import { toMicros } from '../money.js'
import type { CalendarUnit } from '../windows/calendar.js'
import type { MatchInput, PolicyInput } from './input.js'
import { compileMatch, type Matcher } from './match.js'
import type { PolicyData, RuleData } from './schema.js'

/** Metrics every policy knows. */
export const BUILTIN_METRICS = [
  'requests',
  'inputTokens',
  'outputTokens',
  'tokens',
  'cost',
  'concurrency',
] as const

export type WindowDef =
  | { kind: 'calendar'; unit: CalendarUnit; timeZone: string }
  | { kind: 'lifetime' }
  | { kind: 'rolling'; sizeMs: number; slotMs: number }
  | { kind: 'bucket'; refillMs: number }
  | { kind: 'none' }

export interface CompiledRule {
  id: string
  /** Who answers for the rule, carried on its alerts. */
  owner: string | undefined
  match: Matcher
  /** The subject dimensions it counts per (its partition). */
  per: string[]
  limits: { metric: string; cap: number }[]
  window: WindowDef
  code: string | undefined
  status: number | undefined
  message: string | undefined
  shadow: boolean
  rollout: { sample: number; targets: Record<string, string>[] } | null
  failure: 'open' | 'closed'
  alerts: number[] | undefined
  throttle: { at: number; limit: number; periodMs: number } | undefined
  fallback: string | undefined
  cooldownMs: number | undefined
  /** Trailing-baseline breaker: the cap is `factor` × the average per `windowMs` over `overMs`. */
  baseline: { factor: number; overMs: number; windowMs: number } | undefined
  balance: boolean
  ttlMs: number
  expiry: 'keep' | 'release'
}

export interface Price {
  input: number
  output: number
  cachedInput: number
  units: Record<string, number>
}

export type Otherwise = { refuse: true } | { downgrade: string }

export interface AccessEntry {
  label: string
  match: Matcher
  allow: string[] | undefined
  require: { flags: string[] | undefined; balance: { rule: string; atLeast: number } | undefined } | undefined
  otherwise: Otherwise
}

export interface CapEntry {
  label: string
  match: Matcher
  maxInputTokens: number | undefined
  maxOutputTokens: number | undefined
  maxTokens: number | undefined
  code: string | undefined
  message: string | undefined
}

/** A policy ready to run. Build one with {@link parsePolicy}. */
export interface CompiledPolicy {
  readonly source: PolicyInput
  currency: string
  /** Subject dimension naming the tenant, if the policy sets one. */
  tenant: string | undefined
  rules: CompiledRule[]
  rulesById: Map<string, CompiledRule>
  units: Set<string>
  models: Map<string, { tier: string | undefined; price: Price | undefined }>
  aliases: Map<string, string>
  unpriced: { action: 'deny' | 'reserve' | 'flag'; amount: number }
  access: AccessEntry[]
  caps: CapEntry[]
  maxOutputTokens: number
}

const DEFAULT_TTL_MS = 600_000
const DEFAULT_SLOTS = 60
const DEFAULT_OUTPUT_TOKENS = 1_024

/** Compile a schema-valid policy, adding cross-field problems to `issues`. */
export function compilePolicy(policy: PolicyData, issues: Issue[]): CompiledPolicy {
  const units = new Set(policy.units ?? [])
  const models = new Map<string, { tier: string | undefined; price: Price | undefined }>()
  const aliases = new Map<string, string>()
  for (const [model, entry] of Object.entries(policy.models ?? {})) {
    const price = entry.price && {
      input: toMicros(entry.price.input),
      output: toMicros(entry.price.output),
      cachedInput: toMicros(entry.price.cachedInput ?? entry.price.input),
      units: Object.fromEntries(
        Object.entries(entry.price.units ?? {}).map(([unit, p]) => [unit, toMicros(p) * 1e6]),
      ),
    }
    models.set(model, { tier: entry.tier, price })
    for (const alias of entry.aliases ?? []) aliases.set(alias, model)
  }
  for (const [alias, model] of Object.entries(policy.aliases ?? {})) aliases.set(alias, model)
  const known = (model: string) => models.size === 0 || models.has(aliases.get(model) ?? model)
  /**
   * The model an alias names, or the name itself. Requests are resolved before anything matches
   * them, so an alias written in the policy (in a match, an allow list, a downgrade, a fallback)
   * stands for its model: left as it was, it never matched, allowed nothing, or was called unpriced.
   */
  const canonical = (model: string) => aliases.get(model) ?? model
  const allowed = (names: string[] | undefined) =>
    names?.map((name) => (name.startsWith('tier:') ? name : canonical(name)))
  const tiers = new Set([...models.values()].map((m) => m.tier).filter(Boolean))
  for (const [alias, model] of aliases) {
    const next = aliases.get(model)
    // resolved one step, as requests are: an alias of an alias named no model, and was unpriced
    if (next !== undefined)
      issues.push({
        path: ['aliases', alias],
        message: `alias points at "${model}", itself an alias of "${next}": name the model`,
      })
    else if (!known(model))
      issues.push({ path: ['aliases', alias], message: `alias points at unknown model "${model}"` })
  }
  const checkModels = (names: string[] | undefined, path: (string | number)[]) =>
    names?.forEach((entry, i) => {
      const ok = entry.startsWith('tier:') ? tiers.has(entry.slice(5)) : known(entry)
      if (!ok) issues.push({ path: [...path, i], message: `unknown model or tier "${entry}"` })
    })

  const defaults = policy.defaults ?? {}
  const ids = new Set<string>()
  const rules = policy.rules.map((rule, i) => {
    const path = ['rules', i]
    if (ids.has(rule.id)) issues.push({ path: [...path, 'id'], message: `duplicate rule id "${rule.id}"` })
    ids.add(rule.id)
    if (rule.fallback && !known(rule.fallback)) {
      issues.push({ path: [...path, 'fallback'], message: `unknown model "${rule.fallback}"` })
    }
    return compileRule(rule, policy.timezone ?? 'UTC', defaults, units, path, issues, canonical)
  })
  const rulesById = new Map(rules.map((rule) => [rule.id, rule]))

  const access: AccessEntry[] = []
  for (const [plan, entry] of Object.entries(policy.plans ?? {})) {
    checkModels(entry.models, ['plans', plan, 'models'])
    if (entry.models) {
      access.push({
        label: `plans.${plan}`,
        match: compileMatch({ plan }),
        allow: allowed(entry.models),
        require: undefined,
        otherwise: otherwiseOf(entry.otherwise, canonical),
      })
    }
  }
  policy.access?.forEach((entry, i) => {
    checkModels(entry.allow, ['access', i, 'allow'])
    const balance = entry.require?.balance
    if (balance && !rulesById.get(balance.rule)?.balance) {
      issues.push({
        path: ['access', i, 'require', 'balance', 'rule'],
        message: `"${balance.rule}" is not a balance rule`,
      })
    }
    access.push({
      label: `access.${i}`,
      match: compileMatch(entry.match, canonical),
      allow: allowed(entry.allow),
      require: entry.require && {
        flags: entry.require.flags,
        balance: balance && { rule: balance.rule, atLeast: toMicros(balance.atLeast) },
      },
      otherwise: otherwiseOf(entry.otherwise, canonical),
    })
  })
  for (const entry of access) {
    if ('downgrade' in entry.otherwise && !known(entry.otherwise.downgrade)) {
      issues.push({
        path: [entry.label, 'otherwise', 'downgrade'],
        message: `unknown model "${entry.otherwise.downgrade}"`,
      })
    }
  }

  return {
    // the policy as written, once checked: its windows and durations are ones the schema accepted
    // (a few of them are not spelt out by the types, e.g. a sum of three durations, '1d2h30m')
    source: policy as PolicyInput,
    currency: policy.currency ?? 'USD',
    tenant: policy.tenant,
    rules,
    rulesById,
    units,
    models,
    aliases,
    unpriced: {
      action: policy.unpriced?.action ?? 'deny',
      amount: toMicros(policy.unpriced?.amount ?? 0),
    },
    access,
    caps: (policy.caps ?? []).map((cap, i) => ({
      label: `caps.${i}`,
      match: compileMatch(cap.match as MatchInput | undefined, canonical),
      maxInputTokens: cap.maxInputTokens,
      maxOutputTokens: cap.maxOutputTokens,
      maxTokens: cap.maxTokens,
      code: cap.code,
      message: cap.message,
    })),
    maxOutputTokens: defaults.maxOutputTokens ?? DEFAULT_OUTPUT_TOKENS,
  }
}

function otherwiseOf(
  otherwise: 'refuse' | { downgrade: string } | undefined,
  canonical: (model: string) => string,
): Otherwise {
  return otherwise === undefined || otherwise === 'refuse'
    ? { refuse: true }
    : { downgrade: canonical(otherwise.downgrade) }
}

function compileRule(
  rule: RuleData,
  zone: string,
  defaults: NonNullable<PolicyData['defaults']>,
  units: Set<string>,
  path: (string | number)[],
  issues: Issue[],
  canonical: (model: string) => string,
): CompiledRule {
  const problem = (where: (string | number)[], message: string) =>
    issues.push({ path: [...path, ...where], message })
  const limits: { metric: string; cap: number }[] = []
  for (const [metric, value] of Object.entries(rule.limits)) {
    const builtin = (BUILTIN_METRICS as readonly string[]).includes(metric)
    if (!builtin && !units.has(metric)) {
      problem(
        ['limits', metric],
        `unknown metric "${metric}": use ${BUILTIN_METRICS.join(', ')} or declare it in "units"`,
      )
    } else if (metric === 'cost') {
      if (!Number.isFinite(value) || value < 0 || value > 1e9)
        problem(['limits', metric], 'a money cap from 0 to 1e9')
    } else if (!Number.isSafeInteger(value) || value < 0 || value > 1e12) {
      problem(['limits', metric], 'a whole number from 0 to 1e12')
    }
    limits.push({ metric, cap: metric === 'cost' ? toMicros(value) : value })
  }
  const per = rule.per === undefined ? [] : Array.isArray(rule.per) ? rule.per : [rule.per as string]
  if (new Set(per).size !== per.length) problem(['per'], 'a dimension is listed twice')
  const onlyConcurrency = limits.every((limit) => limit.metric === 'concurrency')
  const window = windowOf(rule, zone, onlyConcurrency, problem)
  if (rule.balance) {
    if (!limits.some((limit) => limit.metric === 'cost'))
      problem(['limits'], 'a balance rule needs a cost limit')
    if (window.kind !== 'lifetime') problem(['window'], 'a balance rule counts over "lifetime"')
  }
  if (window.kind === 'bucket' && limits.some((limit) => limit.metric === 'concurrency')) {
    problem(
      ['limits', 'concurrency'],
      'concurrency has no window: put it in a rule of its own or a windowed rule',
    )
  }
  const alerts = rule.alerts ?? defaults.alerts
  if (alerts?.some((value, i) => i > 0 && value <= alerts[i - 1]!))
    problem(['alerts'], 'thresholds must ascend')
  if (rule.throttle && window.kind === 'bucket') problem(['throttle'], 'a token bucket throttles already')
  const throttleRate = rule.throttle && parseRate(rule.throttle.rate)
  const costly = rule.balance || limits.some((limit) => limit.metric === 'cost')
  const holds = { ...defaults.holds, ...rule.holds }
  return {
    id: rule.id,
    owner: rule.owner,
    match: compileMatch(rule.match, canonical),
    per,
    limits,
    window,
    code: rule.code,
    status: rule.status,
    message: rule.message,
    shadow: rule.mode === 'shadow',
    rollout: rule.rollout ? { sample: rule.rollout.sample ?? 0, targets: rule.rollout.targets ?? [] } : null,
    failure: rule.failure ?? defaults.failure ?? (costly ? 'closed' : 'open'),
    alerts: alerts && alerts.length > 0 ? alerts : undefined,
    throttle: rule.throttle && throttleRate ? { at: rule.throttle.at, ...throttleRate } : undefined,
    fallback: rule.fallback === undefined ? undefined : canonical(rule.fallback),
    cooldownMs: rule.circuit ? parseDuration(rule.circuit.cooldown)! : undefined,
    baseline: baselineOf(rule, window, problem),
    balance: rule.balance ?? false,
    ttlMs: holds.ttl === undefined ? DEFAULT_TTL_MS : parseDuration(holds.ttl)!,
    expiry: holds.expiry ?? 'keep',
  }
}

function windowOf(
  rule: RuleData,
  zone: string,
  onlyConcurrency: boolean,
  problem: (where: string[], message: string) => void,
): WindowDef {
  const { window } = rule
  if (window === undefined) {
    if (rule.balance) return { kind: 'lifetime' }
    if (!onlyConcurrency)
      problem(['window'], 'give a window: minute … month, lifetime, "60s", { rolling } or { bucket }')
    return { kind: 'none' }
  }
  if (window === 'lifetime') return { kind: 'lifetime' }
  if (
    window === 'minute' ||
    window === 'hour' ||
    window === 'day' ||
    window === 'week' ||
    window === 'month'
  ) {
    return { kind: 'calendar', unit: window, timeZone: rule.timezone ?? zone }
  }
  if (typeof window === 'object' && 'bucket' in window)
    return { kind: 'bucket', refillMs: parseDuration(window.bucket)! }
  const size = typeof window === 'object' ? window.rolling : window
  const slots = typeof window === 'object' && window.slots !== undefined ? window.slots : DEFAULT_SLOTS
  const sizeMs = parseDuration(size)!
  return { kind: 'rolling', sizeMs, slotMs: Math.max(1, Math.ceil(sizeMs / slots)) }
}

const CALENDAR_MS = {
  minute: 60_000,
  hour: 3_600_000,
  day: 86_400_000,
  week: 604_800_000,
  month: 2_592_000_000,
}

/** A circuit's trailing baseline, checked against the rule's window. */
function baselineOf(
  rule: RuleData,
  window: WindowDef,
  problem: (where: string[], message: string) => void,
): CompiledRule['baseline'] {
  const baseline = rule.circuit?.baseline
  if (!baseline) return undefined
  const windowMs =
    window.kind === 'calendar'
      ? CALENDAR_MS[window.unit]
      : window.kind === 'rolling'
        ? window.sizeMs
        : undefined
  if (windowMs === undefined) {
    problem(['circuit', 'baseline'], 'a baseline needs a calendar or rolling window to compare with')
    return undefined
  }
  const overMs = parseDuration(baseline.over)
  if (overMs === undefined || overMs === null || overMs < 2 * windowMs) {
    problem(['circuit', 'baseline', 'over'], 'the trailing span must cover at least two windows')
    return undefined
  }
  if (rule.limits.concurrency !== undefined)
    problem(['circuit', 'baseline'], 'a baseline cannot apply to concurrency')
  return { factor: baseline.factor, overMs, windowMs }
}
