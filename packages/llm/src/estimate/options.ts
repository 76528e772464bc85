/**
 * The estimators' options, checked on each call: a value of the wrong type threw from deep inside
 * (or, as NaN, made an estimate of NaN tokens that every reserve refuses).
 */
import type { AnthropicEstimateOptions } from './anthropic.js'

/** The options as given (`null` is none); throws a `TypeError` naming a bad one. */
export function checkEstimateOptions<O extends AnthropicEstimateOptions>(given: O | null | undefined): O {
  const options = (given ?? {}) as O
  if (typeof options !== 'object') throw new TypeError('estimate options must be an object')
  for (const name of ['defaultMaxOutputTokens', 'opaquePartTokens'] as const) {
    const value: unknown = options[name]
    if (value !== undefined && !(Number.isSafeInteger(value) && (value as number) >= 0))
      throw new TypeError(`${name} must be a whole number of tokens, 0 or more`)
  }
  const { margin } = options as { margin?: unknown }
  if (margin !== undefined && !(typeof margin === 'number' && margin >= 0 && margin < Infinity))
    throw new TypeError('margin must be a share, 0 or more (0.2 for 20%)')
  return options
}
