/**
 * The per-request handle: the hold one request placed, closed exactly once — by the route
 * (`settle`, `release`, `run`) or, when the route did not, by the response ending.
 */
import {
  type AllowedDecision,
  type Attributes,
  type CommitResult,
  callHook,
  type Estimate,
  type Subject,
  type Tollgate,
  TollgateError,
  type Usage,
} from '@tollgate/core'
import type { StreamMeter } from './meter.js'

/** How a hold was closed. */
export type SettleReason =
  /** The route called `settle`, `release` or `run`. */
  | 'handler'
  /** The response was sent in full. */
  | 'complete'
  /** The client went away (or cancelled the body) before the response was sent in full. */
  | 'aborted'
  /** The route threw, or the body failed. */
  | 'failed'

/** Reported to `onSettle` once per admitted request. */
export interface SettleEvent {
  decision: AllowedDecision
  subject: Subject
  outcome: 'settled' | 'released'
  reason: SettleReason
  /**
   * What was settled, `null` for a release. `estimated: true` when any of it was not reported by the
   * provider: counted from the streamed text, or the estimate kept (`{ estimated: true }`).
   */
  usage: Usage | null
  /** Bytes of the response body sent when the hold was closed. */
  sent: number
  /** The store's answer; absent when the settle failed (`error`). */
  result?: CommitResult
  error?: unknown
}

/** What a function given to `handle.run` receives. */
export interface HandleRunContext {
  decision: AllowedDecision
  /** The model to call (after any downgrade). */
  model: string
  /** Aborted when the client goes away. */
  signal: AbortSignal
  /** Report usage; the hold is settled with it when the function returns or throws. */
  report(usage: Usage): void
}

/** The hold of one admitted request, as `req.tollgate`, `c.get('tollgate')` or the Next context's `tollgate`. */
export interface TollgateHandle {
  readonly decision: AllowedDecision
  readonly subject: Subject
  readonly attributes: Attributes
  /** The model to call: the decision's, after any downgrade. */
  readonly model: string
  readonly feature: string | undefined
  readonly estimate: Estimate
  /** Rate-limit headers for this response (adapters put them on it). */
  readonly headers: Readonly<Record<string, string>>
  /** Aborted when the client goes away: pass it to upstream calls. */
  readonly signal: AbortSignal
  /** True once settled or released (by the route or by the response ending). */
  readonly closed: boolean
  /** Usage reported so far (merged field by field). */
  readonly reported: Usage | undefined
  /**
   * Report usage without closing; the response's end settles with it. Later fields replace earlier
   * ones; fields given as `undefined` are ignored.
   * @example handle.report({ inputTokens: usage.prompt_tokens, outputTokens: usage.completion_tokens })
   */
  report(usage: Usage): void
  /** Settle now with `usage` (default: what was reported, else the estimate). Only the first close counts. */
  settle(usage?: Usage): Promise<CommitResult>
  /** Return the whole hold (nothing was billed). Only the first close counts. */
  release(): Promise<CommitResult>
  /**
   * Run the call: settle with what `fn` reported (else the estimate) when it returns, settle what it
   * reported or release when it throws.
   * @example const reply = await handle.run(({ model, report }) => callModel(model, report))
   */
  run<T>(fn: (context: HandleRunContext) => Promise<T> | T): Promise<T>
}

/** The response side of a handle, for adapters: count what is sent, and close the hold at the end. */
export interface ResponseTap {
  /** A chunk of the response body was sent. */
  write(chunk: Uint8Array | string): void
  /**
   * The response ended. Unless the route closed the hold: settle with reported usage (over what
   * the meter measured); else release when nothing was sent or the status is 400 or more (unless
   * `keep`: the route may still be calling the model, or answered a `HEAD`); else settle with the
   * estimate — never zero. Usage counted or kept at the estimate is flagged `estimated`.
   * Never rejects (errors go to `onError`).
   */
  end(reason: Exclude<SettleReason, 'handler'>, status: number, keep?: boolean): Promise<void>
  /**
   * The client went away while the route runs: `handle.signal` aborts, and the hold stays open for
   * the route to report and close, or for `end`.
   */
  abort(): void
}

export interface HandleInit {
  gate: Tollgate
  decision: AllowedDecision
  subject: Subject
  attributes: Attributes
  feature: string | undefined
  estimate: Estimate
  headers: Record<string, string>
  meter: StreamMeter | undefined
  /** The request's own signal (aborted by the runtime when the client goes away). */
  signal: AbortSignal | undefined
  onSettle: ((event: SettleEvent) => void) | undefined
  onError: ((error: unknown) => void) | undefined
}

const encoder = new TextEncoder()

/** The hold's estimate, settled when nothing was reported or measured: flagged, not the provider's. */
const theEstimate = (): Usage => ({ estimated: true })

/**
 * What the route reported over what the meter measured, flagged `estimated` when the route flagged
 * it, or when the meter counted usage (rather than read the provider's) that the report does not
 * replace. Spread as it was, a counted settle reached the gate as reported usage.
 */
function merged(measured: Usage | undefined, reported: Usage | undefined): Usage {
  const usage: Usage = { ...measured, ...reported }
  const counted =
    measured?.estimated === true &&
    Object.keys(measured).some(
      (field) => field !== 'estimated' && reported?.[field as keyof Usage] === undefined,
    )
  if (counted || reported?.estimated === true) usage.estimated = true
  else delete usage.estimated
  return usage
}

/**
 * A signal that aborts with the request's or ours. Not `AbortSignal.any`: Next.js 15's Edge
 * sandbox lacks it (every admitted request answered 500 there).
 */
function either(request: AbortSignal, ours: AbortController): AbortSignal {
  if (request.aborted) ours.abort(request.reason)
  else request.addEventListener('abort', () => ours.abort(request.reason), { once: true })
  return ours.signal
}

export function createHandle(init: HandleInit): { handle: TollgateHandle; tap: ResponseTap } {
  const { gate, decision, meter } = init
  const gone = new AbortController()
  const signal = init.signal ? either(init.signal, gone) : gone.signal
  let reported: Usage | undefined
  let closing: Promise<CommitResult> | undefined
  let sent = 0

  const close = (usage: Usage | null, reason: SettleReason): Promise<CommitResult> => {
    closing ??= (async () => {
      const id = decision.reservation.id
      const base = { decision, subject: init.subject, usage, reason, sent }
      const outcome = usage === null ? 'released' : 'settled'
      try {
        const result = usage === null ? await gate.release(id) : await gate.settle(id, usage)
        callHook(init.onSettle, { ...base, outcome, result })
        return result
      } catch (error) {
        callHook(init.onSettle, { ...base, outcome, error })
        // usage the gate refused (a bad amount) closed nothing: the hold can still be closed
        if (TollgateError.isInstance(error) && error.code === 'invalid_amount') closing = undefined
        throw error
      }
    })()
    return closing
  }
  const safely = (fn: () => void) => {
    try {
      fn()
    } catch (error) {
      callHook(init.onError, error)
    }
  }
  /** A store that is down at the close never hides the call's own outcome: the error goes to `onError`. */
  const storeDown = (error: unknown) => {
    if (!(TollgateError.isInstance(error) && error.code === 'store_unavailable')) throw error
    callHook(init.onError, error)
  }
  /** Fields given as `undefined` are absent: they replace neither an earlier report nor what the meter measured. */
  const report = (usage: Usage) => {
    const given = Object.entries(usage ?? {}).filter(([, value]) => value !== undefined)
    reported = { ...reported, ...Object.fromEntries(given) }
  }

  const handle: TollgateHandle = {
    decision,
    subject: init.subject,
    attributes: init.attributes,
    model: decision.model,
    feature: init.feature,
    estimate: init.estimate,
    headers: init.headers,
    signal,
    get closed() {
      return closing !== undefined
    },
    get reported() {
      return reported
    },
    report,
    settle: (usage) => close(usage ?? reported ?? theEstimate(), 'handler'),
    release: () => close(null, 'handler'),
    async run(fn) {
      let value: Awaited<ReturnType<typeof fn>>
      try {
        value = await fn({ decision, model: decision.model, signal, report })
      } catch (error) {
        await close(reported ?? null, 'handler').catch(storeDown)
        throw error
      }
      await close(reported ?? theEstimate(), 'handler').catch(storeDown)
      return value
    },
  }

  const tap: ResponseTap = {
    write(chunk) {
      const bytes = typeof chunk === 'string' ? encoder.encode(chunk) : chunk
      if (bytes.length === 0) return
      sent += bytes.length
      if (meter && !closing) safely(() => meter.write(bytes))
    },
    abort() {
      gone.abort()
    },
    async end(reason, status, keep = false) {
      if (reason === 'aborted') gone.abort()
      if (closing) return
      let measured: Usage | undefined
      safely(() => {
        measured = meter?.usage()
      })
      const usage =
        reported || measured
          ? merged(measured, reported)
          : !keep && (sent === 0 || status >= 400)
            ? null
            : theEstimate()
      await close(usage, reason).then(
        () => undefined,
        async (error) => {
          callHook(init.onError, error)
          // a report the gate refused: the call was made, so settle at what was measured, else the estimate
          if (!closing && usage !== null)
            await close(measured ?? theEstimate(), reason).then(
              () => undefined,
              (again) => callHook(init.onError, again),
            )
        },
      )
    },
  }
  return { handle, tap }
}
