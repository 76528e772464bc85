/**
 * An explicit shutdown hook: close sinks and webhooks when the process is about to exit. Nothing
 * in this package touches `process` unless you call this.
 */

/** Anything with `close()`: a sink, an alerts webhook. */
export interface Closeable {
  close(): Promise<void>
}

/** Options of {@link closeOnExit}. */
export interface CloseOnExitOptions {
  /**
   * Signals that close everything first. After closing, the signal is raised again when no
   * other listener handles it, so the process still ends the way it would have. A second signal
   * while closing is raised again at once, without waiting.
   * @default ['SIGTERM', 'SIGINT']
   * @example closeOnExit([sink], { signals: ['SIGTERM'] })
   */
  signals?: readonly NodeJS.Signals[]
  /**
   * Longest wait, after a signal, for every target to close. Past it the signal is raised
   * again anyway, and whatever a target has not written yet is lost without a report: give each
   * sink a `closeTimeoutMs` below it, so it reports what it gives up (`close_timeout`) in time.
   * Applies to signals only: on `beforeExit`, closing takes as long as it takes.
   * @default 10_000
   * @example closeOnExit([sink, webhook], { timeoutMs: 25_000 }) // Kubernetes: 30 s before SIGKILL
   */
  timeoutMs?: number
}

/** The longest delay a Node timer keeps (about 24.8 days); a longer one fires at once. */
const MAX_TIMER_MS = 2_147_483_647

/**
 * Closes every target on `beforeExit` (the event loop ran dry) and on the signals, once.
 * Returns a function that removes the hooks.
 * @example
 * const sink = postgresSink({ pool, closeTimeoutMs: 8_000 })
 * const webhook = alertWebhook({ url, secret })
 * closeOnExit([sink, webhook])
 */
export function closeOnExit(targets: readonly Closeable[], options: CloseOnExitOptions = {}): () => void {
  // checked now: a bad target found at exit would crash the process at the worst moment
  if (!Array.isArray(targets)) throw new TypeError('closeOnExit: targets must be a list of sinks or webhooks')
  for (const [i, target] of targets.entries())
    if (typeof (target as Partial<Closeable> | null)?.close !== 'function')
      throw new TypeError(`closeOnExit: targets[${i}] has no close() method`)
  const signals = options.signals ?? ['SIGTERM', 'SIGINT']
  if (!Array.isArray(signals) || !signals.every((signal) => typeof signal === 'string'))
    throw new TypeError('closeOnExit: signals must be a list of signal names, e.g. ["SIGTERM"]')
  const timeoutMs = options.timeoutMs ?? 10_000
  if (typeof timeoutMs !== 'number' || !(timeoutMs >= 0) || timeoutMs > MAX_TIMER_MS)
    throw new RangeError(`closeOnExit: timeoutMs must be a number of ms from 0 to ${MAX_TIMER_MS}`)
  const list = [...targets]
  let closing: Promise<unknown> | undefined
  const closeAll = () => {
    // a close() that throws instead of rejecting is settled like one that rejects
    closing ??= Promise.allSettled(list.map(async (target) => target.close()))
    return closing
  }
  let deadline: ReturnType<typeof setTimeout> | undefined
  let raised = false
  /** Ends the process by `signal`, as it would have without us (unless someone else handles it). */
  const raise = (signal: NodeJS.Signals) => {
    if (raised) return
    raised = true
    clearTimeout(deadline)
    remove()
    if (process.listenerCount(signal) === 0) process.kill(process.pid, signal)
  }
  const onBeforeExit = () => void closeAll()
  let signalled = false
  const onSignal = (signal: NodeJS.Signals) => {
    // a second signal: whoever sent it does not want to wait
    if (signalled) return raise(signal)
    signalled = true
    // the deadline holds the process open while closing, then ends it whatever is still running
    deadline = setTimeout(() => raise(signal), timeoutMs)
    void closeAll().then(() => raise(signal))
  }
  const remove = () => {
    process.off('beforeExit', onBeforeExit)
    for (const signal of signals) process.off(signal, onSignal)
  }
  process.on('beforeExit', onBeforeExit)
  for (const signal of signals) process.on(signal, onSignal)
  return remove
}
