/**
 * Which failures of a provider call are worth another attempt, and how long to wait first.
 * The wrapper drives retries itself (the SDK's own are turned off per request) so that every
 * attempt is reserved and checked again; the policy mirrors the SDKs': exponential backoff
 * from 0.5 s to 8 s with up to 25% jitter, `retry-after-ms` / `retry-after` honoured.
 */
import { TollgateError } from '@tollgate/core'
import type { AttemptOptions } from './options.js'

/**
 * `capacity`: the provider could not serve the call now (408, 409, 429, 5xx, 529, no
 * connection, a timeout): retry, or fall back. `final`: anything else — a quota or billing
 * refusal (a `TollgateError`, 402, 403, `insufficient_quota`), a bad request, an abort.
 */
export type Failure = 'capacity' | 'final'

interface ErrorLike {
  status?: unknown
  headers?: unknown
  code?: unknown
  type?: unknown
  error?: unknown
}

const BILLING = new Set(['insufficient_quota', 'billing_error', 'billing_hard_limit_reached'])

/** Error codes and types the error carries, at the SDKs' different depths. */
function codesOf(error: ErrorLike): string[] {
  const codes: string[] = []
  const add = (value: unknown) => {
    if (typeof value === 'string') codes.push(value)
  }
  let level: unknown = error
  for (let depth = 0; depth < 3 && typeof level === 'object' && level !== null; depth++) {
    const fields = level as ErrorLike
    add(fields.code)
    add(fields.type)
    level = fields.error
  }
  return codes
}

function header(error: ErrorLike, name: string): string | null {
  const headers = error.headers as { get?: (name: string) => string | null } | undefined
  return typeof headers?.get === 'function' ? headers.get(name) : null
}

const nameOf = (error: object) => (error as { constructor?: { name?: string } }).constructor?.name

/**
 * Whether another attempt may help.
 *
 * @example
 * classify(new OpenAI.RateLimitError(429, { code: 'insufficient_quota' }, 'quota', headers)) // 'final'
 */
export function classify(error: unknown): Failure {
  if (typeof error !== 'object' || error === null || TollgateError.isInstance(error)) return 'final'
  const e = error as ErrorLike
  const name = nameOf(error)
  if (name === 'APIUserAbortError' || (error as Error).name === 'AbortError') return 'final'
  if (e.status === undefined)
    return name === 'APIConnectionError' || name === 'APIConnectionTimeoutError' ? 'capacity' : 'final'
  if (typeof e.status !== 'number') return 'final'
  if (e.status === 402 || e.status === 403) return 'final'
  if (codesOf(e).some((code) => BILLING.has(code))) return 'final'
  // the provider says whether to retry: obey it, as the SDKs do
  const should = header(e, 'x-should-retry')
  if (should === 'false') return 'final'
  if (should === 'true') return 'capacity'
  const s = e.status
  return s === 408 || s === 409 || s === 429 || s >= 500 ? 'capacity' : 'final'
}

/** The longest `retry-after` honoured; a longer wait ends the model's retries. */
export const MAX_RETRY_AFTER_MS = 60_000

/**
 * Milliseconds to wait before retry number `retry` (0 for the first) after `error`, or `null`
 * when the provider asks for a wait longer than {@link MAX_RETRY_AFTER_MS}.
 *
 * @example
 * retryDelay(error, 0, {}) // ≈ 375–500 ms, or what `retry-after-ms` says
 */
export function retryDelay(error: unknown, retry: number, options: AttemptOptions): number | null {
  const e = (typeof error === 'object' && error !== null ? error : {}) as ErrorLike
  let asked: number | undefined
  const ms = Number.parseFloat(header(e, 'retry-after-ms') ?? '')
  if (Number.isFinite(ms)) asked = ms
  const after = header(e, 'retry-after')
  if (asked === undefined && after) {
    const seconds = Number.parseFloat(after)
    asked = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(after) - (options.now ?? Date.now)()
  }
  if (asked !== undefined && Number.isFinite(asked)) {
    if (asked > MAX_RETRY_AFTER_MS) return null
    return Math.max(0, asked)
  }
  const initial = options.initialDelayMs ?? 500
  const longest = options.maxDelayMs ?? 8000
  return Math.min(initial * 2 ** retry, longest) * (1 - Math.random() * 0.25)
}

/** The default wait: a timer that an abort of the request cuts short. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (ms <= 0 || signal?.aborted) return Promise.resolve()
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer)
      signal?.removeEventListener('abort', done)
      resolve()
    }
    const timer = setTimeout(done, ms)
    signal?.addEventListener('abort', done, { once: true })
  })
}
