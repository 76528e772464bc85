/**
 * Usage from Anthropic Messages results and streams. `message_start` carries the input side
 * (input tokens, cache reads and writes) and a placeholder output count (`output_tokens: 1`),
 * `message_delta` the cumulative output tokens: the output is read from there only. Anthropic
 * counts cache reads and writes apart from `input_tokens`; here they are added back, so
 * `inputTokens` is every input token and `cachedInputTokens` the cache reads.
 */
import type { Usage } from '@tollgate/core'
import { countStreamed, type Meter, type MeteredUsage, num, obj, str, TextLog } from './meter.js'

/** Input counts read so far; `undefined` when Anthropic has not reported one (not the same as 0). */
interface Reported {
  input: number | undefined
  cacheRead: number
  cacheWrite: { '5m': number; '1h': number }
}

function read(raw: unknown, into: Reported | null): Reported | null {
  const u = obj(raw)
  if (!u) return into
  const next: Reported = into ?? { input: undefined, cacheRead: 0, cacheWrite: { '5m': 0, '1h': 0 } }
  next.input = num(u.input_tokens) ?? next.input
  next.cacheRead = num(u.cache_read_input_tokens) ?? next.cacheRead
  const writes = num(u.cache_creation_input_tokens)
  if (writes !== undefined) {
    const split = obj(u.cache_creation)
    const long = num(split?.ephemeral_1h_input_tokens) ?? 0
    next.cacheWrite = { '5m': Math.max(0, writes - long), '1h': Math.min(long, writes) }
  }
  return next
}

/**
 * Core usage of what was reported. Without `input_tokens` the input side is left out (the settle
 * keeps its estimate, cache reads and writes included): cache counts alone are not the input.
 */
function toUsage(
  reported: Reported | null,
  output: number,
): Pick<MeteredUsage, 'usage' | 'cacheWriteTokens'> {
  const usage: Usage = { outputTokens: output }
  if (reported?.input === undefined) return { usage }
  const writes = reported.cacheWrite['5m'] + reported.cacheWrite['1h']
  usage.inputTokens = reported.input + reported.cacheRead + writes
  if (reported.cacheRead > 0) usage.cachedInputTokens = reported.cacheRead
  return writes > 0 ? { usage, cacheWriteTokens: { ...reported.cacheWrite } } : { usage }
}

/** A meter for Anthropic Messages (`messages.create`, streamed or not, and `messages.stream`). */
export function anthropicMeter(margin = 0.2): Meter {
  let reported: Reported | null = null
  /** The output of the last `message_delta` (or of the whole message), when it carried a count. */
  let output: number | undefined
  const text = new TextLog()
  return {
    push(item) {
      const event = obj(item)
      switch (event?.type) {
        case 'message_start':
          reported = read(obj(event.message)?.usage, reported)
          break
        case 'content_block_delta': {
          const delta = obj(event.delta)
          text.add(str(delta?.text) + str(delta?.partial_json) + str(delta?.thinking))
          break
        }
        case 'content_block_start': {
          const block = obj(event.content_block)
          text.add(str(block?.text) + str(block?.thinking))
          break
        }
        case 'message_delta':
          reported = read(event.usage, reported)
          output = num(obj(event.usage)?.output_tokens)
          break
      }
      return true
    },
    result(value) {
      const message = obj(value)
      reported = read(message?.usage, null)
      output = num(obj(message?.usage)?.output_tokens)
      for (const item of Array.isArray(message?.content) ? message.content : []) {
        const block = obj(item)
        text.add(str(block?.text) + str(block?.thinking))
        if (block?.type === 'tool_use') text.add(JSON.stringify(block.input ?? {}))
      }
    },
    finish() {
      if (output !== undefined) return { ...toUsage(reported, output), estimated: false }
      const streamed = Math.ceil(countStreamed(text.text, 'o200k_base') * (1 + margin))
      return { ...toUsage(reported, streamed), estimated: true }
    },
    text: () => text.text,
    newText: () => text.take(),
  }
}
