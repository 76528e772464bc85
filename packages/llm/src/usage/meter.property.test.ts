/**
 * Meters read what providers (or proxies pretending to be them) send back: whatever value stands
 * anywhere in a realistic result or stream, a meter never throws, and what it settles is whole
 * counts of 0 or more, with cached input never above the input.
 */

import { replaceAt } from '@tollgate/core/testing'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  anthropicEvents,
  anthropicMessage,
  chatChunk,
  chatCompletion,
  chatUsageChunk,
  openAIUsage,
  response,
  responsesUsage,
} from '../testing/fixtures.js'
import { anthropicMeter } from './anthropic.js'
import type { Meter, MeteredUsage } from './meter.js'
import { chatCompletionMeter, embeddingMeter, responseMeter } from './openai.js'

const meters: [string, () => Meter, unknown, unknown[]][] = [
  [
    'chat completions',
    () => chatCompletionMeter('o200k_base', true),
    chatCompletion('Hello.', openAIUsage(100, 20, 40, 5)),
    [chatChunk('Hel'), chatChunk('lo.'), chatUsageChunk(openAIUsage(100, 20, 40, 5))],
  ],
  ['responses', () => responseMeter('o200k_base'), response('Hello.', responsesUsage(10, 2, 1, 1)), []],
  ['embeddings', () => embeddingMeter(), { data: [], usage: { prompt_tokens: 8, total_tokens: 8 } }, []],
  [
    'anthropic',
    () => anthropicMeter(0.2),
    anthropicMessage('Hello.', { input_tokens: 100, cache_read_input_tokens: 50, output_tokens: 20 }),
    anthropicEvents(['Hel', 'lo.'], { input_tokens: 21, output_tokens: 1 }, 4).map((e) => e.data),
  ],
]

const anything = fc.anything({
  maxDepth: 2,
  withBigInt: true,
  withNullPrototype: true,
  withBoxedValues: true,
})
const count = (n: number | undefined) => n === undefined || (Number.isInteger(n) && n >= 0)
const sound = ({ usage }: MeteredUsage) =>
  count(usage.inputTokens) &&
  count(usage.outputTokens) &&
  count(usage.cachedInputTokens) &&
  (usage.cachedInputTokens ?? 0) <= (usage.inputTokens ?? Number.POSITIVE_INFINITY)

describe('meters on provider answers of any shape', () => {
  it('the fixtures read as expected before anything is changed', () => {
    const meter = chatCompletionMeter('o200k_base')
    meter.result(meters[0]![2])
    expect(meter.finish()).toMatchObject({ usage: { inputTokens: 100, outputTokens: 20 }, estimated: false })
  })

  for (const [name, make, result, stream] of meters) {
    it(`${name}: any value anywhere in a result settles whole counts, and nothing throws`, () => {
      fc.assert(
        fc.property(fc.array(fc.nat(20), { maxLength: 6 }), anything, (path, value) => {
          const meter = make()
          meter.result(replaceAt(result, path, value))
          return sound(meter.finish())
        }),
        { numRuns: 1500 },
      )
    })
    if (stream.length > 0)
      it(`${name}: any value anywhere in a stream settles whole counts, and nothing throws`, () => {
        fc.assert(
          fc.property(
            fc.nat(stream.length - 1),
            fc.array(fc.nat(20), { maxLength: 5 }),
            anything,
            (at, path, value) => {
              const meter = make()
              for (const [i, item] of stream.entries())
                meter.push(i === at ? replaceAt(item, path, value) : item)
              return sound(meter.finish())
            },
          ),
          { numRuns: 1500 },
        )
      })
  }
})
