/**
 * Input and output estimates for Anthropic Messages requests.
 *
 * Anthropic's tokenizer is not public. Text is counted with o200k_base and raised by a safety
 * margin (20% by default): Claude's tokenizers produce more tokens than o200k_base for the same
 * text — about 10–20% more for English prose and code in published comparisons, more for some
 * other scripts. Images use Anthropic's published formula; tool use adds the system prompt
 * Anthropic documents for it (346 tokens at most for current models). The estimate only
 * decides admission: the settle charges the usage Anthropic reports.
 */

import { type Counter, createCounter } from '../tokens/count.js'
import { imageSizeOf } from '../tokens/image-size.js'
import { anthropicImageTokens } from '../tokens/images.js'
import { checkEstimateOptions } from './options.js'
import {
  asString,
  bodyOf,
  type CallEstimate,
  type EstimateOptions,
  isFields,
  json,
  tokensField,
} from './types.js'

/** Options of {@link estimateAnthropicMessage}. */
export interface AnthropicEstimateOptions extends EstimateOptions {
  /**
   * Share added to text counted with o200k_base, since Anthropic's tokenizer is not public.
   * @default 0.2
   * @example { margin: 0.35 } // mostly non-English text
   */
  margin?: number
}

/** Tokens Anthropic adds for the tool-use system prompt (the largest published figure). */
export const ANTHROPIC_TOOLS_OVERHEAD = 346
const PER_MESSAGE = 4
const REPLY_PRIMING = 3

interface Totals {
  counter: Counter
  /** Counted text, before the margin. */
  text: number
  /** Fixed amounts: images, opaque documents, overheads (no margin). */
  fixed: number
  opaque: number
}

function block(totals: Totals, value: unknown): void {
  if (typeof value === 'string') {
    totals.text += totals.counter.count(value)
    return
  }
  if (!isFields(value)) return
  const source = isFields(value.source) ? value.source : undefined
  switch (value.type) {
    case 'text':
      totals.text += totals.counter.count(asString(value.text) ?? '')
      return
    case 'image': {
      const data = source?.type === 'base64' ? asString(source.data) : undefined
      totals.fixed += anthropicImageTokens(data ? imageSizeOf(data) : null)
      return
    }
    case 'document':
      if (source?.type === 'text') totals.text += totals.counter.count(asString(source.data) ?? '')
      else if (source?.type === 'content') blocks(totals, source.content)
      else totals.fixed += totals.opaque
      return
    case 'tool_use':
    case 'server_tool_use':
      totals.text +=
        totals.counter.count(asString(value.name) ?? '') + totals.counter.count(json(value.input))
      return
    case 'tool_result':
      blocks(totals, value.content)
      return
    case 'thinking':
      totals.text += totals.counter.count(asString(value.thinking) ?? '')
      return
    default:
      totals.text += totals.counter.count(json(value))
  }
}

function blocks(totals: Totals, value: unknown): void {
  if (Array.isArray(value)) for (const item of value) block(totals, item)
  else block(totals, value)
}

/**
 * Estimate an Anthropic Messages request (`messages.create` / `messages.stream` body).
 * `max_tokens` (required by the API, and covering any thinking budget) is the output reservation.
 *
 * @example
 * estimateAnthropicMessage({ model: 'claude-sonnet-4-5', max_tokens: 1024, messages: [{ role: 'user', content: 'Hi' }] })
 */
export function estimateAnthropicMessage(body: object, given?: AnthropicEstimateOptions): CallEstimate {
  const options = checkEstimateOptions(given)
  const request = bodyOf(body)
  const totals: Totals = {
    counter: createCounter('o200k_base', options),
    text: 0,
    fixed: REPLY_PRIMING,
    opaque: options.opaquePartTokens ?? 2000,
  }
  if (request.system !== undefined) {
    totals.fixed += PER_MESSAGE
    blocks(totals, request.system)
  }
  for (const message of Array.isArray(request.messages) ? request.messages : []) {
    if (!isFields(message)) continue
    totals.fixed += PER_MESSAGE
    blocks(totals, message.content)
  }
  if (Array.isArray(request.tools) && request.tools.length > 0) {
    totals.fixed += ANTHROPIC_TOOLS_OVERHEAD
    for (const tool of request.tools) totals.text += totals.counter.count(json(tool))
  }
  if (isFields(request.tool_choice)) totals.text += totals.counter.count(json(request.tool_choice))
  const margin = options.margin ?? 0.2
  const cap = tokensField(request.max_tokens)
  return {
    inputTokens: Math.ceil(totals.text * (1 + margin)) + totals.fixed,
    maxOutputTokens: cap ?? options.defaultMaxOutputTokens ?? 1024,
    outputCap: cap === undefined ? 'default' : 'request',
    bounded: totals.counter.bounded,
  }
}
