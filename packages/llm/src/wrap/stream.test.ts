/**
 * Cut-off work per delta: the output text the cut-off reads from the meter over a long stream
 * grows with the stream, not with its square. (Reading the whole text again at every delta, and
 * slicing off the new part, made V8 copy the whole text at every delta: 32,000 one-word chunks
 * took 8 s of CPU.) Measured as characters handed over, never as time.
 */
import { describe, expect, it } from 'vitest'
import { anthropicMeter } from '../usage/anthropic.js'
import type { Meter } from '../usage/meter.js'
import { chatCompletionMeter, responseMeter } from '../usage/openai.js'
import { meterStream } from './stream.js'

/** `meter`, counting the characters of output text it hands out (`text()` and `newText()`). */
function reading(meter: Meter) {
  const read = { chars: 0 }
  const spied: Meter = {
    push: (item) => meter.push(item),
    result: (value) => meter.result(value),
    finish: () => meter.finish(),
  }
  if (meter.text)
    spied.text = () => {
      const text = meter.text!()
      read.chars += text.length
      return text
    }
  if (meter.newText)
    spied.newText = () => {
      const text = meter.newText!()
      read.chars += text.length
      return text
    }
  return { spied, read }
}

async function* items<T>(count: number, item: (i: number) => T) {
  for (let i = 0; i < count; i++) yield item(i)
}

const word = (i: number) => ` w${i % 10}`
const kinds: [string, () => Meter, (i: number) => unknown][] = [
  [
    'chat completions',
    () => chatCompletionMeter('o200k_base'),
    (i) => ({ choices: [{ index: 0, delta: { content: word(i) } }] }),
  ],
  [
    'responses',
    () => responseMeter('o200k_base'),
    (i) => ({ type: 'response.output_text.delta', delta: word(i) }),
  ],
  [
    'anthropic',
    () => anthropicMeter(),
    (i) => ({ type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: word(i) } }),
  ],
]

describe('cutOffStreams over a long stream', () => {
  it.each(kinds)('reads each delta once (%s)', async (_, makeMeter, item) => {
    const deltas = 20_000
    const { spied, read } = reading(makeMeter())
    let ended: string | undefined
    const cut = { allowance: 1e9, encoding: 'o200k_base' as const, margin: 0 }
    const stream = meterStream(
      items(deltas, item),
      spied,
      async (end) => {
        ended = end
      },
      cut,
    )
    let received = 0
    for await (const _ of stream) received++
    expect(received).toBe(deltas)
    expect(ended).toBe('completed')
    const streamed = deltas * 3
    expect(read.chars).toBeGreaterThanOrEqual(streamed)
    expect(read.chars).toBeLessThanOrEqual(2 * streamed)
  })

  it('still cuts a stream off once the output reaches the allowance', async () => {
    const { spied } = reading(chatCompletionMeter('o200k_base'))
    let ended: string | undefined
    const cut = { allowance: 100, encoding: 'o200k_base' as const, margin: 0 }
    const stream = meterStream(
      items(1000, (i) => ({ choices: [{ index: 0, delta: { content: ' word' } }], i })),
      spied,
      async (end) => {
        ended = end
      },
      cut,
    )
    let received = 0
    for await (const _ of stream) received++
    expect(received).toBe(100) // one token per ' word'
    expect(ended).toBe('cut')
  })
})
