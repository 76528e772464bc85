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

type Window = CompiledRule['window']
type Unit = Extract<Window, { kind: 'calendar' }>['unit']

/** The calendar units each unit's windows lie inside, in one time zone (weeks straddle months). */
const INSIDE: Record<Unit, readonly Unit[]> = {
  minute: ['minute', 'hour', 'day', 'week', 'month'],
  hour: ['hour', 'day', 'week', 'month'],
  day: ['day', 'week', 'month'],
  week: ['week'],
  month: ['month'],
}

/** Zones where a day is always 24 hours (no daylight saving, no offset change). */
const FIXED_ZONE = /^(UTC|Etc\/(UTC|GMT([+-]\d{1,2})?))$/

/**
 * The longest a calendar window can last, in ms, when it is certain: a minute and an hour (the engine
 * cuts hours where the offset changes) anywhere, days, weeks and months in a fixed zone.
 */
function longest(unit: Unit, timeZone: string): number | undefined {
  if (unit === 'minute') return 60_000
  if (unit === 'hour') return 3_600_000
  if (!FIXED_ZONE.test(timeZone)) return undefined
  return { day: 1, week: 7, month: 31 }[unit] * 86_400_000
}

/**
 * Whether every window of `child` lies inside one window of `parent`, whenever a request comes: then
 * what the child counts the parent counts too, and a higher child cap never binds first. Windows
 * that merely have lengths in order do not nest: a week straddles two months, a rolling 60 s spans
 * two calendar minutes. Conservative: `false` when it cannot tell.
 */
export function windowNests(child: Window, parent: Window): boolean {
  switch (parent.kind) {
    case 'lifetime':
      // one window for ever: every counted window lies in it
      return child.kind === 'calendar' || child.kind === 'rolling' || child.kind === 'lifetime'
    case 'calendar':
      return (
        child.kind === 'calendar' &&
        child.timeZone === parent.timeZone &&
        INSIDE[child.unit].includes(parent.unit)
      )
    case 'rolling': {
      // a rolling window counts from the start of the slot `sizeMs` ago: the child's must start no earlier
      if (child.kind === 'rolling')
        return (
          (child.slotMs === parent.slotMs && child.sizeMs <= parent.sizeMs) ||
          child.sizeMs + child.slotMs <= parent.sizeMs
        )
      if (child.kind !== 'calendar') return false
      const ms = longest(child.unit, child.timeZone)
      return ms !== undefined && ms <= parent.sizeMs
    }
    case 'bucket':
      // the same refill: a fuller bucket never runs dry before an emptier one drawn on together
      return child.kind === 'bucket' && child.refillMs === parent.refillMs
    case 'none':
      return false
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

/** Child caps above a parent's cap, same metric, on windows that each lie inside one of the parent's. */
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
      const windowed = windowNests(child.window, parent.window)
      for (const { metric, cap } of child.limits) {
        // calls in flight have no window; every other metric compares where the windows nest
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
