import type OpenAI from 'openai'
import { expectTypeOf, test } from 'vitest'
import type { RESPONSE_TEXT_EVENTS } from './openai.js'

test('the Responses meter counts every text delta event of the installed SDK', () => {
  type Deltas = Extract<OpenAI.Responses.ResponseStreamEvent, { delta: string }>['type']
  // `response.audio.delta` carries base64 audio, not text
  expectTypeOf<(typeof RESPONSE_TEXT_EVENTS)[number]>().toEqualTypeOf<
    Exclude<Deltas, 'response.audio.delta'>
  >()
})
