/** The shapes `explain` takes and returns. */
import type { Attributes, Estimate, Subject } from '@tollgate/core'

/** A request to explain: a `reserve` request, or a traffic line's shorthand fields. */
export interface ExplainInput {
  subject: Subject
  attributes?: Attributes
  model?: string
  feature?: string
  estimate?: Estimate
  /** Shorthand for `estimate.inputTokens`. */
  inputTokens?: number
  /** Shorthand for `estimate.maxOutputTokens`. */
  maxOutputTokens?: number
}

/** One limit of a matched rule, from an empty store. */
export interface ExplainLimit {
  metric: string
  /** What this request would hold (cost in micro-units). */
  amount: number
  cap: number
  window: string
  admits: boolean
  /** The code and status it refuses with. */
  code: string
  status: number
}

/** One entry of the policy, in evaluation order. */
export interface ExplainStep {
  step: 'cap' | 'access' | 'rule'
  /** `caps.0`, `plans.trial`, `access.1`, or the rule id. */
  label: string
  /** Whether its `match` holds for this request. */
  applies: boolean
  /** The conditions that hold, or the first ones that fail. */
  reason: string
  /** `skip` when it does not apply; `invalid` when the request lacks a `per` dimension. */
  outcome: 'pass' | 'refuse' | 'downgrade' | 'shadow-refuse' | 'skip' | 'invalid'
  /** What it decides, in words. */
  detail: string
  /** The model it was evaluated for (access entries after a downgrade see the new model). */
  model: string | null
  partition?: Subject
  shadow?: boolean
  limits?: ExplainLimit[]
}

/** The real engine's decision, from an empty memory store. */
export type ExplainDecision =
  | {
      allowed: true
      model: string
      downgrade: { from: string; to: string; reason: string; rule: string } | null
      warnings: string[]
      shadowRules: string[]
      flags: string[]
    }
  | {
      allowed: false
      code: string
      status: number
      rule: string | null
      message: string
      violations: string[]
      retryAfterMs: number | null
      shadowRules: string[]
    }
  | { allowed: false; error: string; message: string }

/** Options of {@link explain}. */
export interface ExplainOptions {
  /**
   * The request's time, ms since the epoch (calendar windows and reset times depend on it).
   * @default Date.now()
   * @example { at: Date.parse('2026-03-10T12:00:00Z') }
   */
  at?: number
}

/** What {@link explain} returns. */
export interface Explanation {
  /** Virtual time of the decision (ms since the epoch). */
  at: number
  requestedModel: string | null
  requestedTier: string | null
  /** The model limits see, after model access. */
  model: string | null
  tier: string | null
  /**
   * What the request holds per metric with that model (cost in micro-units). Empty for a request
   * refused as malformed (a subject, id, amount or attribute of the wrong kind): `steps` is then
   * empty too, and `decision` holds the refusal.
   */
  estimate: Record<string, number>
  unpriced: boolean
  steps: ExplainStep[]
  decision: ExplainDecision
}
