/**
 * The alerts webhook: each alert is POSTed as signed JSON in the background, retried with
 * backoff on network errors, timeouts, 408, 429 and 5xx (honouring `Retry-After`), and reported
 * to `onError` when it cannot be delivered. It never blocks or throws into the engine;
 * `flush()` and `close()` wait for deliveries at most `closeTimeoutMs`.
 */
import type { Alert } from '@tollgate/core'
import { AuditError, callHook, report } from '../errors.js'
import { defaultBackoffMs, waits } from '../timers.js'
import { MIN_SECRET_BYTES, SIGNATURE_HEADER, signAlert } from './sign.js'

/** Options of {@link alertWebhook}. */
export interface AlertWebhookOptions {
  /**
   * Where alerts are POSTed.
   * @example alertWebhook({ url: 'https://ops.example.com/hooks/tollgate', secret })
   */
  url: string | URL
  /**
   * Shared secret for the HMAC-SHA256 signature in the `tollgate-signature` header.
   * @example alertWebhook({ url, secret: process.env.TOLLGATE_WEBHOOK_SECRET! })
   */
  secret: string
  /**
   * Retries after the first attempt; then the alert is given up and reported to `onError`.
   * @default 5
   * @example alertWebhook({ url, secret, retries: 10 })
   */
  retries?: number
  /**
   * Longest wait for one attempt's response; a timeout counts as a failed attempt.
   * @default 10_000
   * @example alertWebhook({ url, secret, timeoutMs: 3_000 })
   */
  timeoutMs?: number
  /**
   * Wait before retry number `attempt` (1, 2, …); `retryAfterMs` is the server's
   * `Retry-After` in ms when it sent one.
   * @default the server's Retry-After (at most 5 minutes), else exponential from 100 ms with jitter
   * @example alertWebhook({ url, secret, backoffMs: (attempt) => 1_000 * attempt })
   */
  backoffMs?: (attempt: number, retryAfterMs: number | null) => number
  /**
   * The `fetch` to use (a proxy-aware one, for instance).
   * @default globalThis.fetch
   * @example alertWebhook({ url, secret, fetch: (input, init) => fetch(input, { ...init, dispatcher }) })
   */
  fetch?: typeof fetch
  /**
   * Extra request headers, e.g. an authorization token for the receiver.
   * @default none
   * @example alertWebhook({ url, secret, headers: { authorization: `Bearer ${token}` } })
   */
  headers?: Readonly<Record<string, string>>
  /**
   * Most alerts being delivered at once; beyond it an alert is reported to `onError` and dropped.
   * @default 1000
   * @example alertWebhook({ url, secret, maxPending: 10_000 })
   */
  maxPending?: number
  /**
   * Longest time `flush()` and `close()` wait for the alerts being delivered. Past it, each alert
   * not delivered yet is given up and reported to `onError` (code `close_timeout`, with `alert`,
   * the `attempt` it was at and the last failure's `cause`), and the call resolves: its retry wait
   * ends and its request in flight is aborted (the endpoint may have received that one), so
   * nothing of the webhook keeps the process alive. Without it, an endpoint answering 503 with
   * `Retry-After: 300` held `close()` for up to 25 minutes. After a `flush()` gives up, later
   * alerts are delivered as usual.
   * @default 30_000
   * @example alertWebhook({ url, secret, closeTimeoutMs: 5_000 })
   */
  closeTimeoutMs?: number
  /**
   * Told when an alert is given up (code `delivery_failed`, with `alert`, the last `attempt` and
   * its `cause`), when `flush()` or `close()` gives it up at `closeTimeoutMs` (`close_timeout`, with
   * the same), or when it arrives after `close()` (code `closed`).
   * @default errors are ignored
   * @example alertWebhook({ url, secret, onError: (e) => log.error({ alert: e.alert, err: e.cause }) })
   */
  onError?: (error: AuditError) => void
  /**
   * Told when an alert was accepted (a 2xx), with its delivery id and how many attempts it took.
   * @default none
   * @example alertWebhook({ url, secret, onDelivered: ({ attempts }) => metrics.observe(attempts) })
   */
  onDelivered?: (delivery: { id: string; alert: Alert; attempts: number; status: number }) => void
}

/** An `onAlert` hook that also lets you wait for deliveries in flight. */
export interface AlertWebhook {
  (alert: Alert): void
  /**
   * Resolves once every alert sent so far was delivered or given up, or after `closeTimeoutMs`
   * (the alerts still being delivered then are given up, as `close_timeout`).
   */
  flush(): Promise<void>
  /**
   * Flushes (at most `closeTimeoutMs`); later alerts are reported to `onError` (code `closed`)
   * and not sent.
   */
  close(): Promise<void>
}

/** The JSON body of one delivery. `id` is the same across its retries, for de-duplication. */
export interface AlertDelivery {
  id: string
  event: 'alert'
  alert: Alert
}

/** `Retry-After` in ms (delta-seconds or an HTTP date), or `null`. */
export function retryAfterMs(value: string | null, now = Date.now()): number | null {
  if (!value) return null
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000
  const at = Date.parse(value)
  return Number.isNaN(at) ? null : Math.max(0, at - now)
}

const retryable = (status: number) => status === 408 || status === 429 || status >= 500

/** The longest delay a timer keeps (about 24.8 days in Node); a longer one fires at once. */
const MAX_TIMER_MS = 2_147_483_647

/** One alert being delivered: where it is, so that a deadline can report it and stop it. */
interface Delivery {
  readonly alert: Alert
  /** The attempt made last (1 for the first), or in flight. */
  attempt: number
  /** Why the last attempt failed, when one did. */
  cause: unknown
  /** Aborts the request in flight, if any. */
  abort: ((reason: unknown) => void) | undefined
  /** Given up by a deadline, and reported: nothing more is sent, or said, about it. */
  givenUp: boolean
}

/**
 * An `onAlert` hook POSTing each alert to `url`, signed (see `verifyAlertSignature`).
 * @example
 * const webhook = alertWebhook({ url: 'https://ops.example.com/hooks/tollgate', secret })
 * const gate = createTollgate({ policy, store, onAlert: webhook })
 * // on shutdown
 * await webhook.close()
 */
export function alertWebhook(options: AlertWebhookOptions): AlertWebhook {
  checkOptions(options)
  const send = options.fetch ?? globalThis.fetch
  const retries = options.retries ?? 5
  const timeoutMs = options.timeoutMs ?? 10_000
  const maxPending = options.maxPending ?? 1000
  const closeTimeoutMs = options.closeTimeoutMs ?? 30_000
  const backoff =
    options.backoffMs ??
    ((attempt: number, after: number | null) =>
      after === null ? defaultBackoffMs(attempt) : Math.min(after, 300_000))
  const fail = (error: AuditError) => report(options.onError, error)
  /** The alerts being delivered, each with the task delivering it. */
  const pending = new Map<Delivery, Promise<void>>()
  const timers = waits()
  let closed = false
  let closing: Promise<void> | undefined

  const deliver = async (state: Delivery) => {
    const { alert } = state
    const delivery: AlertDelivery = { id: crypto.randomUUID(), event: 'alert', alert }
    const body = JSON.stringify(delivery)
    for (let attempt = 1; ; attempt++) {
      // a deadline gave this alert up (and ended the wait for this retry): it was reported
      if (state.givenUp) return
      let cause: unknown
      let after: number | null = null
      // the attempt's own timeout, or a deadline giving the alert up, aborts the request
      const controller = new AbortController()
      const timeout = AbortSignal.timeout(timeoutMs)
      const onTimeout = () => controller.abort(timeout.reason)
      timeout.addEventListener('abort', onTimeout)
      state.attempt = attempt
      state.abort = (reason) => controller.abort(reason)
      try {
        const response = await send(options.url, {
          method: 'POST',
          headers: {
            ...options.headers,
            'content-type': 'application/json',
            [SIGNATURE_HEADER]: await signAlert(options.secret, body, Date.now()),
          },
          body,
          signal: controller.signal,
          // followed, a 301, 302 or 303 resent the alert as a GET without its body, and counted delivered
          redirect: 'manual',
        })
        await response.body?.cancel().catch(() => {})
        // answered after the deadline: the alert was reported as given up already
        if (state.givenUp) return
        if (response.ok) {
          callHook(options.onDelivered, {
            id: delivery.id,
            alert,
            attempts: attempt,
            status: response.status,
          })
          return
        }
        const to = response.headers.get('location')
        cause = new Error(
          to !== null && response.status >= 300 && response.status < 400
            ? `the webhook answered ${response.status}, a redirect to ${to}: give alertWebhook the final URL`
            : `the webhook answered ${response.status}`,
        )
        if (!retryable(response.status)) attempt = retries + 1
        after = retryAfterMs(response.headers.get('retry-after'))
      } catch (error) {
        if (state.givenUp) return // aborted by the deadline, and reported as given up
        cause = error
      } finally {
        timeout.removeEventListener('abort', onTimeout)
        state.abort = undefined
      }
      state.cause = cause
      if (attempt > retries) {
        fail(new AuditError('delivery_failed', 'an alert could not be delivered', { cause, attempt, alert }))
        return
      }
      await timers.sleep(backoff(attempt, after))
    }
  }

  /**
   * Gives up every alert still being delivered: each is reported (`close_timeout`), its request
   * in flight aborted and its retry wait ended, so nothing of it keeps the process alive.
   */
  const giveUp = (by: string) => {
    const lost = [...pending.keys()]
    pending.clear()
    for (const state of lost) {
      state.givenUp = true
      fail(
        new AuditError('close_timeout', `${by} gave up on an alert not delivered yet`, {
          cause: state.cause,
          attempt: state.attempt,
          alert: state.alert,
        }),
      )
    }
    const reason = new Error(`${by} gave up on this alert after closeTimeoutMs`)
    for (const state of lost) state.abort?.(reason)
    timers.wake() // every pending wait is a given-up alert's retry: it ends now, not in 5 minutes
  }

  /** Waits for every alert to be delivered or given up, at most `closeTimeoutMs`. */
  const settled = async (by: string) => {
    if (pending.size === 0) return
    // an awaited flush holds the process open, as a close does: a retry waiting out its back-off
    // was cut short (the process exited, the alert neither sent nor reported)
    const release = timers.hold()
    let deadline: ReturnType<typeof setTimeout> | undefined
    try {
      await Promise.race([
        (async () => {
          while (pending.size > 0) await Promise.all(pending.values())
        })(),
        new Promise<void>((resolve) => {
          deadline = setTimeout(() => {
            giveUp(by)
            resolve()
          }, closeTimeoutMs)
        }),
      ])
    } finally {
      clearTimeout(deadline)
      release()
    }
  }
  const hook = (alert: Alert) => {
    if (closed || pending.size >= maxPending) {
      const why = closed ? 'the webhook is closed' : 'too many alerts in flight'
      fail(new AuditError(closed ? 'closed' : 'delivery_failed', why, { alert, attempt: 0 }))
      return
    }
    const state: Delivery = { alert, attempt: 0, cause: undefined, abort: undefined, givenUp: false }
    const task: Promise<void> = deliver(state)
      .catch((cause: unknown) => {
        if (!state.givenUp) fail(new AuditError('delivery_failed', 'alert delivery failed', { cause, alert }))
      })
      .finally(() => pending.delete(state))
    pending.set(state, task)
  }
  return Object.assign(hook, {
    flush: () => settled('flush()'),
    close() {
      closed = true
      timers.keepAlive()
      closing ??= settled('close()')
      return closing
    },
  })
}

const whole = (v: unknown, min: number) => typeof v === 'number' && Number.isSafeInteger(v) && v >= min

/** Throws a `TypeError` naming the first option that cannot work (a NaN count retried for ever). */
function checkOptions(options: AlertWebhookOptions): void {
  const refuse = (name: string, what: string): never => {
    throw new TypeError(`alertWebhook: ${name} must be ${what}`)
  }
  if (typeof options !== 'object' || options === null) refuse('options', 'an object')
  const { url, secret, retries, timeoutMs, maxPending, closeTimeoutMs, headers } = options
  if (typeof url !== 'string' && (typeof url !== 'object' || url === null)) refuse('url', 'a URL or its text')
  if (typeof secret !== 'string' || new TextEncoder().encode(secret).length < MIN_SECRET_BYTES)
    refuse(
      'secret',
      `a string of at least ${MIN_SECRET_BYTES} bytes (a shorter one can be guessed from one delivery)`,
    )
  if (retries !== undefined && !whole(retries, 0))
    refuse(
      'retries',
      `a whole number, 0 or more, got ${typeof retries === 'number' ? retries : typeof retries}`,
    )
  if (
    timeoutMs !== undefined &&
    !(typeof timeoutMs === 'number' && timeoutMs > 0 && Number.isFinite(timeoutMs))
  )
    refuse(
      'timeoutMs',
      `a positive number of ms, got ${typeof timeoutMs === 'number' ? timeoutMs : typeof timeoutMs}`,
    )
  if (maxPending !== undefined && !whole(maxPending, 1))
    refuse(
      'maxPending',
      `a whole number, 1 or more, got ${typeof maxPending === 'number' ? maxPending : typeof maxPending}`,
    )
  // as the sinks': a NaN deadline fired at once, one past what a timer keeps fired at once too
  if (
    closeTimeoutMs !== undefined &&
    (typeof closeTimeoutMs !== 'number' || !(closeTimeoutMs >= 0) || closeTimeoutMs > MAX_TIMER_MS)
  )
    throw new RangeError(
      `alertWebhook: closeTimeoutMs must be a number of ms from 0 to ${MAX_TIMER_MS}, got ${typeof closeTimeoutMs === 'number' ? closeTimeoutMs : typeof closeTimeoutMs}`,
    )
  for (const name of ['backoffMs', 'fetch', 'onError', 'onDelivered'] as const)
    if (options[name] !== undefined && typeof options[name] !== 'function') refuse(name, 'a function')
  if (headers !== undefined && (typeof headers !== 'object' || headers === null))
    refuse('headers', 'an object of header names and values')
}
