/**
 * An allowed decision. Its `limits` and `headers` are computed on first read (most callers
 * never read them), from what the store answered; `toJSON` includes them.
 */
import type { AllowedDecision, Downgrade, LimitState, Reservation, Violation, Warning } from '../decision.js'
import { type HeaderOptions, rateLimitHeaders } from '../headers.js'
import type { CounterResult, CounterSpec, CounterState } from '../store/contract.js'
import { LANE_FIELDS } from '../store/contract.js'
import { limitState } from './counters.js'
import type { Template } from './plan.js'

/**
 * What the store answered for the counters of a reservation, to report limits from: its
 * `counters`, or a lane's `packed` numbers ({@link LANE_FIELDS} per counter).
 */
export type Answer = StoreAnswer | (Counted & { packed: readonly number[] })

interface Counted {
  used: readonly Template[]
  specs: readonly CounterSpec[]
}

/** A store's full answer (`Store.reserve`), which refusals and warnings read. */
export interface StoreAnswer extends Counted {
  counters: readonly CounterResult[]
  packed?: undefined
}

const NO_ANSWER: Answer = { used: [], specs: [], counters: [] }

/** The state of every limit in a store's answer (a baseline's companion counter is not one). */
export function limitsOf(answer: Answer): LimitState[] {
  const { used, specs } = answer
  const limits: LimitState[] = []
  for (let i = 0; i < used.length; i++) {
    const t = used[i]!
    if (t.window !== undefined) continue
    const state = answer.packed === undefined ? answer.counters[i]! : unpack(answer.packed, i)
    limits.push(limitState({ matched: t.matched, metric: t.metric, spec: specs[i]! }, state))
  }
  return limits
}

/** Counter `i` of a lane's packed answer. */
function unpack(packed: readonly number[], i: number): CounterState {
  const o = i * LANE_FIELDS
  const resetAt = packed[o + 3]!
  return {
    cap: packed[o]!,
    used: packed[o + 1]!,
    held: packed[o + 2]!,
    resetAt: Number.isNaN(resetAt) ? null : resetAt,
    windowStart: packed[o + 4]!,
  }
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

  /**
   * A decision that served the model asked for, with nothing to warn of or flag (the lane's); see
   * {@link allowedOf} for any other. Positional: an object of fields cost every reserve an
   * allocation where the constructor was not inlined.
   */
  constructor(
    reservation: Reservation,
    model: string,
    answer: Answer | null,
    now: number,
    headerOptions: HeaderOptions | undefined,
  ) {
    this.id = reservation.id
    this.requestedModel = model
    this.model = model
    this.downgrade = null
    this.reservation = reservation
    this.warnings = []
    this.shadowViolations = []
    this.flags = []
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

/** An allowed decision with these fields. */
export function allowedOf(
  fields: Omit<AllowedDecision, 'allowed' | 'limits' | 'headers'>,
  answer: Answer | null,
  now: number,
  headerOptions: HeaderOptions | undefined,
): Allowed {
  const decision = new Allowed(fields.reservation, fields.model, answer, now, headerOptions)
  decision.id = fields.id
  decision.requestedModel = fields.requestedModel
  decision.downgrade = fields.downgrade
  decision.warnings = fields.warnings
  decision.shadowViolations = fields.shadowViolations
  decision.flags = fields.flags
  return decision
}
