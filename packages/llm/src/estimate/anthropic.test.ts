import { describe, expect, it } from 'vitest'
import { countTokens } from '../tokens/count.js'
import { ANTHROPIC_TOOLS_OVERHEAD, estimateAnthropicMessage } from './anthropic.js'

const exact = { timeBudgetMs: Number.POSITIVE_INFINITY }
const o200k = (text: string) => countTokens(text).tokens

describe('estimateAnthropicMessage', () => {
  it('counts text with o200k_base and adds the margin', () => {
    const text = 'The quick brown fox jumps over the lazy dog. '.repeat(10)
    const body = {
      model: 'claude-sonnet-4-5',
      max_tokens: 300,
      system: 'Be brief.',
      messages: [{ role: 'user', content: text }],
    }
    const fixed = 3 + 4 + 4 // reply priming, system, one message
    expect(estimateAnthropicMessage(body, exact)).toEqual({
      inputTokens: Math.ceil((o200k('Be brief.') + o200k(text)) * 1.2) + fixed,
      maxOutputTokens: 300,
      outputCap: 'request',
      bounded: false,
    })
    expect(estimateAnthropicMessage(body, { ...exact, margin: 0 }).inputTokens).toBe(
      o200k('Be brief.') + o200k(text) + fixed,
    )
  })

  it('counts images, documents, tool use and the tool system prompt', () => {
    const base = {
      model: 'claude-haiku-4-5',
      max_tokens: 10,
      messages: [{ role: 'user', content: [] as unknown[] }],
    }
    const cost = (content: unknown[], extra: object = {}) =>
      estimateAnthropicMessage(
        { ...base, ...extra, messages: [{ role: 'user', content }] },
        { ...exact, margin: 0 },
      ).inputTokens - estimateAnthropicMessage(base, { ...exact, margin: 0 }).inputTokens
    expect(cost([{ type: 'image', source: { type: 'url', url: 'https://x/y.png' } }])).toBe(1600)
    expect(
      cost([
        { type: 'document', source: { type: 'base64', media_type: 'application/pdf', data: 'JVBERi0=' } },
      ]),
    ).toBe(2000)
    expect(
      cost([{ type: 'document', source: { type: 'text', media_type: 'text/plain', data: 'Hello' } }]),
    ).toBe(o200k('Hello'))
    const tool = {
      name: 'weather',
      description: 'Weather now',
      input_schema: { type: 'object', properties: {} },
    }
    expect(cost([], { tools: [tool] })).toBe(ANTHROPIC_TOOLS_OVERHEAD + o200k(JSON.stringify(tool)))
    expect(cost([{ type: 'tool_use', id: 't1', name: 'weather', input: { city: 'Paris' } }])).toBe(
      o200k('weather') + o200k('{"city":"Paris"}'),
    )
  })
})

describe('a body that is not a request object', () => {
  it('is estimated as an empty request, so that the route answers for it', () => {
    for (const body of [undefined, null, 'hi', 5, ['messages']])
      expect(estimateAnthropicMessage(body as never)).toEqual(estimateAnthropicMessage({}))
  })
})
