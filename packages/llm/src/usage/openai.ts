/**
 * Usage from OpenAI results and streams: Chat Completions (`usage.prompt_tokens`,
 * `completion_tokens`, cached and reasoning details, the final usage chunk of a stream),
 * Responses API results and events (`response.completed` and friends), and embeddings.
 */
import type { Usage } from '@tollgate/core'
import type { EncodingName } from '../tokens/encoding.js'
import { countStreamed, type Meter, type MeteredUsage, num, obj, str, TextLog } from './meter.js'

/**
 * Turn an OpenAI usage object (either API's field names) into core usage. A count it does not
 * carry (or carries as no count: negative, not a number) is left out, not read as 0: the settle
 * then keeps the input's estimate, and the meters count the output from the text.
 */
export function openAIUsage(raw: unknown): { usage: Usage; reasoningTokens?: number } | null {
  const u = obj(raw)
  if (!u) return null
  const input = num(u.prompt_tokens) ?? num(u.input_tokens)
  const output = num(u.completion_tokens) ?? num(u.output_tokens)
  if (input === undefined && output === undefined) return null
  const inputDetails = obj(u.prompt_tokens_details) ?? obj(u.input_tokens_details)
  const outputDetails = obj(u.completion_tokens_details) ?? obj(u.output_tokens_details)
  const usage: Usage = {}
  if (input !== undefined) usage.inputTokens = input
  if (output !== undefined) usage.outputTokens = output
  const cached = num(inputDetails?.cached_tokens)
  if (cached && input !== undefined) usage.cachedInputTokens = Math.min(cached, input)
  const reasoning = num(outputDetails?.reasoning_tokens)
  return reasoning === undefined ? { usage } : { usage, reasoningTokens: reasoning }
}

function finish(
  reported: ReturnType<typeof openAIUsage>,
  text: string,
  encoding: EncodingName,
): MeteredUsage {
  if (!reported) return { usage: { outputTokens: countStreamed(text, encoding) }, estimated: true }
  if (reported.usage.outputTokens !== undefined) return { ...reported, estimated: false }
  return {
    ...reported,
    usage: { ...reported.usage, outputTokens: countStreamed(text, encoding) },
    estimated: true,
  }
}

/**
 * A meter for Chat Completions. With `hideUsageChunk`, the final usage-only chunk (asked for by
 * Tollgate, not by the caller) is hidden, and the `usage: null` field of other chunks removed.
 */
export function chatCompletionMeter(encoding: EncodingName, hideUsageChunk = false): Meter {
  let reported: ReturnType<typeof openAIUsage> = null
  const text = new TextLog()
  /** A streamed delta or a whole message: text, refusal, reasoning, audio transcript, tool calls. */
  const addChoice = (delta: Record<string, unknown> | undefined) => {
    if (!delta) return
    text.add(str(delta.content) + str(delta.refusal) + str(delta.reasoning_content))
    // sent for audio output, though not in the SDK's types: the audio itself is not text
    text.add(str(obj(delta.audio)?.transcript))
    for (const call of Array.isArray(delta.tool_calls) ? delta.tool_calls : []) {
      const fn = obj(obj(call)?.function)
      const custom = obj(obj(call)?.custom)
      text.add(str(fn?.name) + str(fn?.arguments) + str(custom?.name) + str(custom?.input))
    }
    const legacy = obj(delta.function_call)
    text.add(str(legacy?.name) + str(legacy?.arguments))
  }
  return {
    push(item) {
      const chunk = obj(item)
      if (!chunk) return true
      const choices = Array.isArray(chunk.choices) ? chunk.choices : []
      for (const choice of choices) addChoice(obj(obj(choice)?.delta))
      if (chunk.usage) reported = openAIUsage(chunk.usage) ?? reported
      if (!hideUsageChunk) return true
      if (choices.length === 0 && chunk.usage) return false
      if ('usage' in chunk && chunk.usage === null) delete chunk.usage
      return true
    },
    result(value) {
      const completion = obj(value)
      reported = openAIUsage(completion?.usage)
      for (const choice of Array.isArray(completion?.choices) ? completion.choices : [])
        addChoice(obj(obj(choice)?.message))
    },
    finish: () => finish(reported, text.text, encoding),
    text: () => text.text,
    newText: () => text.take(),
  }
}

/**
 * The Responses API events that stream output text: every `*.delta` event of the SDK's
 * `ResponseStreamEvent` whose `delta` is text (`response.audio.delta` is base64 audio). A type
 * test checks the list against the installed SDK.
 */
export const RESPONSE_TEXT_EVENTS = [
  'response.output_text.delta',
  'response.refusal.delta',
  'response.function_call_arguments.delta',
  'response.reasoning_text.delta',
  'response.reasoning_summary_text.delta',
  'response.custom_tool_call_input.delta',
  'response.code_interpreter_call_code.delta',
  'response.mcp_call_arguments.delta',
  'response.audio.transcript.delta',
] as const
const TEXT_EVENTS: ReadonlySet<string> = new Set(RESPONSE_TEXT_EVENTS)
const FINAL_EVENTS = new Set(['response.completed', 'response.incomplete', 'response.failed'])

/**
 * The text of one Responses output item: a message's text and refusals, the arguments or input of a
 * tool call (function, custom, MCP), code for the code interpreter, reasoning and its summary.
 */
function outputText(item: Record<string, unknown> | undefined): string {
  let text = str(item?.arguments) + str(item?.input) + str(item?.code)
  for (const list of [item?.content, item?.summary])
    for (const part of Array.isArray(list) ? list : []) text += str(obj(part)?.text) + str(obj(part)?.refusal)
  return text
}

/** A meter for the Responses API: usage from the final event, or counted from the text deltas. */
export function responseMeter(encoding: EncodingName): Meter {
  let reported: ReturnType<typeof openAIUsage> = null
  const text = new TextLog()
  return {
    push(item) {
      const event = obj(item)
      const type = str(event?.type)
      if (TEXT_EVENTS.has(type)) text.add(str(event?.delta))
      else if (FINAL_EVENTS.has(type)) reported = openAIUsage(obj(event?.response)?.usage) ?? reported
      return true
    },
    result(value) {
      const response = obj(value)
      reported = openAIUsage(response?.usage)
      for (const item of Array.isArray(response?.output) ? response.output : [])
        text.add(outputText(obj(item)))
    },
    finish: () => finish(reported, text.text, encoding),
    text: () => text.text,
    newText: () => text.take(),
  }
}

/** A meter for embeddings: input tokens from `usage.prompt_tokens`, no output. */
export function embeddingMeter(): Meter {
  let input: number | undefined
  return {
    push: () => true,
    result(value) {
      input = num(obj(obj(value)?.usage)?.prompt_tokens)
    },
    finish: () =>
      input === undefined
        ? { usage: { outputTokens: 0 }, estimated: true }
        : { usage: { inputTokens: input, outputTokens: 0 }, estimated: false },
    text: () => '',
  }
}
