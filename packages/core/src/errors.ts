/**
 * One error class for everything Tollgate refuses, with a string-literal `code`
 * and the HTTP mapping in one place.
 */
import type { DeniedDecision } from './decision.js'

/** Codes a decision can be refused with (a rule may set its own string instead). */
export type ReasonCode =
  | 'rate_limited'
  | 'concurrency_limited'
  | 'quota_exceeded'
  | 'budget_exceeded'
  | 'insufficient_balance'
  | 'model_not_allowed'
  | 'request_too_large'
  | 'unauthenticated'
  | 'key_revoked'
  | 'blocked'
  | 'circuit_open'
  | 'store_unavailable'

/** Codes for misuse: bad input, bad policy, bad configuration. */
export type UsageErrorCode =
  | 'invalid_policy'
  | 'invalid_request'
  | 'invalid_subject'
  | 'invalid_amount'
  | 'unknown_rule'
  | 'store_error'

/** Every `code` a `TollgateError` can carry: a refusal's reason, or a misuse. */
export type TollgateErrorCode = ReasonCode | UsageErrorCode

/** Default HTTP status per code. */
export const statusOf: Readonly<Record<TollgateErrorCode, number>> = {
  rate_limited: 429,
  concurrency_limited: 429,
  quota_exceeded: 429,
  budget_exceeded: 402,
  insufficient_balance: 402,
  model_not_allowed: 403,
  request_too_large: 413,
  unauthenticated: 401,
  key_revoked: 403,
  blocked: 403,
  circuit_open: 503,
  store_unavailable: 503,
  invalid_policy: 500,
  invalid_request: 400,
  invalid_subject: 400,
  invalid_amount: 400,
  unknown_rule: 400,
  store_error: 500,
}

/** One problem found in a policy or an input, with its path. */
export interface Issue {
  path: (string | number)[]
  message: string
}

const marker = Symbol.for('tollgate.error')

/** Options of the `TollgateError` constructor. */
export interface TollgateErrorOptions {
  /**
   * The refusal, when the error stands for a denied decision.
   * @default undefined
   * @example new TollgateError(decision.code, decision.message, { decision })
   */
  decision?: DeniedDecision
  /**
   * Every problem, for policy and input validation errors.
   * @default undefined
   * @example new TollgateError('invalid_policy', 'bad policy', { issues: [{ path: ['rules', 0, 'id'], message: 'Required' }] })
   */
  issues?: Issue[]
  /**
   * The error that led to this one (as `Error`'s own `cause`).
   * @default undefined
   * @example new TollgateError('store_unavailable', 'Redis did not answer', { cause: error })
   */
  cause?: unknown
}

/**
 * The one error Tollgate throws. `code` says what went wrong; `status` is the HTTP
 * status it maps to; `decision` is set when the error stands for a refusal.
 *
 * @example
 * try { await gate.run(request, call) }
 * catch (error) { if (TollgateError.isInstance(error) && error.code === 'budget_exceeded') … }
 */
export class TollgateError extends Error {
  readonly [marker] = true
  readonly code: TollgateErrorCode | (string & {})
  readonly status: number
  readonly decision: DeniedDecision | undefined
  readonly issues: Issue[]

  constructor(code: TollgateErrorCode | (string & {}), message: string, options: TollgateErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'TollgateError'
    this.code = code
    this.decision = options.decision
    this.status = options.decision?.status ?? statusOf[code as TollgateErrorCode] ?? 500
    this.issues = options.issues ?? []
  }

  /** True for a TollgateError from any copy of this package (survives duplicate installs). */
  static isInstance(value: unknown): value is TollgateError {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[marker] === true
  }

  /** The error a denied decision stands for. */
  static fromDecision(decision: DeniedDecision): TollgateError {
    return new TollgateError(decision.code, decision.message, { decision })
  }
}

/**
 * A value as an error message shows it, whatever it is: numbers and short strings as they are,
 * anything else by its type. `String(value)` throws for an object with no prototype or a symbol
 * in a template, which turned a refusal into a `TypeError` about the message.
 */
export function shown(value: unknown): string {
  if (typeof value === 'number' || typeof value === 'boolean') return String(value)
  if (typeof value === 'string') return JSON.stringify(value.slice(0, 64))
  return value === null ? 'null' : typeof value
}
