import { describe, expect, it } from 'vitest'
import { type EventMeter, sseMeter } from './meter.js'

const encoder = new TextEncoder()

/** An event meter that keeps the text of every `delta` it is given (one output token per UTF-16 unit). */
function textMeter(): EventMeter & { text: string; pushed: number } {
  const meter = {
    text: '',
    pushed: 0,
    push(item: unknown) {
      meter.pushed++
      meter.text += (item as { delta?: string }).delta ?? ''
    },
    finish: () => ({ usage: { outputTokens: meter.text.length }, estimated: true }),
  }
  return meter
}

/** Feeds `parts` to a fresh `sseMeter`, each as one chunk. */
function metered(parts: (string | Uint8Array)[]) {
  const events = textMeter()
  const meter = sseMeter(events)
  for (const part of parts) meter.write(typeof part === 'string' ? encoder.encode(part) : part)
  return { events, meter }
}

describe('sseMeter', () => {
  it('reads `data:` lines with or without the space after the colon (both are SSE)', () => {
    const { events, meter } = metered(['data:{"delta":"hello world"}\n\n', 'data: {"delta":"!"}\n\n'])
    expect(events.text).toBe('hello world!')
    expect(meter.usage()).toEqual({ outputTokens: 12, estimated: true })
    // a field that only starts with `data` is not a data line; `[DONE]` and text are skipped
    const other = metered(['database: {"delta":"no"}\n', 'data:[DONE]\n', 'data:text\n\n'])
    expect(other.events.pushed).toBe(0)
    expect(other.meter.usage()).toBeUndefined()
  })

  it('decodes a multi-byte character split across chunks whole', () => {
    // one byte a chunk, as a slow proxy may deliver: é (2 bytes), € (3), 😀 (4)
    const bytes = encoder.encode('data: {"delta":"é€😀"}\r\n\r\n')
    const { events, meter } = metered([...bytes].map((byte) => Uint8Array.of(byte)))
    expect(events.text).toBe('é€😀')
    expect(meter.usage()).toEqual({ outputTokens: 4, estimated: true })
  })

  it('skips a line longer than 1 MiB that arrives over several chunks, then reads the lines after it', () => {
    // a hostile or broken stream without newlines is not buffered: the line is dropped at 1 MiB
    const mib = 'y'.repeat(1 << 20)
    const { events, meter } = metered([
      'data: {"delta":"',
      mib,
      mib,
      mib,
      '"}\n\n',
      'data: {"delta":"ok"}\n\n',
    ])
    // (counts, not the text: a failure would print megabytes)
    expect(meter.usage()).toEqual({ outputTokens: 2, estimated: true })
    expect(events.pushed).toBe(1)
    // one never ended by a newline measures nothing
    const endless = metered(['data: {"delta":"', mib, mib, mib])
    expect(endless.events.pushed).toBe(0)
    expect(endless.meter.usage()).toBeUndefined()
  })

  it('keeps a line of up to 1 MiB, however it is chunked', () => {
    const prefix = 'data: {"delta":"'
    const delta = 'y'.repeat((1 << 20) - prefix.length - 2)
    const { events, meter } = metered([prefix, delta, '"}', '\n\n'])
    expect(events.pushed).toBe(1)
    expect(meter.usage()).toEqual({ outputTokens: delta.length, estimated: true })
  })
})
