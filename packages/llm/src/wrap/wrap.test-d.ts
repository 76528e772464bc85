import Anthropic from '@anthropic-ai/sdk'
import { createTollgate } from '@tollgate/core'
import OpenAI from 'openai'
import { expectTypeOf, test } from 'vitest'
import { wrapAnthropic } from './anthropic.js'
import { wrapOpenAI } from './openai.js'

const gate = createTollgate({ policy: { rules: [] } })

test('a wrapped client has the type of the client', () => {
  expectTypeOf(
    wrapOpenAI(new OpenAI({ apiKey: 'x' }), gate, { subject: { user: 'u' } }),
  ).toEqualTypeOf<OpenAI>()
  expectTypeOf(
    wrapAnthropic(new Anthropic({ apiKey: 'x' }), gate, { subject: () => ({ user: 'u' }) }),
  ).toEqualTypeOf<Anthropic>()
})

test('the subject is required, and may be a function of the call', () => {
  // @ts-expect-error subject is required
  wrapOpenAI(new OpenAI({ apiKey: 'x' }), gate, {})
  wrapOpenAI(new OpenAI({ apiKey: 'x' }), gate, { subject: async ({ api }) => ({ user: api }) })
})
