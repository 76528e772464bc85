/**
 * The decision union `reserve` returns, and the shapes inside it.
 */
import type { ReasonCode } from './errors.js'

/** Dimension → id, e.g. `{ org: 'acme', user: 'user-8932' }`. */
export type Subject = Readonly<Record<string, string>>

/** Kind of window a limit counts in, for headers and reports. */
export type WindowKind = 'calendar' | 'rolling' | 'bucket' | 'concurrency'

/** The state of one matched limit (one rule, one metric, one partition). */
export interface LimitState {
  /** Rule id. */
  rule: string
  /** Metric: `requests`, `inputTokens`, `outputTokens`, `tokens`, `cost`, `concurrency` or a custom unit. */
  metric: string
  /** The partition this counter belongs to (ids of the rule's `per` dimensions). */
  partition: Subject
  kind: WindowKind
  /** Window length in ms (calendar: the current window's length; bucket: time to refill the burst). `null` for concurrency and lifetime. */
  windowMs: number | null
  /** Effective cap (after any runtime override). */
  limit: number
  /** Counted in the window, settled plus held. */
  used: number
  /** Open holds included in `used`. */
  held: number
  /** `max(0, limit - used)`. */
  remaining: number
  /** When capacity next comes back (ms since epoch), `null` when it never does by waiting. */
  resetAt: number | null
  /** `true` when the rule is in shadow (or outside its canary) for this request. */
  shadow: boolean
}

/** One limit that refused (or, in shadow, would have refused) the request. */
export interface Violation {
  rule: string
  metric: string
  partition: Subject
  /** The reason code: a {@link ReasonCode}, or the rule's own `code` (e.g. `USER_QUOTA_EXCEEDED`). */
  code: ReasonCode | (string & {})
  status: number
  message: string
  /** How long waiting would take to let this request through; `null` when waiting does not help. */
  retryAfterMs: number | null
  limit: number
  used: number
  resetAt: number | null
}

/** A soft threshold crossed by this request. */
export interface Warning {
  rule: string
  metric: string
  partition: Subject
  /** The fraction of the cap that was crossed, e.g. `0.8`. */
  threshold: number
  used: number
  limit: number
}

/** A model swap made by the policy, never silent. */
export interface Downgrade {
  from: string
  to: string
  /** `access`: a model rule downgraded it; `fallback`: a rule at 100% served it with its fallback. */
  reason: 'access' | 'fallback'
  /** The access rule index or limit rule id that caused it. */
  rule: string
}

/** What the engine holds for a request, per metric. */
export type Amounts = Readonly<Record<string, number>>

/** The holds an allowed decision placed: settle or release them by `id`. */
export interface Reservation {
  id: string
  /** When an unsettled hold expires (ms since epoch). */
  expiresAt: number
  /** What is held per metric (cost in micro-units). */
  amounts: Amounts
}

/** What every decision carries, allowed or denied. */
export interface DecisionBase {
  /** Decision id, also the audit record id. */
  id: string
  /** Model asked for (alias resolved). */
  requestedModel: string
  /** State of every matched limit. */
  limits: LimitState[]
  /** Response headers to send (rate-limit headers; on denial also retry headers). */
  headers: Record<string, string>
  /** Limits in shadow or outside their canary that would have refused. */
  shadowViolations: Violation[]
  /** Markers such as `unpriced_model` or `store_degraded`. */
  flags: string[]
  /**
   * The model swap the policy made, `null` when none. On an allowed decision, why `model` differs
   * from `requestedModel`; on a refusal, model access had downgraded the request (to `downgrade.to`)
   * before the limits refused it: what was refused was the cheaper model.
   */
  downgrade: Downgrade | null
}

/** The call may go ahead: its estimate is held on every matched limit until it is settled. */
export interface AllowedDecision extends DecisionBase {
  allowed: true
  reservation: Reservation
  /** Model to call, after any downgrade. */
  model: string
  warnings: Warning[]
}

/** The call must not be made: why (`code`, `message`), which HTTP `status`, and when to retry. Nothing was held. */
export interface DeniedDecision extends DecisionBase {
  allowed: false
  /** The reason code: a {@link ReasonCode}, or the deciding rule's own `code` (e.g. `USER_QUOTA_EXCEEDED`). */
  code: ReasonCode | (string & {})
  status: number
  message: string
  /** The rule that decided (the one with the longest wait). */
  rule: string | null
  partition: Subject | null
  /** Every limit that refused, primary first. */
  violations: Violation[]
  /** Wait before retrying, `null` when waiting does not help. */
  retryAfterMs: number | null
  /** Whether a client should retry at all (false for budgets, balances, model rules, quotas). */
  retryable: boolean
  /** When the binding limit resets, `null` when it does not. */
  resetAt: number | null
}

/** What `reserve` answers: narrow it on `allowed`. */
export type Decision = AllowedDecision | DeniedDecision
