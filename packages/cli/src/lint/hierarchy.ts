/**
 * The `child-cap-above-parent` check: a rule counted per a nested partition (per user
 * inside per org) whose cap is above its parent's can never bind where both apply.
 */
import type { CompiledPolicy, CompiledRule } from '@tollgate/core'
import { implies } from './match.js'
import type { Finding } from './types.js'

/**
 * The conventional containment of common dimensions, outermost first: a key belongs to a
 * user, a user to a project, a project to a team, a team to an organization (or workspace,
 * tenant, account). Dimensions not on this chain nest only by `per` sets.
 */
export const DIMENSION_CHAIN: readonly (readonly string[])[] = [
  ['org', 'organization', 'tenant', 'workspace', 'account'],
  ['team'],
  ['project'],
  ['user'],
  ['key'],
]

const rank = (dimension: string) => DIMENSION_CHAIN.findIndex((names) => names.includes(dimension))
const REQUEST_DIMENSIONS = new Set(['model', 'tier', 'feature'])

/** Whether a partition `per child` always lies inside one partition of the parent dimension. */
function within(child: readonly string[], parent: string, tenant: string | undefined): boolean {
  if (child.includes(parent)) return true
  if (parent === tenant && child.some((d) => !REQUEST_DIMENSIONS.has(d))) return true
  const outer = rank(parent)
  return outer >= 0 && child.some((d) => rank(d) > outer)
}

/**
 * Whether `child`'s partitions nest in `parent`'s: its `per` holds every dimension of the
 * parent's (or one nested under it by {@link DIMENSION_CHAIN} or the policy's `tenant`).
 * A rule without `per` (one global counter) is everybody's parent.
 */
export function nests(child: CompiledRule, parent: CompiledRule, tenant: string | undefined): boolean {
  return parent.per.every((dimension) => within(child.per, dimension, tenant))
}

const CALENDAR_MS = { minute: 60e3, hour: 3_600e3, day: 86_400e3, week: 604_800e3, month: 2_678_400e3 }

/** A comparable window class and length: caps compare only within one class. */
function span(rule: CompiledRule): { kind: string; ms: number } {
  const w = rule.window
  switch (w.kind) {
    case 'calendar':
      return { kind: 'counted', ms: CALENDAR_MS[w.unit as keyof typeof CALENDAR_MS] ?? Infinity }
    case 'lifetime':
      return { kind: 'counted', ms: Number.POSITIVE_INFINITY }
    case 'rolling':
      return { kind: 'counted', ms: w.sizeMs }
    case 'bucket':
      return { kind: `bucket:${w.refillMs}`, ms: w.refillMs }
    case 'none':
      return { kind: 'none', ms: 0 }
  }
}

/** How a rule's window reads in a message. */
export function windowText(rule: CompiledRule, metric: string): string {
  const w = rule.window
  if (metric === 'concurrency') return 'in flight'
  switch (w.kind) {
    case 'calendar':
      return `per ${w.unit}`
    case 'lifetime':
      return 'in total'
    case 'rolling':
      return `per rolling ${w.sizeMs / 1000}s`
    case 'bucket':
      return `burst (refills over ${w.refillMs / 1000}s)`
    case 'none':
      return 'in flight'
  }
}

const display = (metric: string, cap: number) => (metric === 'cost' ? cap / 1e6 : cap)

/** Child caps above a parent's cap, same metric, on a window no longer than the parent's. */
export function childCapsAboveParents(policy: CompiledPolicy): Finding[] {
  const findings: Finding[] = []
  const rules = policy.rules
  const inputs = policy.source.rules
  rules.forEach((child, i) => {
    rules.forEach((parent, j) => {
      if (i === j || child.balance || parent.balance) return
      if (parent.shadow || parent.rollout) return // a parent not enforced does not bind first
      if (!nests(child, parent, policy.tenant)) return
      if (!implies(policy, inputs[i]!.match, inputs[j]!.match)) return
      const childSpan = span(child)
      const parentSpan = span(parent)
      const windowed = childSpan.kind === parentSpan.kind && childSpan.ms <= parentSpan.ms
      for (const { metric, cap } of child.limits) {
        // calls in flight have no window; every other metric compares on a window no longer than the parent's
        if (metric !== 'concurrency' && !windowed) continue
        const other = parent.limits.find((l) => l.metric === metric)
        if (!other || cap <= other.cap) continue
        const same = child.per.length === parent.per.length && nests(parent, child, policy.tenant)
        const where = same
          ? 'the same partition'
          : `the ${parent.per.join(', ') || 'whole policy'} it belongs to`
        findings.push({
          severity: 'warning',
          code: 'child-cap-above-parent',
          path: ['rules', i, 'limits', metric],
          message:
            `"${child.id}" allows ${display(metric, cap)} ${metric} ${windowText(child, metric)} per ` +
            `${child.per.join(', ') || 'policy'}, above "${parent.id}"'s ${display(metric, other.cap)} ` +
            `${windowText(parent, metric)} for ${where}: it can never bind where both apply.`,
        })
      }
    })
  })
  return findings
}
