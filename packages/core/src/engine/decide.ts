/**
 * Turning counter results into decisions: reason codes, statuses, messages, the
 * primary violation (the longest wait, so `Retry-After` is never a lie), headers.
 */
import type { DeniedDecision, Downgrade, LimitState, Subject, Violation } from '../decision.js'
import { type ReasonCode, statusOf } from '../errors.js'
import { type HeaderOptions, rateLimitHeaders, retryHeaders } from '../headers.js'
import { fromMicros } from '../money.js'
import type { CompiledRule } from '../policy/compile.js'
import type { CounterResult } from '../store/contract.js'
import type { Slot } from './counters.js'

/** Codes where a client should wait and retry; every other refusal says `x-should-retry: false`. */
const RETRYABLE: ReadonlySet<string> = new Set<ReasonCode>([
  'rate_limited',
  'concurrency_limited',
  'store_unavailable',
])

/** The default reason code of a refusal by `rule` on `metric`. */
export function baseCode(
  rule: CompiledRule,
  metric: string,
  result: Pick<CounterResult, 'tripped' | 'throttled'>,
): ReasonCode {
  if (result.tripped) return 'circuit_open'
  if (result.throttled) return 'rate_limited'
  if (rule.balance) return 'insufficient_balance'
  if (metric === 'cost') return 'budget_exceeded'
  if (metric === 'concurrency') return 'concurrency_limited'
  if (rule.window.kind === 'calendar' || rule.window.kind === 'lifetime') return 'quota_exceeded'
  return 'rate_limited'
}

function describe(rule: CompiledRule, metric: string): string {
  if (metric === 'concurrency') return 'in flight'
  const window = rule.window
  switch (window.kind) {
    case 'calendar':
      return `per ${window.unit}`
    case 'rolling':
      return `per ${window.sizeMs / 1000}s`
    case 'bucket':
      return `per ${window.refillMs / 1000}s burst`
    default:
      return 'in total'
  }
}

function amount(metric: string, value: number, currency: string): string {
  return metric === 'cost' ? `${money(value)} ${currency}` : `${value} ${metric}`
}

/** Micro-units as currency units: to the cent, or to the micro-unit below a cent (never "0.00" for a cost). */
function money(micros: number): string {
  if (micros === 0 || Math.abs(micros) >= 10_000) return fromMicros(micros).toFixed(2)
  return String(Number(fromMicros(micros).toFixed(6)))
}

function partitionText(partition: Subject): string {
  const entries = Object.entries(partition)
  return entries.length === 0
    ? ''
    : ` for ${entries.map(([d, id]) => `${d} ${JSON.stringify(id)}`).join(', ')}`
}

/** One refusal by one counter. */
export function violation(slot: Slot, result: CounterResult, currency: string): Violation {
  const { rule, partition } = slot.matched
  const base = baseCode(rule, slot.metric, result)
  const code = rule.code ?? base
  const limit = amount(slot.metric, result.cap, currency)
  const message =
    rule.message ??
    (result.tripped
      ? `Rule "${rule.id}" tripped its breaker${partitionText(partition)}; requests resume after the cool-down.`
      : result.throttled
        ? `Rule "${rule.id}" is near its cap of ${limit}${partitionText(partition)} and throttles requests.`
        : rule.balance
          ? `Rule "${rule.id}" has a balance of ${amount(slot.metric, result.cap - result.used, currency)}${partitionText(partition)}; ` +
            `this request needs ${amount(slot.metric, slot.spec.amount, currency)}.`
          : `Rule "${rule.id}" allows ${limit} ${describe(rule, slot.metric)}${partitionText(partition)}; ` +
            `${amount(slot.metric, result.used, currency)} used, this request needs ${amount(slot.metric, slot.spec.amount, currency)}.`)
  return {
    rule: rule.id,
    metric: slot.metric,
    partition,
    code,
    status: rule.status ?? statusOf[base],
    message,
    // whole milliseconds, rounded up: a token bucket's wait is fractional, and waiting exactly a
    // fraction short of it (as float sums may come out) would be refused again
    retryAfterMs: result.retryAfterMs === null ? null : Math.ceil(result.retryAfterMs),
    limit: result.cap,
    used: result.used,
    resetAt: result.resetAt,
  }
}

/** Whether a refusal with this base code is worth retrying. */
export function isRetryable(code: string, retryAfterMs: number | null): boolean {
  return RETRYABLE.has(code) && retryAfterMs !== null
}

/** Violations ordered primary first: the longest wait (never, for `null`) wins. */
export function byWait(violations: Violation[]): Violation[] {
  const wait = (v: Violation) => (v.retryAfterMs === null ? Number.POSITIVE_INFINITY : v.retryAfterMs)
  return violations
    .map((v, i) => [v, i] as const)
    .sort((a, b) => wait(b[0]) - wait(a[0]) || a[1] - b[1])
    .map(([v]) => v)
}

export interface DenialInput {
  id: string
  requestedModel: string
  limits: LimitState[]
  shadowViolations: Violation[]
  flags: string[]
  downgrade: Downgrade | null
  now: number
  headerOptions: HeaderOptions | undefined
  violations: Violation[]
  /** Base code of the primary violation (for retryability); defaults to its code. */
  base: string
}

/** A denied decision from its violations (primary first). */
export function denied(input: DenialInput): DeniedDecision {
  const primary = input.violations[0]!
  const retryable = isRetryable(input.base, primary.retryAfterMs)
  let headers: Record<string, string> | undefined
  return {
    allowed: false,
    id: input.id,
    requestedModel: input.requestedModel,
    limits: input.limits,
    shadowViolations: input.shadowViolations,
    flags: input.flags,
    downgrade: input.downgrade,
    code: primary.code,
    status: primary.status,
    message:
      input.downgrade === null
        ? primary.message
        : `${primary.message} (Model access had changed "${input.downgrade.from}" to "${input.downgrade.to}".)`,
    rule: primary.rule === '' ? null : primary.rule,
    partition: primary.metric === '' ? null : primary.partition,
    violations: input.violations,
    retryAfterMs: primary.retryAfterMs,
    retryable,
    resetAt: primary.resetAt,
    get headers() {
      headers ??= {
        ...rateLimitHeaders(input.limits, input.now, input.headerOptions),
        ...retryHeaders(primary.retryAfterMs, retryable),
      }
      return headers
    },
  }
}

/** A refusal that no counter made (identity, per-call caps, model access, store outage). */
export function refusal(
  code: ReasonCode | string,
  base: ReasonCode,
  message: string,
  rule: string | null,
  extra: Partial<Violation> = {},
): Violation {
  return {
    rule: rule ?? '',
    metric: '',
    partition: {},
    code,
    status: statusOf[base],
    message,
    retryAfterMs: null,
    limit: 0,
    used: 0,
    resetAt: null,
    ...extra,
  }
}
