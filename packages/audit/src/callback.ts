/** A sink that hands each record to a function; `flush` waits for the promises it returns. */
import { AuditError, report } from './errors.js'
import type { AuditEvent, AuditSink } from './sink.js'

/** Options of {@link callbackSink}. */
export interface CallbackSinkOptions {
  /**
   * Called when the function throws or its promise rejects (code `write_failed`; the record is
   * in `records`). Nothing is retried.
   * @default errors are ignored
   * @example callbackSink(send, { onError: (e) => console.error(e) })
   */
  onError?: (error: AuditError) => void
}

/**
 * A sink calling `fn` with every record, e.g. to forward them to a queue or a logger.
 * @example auditTo(callbackSink((record) => logger.info(record)))
 */
export function callbackSink(
  fn: (record: AuditEvent) => void | Promise<void>,
  given?: CallbackSinkOptions,
): AuditSink {
  // checked now: a mistake here would otherwise lose every record, each reported as a failed write
  if (typeof fn !== 'function') throw new TypeError('callbackSink: the callback must be a function')
  const options = given ?? {} // a JS caller's null is no options, as undefined is
  if (options.onError !== undefined && typeof options.onError !== 'function')
    throw new TypeError('callbackSink: onError must be a function')
  const pending = new Set<Promise<void>>()
  let closed = false
  const fail = (record: AuditEvent, cause: unknown) =>
    report(
      options.onError,
      new AuditError('write_failed', 'the audit callback failed', { cause, records: [record] }),
    )

  const flush = async () => {
    while (pending.size > 0) await Promise.all(pending)
  }
  return {
    write(record) {
      if (closed) {
        report(options.onError, new AuditError('closed', 'the sink is closed', { records: [record] }))
        return
      }
      try {
        const result = fn(record)
        if (result && typeof result.then === 'function') {
          const settled: Promise<void> = result
            .catch((cause: unknown) => fail(record, cause))
            .finally(() => pending.delete(settled))
          pending.add(settled)
        }
      } catch (cause) {
        fail(record, cause)
      }
    },
    flush,
    async close() {
      closed = true
      await flush()
    },
  }
}
