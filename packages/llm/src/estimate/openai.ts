/**
 * Input and output estimates for OpenAI requests: Chat Completions, the Responses API and
 * embeddings. Chat messages follow OpenAI's published counting: 3 tokens per message, 1 per
 * name, 3 to prime the reply. Tool and schema definitions are counted as their JSON text
 * plus a fixed overhead, which is above what OpenAI's internal rendering uses.
 */

import { type Counter, createCounter } from '../tokens/count.js'
import { encodingForModel } from '../tokens/encoding.js'
import { imageSizeOf } from '../tokens/image-size.js'
import { openAIImageTokens } from '../tokens/images.js'
import { checkEstimateOptions } from './options.js'
import {
  asString,
  bodyOf,
  type CallEstimate,
  type EstimateOptions,
  type Fields,
  isFields,
  json,
  tokensField,
} from './types.js'

const PER_MESSAGE = 3
const PER_NAME = 1
const REPLY_PRIMING = 3
const PER_TOOL = 8
const TOOLS_OVERHEAD = 12

interface Context {
  counter: Counter
  model: string | undefined
  opaque: number
}

function context(body: Fields, options: EstimateOptions): Context {
  const model = asString(body.model)
  return {
    counter: createCounter(encodingForModel(model), options),
    model,
    opaque: options.opaquePartTokens ?? 2000,
  }
}

function output(cap: number | undefined, options: EstimateOptions, choices = 1) {
  const each = cap ?? options.defaultMaxOutputTokens ?? 1024
  return {
    // a cap times `n` can pass every number (1e308 × 2 is Infinity): the gate refuses anything past 1e12 anyway
    maxOutputTokens: Math.min(each * choices, Number.MAX_SAFE_INTEGER),
    outputCap: cap === undefined ? ('default' as const) : ('request' as const),
  }
}

/** Tokens of one content part (Chat Completions or Responses input). */
function part(ctx: Context, value: unknown): number {
  if (typeof value === 'string') return ctx.counter.count(value)
  if (!isFields(value)) return ctx.counter.count(json(value))
  switch (value.type) {
    case 'text':
    case 'input_text':
    case 'output_text':
      return ctx.counter.count(asString(value.text) ?? '')
    case 'refusal':
      return ctx.counter.count(asString(value.refusal) ?? '')
    case 'image_url':
    case 'input_image': {
      const image = isFields(value.image_url) ? value.image_url : value
      const url = asString(image.url) ?? asString(image.image_url) ?? ''
      const size = url.startsWith('data:') ? imageSizeOf(url) : null
      return openAIImageTokens(size, asString(image.detail), ctx.model)
    }
    case 'input_audio':
    case 'file':
    case 'input_file':
      return ctx.opaque
    default:
      return ctx.counter.count(json(value))
  }
}

function content(ctx: Context, value: unknown): number {
  if (value === undefined || value === null) return 0
  if (Array.isArray(value)) return value.reduce<number>((sum, item) => sum + part(ctx, item), 0)
  return part(ctx, value)
}

/** Tool definitions: their JSON text, a per-tool overhead and a fixed overhead. */
function tools(ctx: Context, list: unknown): number {
  if (!Array.isArray(list) || list.length === 0) return 0
  return list.reduce<number>((sum, tool) => sum + ctx.counter.count(json(tool)) + PER_TOOL, TOOLS_OVERHEAD)
}

/** A `tool_choice` naming a tool, or a response format with a schema: counted as JSON. */
const extra = (ctx: Context, value: unknown) => (isFields(value) ? ctx.counter.count(json(value)) : 0)

/**
 * Estimate a Chat Completions request (`chat.completions.create` body).
 *
 * @example
 * estimateChatCompletion({ model: 'gpt-4o', messages: [{ role: 'user', content: 'Hello' }], max_tokens: 100 })
 * // { inputTokens: 8, maxOutputTokens: 100, outputCap: 'request', bounded: false }
 */
export function estimateChatCompletion(body: object, given?: EstimateOptions): CallEstimate {
  const options = checkEstimateOptions(given)
  const request = bodyOf(body)
  const ctx = context(request, options)
  let tokens = REPLY_PRIMING
  for (const message of Array.isArray(request.messages) ? request.messages : []) {
    if (!isFields(message)) continue
    tokens += PER_MESSAGE
    for (const [key, value] of Object.entries(message)) {
      if (value === undefined || value === null) continue
      if (key === 'content') tokens += content(ctx, value)
      else if (key === 'name') tokens += ctx.counter.count(asString(value) ?? '') + PER_NAME
      else tokens += ctx.counter.count(typeof value === 'string' ? value : json(value))
    }
  }
  tokens += tools(ctx, request.tools) + tools(ctx, request.functions)
  tokens +=
    extra(ctx, request.tool_choice) + extra(ctx, request.function_call) + extra(ctx, request.response_format)
  const cap = tokensField(request.max_completion_tokens) ?? tokensField(request.max_tokens)
  const n = tokensField(request.n) ?? 1
  return { inputTokens: tokens, ...output(cap, options, Math.max(1, n)), bounded: ctx.counter.bounded }
}

/** One item of a Responses API `input` list. */
function responseItem(ctx: Context, item: unknown): number {
  if (typeof item === 'string') return PER_MESSAGE + ctx.counter.count(item)
  if (!isFields(item)) return 0
  if (item.type === 'message' || (item.type === undefined && 'role' in item)) {
    return PER_MESSAGE + ctx.counter.count(asString(item.role) ?? '') + content(ctx, item.content)
  }
  if (item.type === 'function_call')
    return (
      PER_MESSAGE +
      ctx.counter.count(asString(item.name) ?? '') +
      ctx.counter.count(asString(item.arguments) ?? '')
    )
  if (item.type === 'function_call_output') {
    const out = item.output
    return PER_MESSAGE + (typeof out === 'string' ? ctx.counter.count(out) : content(ctx, out))
  }
  return PER_MESSAGE + ctx.counter.count(json(item))
}

/**
 * Estimate a Responses API request (`responses.create` body). Context the request only points
 * to (`previous_response_id`, `conversation`, stored prompts) cannot be counted before the
 * call; the settle charges what the provider reports.
 *
 * @example
 * estimateResponse({ model: 'gpt-4.1', input: 'Hello', max_output_tokens: 500 })
 */
export function estimateResponse(body: object, given?: EstimateOptions): CallEstimate {
  const options = checkEstimateOptions(given)
  const request = bodyOf(body)
  const ctx = context(request, options)
  let tokens = REPLY_PRIMING
  const instructions = asString(request.instructions)
  if (instructions) tokens += PER_MESSAGE + ctx.counter.count(instructions)
  const input = request.input
  if (typeof input === 'string') tokens += responseItem(ctx, input)
  else if (Array.isArray(input)) for (const item of input) tokens += responseItem(ctx, item)
  tokens += tools(ctx, request.tools) + extra(ctx, request.tool_choice)
  if (isFields(request.text)) tokens += extra(ctx, request.text.format)
  const cap = tokensField(request.max_output_tokens)
  return { inputTokens: tokens, ...output(cap, options), bounded: ctx.counter.bounded }
}

/**
 * Estimate an embeddings request (`embeddings.create` body): the tokens of every input, no output.
 *
 * @example
 * estimateEmbedding({ model: 'text-embedding-3-small', input: ['a', 'b'] }) // inputTokens: 2
 */
export function estimateEmbedding(body: object, given?: EstimateOptions): CallEstimate {
  const options = checkEstimateOptions(given)
  const request = bodyOf(body)
  const ctx = context(request, options)
  const one = (value: unknown): number =>
    typeof value === 'string' ? ctx.counter.count(value) : typeof value === 'number' ? 1 : 0
  const input = request.input
  let tokens = 0
  if (Array.isArray(input)) for (const item of input) tokens += Array.isArray(item) ? item.length : one(item)
  else tokens = one(input)
  return { inputTokens: tokens, maxOutputTokens: 0, outputCap: 'request', bounded: ctx.counter.bounded }
}
