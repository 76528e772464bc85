/**
 * Bodies that break after the provider answered: a raw stream (`asResponse()`) aborted or cut
 * mid-way is settled from the events that arrived, and a whole result whose body breaks keeps the
 * output's estimate. Never zero output (SPEC §7, guarantee 9).
 */
import Anthropic from '@anthropic-ai/sdk'
import { createTollgate, type PolicyInput } from '@tollgate/core'
import { fakeClock } from '@tollgate/core/testing'
import OpenAI from 'openai'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { withDefaultPrices } from '../prices.js'
import { chatChunk } from '../testing/fixtures.js'
import { type ProviderServer, startProviderServer } from '../testing/provider-server.js'
import { countTokens } from '../tokens/count.js'
import { wrapAnthropic } from './anthropic.js'
import { wrapOpenAI } from './openai.js'
import type { SettleEvent } from './options.js'

const subject = { org: 'acme', user: 'u1' }
const policy: PolicyInput = {
  rules: [{ id: 'daily-tokens', per: 'user', limits: { tokens: 1_000_000 }, window: 'day' }],
}
const messages = [{ role: 'user' as const, content: 'Tell me a story.' }]
const words = Array.from({ length: 40 }, (_, i) => `word${i} `)
const partialChat = `{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"${'lorem ipsum dolor '.repeat(60)}`
const partialMessage = `{"id":"msg_1","type":"message","role":"assistant","content":[{"type":"text","text":"${'lorem ipsum '.repeat(80)}`

let server: ProviderServer
beforeAll(async () => {
  server = await startProviderServer()
})
afterAll(() => server.close())
beforeEach(() => server.reset())

/** A `fetch` that aborts `controller` as soon as the response's headers have arrived. */
const abortingAfterHeaders =
  (controller: AbortController): typeof fetch =>
  async (input, init) => {
    const response = await fetch(input, init)
    setImmediate(() => controller.abort())
    return response
  }

function setup(fetcher?: typeof fetch) {
  const gate = createTollgate({ policy: withDefaultPrices(policy), clock: fakeClock() })
  const events: SettleEvent[] = []
  const waiters: (() => void)[] = []
  const settled = () =>
    new Promise<SettleEvent>((resolve) => {
      const check = () => (events[0] ? resolve(events[0]) : waiters.push(check))
      check()
    })
  const wrap = {
    subject,
    timeBudgetMs: Number.POSITIVE_INFINITY,
    onSettle: (event: SettleEvent) => {
      events.push(event)
      for (const waiter of waiters.splice(0)) waiter()
    },
  }
  const openai = wrapOpenAI(
    new OpenAI({ apiKey: 't', baseURL: `${server.url}/v1`, maxRetries: 0, fetch: fetcher }),
    gate,
    wrap,
  )
  const anthropic = wrapAnthropic(
    new Anthropic({ apiKey: 't', baseURL: server.url, maxRetries: 0, fetch: fetcher }),
    gate,
    wrap,
  )
  const used = async () => (await gate.usage({ subject })).find((s) => s.rule === 'daily-tokens')!
  return { openai, anthropic, events, settled, used }
}

/** Read a raw body until `until` says stop (or it ends or breaks); the text read. */
async function readRaw(response: Response, until: (text: string) => boolean = () => false) {
  const reader = response.body!.getReader()
  const decoder = new TextDecoder()
  let text = ''
  try {
    for (;;) {
      const { value, done } = await reader.read()
      if (done) break
      text += decoder.decode(value, { stream: true })
      if (until(text)) break
    }
  } catch {
    // the body broke: keep what arrived
  }
  return text
}

/** The output text in a raw chat stream. */
const streamedText = (raw: string) =>
  [...raw.matchAll(/"content":"([^"]*)"/g)].map((match) => match[1]).join('')

describe('a raw stream (asResponse) that does not run to its end', () => {
  const body = { model: 'gpt-4o-mini', messages, stream: true as const }

  it('is settled from the events that arrived when the server cuts it', async () => {
    const { openai, settled, used } = setup()
    server.reply({ events: words.map((word) => chatChunk(word)), after: 'cut' })
    const raw = await readRaw(await openai.chat.completions.create(body).asResponse())
    expect(streamedText(raw)).toBe(words.join(''))
    const event = await settled()
    expect(event).toMatchObject({ end: 'broken', outcome: 'settled', metered: { estimated: true } })
    expect(event.result!.amounts.outputTokens).toBe(countTokens(words.join('')).tokens)
    expect((await used()).held).toBe(0)
  })

  it('is settled from the events that arrived when the caller aborts it', async () => {
    const { openai, settled } = setup()
    server.reply({ events: words.map((word) => chatChunk(word)), after: 'hold' })
    const controller = new AbortController()
    const response = await openai.chat.completions.create(body, { signal: controller.signal }).asResponse()
    const raw = await readRaw(response, (text) => text.includes(words.at(-1)!))
    controller.abort()
    expect(streamedText(raw)).toBe(words.join(''))
    const event = await settled()
    expect(event).toMatchObject({ end: 'aborted', outcome: 'settled', metered: { estimated: true } })
    expect(event.result!.amounts.outputTokens).toBe(countTokens(words.join('')).tokens)
  })

  it('keeps the output estimate when a raw JSON body breaks', async () => {
    const { openai, settled } = setup()
    server.reply({ partial: partialChat, after: 'cut' })
    await readRaw(await openai.chat.completions.create({ model: 'gpt-4o-mini', messages }).asResponse())
    const event = await settled()
    expect(event).toMatchObject({ end: 'broken', metered: { estimated: true } })
    expect(event.metered!.usage).not.toHaveProperty('outputTokens')
    expect(event.result!.amounts.outputTokens).toBe(event.decision.reservation.amounts.outputTokens)
  })
})

describe('a whole result whose body breaks after the provider answered', () => {
  it('keeps the output estimate when the connection is cut mid-body (chat completions)', async () => {
    const { openai, settled, used } = setup()
    server.reply({ partial: partialChat, after: 'cut' })
    await expect(
      openai.chat.completions.create({ model: 'gpt-4o-mini', messages, max_tokens: 500 }),
    ).rejects.toThrow()
    const event = await settled()
    expect(event).toMatchObject({ end: 'broken', outcome: 'settled', metered: { estimated: true } })
    expect(event.metered!.usage).not.toHaveProperty('outputTokens')
    expect(event.result!.amounts.outputTokens).toBe(500)
    expect(await used()).toMatchObject({ held: 0, used: event.decision.reservation.amounts.tokens })
  })

  it('keeps the output estimate when the caller aborts while the body arrives', async () => {
    const controller = new AbortController()
    const { openai, settled } = setup(abortingAfterHeaders(controller))
    server.reply({ partial: partialChat, after: 'hold' })
    await expect(
      openai.chat.completions.create(
        { model: 'gpt-4o-mini', messages, max_tokens: 500 },
        { signal: controller.signal },
      ),
    ).rejects.toThrow()
    const event = await settled()
    expect(event).toMatchObject({ end: 'aborted', outcome: 'settled', metered: { estimated: true } })
    expect(event.result!.amounts.outputTokens).toBe(500)
  })

  it('keeps the output estimate when the connection is cut mid-body (Anthropic messages)', async () => {
    const { anthropic, settled } = setup()
    server.reply({ partial: partialMessage, after: 'cut' })
    await expect(
      anthropic.messages.create({ model: 'claude-sonnet-4-5', max_tokens: 500, messages }),
    ).rejects.toThrow()
    const event = await settled()
    expect(event).toMatchObject({ end: 'broken', outcome: 'settled', metered: { estimated: true } })
    expect(event.metered!.usage).not.toHaveProperty('outputTokens')
    expect(event.result!.amounts.outputTokens).toBe(500)
  })
})
