/**
 * Unhandled promise rejections during a piece of a test: what a hook's rejected promise becomes when
 * nobody handles it (and what ends a Node process).
 */

/**
 * Runs `body`, then lets the queue of promise jobs run once more, and answers the reasons of the
 * promise rejections nobody handled meanwhile (from this process, whoever caused them).
 *
 * @example
 * const gate = createTollgate({ policy, onDecision: async () => { throw new Error('db down') } })
 * expect(await unhandledRejections(() => gate.reserve(request))).toEqual([])
 */
export async function unhandledRejections(body: () => unknown): Promise<unknown[]> {
  const reasons: unknown[] = []
  const listen = (reason: unknown) => reasons.push(reason)
  process.on('unhandledRejection', listen)
  try {
    await body()
    // Node reports a rejection as unhandled once the promise jobs queued with it have run
    await new Promise((resolve) => setTimeout(resolve, 0))
  } finally {
    process.off('unhandledRejection', listen)
  }
  return reasons
}
