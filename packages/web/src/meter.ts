/**
 * Measuring a response body as it is sent, so that a stream that ends early (the client went
 * away, the upstream broke) is settled from what was really sent.
 */
import type { Usage } from '@tollgate/core'

/** Watches the bytes of one response body. */
export interface StreamMeter {
  /** One chunk of the body, as it was sent. */
  write(chunk: Uint8Array): void
  /**
   * Usage measured so far; `undefined` when nothing could be measured (the estimate then applies).
   * Set `estimated: true` on it when any of it was counted or guessed rather than reported by the
   * provider (the settle record is then flagged).
   */
  usage(): Usage | undefined
}

/**
 * What `sseMeter` feeds: the shape of `@tollgate/llm`'s meters (`chatCompletionMeter`,
 * `responseMeter`, `anthropicMeter`).
 */
export interface EventMeter {
  push(item: unknown): unknown
  /** `estimated`: the usage was counted from the streamed text, not reported by the provider. */
  finish(): { usage: Usage; estimated?: boolean }
}

/** Longest SSE line kept; longer lines are skipped (bounded memory on hostile streams). */
const MAX_LINE = 1 << 20

/**
 * A meter for a server-sent event body: every `data:` line that holds JSON goes to `meter`
 * (`[DONE]` and other text are skipped). Usage is the meter's — the provider's usage when the
 * stream carried it, else output counted from the streamed text, flagged `estimated` — once at
 * least one event was seen.
 *
 * @example
 * import { chatCompletionMeter } from '@tollgate/llm'
 * tollgate({ gate, identify, meter: () => sseMeter(chatCompletionMeter('o200k_base')) })
 */
export function sseMeter(meter: EventMeter): StreamMeter {
  const decoder = new TextDecoder()
  let pending = ''
  let skipping = false
  let events = 0
  const line = (text: string) => {
    if (!text.startsWith('data:')) return
    const data = text.slice(5).trim()
    if (data === '' || data === '[DONE]') return
    try {
      meter.push(JSON.parse(data))
      events++
    } catch {
      // not JSON: nothing to measure
    }
  }
  return {
    write(chunk) {
      const lines = (pending + decoder.decode(chunk, { stream: true })).split('\n')
      pending = lines.pop() ?? ''
      for (const raw of lines) {
        if (!skipping) line(raw.endsWith('\r') ? raw.slice(0, -1) : raw)
        skipping = false
      }
      if (pending.length > MAX_LINE) {
        pending = ''
        skipping = true
      }
    },
    usage() {
      if (events === 0) return undefined
      const { usage, estimated } = meter.finish()
      // the meter's flag lives beside its usage: dropped, a counted settle was recorded as reported
      return estimated ? { ...usage, estimated: true } : usage
    },
  }
}
