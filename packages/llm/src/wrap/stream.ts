/**
 * Metering a stream: the caller gets a stream of the SDK's own class whose items pass through
 * a meter; when the stream ends — run to its end, aborted, broken, or cut off by Tollgate — the
 * call is settled once.
 */
import { createCounter } from '../tokens/count.js'
import type { EncodingName } from '../tokens/encoding.js'
import type { Meter } from '../usage/meter.js'
import type { CallEnd } from './options.js'

interface SdkStream extends AsyncIterable<unknown> {
  controller?: AbortController
}

/** Called once when a metered stream ends. */
export type StreamEnd = (end: CallEnd, error?: unknown) => Promise<void>

/** End the stream once its output reaches `allowance` tokens (counted per delta, plus `margin`). */
export interface CutOff {
  allowance: number
  encoding: EncodingName
  margin: number
}

/** Counting deltas as they arrive: a stream's worth of text within one budget. */
const DELTA_BUDGET = { maxExactChars: 262_144, timeBudgetMs: 25 }

/**
 * A check that answers `true` once the output streamed so far reaches the allowance. It counts
 * the text each item added (`newText()`): the work per item follows the item, not the stream.
 */
function overBudget(meter: Meter, cut: CutOff): () => boolean {
  const counter = createCounter(cut.encoding, DELTA_BUDGET)
  let seen = 0
  let tokens = 0
  const added = meter.newText
    ? () => meter.newText!()
    : () => {
        // a meter without `newText` (custom): the new part of its whole text
        const text = meter.text?.() ?? ''
        const fresh = text.slice(seen)
        seen = text.length
        return fresh
      }
  return () => {
    const text = added()
    if (text) tokens += counter.count(text)
    return Math.ceil(tokens * (1 + cut.margin)) >= cut.allowance
  }
}

/**
 * A stream of the same class as `stream`, metered (and cut off when `cut` is given).
 *
 * @example
 * const metered = meterStream(stream, chatCompletionMeter('o200k_base'), (end) => settle(end))
 */
export function meterStream<S>(stream: S, meter: Meter, onEnd: StreamEnd, cut?: CutOff): S {
  const source = stream as unknown as SdkStream
  const controller = source.controller
  const reached = cut ? overBudget(meter, cut) : undefined
  async function* iterate(): AsyncGenerator<unknown> {
    let end: CallEnd = 'aborted' // a caller that stops iterating (break, return) never reaches the end
    let failure: unknown
    try {
      let stopped = false
      for await (const item of source) {
        if (meter.push(item)) yield item
        if (reached?.()) {
          stopped = true
          break // the SDK's iterator aborts its request when left early
        }
      }
      // the SDKs end the iteration quietly when their controller is aborted
      end = stopped ? 'cut' : controller?.signal.aborted ? 'aborted' : 'completed'
    } catch (error) {
      failure = error
      // (the SDKs abort their controller on any failure, so only the error itself tells)
      end = isAbort(error) ? 'aborted' : 'broken'
      throw error
    } finally {
      await onEnd(end, failure)
    }
  }
  const Sdk = (stream as { constructor?: unknown }).constructor
  if (typeof Sdk === 'function' && controller) {
    try {
      return new (Sdk as new (iterator: () => AsyncIterator<unknown>, controller: AbortController) => S)(
        () => iterate(),
        controller,
      )
    } catch {
      // not an SDK stream class: fall through to a plain async iterable
    }
  }
  return { controller, [Symbol.asyncIterator]: () => iterate() } as unknown as S
}

/** Whether `error` is the caller's abort (the SDKs' `APIUserAbortError`, or fetch's `AbortError`). */
export function isAbort(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false
  const name = (error as { name?: unknown }).name
  const kind = (error as { constructor?: { name?: unknown } }).constructor?.name
  return name === 'AbortError' || name === 'APIUserAbortError' || kind === 'APIUserAbortError'
}
