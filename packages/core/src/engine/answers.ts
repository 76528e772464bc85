/**
 * What a store answers, checked where the engine relies on its shape. The store contract is public
 * (a store of your own, or a store server of another version behind `httpStore`): an answer of the
 * wrong shape is a `store_error`, which the caller sees, instead of a `TypeError` from deep inside.
 */
import { shown, TollgateError } from '../errors.js'
import type { CounterResult, CounterState, Store, StoreReserveResult } from '../store/contract.js'

const wrong = (what: string): never => {
  throw new TollgateError('store_error', `The store answered ${what}.`)
}

/** The store's time: ms since the epoch, as a finite number. */
export function timeOf(answer: unknown): number {
  return typeof answer === 'number' && Number.isFinite(answer)
    ? answer
    : wrong(`${shown(answer)} to now(), not ms since the epoch`)
}

/**
 * The store's time for a record of what already happened (an audit or settle record): the local
 * clock when the store cannot tell within `timeoutMs`, for the decision or settle it describes is
 * made and must stand (a clock that never answered held the reserve's answer back for good).
 */
export async function recordTime(store: Store, timeoutMs: number): Promise<number> {
  let timer: ReturnType<typeof setTimeout> | undefined
  try {
    const read: unknown = store.now()
    const answer: unknown =
      read instanceof Promise
        ? await Promise.race([
            read,
            new Promise((resolve) => {
              timer = setTimeout(resolve, timeoutMs)
            }),
          ])
        : read
    return typeof answer === 'number' && Number.isFinite(answer) ? answer : Date.now()
  } catch {
    return Date.now()
  } finally {
    clearTimeout(timer)
  }
}

/** A reserve's answer, with a counter for each counter asked about when it holds or refuses. */
export function reserveAnswer(answer: StoreReserveResult, counters: number): StoreReserveResult {
  const status = (answer as Partial<StoreReserveResult> | null)?.status
  if (status === 'ok' || status === 'denied') {
    const list: unknown = (answer as { counters?: unknown }).counters
    if (!Array.isArray(list) || list.length !== counters || !list.every(isCounterResult))
      wrong(`a reserve without a result for each of its ${counters} counters`)
  } else if (status !== 'blocked' && status !== 'skew') wrong(`a reserve with status ${shown(status)}`)
  timeOf(answer.now)
  return answer
}

/** A read's answer: one state for each counter asked about. */
export function readAnswer(answer: CounterState[], counters: number): CounterState[] {
  if (!Array.isArray(answer) || answer.length !== counters || !answer.every(isState))
    wrong(`a read without a state for each of its ${counters} counters`)
  return answer
}

const isNumber = (value: unknown) => typeof value === 'number' && !Number.isNaN(value)

/** The numbers a state is read for: its cap, use and holds, its reset (or `null`) and window. */
function isState(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return false
  const { cap, used, held, resetAt, windowStart } = value as Partial<CounterState>
  return (
    isNumber(cap) &&
    isNumber(used) &&
    isNumber(held) &&
    (resetAt === null || isNumber(resetAt)) &&
    isNumber(windowStart)
  )
}

/** A state, and what a reserve adds to it. */
function isCounterResult(value: unknown): boolean {
  if (!isState(value)) return false
  const { denied, retryAfterMs, crossed } = value as Partial<CounterResult>
  return (
    typeof denied === 'boolean' &&
    (retryAfterMs === null || isNumber(retryAfterMs)) &&
    Array.isArray(crossed) &&
    crossed.every(isNumber)
  )
}
