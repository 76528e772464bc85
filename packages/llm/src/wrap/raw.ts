/**
 * Settling a call the caller took as a raw `Response` (`asResponse()`): usage is read from a
 * copy of the body, JSON or server-sent events, in the background. Events are fed to the meter
 * as they arrive, so a stream aborted or broken mid-way is settled from what arrived.
 */
import type { Meter } from '../usage/meter.js'
import { isAbort, type StreamEnd } from './stream.js'

/** The blank line that ends a server-sent event (at most 4 characters). */
const BOUNDARY = /\r?\n\r?\n/g

/** Read `response` (a clone) to its end, feeding the meter as the body arrives, then settle once. */
export async function settleFromResponse(response: Response, meter: Meter, onEnd: StreamEnd): Promise<void> {
  const body = bodyReader(meter)
  try {
    const reader = response.body?.getReader()
    const decoder = new TextDecoder()
    for (;;) {
      const chunk = await reader?.read()
      if (!chunk || chunk.done) break
      body.add(decoder.decode(chunk.value, { stream: true }))
    }
    body.add(decoder.decode())
  } catch (error) {
    // keep what arrived: the events before the break (a JSON body cut short is no result)
    body.broken()
    await onEnd(isAbort(error) ? 'aborted' : 'broken', error)
    return
  }
  await onEnd(body.end() ? 'completed' : 'broken')
}

/**
 * A body read piece by piece: a JSON result (kept whole, parsed at its end) or server-sent
 * events (each fed to the meter once its blank line arrives).
 */
function bodyReader(meter: Meter) {
  let json: string[] | undefined
  let started = false
  let pending = '' // events text after the last blank line
  const event = (text: string) => {
    const data = text
      .split(/\r?\n/)
      .filter((line) => line.startsWith('data:'))
      .map((line) => line.slice(5).trimStart())
      .join('\n')
    if (!data || data === '[DONE]') return
    try {
      meter.push(JSON.parse(data))
    } catch {
      // skip an event that is not JSON
    }
  }
  return {
    add(text: string) {
      if (!started) {
        text = pending + text
        pending = ''
        const first = text.trimStart()
        if (!first) {
          pending = text
          return
        }
        started = true
        if (first.startsWith('{')) json = []
      }
      if (json) {
        json.push(text)
        return
      }
      // a blank line split between two pieces starts in the last 3 characters of the earlier one
      BOUNDARY.lastIndex = Math.max(0, pending.length - 3)
      pending += text
      let from = 0
      for (let match = BOUNDARY.exec(pending); match; match = BOUNDARY.exec(pending)) {
        event(pending.slice(from, match.index))
        from = match.index + match[0].length
      }
      if (from > 0) pending = pending.slice(from)
    },
    /** The body ended: answers whether it was read whole (a JSON body that does not parse was not). */
    end(): boolean {
      if (!json) {
        event(pending)
        return true
      }
      try {
        meter.result(JSON.parse(json.join('')))
        return true
      } catch {
        return false
      }
    },
    /** The body broke: an event whose blank line never came may still be whole. */
    broken() {
      if (!json) event(pending)
    },
  }
}
