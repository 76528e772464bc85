/**
 * From matched rules to counter specs: partitions, window layouts, shadow and canary.
 */
import type { LimitState, Subject, WindowKind } from '../decision.js'
import { TollgateError } from '../errors.js'
import { counterKey, partitionKey } from '../keys.js'
import { BUILTIN_METRICS, type CompiledPolicy, type CompiledRule } from '../policy/compile.js'
import type { MatchContext } from '../policy/match.js'
import type { CounterSpec, CounterState, WindowSpec } from '../store/contract.js'
import { calendarBounds } from '../windows/calendar.js'

/** A rule that applies to a request, with the partition it counts in. */
export interface Matched {
  rule: CompiledRule
  partition: Subject
  partitionKey: string
  shadow: boolean
}

/** One counter of the request and the rule it belongs to. */
export interface Slot {
  matched: Matched
  metric: string
  spec: CounterSpec
}

const NEVER = Number.MAX_SAFE_INTEGER

/**
 * Rules that apply. A rule partitioned by a dimension the subject lacks is refused
 * with `invalid_subject` (never a shared bucket by accident); in a `loose` look-up it is skipped.
 */
export function matchRules(policy: CompiledPolicy, context: MatchContext, loose = false): Matched[] {
  const matched: Matched[] = []
  for (const rule of policy.rules) {
    const m = matchRule(rule, context, loose)
    if (m !== undefined) matched.push(m)
  }
  return matched
}

/** {@link matchRules} for one rule: its match, or `undefined` when it does not apply. */
export function matchRule(rule: CompiledRule, context: MatchContext, loose = false): Matched | undefined {
  if (!rule.match(context, loose)) return undefined
  const partition: Record<string, string> = {}
  let missing: string | undefined
  for (const dimension of rule.per) {
    const id = dimensionOf(context, dimension)
    if (id === undefined) missing = dimension
    else partition[dimension] = id
  }
  if (missing !== undefined) {
    if (loose) return undefined
    throw new TollgateError(
      'invalid_subject',
      `Rule "${rule.id}" counts per "${missing}", but the request has no "${missing}".`,
    )
  }
  const key = partitionKey(rule.per, partition)
  return { rule, partition, partitionKey: key, shadow: isShadow(rule, partition, key, context) }
}

/**
 * The id of a partition dimension: a subject id first, then the request's `model`,
 * `tier` or `feature`, then a string attribute (e.g. `environment`).
 */
export function dimensionOf(context: MatchContext, dimension: string): string | undefined {
  const id = context.subject[dimension]
  if (id !== undefined) return id
  if (dimension === 'model') return context.model
  if (dimension === 'tier') return context.tier
  if (dimension === 'feature') return context.feature
  const attribute = context.attributes[dimension]
  return typeof attribute === 'string' && attribute !== '' ? attribute : undefined
}

/**
 * Whether a rule only records for this partition: a shadow rule, or a canary that neither names the
 * request among its targets nor samples the partition. A target's ids are compared with the
 * partition's, and for dimensions outside the rule's `per` with the request's (`{ org: acme }` on a
 * rule per project and user enforces for acme's; it was compared with the partition only, and
 * never matched).
 */
export function isShadow(
  rule: CompiledRule,
  partition: Subject,
  key: string,
  context: MatchContext,
): boolean {
  if (rule.shadow) return true
  if (!rule.rollout) return false
  if (namedBy(rule, partition, context)) return false
  return sampleOf(`${rule.id}\u0000${key}`) >= rule.rollout.sample
}

/** Whether one of a canary rule's targets names this request (see {@link isShadow}). */
export function namedBy(rule: CompiledRule, partition: Subject, context: MatchContext): boolean {
  const named = (target: Subject) =>
    Object.entries(target).every(([d, id]) => (partition[d] ?? dimensionOf(context, d)) === id)
  return rule.rollout?.targets.some(named) ?? false
}

/**
 * A string as a fraction in [0, 1), stable across processes: FNV-1a, then MurmurHash3's final mix.
 * FNV-1a alone left sequential ids (`u1`, `u2`, …) clustered: a 25% sample took 22% of them.
 */
export function sampleOf(text: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return (h >>> 0) / 2 ** 32
}

/**
 * Remembers each calendar window's bounds until it ends, so zone maths runs once a window,
 * and hands out one shared (never mutated) window layout per rule, metric and window.
 */
export class WindowCache {
  private readonly cache = new Map<string, { start: number; end: number; spec: WindowSpec }>()
  private readonly layouts = new Map<string, WindowSpec>()

  /** The `fixed` layout of a calendar, lifetime or window-less rule at `now`. */
  fixed(rule: CompiledRule, now: number): WindowSpec {
    const window = rule.window
    const cached = this.cache.get(rule.id)
    if (cached && cached.start <= now && now < cached.end) return cached.spec
    const bounds = window.kind === 'calendar' ? calendarBounds(window.unit, window.timeZone, now, 1) : ALWAYS
    const spec: WindowSpec = { kind: 'fixed', bounds }
    const entry =
      window.kind === 'calendar'
        ? { start: bounds[1]!, end: bounds[2]!, spec }
        : { start: 0, end: NEVER, spec }
    this.cache.set(rule.id, entry)
    return spec
  }

  /** The window layout of one metric of a rule. */
  spec(rule: CompiledRule, metric: string, cap: number, now: number): WindowSpec {
    if (metric !== 'concurrency') {
      const kind = rule.window.kind
      if (kind === 'calendar' || kind === 'lifetime' || kind === 'none') return this.fixed(rule, now)
    }
    const key = `${rule.id}\u0000${metric}\u0000${cap}`
    let layout = this.layouts.get(key)
    if (layout === undefined) {
      layout = windowSpec(rule, metric, cap, now, this)
      if (this.layouts.size > 10_000) this.layouts.clear()
      this.layouts.set(key, layout)
    }
    return layout
  }
}

const ALWAYS = [0, NEVER]

/** The window layout of one metric of a rule. */
export function windowSpec(
  rule: CompiledRule,
  metric: string,
  cap: number,
  now: number,
  windows: WindowCache,
): WindowSpec {
  if (metric === 'concurrency') return { kind: 'lease', ttlMs: rule.ttlMs }
  const window = rule.window
  switch (window.kind) {
    case 'calendar':
    case 'lifetime':
    case 'none':
      return windows.fixed(rule, now)
    case 'rolling':
      return { kind: 'sliding', sizeMs: window.sizeMs, slotMs: window.slotMs }
    case 'bucket':
      return { kind: 'bucket', intervalMs: window.refillMs / Math.max(cap, 1) }
  }
}

/**
 * The tenant a rule's counters live under: the policy's `tenant` id when the rule is
 * partitioned by subject dimensions (which nest under a tenant), else `undefined` (shared).
 */
export function scopeOf(policy: CompiledPolicy, rule: CompiledRule, subject: Subject): string | undefined {
  if (policy.tenant === undefined) return undefined
  const tenant = subject[policy.tenant]
  return tenant !== undefined && rule.per.some((d) => subject[d] !== undefined) ? tenant : undefined
}

/** Counter specs for every metric of every matched rule; custom units the call does not use are skipped. */
export function buildSlots(
  policy: CompiledPolicy,
  subject: Subject,
  matched: readonly Matched[],
  amounts: Readonly<Record<string, number>>,
  now: number,
  windows: WindowCache,
  /** Keep custom units the call does not use (for usage reports). */
  all = false,
): Slot[] {
  const slots: Slot[] = []
  for (const m of matched) {
    const { rule } = m
    const scope = scopeOf(policy, rule, subject)
    for (const { metric, cap } of rule.limits) {
      const amount = amounts[metric] ?? 0
      if (amount === 0 && !all && !BUILTIN.has(metric)) continue
      const spec: CounterSpec = {
        key: counterKey(rule.id, metric, m.partitionKey),
        metric,
        amount,
        cap,
        enforce: !m.shadow,
        window: windows.spec(rule, metric, cap, now),
        expiry: rule.expiry,
      }
      if (scope !== undefined) spec.scope = scope
      if (rule.alerts && (spec.window.kind === 'fixed' || spec.window.kind === 'sliding'))
        spec.alerts = rule.alerts
      if (rule.cooldownMs !== undefined) spec.trip = { cooldownMs: rule.cooldownMs }
      if (rule.throttle) spec.throttle = rule.throttle
      slots.push({ matched: m, metric, spec })
    }
  }
  return slots
}

const BUILTIN: ReadonlySet<string> = new Set(BUILTIN_METRICS)

function kindOf(spec: CounterSpec): WindowKind {
  switch (spec.window.kind) {
    case 'fixed':
      return 'calendar'
    case 'sliding':
      return 'rolling'
    case 'bucket':
      return 'bucket'
    case 'lease':
      return 'concurrency'
  }
}

function windowMsOf(slot: Slot, state: CounterState): number | null {
  const { window } = slot.spec
  switch (window.kind) {
    case 'fixed':
      return state.resetAt === null ? null : state.resetAt - state.windowStart
    case 'sliding':
      return window.sizeMs
    case 'bucket':
      return window.intervalMs * state.cap
    case 'lease':
      return null
  }
}

/** A limit's state for decisions, headers and usage reports. */
export function limitState(slot: Slot, state: CounterState): LimitState {
  const sliding = slot.spec.window.kind === 'sliding'
  return {
    rule: slot.matched.rule.id,
    metric: slot.metric,
    partition: slot.matched.partition,
    kind: kindOf(slot.spec),
    windowMs: windowMsOf(slot, state),
    limit: state.cap,
    used: state.used,
    held: state.held,
    remaining: Math.max(0, state.cap - state.used),
    resetAt: sliding && state.used === 0 ? null : state.resetAt,
    shadow: !slot.spec.enforce,
  }
}
