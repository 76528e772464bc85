/**
 * Bounded store calls: a store that fails or answers after `timeoutMs` counts as
 * unavailable (a `store_unavailable` TollgateError), and a hold that lands after its
 * reserve timed out is released, so a late answer never leaves a stray charge.
 */
import { shown, TollgateError } from '../errors.js'
import { callHook } from '../hooks.js'
import type { Store, StoreReserveResult } from '../store/contract.js'

/**
 * Runs one store call within the timeout. `id` and `store` let a late reservation be released.
 * A store that answers synchronously (the memory store) gets its answer back as it is, with no
 * promise in between; a failure then throws at once.
 */
export interface Guard {
  <T>(work: () => Promise<T> | T, id: string, store: Store | null): Promise<T> | T
  /** Bound an answer already asked for: the same timeout and late release as a call. */
  wait<T>(pending: Promise<T>, id: string, store: Store | null): Promise<T>
  /**
   * Report a store failure to the hook and throw it as a `store_unavailable` TollgateError, or as
   * the store's own `store_error` when it answered that it cannot work.
   */
  fail(error: unknown): never
}

export function guard(timeoutMs: number, onError: ((error: unknown) => void) | undefined): Guard {
  const fail = (error: unknown): never => {
    callHook(onError, error) // the hook's own failure changes nothing
    // A store that answers but cannot work (`store_error`, e.g. a server too old for it) is no outage:
    // the caller must see it, not the failure modes.
    if (
      TollgateError.isInstance(error) &&
      (error.code === 'store_unavailable' || error.code === 'store_error')
    )
      throw error
    // what a store throws is anything: a message that is no string is shown by its type
    const said: unknown = (error as Error | null | undefined)?.message
    throw new TollgateError(
      'store_unavailable',
      `The quota store failed: ${typeof said === 'string' ? said : shown(error)}`,
      { cause: error },
    )
  }
  const wait = async <T>(pending: Promise<T>, id: string, store: Store | null): Promise<T> => {
    let timer: ReturnType<typeof setTimeout> | undefined
    let timedOut = false
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        timedOut = true
        reject(
          new TollgateError('store_unavailable', `The quota store did not answer within ${timeoutMs} ms.`),
        )
      }, timeoutMs)
    })
    pending.then(
      (late) => {
        if (timedOut && store && id && (late as StoreReserveResult | undefined)?.status === 'ok') {
          Promise.resolve(store.commit({ id, amounts: null })).catch(() => {})
        }
      },
      () => {},
    )
    try {
      return await Promise.race([pending, timeout])
    } catch (error) {
      return fail(error)
    } finally {
      clearTimeout(timer)
    }
  }
  const call = <T>(work: () => Promise<T> | T, id: string, store: Store | null): Promise<T> | T => {
    let pending: Promise<T> | T
    try {
      pending = work()
    } catch (error) {
      return fail(error)
    }
    return pending instanceof Promise ? wait(pending, id, store) : pending
  }
  return Object.assign(call, { wait, fail })
}
