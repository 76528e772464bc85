import { describe, expect, it } from 'vitest'
import {
  anthropicEvents,
  chatChunk,
  chatUsageChunk,
  openAIUsage,
  responsesUsage,
} from '../testing/fixtures.js'
import { countTokens } from '../tokens/count.js'
import { anthropicMeter } from './anthropic.js'
import { chatCompletionMeter, embeddingMeter, openAIUsage as readUsage, responseMeter } from './openai.js'

describe('OpenAI usage', () => {
  it('reads both APIs’ field names, with cached and reasoning details', () => {
    expect(readUsage(openAIUsage(100, 20, 40, 5))).toEqual({
      usage: { inputTokens: 100, outputTokens: 20, cachedInputTokens: 40 },
      reasoningTokens: 5,
    })
    expect(readUsage(responsesUsage(10, 2))).toEqual({
      usage: { inputTokens: 10, outputTokens: 2 },
      reasoningTokens: 0,
    })
    expect(readUsage(null)).toBeNull()
    expect(readUsage({ total_tokens: 3 })).toBeNull()
  })

  it('leaves out what the usage does not report, instead of reading it as 0', () => {
    expect(readUsage({ completion_tokens: 20 })).toEqual({ usage: { outputTokens: 20 } })
    expect(
      readUsage({ prompt_tokens: -1, completion_tokens: 7, prompt_tokens_details: { cached_tokens: 3 } }),
    ).toEqual({
      usage: { outputTokens: 7 },
    })
    expect(readUsage({ input_tokens: 9 })).toEqual({ usage: { inputTokens: 9 } })
    // output not reported: counted from the text, flagged
    const meter = chatCompletionMeter('o200k_base')
    meter.result({
      choices: [{ message: { content: 'Hello there, friend.' } }],
      usage: { prompt_tokens: 12 },
    })
    expect(meter.finish()).toEqual({
      usage: { inputTokens: 12, outputTokens: countTokens('Hello there, friend.').tokens },
      estimated: true,
    })
  })

  it('hides only the usage chunk Tollgate asked for', () => {
    const meter = chatCompletionMeter('o200k_base', true)
    const chunk = chatChunk('Hi', undefined, true)
    expect(meter.push(chunk)).toBe(true)
    expect('usage' in chunk).toBe(false)
    expect(meter.push(chatUsageChunk(openAIUsage(3, 1)))).toBe(false)
    expect(meter.finish()).toMatchObject({ usage: { inputTokens: 3, outputTokens: 1 }, estimated: false })
    expect(chatCompletionMeter('o200k_base').push(chatUsageChunk(openAIUsage(3, 1)))).toBe(true)
  })

  it('counts tool-call arguments in streamed output when usage is missing', () => {
    const meter = chatCompletionMeter('o200k_base')
    meter.push({
      choices: [
        { index: 0, delta: { tool_calls: [{ index: 0, function: { name: 'f', arguments: '{"a":1}' } }] } },
      ],
    })
    expect(meter.finish()).toEqual({
      usage: { outputTokens: countTokens('f{"a":1}').tokens },
      estimated: true,
    })
  })

  it('takes Responses usage from response.incomplete too', () => {
    const meter = responseMeter('o200k_base')
    meter.push({ type: 'response.output_text.delta', delta: 'abc' })
    meter.push({ type: 'response.incomplete', response: { usage: responsesUsage(9, 4) } })
    expect(meter.finish()).toMatchObject({ usage: { inputTokens: 9, outputTokens: 4 }, estimated: false })
  })

  it('counts every output text of a result that carries no usage', () => {
    // each piece starts with a space after a non-space: the count of the whole is the sum of the pieces
    const pieces = [' Sure.', ' No.', ' {"a":1}', ' SELECT 1', ' print(2)', ' {"q":3}', ' Think.', ' Deep.']
    const [text, refusal, args, input, code, mcp, summary, reasoning] = pieces
    const expected = pieces.reduce((sum, piece) => sum + countTokens(piece).tokens, 0)
    const responses = responseMeter('o200k_base')
    responses.result({
      output: [
        {
          type: 'message',
          content: [
            { type: 'output_text', text },
            { type: 'refusal', refusal },
          ],
        },
        { type: 'function_call', name: '', arguments: args },
        { type: 'custom_tool_call', name: '', input },
        { type: 'code_interpreter_call', code },
        { type: 'mcp_call', name: '', arguments: mcp },
        {
          type: 'reasoning',
          summary: [{ type: 'summary_text', text: summary }],
          content: [{ text: reasoning }],
        },
      ],
    })
    expect(responses.finish()).toEqual({ usage: { outputTokens: expected }, estimated: true })

    const chat = chatCompletionMeter('o200k_base')
    const message = {
      content: text,
      refusal,
      audio: { id: 'a1', data: 'UklGRiQA', transcript: summary },
      tool_calls: [
        { type: 'function', function: { name: '', arguments: args } },
        { type: 'custom', custom: { name: '', input } },
      ],
    }
    chat.result({ choices: [{ message }] })
    const sum = [text, refusal, summary, args, input].reduce((n, piece) => n + countTokens(piece!).tokens, 0)
    expect(chat.finish()).toEqual({ usage: { outputTokens: sum }, estimated: true })
  })

  it('never settles embeddings at zero input when usage is missing', () => {
    const meter = embeddingMeter()
    meter.result({ data: [] })
    expect(meter.finish()).toEqual({ usage: { outputTokens: 0 }, estimated: true }) // input keeps its estimate
  })
})

describe('Anthropic usage', () => {
  it('adds cache reads and writes back to the input, split by cache lifetime', () => {
    const meter = anthropicMeter()
    meter.result({
      usage: {
        input_tokens: 10,
        cache_read_input_tokens: 100,
        cache_creation_input_tokens: 50,
        cache_creation: { ephemeral_5m_input_tokens: 20, ephemeral_1h_input_tokens: 30 },
        output_tokens: 7,
      },
    })
    expect(meter.finish()).toEqual({
      usage: { inputTokens: 160, cachedInputTokens: 100, outputTokens: 7 },
      cacheWriteTokens: { '5m': 20, '1h': 30 },
      estimated: false,
    })
  })

  it('never counts more 1-hour cache writes than cache writes in all (an inconsistent report)', () => {
    const meter = anthropicMeter()
    meter.result({
      usage: {
        input_tokens: 10,
        cache_creation_input_tokens: 50,
        cache_creation: { ephemeral_5m_input_tokens: 0, ephemeral_1h_input_tokens: 80 },
        output_tokens: 7,
      },
    })
    expect(meter.finish()).toEqual({
      usage: { inputTokens: 60, outputTokens: 7 },
      cacheWriteTokens: { '5m': 0, '1h': 50 },
      estimated: false,
    })
  })

  it('counts the output of a message that carries no usage from its text, never 0', () => {
    const meter = anthropicMeter(0.2)
    meter.result({
      content: [
        { type: 'text', text: 'Hello there.' },
        { type: 'tool_use', id: 't1', name: 'f', input: { city: 'Paris' } },
      ],
    })
    const expected = Math.ceil(countTokens('Hello there.{"city":"Paris"}').tokens * 1.2)
    expect(meter.finish()).toEqual({ usage: { outputTokens: expected }, estimated: true })
  })

  it('keeps the input of message_start and counts output from text when the stream stops early', () => {
    const meter = anthropicMeter(0)
    for (const { data } of anthropicEvents(['Hello ', 'world'], { input_tokens: 12, output_tokens: 1 }, null))
      meter.push(data)
    expect(meter.finish()).toEqual({
      usage: { inputTokens: 12, outputTokens: countTokens('Hello world').tokens },
      estimated: true,
    })
  })

  it('never takes the output placeholder of message_start as the output', () => {
    // message_delta without an output count (a proxy that drops it): counted from the text, flagged
    for (const usage of [{}, { output_tokens: null }, { output_tokens: -1 }]) {
      const meter = anthropicMeter(0)
      const events = anthropicEvents(['Hello ', 'world'], { input_tokens: 12, output_tokens: 1 }, 0)
      for (const { data } of events) {
        const event = data as { type: string }
        meter.push(event.type === 'message_delta' ? { ...event, usage } : event)
      }
      expect(meter.finish()).toEqual({
        usage: { inputTokens: 12, outputTokens: countTokens('Hello world').tokens },
        estimated: true,
      })
    }
    // a stream stopped before message_delta: from the text, whatever message_start said
    const meter = anthropicMeter(0)
    for (const { data } of anthropicEvents(['Hi'], { input_tokens: 12, output_tokens: 40 }, null))
      meter.push(data)
    expect(meter.finish()).toEqual({ usage: { inputTokens: 12, outputTokens: 1 }, estimated: true })
  })

  it('takes the cumulative output of message_delta', () => {
    const meter = anthropicMeter()
    for (const { data } of anthropicEvents(['a', 'b'], { input_tokens: 5, output_tokens: 1 }, 9))
      meter.push(data)
    expect(meter.finish()).toEqual({ usage: { inputTokens: 5, outputTokens: 9 }, estimated: false })
  })
})
