/**
 * The error `httpStore` throws for a call that failed; the gate turns it into `store_unavailable` and
 * applies failure modes. (A body too large for the server is a `TollgateError` `store_error` instead.)
 */

const marker = Symbol.for('tollgate.HttpStoreError')

/**
 * Why a store call over HTTP failed:
 * - `timeout`: no answer within `timeoutMs`;
 * - `network`: the request could not be sent or its answer not read (refused, reset, DNS…);
 * - `status`: the server answered with an error status (`status` and the server's `serverCode`
 *   say which: 400 bad input, 401 bad signature or clock, 500 the store failed…). A 413 (body too
 *   large) is not one of these: `httpStore` throws a `TollgateError` `store_error` for it, which the
 *   gate passes to its caller, with this error as its `cause`;
 * - `signature`: the answer's signature is missing or wrong (not the store server, or tampered);
 * - `protocol`: the answer is not what the protocol says.
 */
export type HttpStoreErrorCode = 'timeout' | 'network' | 'status' | 'signature' | 'protocol'

/** A store call over HTTP that failed; `code` says how, `isInstance` recognises it across copies of the package. */
export class HttpStoreError extends Error {
  override readonly name = 'HttpStoreError'
  readonly [marker] = true
  /** HTTP status of the answer, for `code: 'status'`. */
  readonly status: number | undefined
  /** The server's error code (`bad_request`, `unauthorized`…), for `code: 'status'`. */
  readonly serverCode: string | undefined

  constructor(
    readonly code: HttpStoreErrorCode,
    message: string,
    options: { status?: number; serverCode?: string; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.status = options.status
    this.serverCode = options.serverCode
  }

  /** True for an HttpStoreError from any copy of this package. */
  static isInstance(value: unknown): value is HttpStoreError {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[marker] === true
  }
}
