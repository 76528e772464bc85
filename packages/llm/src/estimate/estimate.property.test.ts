/**
 * The estimators read request bodies the caller built, of any shape: whatever value stands
 * anywhere in a realistic body, they return whole numbers of 0 or more and never throw (a count
 * too large for the gate is refused there, with a `TollgateError`, before any request is sent).
 */

import { replaceAt } from '@tollgate/core/testing'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { estimateAnthropicMessage } from './anthropic.js'
import { estimateChatCompletion, estimateEmbedding, estimateResponse } from './openai.js'
import type { CallEstimate } from './types.js'

const image = { url: 'data:image/png;base64,iVBORw0KGgo=', detail: 'high' }
const bodies: [string, (body: object, options: object) => CallEstimate, object][] = [
  [
    'chat completions',
    estimateChatCompletion,
    {
      model: 'gpt-4o',
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'hi' },
            { type: 'image_url', image_url: image },
          ],
        },
      ],
      max_tokens: 100,
      n: 2,
      tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object' } } }],
    },
  ],
  [
    'responses',
    estimateResponse,
    {
      model: 'gpt-4o',
      instructions: 'be brief',
      input: [{ role: 'user', content: [{ type: 'input_text', text: 'hi' }] }],
      max_output_tokens: 50,
    },
  ],
  ['embeddings', estimateEmbedding, { model: 'text-embedding-3-small', input: ['a', 'b'] }],
  [
    'anthropic messages',
    estimateAnthropicMessage,
    {
      model: 'claude-sonnet-4-5',
      max_tokens: 100,
      system: [{ type: 'text', text: 'be brief' }],
      messages: [{ role: 'user', content: [{ type: 'text', text: 'hi' }] }],
      thinking: { type: 'enabled', budget_tokens: 10 },
    },
  ],
]

const anything = fc.anything({
  maxDepth: 2,
  withBigInt: true,
  withNullPrototype: true,
  withSparseArray: true,
  withBoxedValues: true,
  withDate: true,
  withMap: true,
})
const count = (n: number) => Number.isInteger(n) && n >= 0

describe('estimators on bodies of any shape', () => {
  it('a huge max_tokens times n is a whole count, not Infinity (found by the property)', () => {
    const { maxOutputTokens } = estimateChatCompletion({
      model: 'gpt-4o',
      messages: [],
      max_tokens: 1e308,
      n: 2,
    })
    expect(maxOutputTokens).toBe(Number.MAX_SAFE_INTEGER)
  })

  for (const [name, estimate, body] of bodies) {
    it(`${name}: any value anywhere gives whole counts of 0 or more, and no throw`, () => {
      fc.assert(
        fc.property(fc.array(fc.nat(20), { maxLength: 6 }), anything, (path, value) => {
          const hostile = replaceAt(body, path, value)
          if (typeof hostile !== 'object' || hostile === null) return true
          const { inputTokens, maxOutputTokens } = estimate(hostile, { timeBudgetMs: 5 })
          return count(inputTokens) && count(maxOutputTokens)
        }),
        { numRuns: 1500 },
      )
    })
  }
})
