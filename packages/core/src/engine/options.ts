/**
 * The checks of `createTollgate`'s options: a mistake in them is refused when the gate is made,
 * naming the option, rather than found out on the first call (or never: a hook that is not a
 * function would be skipped in silence, a `timeoutMs` of NaN would time out every store call).
 */
import { clockProblem } from '../clock.js'
import { shown, TollgateError } from '../errors.js'
import { STORE_OPERATIONS } from '../store/contract.js'
import type { TollgateOptions } from './types.js'

const HOOKS = ['onDecision', 'onSettle', 'onAlert', 'onStoreError'] as const

const refuse = (message: string): never => {
  throw new TollgateError('invalid_request', `createTollgate: ${message}`)
}

/** Throws `invalid_request` for the first option that cannot work. */
export function checkOptions(options: TollgateOptions): void {
  if (typeof options !== 'object' || options === null) refuse('options must be an object')
  const { store, clock, timeoutMs, maxIdLength, maxPlans } = options
  if (store !== undefined) {
    if (typeof store !== 'object' || store === null) refuse('store must be a store object')
    for (const method of STORE_OPERATIONS)
      if (typeof (store as unknown as Record<string, unknown>)[method] !== 'function')
        refuse(`store has no ${method}() method: it is not a store`)
  }
  if (clock !== undefined) {
    const problem = clockProblem(clock)
    if (problem) refuse(problem)
  }
  for (const hook of HOOKS)
    if (options[hook] !== undefined && typeof options[hook] !== 'function')
      refuse(`${hook} must be a function`)
  if (
    timeoutMs !== undefined &&
    !(typeof timeoutMs === 'number' && timeoutMs > 0 && timeoutMs <= MAX_TIMEOUT_MS)
  )
    refuse(
      `timeoutMs must be a positive number of milliseconds, at most ${MAX_TIMEOUT_MS} (about 24.8 days), got ${shown(timeoutMs)}`,
    )
  if (maxIdLength !== undefined && !(Number.isSafeInteger(maxIdLength) && maxIdLength >= 1))
    refuse(`maxIdLength must be a whole number of at least 1, got ${shown(maxIdLength)}`)
  if (maxPlans !== undefined && !(Number.isSafeInteger(maxPlans) && maxPlans >= 1))
    refuse(`maxPlans must be a whole number of at least 1, got ${shown(maxPlans)}`)
}

/** The longest delay a timer can wait: past it, Node fires at once (every call would time out). */
const MAX_TIMEOUT_MS = 2_147_483_647
