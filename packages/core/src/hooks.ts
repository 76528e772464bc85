/**
 * Calling the hooks users give (`onDecision`, `onSettle`, `onAlert`, `onError`, …): a hook's failure
 * never changes a decision, never reaches the caller and never ends the process.
 */

/**
 * Calls `hook` with `args`, if there is one. Whatever it throws is dropped, and so is the rejection
 * of a promise it returns: an `async` hook that failed (an audit database down) was an unhandled
 * rejection, which ends a Node process.
 *
 * @example callHook(options.onError, error)
 */
export function callHook<A extends unknown[]>(hook: ((...args: A) => unknown) | undefined, ...args: A): void {
  if (typeof hook !== 'function') return
  try {
    const out: unknown = hook(...args)
    if (typeof (out as PromiseLike<unknown> | null)?.then === 'function')
      (out as PromiseLike<unknown>).then(undefined, () => {})
  } catch {
    // dropped: see above
  }
}
