/**
 * Background abandons of reserves whose answer was lost. A reserve that failed after it may have
 * landed on the store server (a timeout, a connection lost after sending, a 5xx, a bad answer) is
 * abandoned: `commit({ id, amounts: null, abandon: true })` returns its hold if it is there and
 * remembers the id as released. That commit is idempotent, so it may be sent more than once. Right
 * after such a failure the server is often still away and the abandon fails too: it is sent again
 * after a wait (`firstDelayMs`, doubled each time, ± 25 %), or as soon as the server answers another
 * call, up to {@link TRIES} attempts in all. Nothing makes the caller wait; errors go nowhere, as
 * those of the first abandon did. Timers are unref'd: a retry never keeps a process alive.
 */
import { HttpStoreError } from './errors.js'

/** Attempts per abandon, the first included. */
export const TRIES = 5
/**
 * Most abandons waiting for their next attempt at once (a long outage during heavy traffic). Past
 * it, a lost reserve's hold is left to expire with its TTL, as it was before retries.
 */
export const MOST = 10_000
/** Most waiting abandons in flight at once when they are sent because the server answered again. */
export const AT_ONCE = 32
/** The longest delay `setTimeout` keeps (2^31 - 1 ms); a longer one fires at once. */
const MAX_TIMEOUT_MS = 2_147_483_647

/** The queue of {@link abandoner}. */
export interface Abandoner {
  /** Sends the abandon of `id` now, and again later while it fails. Never throws, never waits. */
  abandon(id: string): void
  /** The store server answered a call: sends the abandons waiting now, {@link AT_ONCE} at a time. */
  answered(): void
  /** How many abandons wait for their next attempt. */
  readonly size: number
}

export interface AbandonerOptions {
  /** Sends one abandon of `id`; resolves once the server answered it. */
  send: (id: string) => Promise<unknown>
  /** Wait after the first failed attempt; each next wait is twice the one before (± 25 %). */
  firstDelayMs: number
  /** Most abandons waiting at once. @default MOST */
  most?: number
  /** `Math.random`, for the jitter that keeps many clients from retrying in step. */
  random?: () => number
}

interface Job {
  id: string
  /** Attempts sent so far. */
  tries: number
  timer?: ReturnType<typeof setTimeout>
}

/**
 * Whether an abandon that failed with `error` is worth sending again: not when it could not be sent
 * (input JSON cannot carry, a body too large) nor when the server, or a proxy before it, refused it
 * (a 4xx: the same request is refused again), but for a request timeout (408), too early (425) or
 * too many requests (429). A timeout, a lost connection, a 5xx, an answer that fails its check are:
 * the server may be back at the next attempt.
 */
function worthRetrying(error: unknown): boolean {
  if (!HttpStoreError.isInstance(error)) return false
  if (error.code !== 'status' || error.status === undefined) return true
  const status = error.status
  return status < 400 || status >= 500 || status === 408 || status === 425 || status === 429
}

export function abandoner(options: AbandonerOptions): Abandoner {
  const { send, firstDelayMs, most = MOST, random = Math.random } = options
  /** Abandons waiting for their next attempt, oldest first: one per id. */
  const waiting = new Map<string, Job>()
  /** Abandons in flight. */
  let sending = 0

  const attempt = (job: Job) => {
    job.tries++
    sending++
    let pending: Promise<unknown>
    try {
      pending = send(job.id)
    } catch (error) {
      pending = Promise.reject(error)
    }
    pending.then(
      () => {
        sending--
        answered() // the server is back: what waits goes out
      },
      (error: unknown) => {
        sending--
        if (job.tries < TRIES && worthRetrying(error)) wait(job)
      },
    )
  }

  const wait = (job: Job) => {
    if (waiting.has(job.id) || waiting.size >= most) return // already waiting, or no room: its TTL
    const delay = firstDelayMs * 2 ** (job.tries - 1) * (0.75 + random() / 2)
    job.timer = setTimeout(
      () => {
        job.timer = undefined
        waiting.delete(job.id)
        attempt(job)
      },
      Math.min(delay, MAX_TIMEOUT_MS),
    )
    job.timer.unref?.() // Node, Bun; elsewhere (a number) there is nothing to unref
    waiting.set(job.id, job)
  }

  function answered() {
    if (waiting.size === 0) return
    for (const job of waiting.values()) {
      if (sending >= AT_ONCE) return // the rest follow as these are answered, or at their time
      clearTimeout(job.timer)
      job.timer = undefined
      waiting.delete(job.id)
      attempt(job)
    }
  }

  return {
    abandon: (id) => attempt({ id, tries: 0 }),
    answered,
    get size() {
      return waiting.size
    },
  }
}
