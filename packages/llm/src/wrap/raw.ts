/**
 * Settling a call the caller took as a raw `Response` (`asResponse()`): usage is read from a
 * copy of the body, JSON or server-sent events, in the background.
 */
import type { Meter } from '../usage/meter.js'
import type { StreamEnd } from './stream.js'

/** Read `response` (a clone) to its end, feed the meter, then settle once. */
export async function settleFromResponse(response: Response, meter: Meter, onEnd: StreamEnd): Promise<void> {
  let text: string
  try {
    text = await response.text()
  } catch (error) {
    await onEnd('broken', error)
    return
  }
  const body = text.trimStart()
  if (body.startsWith('{')) {
    try {
      meter.result(JSON.parse(body))
    } catch {
      // not JSON after all: settle from what the meter has (nothing), flagged
    }
  } else {
    for (const event of body.split(/\r?\n\r?\n/)) {
      const data = event
        .split(/\r?\n/)
        .filter((line) => line.startsWith('data:'))
        .map((line) => line.slice(5).trimStart())
        .join('\n')
      if (!data || data === '[DONE]') continue
      try {
        meter.push(JSON.parse(data))
      } catch {
        // skip an event that is not JSON
      }
    }
  }
  await onEnd('completed')
}
