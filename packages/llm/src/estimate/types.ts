/**
 * Shapes shared by the estimators.
 */
import type { CountOptions } from '../tokens/count.js'

/** What a call is expected to use, as the estimators see it. */
export interface CallEstimate {
  /** Input tokens: counted exactly, or bounded from above (see `bounded`). */
  inputTokens: number
  /** Most output tokens the call may produce (all choices together). */
  maxOutputTokens: number
  /** `request` when the request named its output cap, `default` when the default was used. */
  outputCap: 'request' | 'default'
  /** Whether some input text was bounded instead of counted exactly (CPU limits of `CountOptions`). */
  bounded: boolean
}

/** Options of the estimators. */
export interface EstimateOptions extends CountOptions {
  /**
   * Output tokens to reserve when the request names no maximum.
   * @default 1024 (the policy default `defaults.maxOutputTokens` when wrapping a client)
   * @example { defaultMaxOutputTokens: 4096 }
   */
  defaultMaxOutputTokens?: number
  /**
   * Tokens counted for an input part whose size cannot be known before the call: audio,
   * files and PDF documents. The settle corrects it with the provider's usage.
   * @default 2000
   * @example { opaquePartTokens: 8000 } // a product that sends long PDFs
   */
  opaquePartTokens?: number
}

/** A plain object, for reading request bodies of any SDK version. */
export type Fields = Record<string, unknown>

export const isFields = (value: unknown): value is Fields =>
  typeof value === 'object' && value !== null && !Array.isArray(value)

/**
 * `body` as fields. Estimators read any body leniently, as they read messages: one that is not an
 * object (no JSON body reached the route) is estimated as an empty request, so that the route, not
 * the estimate, answers for it (a middleware's `estimate: (req) => …(req.body)` never turns a bad
 * request into a 500).
 */
export function bodyOf(body: unknown): Fields {
  return isFields(body) ? body : {}
}

export const asString = (value: unknown): string | undefined =>
  typeof value === 'string' ? value : undefined

/** JSON text of a value, or `''` when it cannot be serialised (the SDK could not send it either). */
export function json(value: unknown): string {
  try {
    return JSON.stringify(value) ?? ''
  } catch {
    return ''
  }
}

/** A whole, non-negative number from a request field, or `undefined`. */
export function tokensField(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? Math.ceil(value) : undefined
}
