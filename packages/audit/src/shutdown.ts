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
   * other listener handles it, so the process still ends the way it would have.
   * @default ['SIGTERM', 'SIGINT']
   * @example closeOnExit([sink], { signals: ['SIGTERM'] })
   */
  signals?: readonly NodeJS.Signals[]
}

/**
 * Closes every target on `beforeExit` (the event loop ran dry) and on the signals, once.
 * Returns a function that removes the hooks.
 * @example
 * const sink = postgresSink({ pool })
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
  const list = [...targets]
  let closing: Promise<unknown> | undefined
  const closeAll = () => {
    // a close() that throws instead of rejecting is settled like one that rejects
    closing ??= Promise.allSettled(list.map(async (target) => target.close()))
    return closing
  }
  const onBeforeExit = () => void closeAll()
  const onSignal = (signal: NodeJS.Signals) => {
    void closeAll().then(() => {
      remove()
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal)
    })
  }
  const remove = () => {
    process.off('beforeExit', onBeforeExit)
    for (const signal of signals) process.off(signal, onSignal)
  }
  process.on('beforeExit', onBeforeExit)
  for (const signal of signals) process.on(signal, onSignal)
  return remove
}
