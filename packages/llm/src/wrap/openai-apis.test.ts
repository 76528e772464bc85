import { createTollgate } from '@tollgate/core'
import { fakeClock } from '@tollgate/core/testing'
import OpenAI from 'openai'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { estimateEmbedding, estimateResponse } from '../estimate/openai.js'
import { withDefaultPrices } from '../prices.js'
import { response, responsesUsage } from '../testing/fixtures.js'
import { type ProviderServer, startProviderServer } from '../testing/provider-server.js'
import { countTokens } from '../tokens/count.js'
import { wrapOpenAI } from './openai.js'
import type { SettleEvent } from './options.js'

const subject = { org: 'acme', user: 'u1' }
const exact = { timeBudgetMs: Number.POSITIVE_INFINITY }

let server: ProviderServer
beforeAll(async () => {
  server = await startProviderServer()
})
afterAll(() => server.close())
beforeEach(() => {
  server.reset()
})

function setup() {
  const policy = {
    rules: [{ id: 'daily-tokens', per: 'user', limits: { tokens: 100_000 }, window: 'day' as const }],
  }
  const gate = createTollgate({ policy: withDefaultPrices(policy), clock: fakeClock() })
  const events: SettleEvent[] = []
  const client = new OpenAI({ apiKey: 'test', baseURL: `${server.url}/v1`, maxRetries: 0 })
  const openai = wrapOpenAI(client, gate, { subject, ...exact, onSettle: (event) => events.push(event) })
  return { openai, client, events }
}

describe('wrapOpenAI: responses and embeddings', () => {
  it('settles a Responses API call from its usage', async () => {
    const { openai, events } = setup()
    server.reply({ json: response('Hi', responsesUsage(40, 8, 16, 4)) })
    const body = { model: 'gpt-4.1', input: 'Say hi', instructions: 'Be brief.', max_output_tokens: 300 }
    const result = await openai.responses.create(body)
    expect(result.output_text).toBe('Hi')
    expect(events[0]!.decision.reservation.amounts).toMatchObject({
      inputTokens: estimateResponse(body, exact).inputTokens,
      outputTokens: 300,
    })
    expect(events[0]!.result!.amounts).toMatchObject({ inputTokens: 40, outputTokens: 8 })
    // gpt-4.1: 24 × $2 + 16 × $0.50 + 8 × $8 per million
    expect(events[0]!.result!.amounts.cost).toBe(48 + 8 + 64)
    expect(events[0]!.metered).toMatchObject({ reasoningTokens: 4, usage: { cachedInputTokens: 16 } })
  })

  it('settles a streamed Responses API call from response.completed', async () => {
    const { openai, events } = setup()
    const done = response('Hello', responsesUsage(25, 3))
    server.reply({
      events: [
        {
          type: 'response.created',
          sequence_number: 0,
          response: { ...done, status: 'in_progress', usage: null },
        },
        {
          type: 'response.output_text.delta',
          sequence_number: 1,
          item_id: 'msg_1',
          output_index: 0,
          content_index: 0,
          delta: 'Hello',
        },
        { type: 'response.completed', sequence_number: 2, response: done },
      ],
      done: false,
    })
    const stream = await openai.responses.create({ model: 'gpt-4.1', input: 'Hi', stream: true })
    const types: string[] = []
    for await (const event of stream) types.push(event.type)
    expect(types).toEqual(['response.created', 'response.output_text.delta', 'response.completed'])
    expect(events[0]).toMatchObject({ end: 'completed', metered: { estimated: false } })
    expect(events[0]!.result!.amounts).toMatchObject({ inputTokens: 25, outputTokens: 3 })
  })

  it('counts every kind of streamed Responses text when a stream is broken off before its usage', async () => {
    const { openai, events } = setup()
    // each text delta of openai 6's ResponseStreamEvent (`response.audio.delta` is audio, not text)
    const kinds = [
      'response.output_text.delta',
      'response.refusal.delta',
      'response.function_call_arguments.delta',
      'response.reasoning_text.delta',
      'response.reasoning_summary_text.delta',
      'response.custom_tool_call_input.delta',
      'response.code_interpreter_call_code.delta',
      'response.mcp_call_arguments.delta',
      'response.audio.transcript.delta',
    ]
    const deltas = ['SELECT name FROM users ', 'WHERE created_at > now() ', '- interval 1 day']
    const settled: Record<string, unknown> = {}
    for (const [index, type] of kinds.entries()) {
      server.reply({
        events: [
          { type: 'response.created', sequence_number: 0, response: { id: 'r', status: 'in_progress' } },
          ...deltas.map((delta, i) => ({
            type,
            sequence_number: i + 1,
            item_id: 'i',
            output_index: 0,
            delta,
          })),
        ],
        done: false,
        after: 'hold',
      })
      const stream = await openai.responses.create({ model: 'gpt-4.1', input: 'Hi', stream: true })
      let received = 0
      for await (const _ of stream) if (++received === 1 + deltas.length) break
      await server.holdClosed(index)
      const { end, metered, result } = events[index]!
      settled[type] = { end, estimated: metered?.estimated, outputTokens: result?.amounts.outputTokens }
    }
    const expected = { end: 'aborted', estimated: true, outputTokens: countTokens(deltas.join('')).tokens }
    expect(settled).toEqual(Object.fromEntries(kinds.map((type) => [type, expected])))
  })

  it('settles embeddings with no output', async () => {
    const { openai, events } = setup()
    server.reply({
      json: {
        object: 'list',
        data: [{ object: 'embedding', index: 0, embedding: [0.1, 0.2] }],
        model: 'text-embedding-3-small',
        usage: { prompt_tokens: 6, total_tokens: 6 },
      },
    })
    const body = {
      model: 'text-embedding-3-small',
      input: 'the quick brown fox jumps',
      encoding_format: 'float' as const,
    }
    await openai.embeddings.create(body)
    expect(events[0]!.decision.reservation.amounts).toMatchObject({
      inputTokens: estimateEmbedding(body, exact).inputTokens,
      outputTokens: 0,
    })
    expect(events[0]!.result!.amounts).toMatchObject({ inputTokens: 6, outputTokens: 0, cost: 1 })
  })

  it('leaves other methods of the client alone', async () => {
    const { openai, client } = setup()
    expect(openai.baseURL).toBe(client.baseURL)
    expect(typeof openai.models.list).toBe('function')
  })
})
