import { encodeChat } from 'gpt-tokenizer/model/gpt-4o'
import { describe, expect, it } from 'vitest'
import { countTokens } from '../tokens/count.js'
import { estimateAnthropicMessage } from './anthropic.js'
import { estimateChatCompletion, estimateEmbedding, estimateResponse } from './openai.js'

const exact = { timeBudgetMs: Number.POSITIVE_INFINITY }
const o200k = (text: string) => countTokens(text, 'o200k_base').tokens

/** The example of OpenAI's cookbook "How to count tokens with tiktoken", with its published counts. */
const cookbook = [
  {
    role: 'system',
    content:
      'You are a helpful, pattern-following assistant that translates corporate jargon into plain English.',
  },
  { role: 'system', name: 'example_user', content: 'New synergies will help drive top-line growth.' },
  {
    role: 'system',
    name: 'example_assistant',
    content: 'Things working well together will increase revenue.',
  },
  {
    role: 'system',
    name: 'example_user',
    content:
      "Let's circle back when we have more bandwidth to touch base on opportunities for increased leverage.",
  },
  {
    role: 'system',
    name: 'example_assistant',
    content: "Let's talk later when we're less busy about how to do better.",
  },
  {
    role: 'user',
    content: "This late pivot means we don't have time to boil the ocean for the client deliverable.",
  },
]

describe('estimate options', () => {
  it('names a bad one (they threw from inside, or gave NaN tokens), and read null as none', () => {
    const body = { model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] }
    const none = Object.create(null)
    expect(() => estimateChatCompletion(body, { opaquePartTokens: none })).toThrow(
      /^opaquePartTokens must be/,
    )
    expect(() => estimateResponse(body, { defaultMaxOutputTokens: Number.NaN })).toThrow(
      /^defaultMaxOutputTokens must be/,
    )
    expect(() => estimateEmbedding({ input: 'x' }, { maxExactChars: none })).toThrow(/^maxExactChars must be/)
    const claude = { model: 'claude-opus-4-5', max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] }
    expect(() => estimateAnthropicMessage(claude, { margin: none })).toThrow(/^margin must be a share/)
    expect(() => estimateAnthropicMessage(claude, { margin: -0.5 })).toThrow(/^margin must be a share/)
    expect(estimateChatCompletion(body, null as never)).toEqual(estimateChatCompletion(body))
  })
})

describe('estimateChatCompletion', () => {
  it.each([
    ['gpt-3.5-turbo', 129],
    ['gpt-4', 129],
    ['gpt-4o', 124],
    ['gpt-4o-mini', 124],
  ])('matches the published prompt tokens of the cookbook example for %s', (model, tokens) => {
    expect(estimateChatCompletion({ model, messages: cookbook }, exact).inputTokens).toBe(tokens)
  })

  it('matches the ChatML rendering of gpt-tokenizer', () => {
    const messages = [
      { role: 'system' as const, content: 'You are terse.' },
      { role: 'user' as const, content: 'Say hello, and then say goodbye.' },
    ]
    expect(estimateChatCompletion({ model: 'gpt-4o', messages }, exact).inputTokens).toBe(
      encodeChat(messages).length,
    )
  })

  it('reserves the requested output cap per choice, or the default', () => {
    const messages = [{ role: 'user', content: 'Hi' }]
    expect(estimateChatCompletion({ model: 'gpt-4o', messages, max_tokens: 100 })).toMatchObject({
      maxOutputTokens: 100,
      outputCap: 'request',
    })
    expect(
      estimateChatCompletion({ model: 'o3', messages, max_completion_tokens: 200, n: 3 }).maxOutputTokens,
    ).toBe(600)
    expect(
      estimateChatCompletion({ model: 'gpt-4o', messages }, { defaultMaxOutputTokens: 77 }),
    ).toMatchObject({
      maxOutputTokens: 77,
      outputCap: 'default',
    })
  })

  it('counts text parts, images by detail, and opaque parts', () => {
    const base = estimateChatCompletion(
      { model: 'gpt-4o', messages: [{ role: 'user', content: [] }] },
      exact,
    ).inputTokens
    const withParts = (content: unknown[]) =>
      estimateChatCompletion({ model: 'gpt-4o', messages: [{ role: 'user', content }] }, exact).inputTokens -
      base
    expect(withParts([{ type: 'text', text: 'Describe this.' }])).toBe(o200k('Describe this.'))
    expect(withParts([{ type: 'image_url', image_url: { url: 'https://x/y.png', detail: 'low' } }])).toBe(85)
    // unknown size, high detail: the formula's maximum, 8 tiles
    expect(withParts([{ type: 'image_url', image_url: { url: 'https://x/y.png' } }])).toBe(85 + 170 * 8)
    expect(withParts([{ type: 'input_audio', input_audio: { data: 'AAAA', format: 'wav' } }])).toBe(2000)
  })

  it('counts tools, function calls and response schemas as JSON with an overhead', () => {
    const messages = [{ role: 'user', content: 'Weather?' }]
    const plain = estimateChatCompletion({ model: 'gpt-4o', messages }, exact).inputTokens
    const tool = {
      type: 'function',
      function: {
        name: 'weather',
        description: 'Weather now',
        parameters: { type: 'object', properties: {} },
      },
    }
    const withTool = estimateChatCompletion({ model: 'gpt-4o', messages, tools: [tool] }, exact).inputTokens
    expect(withTool - plain).toBe(o200k(JSON.stringify(tool)) + 8 + 12)
    const calls = [
      { id: 'c1', type: 'function', function: { name: 'weather', arguments: '{"city":"Paris"}' } },
    ]
    const assistant = { role: 'assistant', content: null, tool_calls: calls }
    const withCall = estimateChatCompletion(
      { model: 'gpt-4o', messages: [...messages, assistant] },
      exact,
    ).inputTokens
    expect(withCall - plain).toBe(3 + o200k('assistant') + o200k(JSON.stringify(calls)))
  })

  it('flags an estimate that had to bound its input', () => {
    const huge = 'x'.repeat(200_000)
    const result = estimateChatCompletion({ model: 'gpt-4o', messages: [{ role: 'user', content: huge }] })
    expect(result.bounded).toBe(true)
    expect(result.inputTokens).toBeGreaterThanOrEqual(huge.length / 100)
  })
})

describe('estimateResponse', () => {
  it('counts instructions, string input and message items', () => {
    const one = estimateResponse({ model: 'gpt-4.1', input: 'Hello there', instructions: 'Be brief.' }, exact)
    expect(one.inputTokens).toBe(3 + (3 + o200k('Be brief.')) + (3 + o200k('Hello there')))
    expect(one).toMatchObject({ maxOutputTokens: 1024, outputCap: 'default' })
    const items = estimateResponse(
      {
        model: 'gpt-4.1',
        input: [
          { role: 'user', content: [{ type: 'input_text', text: 'Hi' }] },
          { type: 'function_call_output', call_id: 'c1', output: 'sunny' },
        ],
        max_output_tokens: 50,
      },
      exact,
    )
    expect(items.inputTokens).toBe(3 + (3 + o200k('user') + o200k('Hi')) + (3 + o200k('sunny')))
    expect(items.maxOutputTokens).toBe(50)
  })
})

describe('estimateEmbedding', () => {
  it('counts every input and reserves no output', () => {
    expect(
      estimateEmbedding({ model: 'text-embedding-3-small', input: ['hello world', 'bye'] }, exact),
    ).toMatchObject({
      inputTokens:
        countTokens('hello world', 'cl100k_base').tokens + countTokens('bye', 'cl100k_base').tokens,
      maxOutputTokens: 0,
    })
    expect(estimateEmbedding({ model: 'text-embedding-3-small', input: [[1, 2, 3], [4]] }).inputTokens).toBe(
      4,
    )
  })
})

describe('a body that is not a request object', () => {
  it('is estimated as an empty request, so that the route answers for it', () => {
    for (const body of [undefined, null, 'hi', 5, ['messages']]) {
      expect(estimateChatCompletion(body as never)).toEqual(estimateChatCompletion({}))
      expect(estimateResponse(body as never)).toEqual(estimateResponse({}))
      expect(estimateEmbedding(body as never)).toEqual(estimateEmbedding({}))
    }
  })
})
