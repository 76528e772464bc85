/**
 * Metering a stream: the caller gets a stream of the SDK's own class whose items pass through
 * a meter; when the stream ends — run to its end, aborted, broken — the call is settled once.
 */
import type { Meter } from '../usage/meter.js'
import type { CallEnd } from './options.js'

interface SdkStream extends AsyncIterable<unknown> {
  controller?: AbortController
}

/** Called once when a metered stream ends. */
export type StreamEnd = (end: CallEnd, error?: unknown) => Promise<void>

/**
 * A stream of the same class as `stream`, metered.
 *
 * @example
 * const metered = meterStream(stream, chatCompletionMeter('o200k_base'), (end) => settle(end))
 */
export function meterStream<S>(stream: S, meter: Meter, onEnd: StreamEnd): S {
  const source = stream as unknown as SdkStream
  const controller = source.controller
  async function* iterate(): AsyncGenerator<unknown> {
    let end: CallEnd = 'aborted' // a caller that stops iterating (break, return) never reaches the end
    let failure: unknown
    try {
      for await (const item of source) if (meter.push(item)) yield item
      // the SDKs end the iteration quietly when their controller is aborted
      end = controller?.signal.aborted ? 'aborted' : 'completed'
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

function isAbort(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false
  const name = (error as { name?: unknown }).name
  return name === 'AbortError' || name === 'APIUserAbortError'
}
