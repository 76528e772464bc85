/**
 * The one error a sink or the alerts webhook reports through its `onError` hook. Sinks never
 * throw into the engine: what went wrong, and which records were given up, arrives here.
 */
import type { Alert } from '@tollgate/core'
import type { AuditEvent } from './sink.js'

/** What went wrong. */
export type AuditErrorCode =
  /** A write failed; the records are kept and the write is retried. */
  | 'write_failed'
  /** The queue was full: the oldest records were dropped (they are in `records`). */
  | 'queue_full'
  /** The database refused a record itself (a data error); it was dropped (it is in `records`). */
  | 'record_rejected'
  /**
   * `close()` or `flush()` gave up waiting at `closeTimeoutMs`; the records not written are in
   * `records`, an alert not delivered in `alert` (one report per alert).
   */
  | 'close_timeout'
  /** A record or an alert arrived after `close()`; it was not written or sent. */
  | 'closed'
  /** An alert could not be delivered after every retry, or was refused (4xx). */
  | 'delivery_failed'

const MARKER = Symbol.for('tollgate.AuditError')

/** An error reported to `onError`. `records` holds what was given up, if anything. */
export class AuditError extends Error {
  readonly code: AuditErrorCode
  /** Records that were dropped and will not be written (empty for retried failures). */
  readonly records: readonly AuditEvent[]
  /** The attempt that failed, for retried writes and deliveries (1 for the first). */
  readonly attempt: number
  /** The alert that was not delivered (`delivery_failed`, `close_timeout`, `closed`), else `null`. */
  readonly alert: Alert | null

  constructor(
    code: AuditErrorCode,
    message: string,
    options: { cause?: unknown; records?: readonly AuditEvent[]; attempt?: number; alert?: Alert } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'AuditError'
    this.code = code
    this.records = options.records ?? []
    this.attempt = options.attempt ?? 1
    this.alert = options.alert ?? null
    Object.defineProperty(this, MARKER, { value: true })
  }

  /** True for an `AuditError` from any copy of this package. */
  static isInstance(value: unknown): value is AuditError {
    return typeof value === 'object' && value !== null && MARKER in value
  }
}

/** Calls a user hook without letting it throw into the caller. */
export function report(onError: ((error: AuditError) => void) | undefined, error: AuditError): void {
  callHook(onError, error) // a failing error hook must not break the sink
}

/**
 * Calls a user hook: what it throws, and the rejection of a promise it returns, are dropped (an
 * `async` hook that failed was an unhandled rejection, which ends a Node process). As `callHook` in
 * `@tollgate/core`, kept here so that this package loads nothing of core at run time (the webhook
 * entry runs on edge runtimes).
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
