/**
 * Wire-format builders for tests: OpenAI chat chunks and Responses events, Anthropic events.
 */
export function chatCompletion(
  content: string,
  usage: Record<string, unknown> | null,
  model = 'gpt-4o-mini',
) {
  return {
    id: 'chatcmpl-1',
    object: 'chat.completion',
    created: 1,
    model,
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content, refusal: null },
        finish_reason: 'stop',
        logprobs: null,
      },
    ],
    ...(usage ? { usage } : {}),
  }
}

export function chatChunk(
  content: string,
  model = 'gpt-4o-mini',
  withUsageField = false,
  finish: string | null = null,
) {
  return {
    id: 'chatcmpl-1',
    object: 'chat.completion.chunk',
    created: 1,
    model,
    choices: [{ index: 0, delta: { role: 'assistant', content }, finish_reason: finish, logprobs: null }],
    ...(withUsageField ? { usage: null } : {}),
  }
}

export function chatUsageChunk(usage: Record<string, unknown>, model = 'gpt-4o-mini') {
  return { id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1, model, choices: [], usage }
}

export const openAIUsage = (prompt: number, completion: number, cached = 0, reasoning = 0) => ({
  prompt_tokens: prompt,
  completion_tokens: completion,
  total_tokens: prompt + completion,
  prompt_tokens_details: { cached_tokens: cached },
  completion_tokens_details: { reasoning_tokens: reasoning },
})

export function response(text: string, usage: Record<string, unknown>, model = 'gpt-4.1') {
  return {
    id: 'resp_1',
    object: 'response',
    created_at: 1,
    model,
    status: 'completed',
    output: [
      {
        type: 'message',
        id: 'msg_1',
        role: 'assistant',
        status: 'completed',
        content: [{ type: 'output_text', text, annotations: [] }],
      },
    ],
    usage,
  }
}

export const responsesUsage = (input: number, output: number, cached = 0, reasoning = 0) => ({
  input_tokens: input,
  input_tokens_details: { cached_tokens: cached },
  output_tokens: output,
  output_tokens_details: { reasoning_tokens: reasoning },
  total_tokens: input + output,
})

export function anthropicMessage(text: string, usage: Record<string, unknown>, model = 'claude-opus-4-5') {
  return {
    id: 'msg_1',
    type: 'message',
    role: 'assistant',
    model,
    content: [{ type: 'text', text }],
    stop_reason: 'end_turn',
    stop_sequence: null,
    usage,
  }
}

/** Anthropic stream events: message_start, the text in deltas, then (optionally) message_delta and message_stop. */
export function anthropicEvents(
  deltas: string[],
  start: Record<string, unknown>,
  finalOutput: number | null,
  model = 'claude-opus-4-5',
) {
  const events: { event: string; data: unknown }[] = [
    {
      event: 'message_start',
      data: {
        type: 'message_start',
        message: {
          id: 'msg_1',
          type: 'message',
          role: 'assistant',
          model,
          content: [],
          stop_reason: null,
          usage: start,
        },
      },
    },
    {
      event: 'content_block_start',
      data: { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } },
    },
    ...deltas.map((text) => ({
      event: 'content_block_delta',
      data: { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text } },
    })),
  ]
  if (finalOutput !== null)
    events.push(
      { event: 'content_block_stop', data: { type: 'content_block_stop', index: 0 } },
      {
        event: 'message_delta',
        data: {
          type: 'message_delta',
          delta: { stop_reason: 'end_turn', stop_sequence: null },
          usage: { output_tokens: finalOutput },
        },
      },
      { event: 'message_stop', data: { type: 'message_stop' } },
    )
  return events
}
