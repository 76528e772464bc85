/**
 * An allowed decision. Its `limits` and `headers` are computed on first read (most callers
 * never read them), from what the store answered; `toJSON` includes them.
 */
import type { AllowedDecision, Downgrade, LimitState, Reservation, Violation, Warning } from '../decision.js'
import { type HeaderOptions, rateLimitHeaders } from '../headers.js'
import type { CounterResult, CounterSpec } from '../store/contract.js'
import { limitState } from './counters.js'
import type { Template } from './plan.js'

/** What the store answered for the counters of a reservation, to report limits from. */
export interface Answer {
  used: readonly Template[]
  specs: readonly CounterSpec[]
  counters: readonly CounterResult[]
}

const NO_ANSWER: Answer = { used: [], specs: [], counters: [] }

/** The state of every limit in a store's answer (a baseline's companion counter is not one). */
export function limitsOf({ used, specs, counters }: Answer): LimitState[] {
  const limits: LimitState[] = []
  for (let i = 0; i < used.length; i++) {
    const t = used[i]!
    if (t.window !== undefined) continue
    limits.push(limitState({ matched: t.matched, metric: t.metric, spec: specs[i]! }, counters[i]!))
  }
  return limits
}

export class Allowed implements AllowedDecision {
  readonly allowed = true as const
  id: string
  requestedModel: string
  model: string
  downgrade: Downgrade | null
  reservation: Reservation
  warnings: Warning[]
  shadowViolations: Violation[]
  flags: string[]
  #answer: Answer
  #now: number
  #headerOptions: HeaderOptions | undefined
  #limits: LimitState[] | undefined
  #headers: Record<string, string> | undefined

  constructor(
    fields: Omit<AllowedDecision, 'allowed' | 'limits' | 'headers'>,
    answer: Answer | null,
    now: number,
    headerOptions: HeaderOptions | undefined,
  ) {
    this.id = fields.id
    this.requestedModel = fields.requestedModel
    this.model = fields.model
    this.downgrade = fields.downgrade
    this.reservation = fields.reservation
    this.warnings = fields.warnings
    this.shadowViolations = fields.shadowViolations
    this.flags = fields.flags
    this.#answer = answer ?? NO_ANSWER
    this.#now = now
    this.#headerOptions = headerOptions
  }

  /** Every limit of the reservation, as the store saw it. */
  get limits(): LimitState[] {
    this.#limits ??= limitsOf(this.#answer)
    return this.#limits
  }

  /** Rate-limit headers for the response. */
  get headers(): Record<string, string> {
    this.#headers ??= rateLimitHeaders(this.limits, this.#now, this.#headerOptions)
    return this.#headers
  }

  toJSON(): AllowedDecision {
    return {
      allowed: true,
      id: this.id,
      requestedModel: this.requestedModel,
      model: this.model,
      downgrade: this.downgrade,
      reservation: this.reservation,
      warnings: this.warnings,
      shadowViolations: this.shadowViolations,
      flags: this.flags,
      limits: this.limits,
      headers: this.headers,
    }
  }
}
