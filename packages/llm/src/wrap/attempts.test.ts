import { readFileSync } from 'node:fs'
import Anthropic from '@anthropic-ai/sdk'
import { createTollgate, type PolicyInput, TollgateError } from '@tollgate/core'
import { fakeClock } from '@tollgate/core/testing'
import OpenAI from 'openai'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { withDefaultPrices } from '../prices.js'
import {
  anthropicEvents,
  anthropicMessage,
  chatChunk,
  chatCompletion,
  chatUsageChunk,
  openAIUsage,
} from '../testing/fixtures.js'
import { type ProviderServer, type Reply, startProviderServer } from '../testing/provider-server.js'
import { wrapAnthropic } from './anthropic.js'
import { wrapOpenAI } from './openai.js'
import type { AnthropicWrapOptions, SettleEvent } from './options.js'

const s5 = readFileSync(
  new URL('../../../../examples/policies/s5-units-retries.yaml', import.meta.url),
  'utf8',
)
const subject = { org: 'acme', user: 'u1' }
const policy: PolicyInput = {
  rules: [
    { id: 'requests', per: 'user', limits: { requests: 100 }, window: 'day' },
    { id: 'daily-tokens', per: 'user', limits: { tokens: 100_000 }, window: 'day' },
  ],
}
const messages = [{ role: 'user' as const, content: 'Say hello.' }]
const failure = (
  status: number,
  error: Record<string, unknown> = {},
  headers?: Record<string, string>,
): Reply => ({
  json: { error: { message: 'no', type: 'server_error', code: null, ...error } },
  status,
  ...(headers ? { headers } : {}),
})
const ok = (model = 'gpt-4o-mini'): Reply => ({ json: chatCompletion('Hi.', openAIUsage(10, 2), model) })

let server: ProviderServer
beforeAll(async () => {
  server = await startProviderServer()
})
afterAll(() => server.close())
beforeEach(() => server.reset())

function setup(options: Partial<AnthropicWrapOptions> = {}, rules: PolicyInput | string = policy) {
  const gate = createTollgate({
    policy: typeof rules === 'string' ? rules : withDefaultPrices(rules),
    clock: fakeClock(),
  })
  const events: SettleEvent[] = []
  const waits: number[] = []
  const wrap = {
    subject,
    ...options,
    attempts: { sleep: async (ms: number) => void waits.push(ms), ...options.attempts },
    onSettle: (event: SettleEvent) => events.push(event),
  }
  const openai = wrapOpenAI(new OpenAI({ apiKey: 't', baseURL: `${server.url}/v1` }), gate, wrap)
  const anthropic = wrapAnthropic(new Anthropic({ apiKey: 't', baseURL: server.url }), gate, wrap)
  const used = async (rule: string, extra = {}) =>
    (await gate.usage({ subject: wrap.subject as typeof subject, ...extra })).find((s) => s.rule === rule)!
  return { gate, openai, anthropic, events, waits, used }
}

describe('retries: every attempt is reserved again', () => {
  it('retries a 429 after its retry-after-ms, reserving again, with the SDK retries off', async () => {
    const { openai, events, waits, used } = setup()
    server.reply(failure(429, { type: 'rate_limit_error' }, { 'retry-after-ms': '250' }), ok())
    const completion = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages })
    expect(completion.choices[0]!.message.content).toBe('Hi.')
    expect(server.requests).toHaveLength(2)
    expect(waits).toEqual([250])
    expect(events.map((e) => [e.attempt.number, e.attempt.kind, e.end])).toEqual([
      [1, 'primary', 'failed'],
      [2, 'primary', 'completed'],
    ])
    expect(events[0]!.decision.id).not.toBe(events[1]!.decision.id)
    expect(events[0]!.attempt.action).toBe(events[1]!.attempt.action)
    // two reservations, two requests counted; only the second is charged tokens
    expect(await used('requests')).toMatchObject({ used: 2, held: 0 })
    expect(await used('daily-tokens')).toMatchObject({ used: 12, held: 0 })
  })

  it('backs off exponentially like the SDKs, up to the client maxRetries', async () => {
    const { openai, events, waits } = setup()
    server.reply(failure(500), failure(503), failure(529))
    await expect(openai.chat.completions.create({ model: 'gpt-4o-mini', messages })).rejects.toMatchObject({
      status: 529,
    })
    expect(server.requests).toHaveLength(3) // 1 + the client's default maxRetries (2)
    expect(events.every((e) => e.end === 'failed')).toBe(true)
    expect(waits[0]).toBeGreaterThanOrEqual(375)
    expect(waits[0]).toBeLessThanOrEqual(500)
    expect(waits[1]).toBeGreaterThanOrEqual(750)
    expect(waits[1]).toBeLessThanOrEqual(1000)
  })

  it('retries a lost connection', async () => {
    const { gate, events, waits } = setup()
    const closed = await startProviderServer()
    await closed.close()
    const openai = wrapOpenAI(new OpenAI({ apiKey: 't', baseURL: `${closed.url}/v1`, maxRetries: 1 }), gate, {
      subject,
      attempts: { sleep: async (ms) => void waits.push(ms) },
      onSettle: (e) => events.push(e),
    })
    await expect(openai.chat.completions.create({ model: 'gpt-4o-mini', messages })).rejects.toThrow(
      /Connection error/,
    )
    expect(events.map((e) => e.end)).toEqual(['failed', 'failed'])
    expect(waits).toHaveLength(1)
  })

  it.each([
    ['402', failure(402)],
    ['403', failure(403)],
    ['429 insufficient_quota', failure(429, { type: 'insufficient_quota', code: 'insufficient_quota' })],
    ['a 500 the provider says not to retry', failure(500, {}, { 'x-should-retry': 'false' })],
    ['400', failure(400)],
  ])('never retries %s', async (_, reply) => {
    const { openai, events, waits } = setup()
    server.reply(reply, ok())
    await expect(openai.chat.completions.create({ model: 'gpt-4o-mini', messages })).rejects.toMatchObject({
      status: (reply as { status: number }).status,
    })
    expect(server.requests).toHaveLength(1)
    expect(events).toHaveLength(1)
    expect(waits).toEqual([])
  })

  it('never retries a quota refusal, and sends nothing', async () => {
    const { openai, events } = setup(
      {},
      { rules: [{ id: 'tiny', per: 'user', limits: { tokens: 10 }, window: 'day' }] },
    )
    const error = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages }).catch((e) => e)
    expect(TollgateError.isInstance(error)).toBe(true)
    expect(error.decision).toMatchObject({ rule: 'tiny', retryable: false })
    expect(server.requests).toHaveLength(0)
    expect(events).toHaveLength(0)
  })

  it('caps attempts with attempts.max, and a request can ask for fewer retries', async () => {
    const { openai } = setup({ attempts: { max: 2, retries: 5 } })
    server.reply(failure(500), failure(500), failure(500))
    await expect(openai.chat.completions.create({ model: 'gpt-4o-mini', messages })).rejects.toThrow()
    expect(server.requests).toHaveLength(2)
    server.reset()
    server.reply(failure(500), ok())
    const once = openai.chat.completions.create({ model: 'gpt-4o-mini', messages }, { maxRetries: 0 })
    await expect(once).rejects.toMatchObject({ status: 500 })
    expect(server.requests).toHaveLength(1)
  })

  it('retries streams and raw responses the same way', async () => {
    const { openai, events } = setup()
    server.reply(failure(503), { events: [chatChunk('Hi'), chatUsageChunk(openAIUsage(10, 1))] })
    const stream = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages, stream: true })
    for await (const _ of stream);
    expect(events.map((e) => e.end)).toEqual(['failed', 'completed'])
    expect(events[1]!.result!.amounts).toMatchObject({ inputTokens: 10, outputTokens: 1 })

    server.reply(failure(429), ok())
    const raw = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages }).asResponse()
    expect(raw.status).toBe(200)
    await raw.text()
    expect(server.requests).toHaveLength(4)
  })

  it('stops waiting when the request is aborted, with the SDK abort error', async () => {
    const controller = new AbortController()
    const { openai } = setup({ attempts: { sleep: async () => controller.abort() } })
    server.reply(failure(503), ok())
    const call = openai.chat.completions.create(
      { model: 'gpt-4o-mini', messages },
      { signal: controller.signal },
    )
    await expect(call).rejects.toBeInstanceOf(OpenAI.APIUserAbortError)
    expect(server.requests).toHaveLength(1)
  })
})

describe('fallbacks and the retry budget per action (SCENARIOS S5)', () => {
  const workspace = { workspace: 'studio' }
  const s5Options = { subject: workspace, attempts: { fallbacks: { 'gpt-4o': ['gpt-4o-mini'] } } }

  it('falls back after a 529 and charges the fallback model, under its own cap', async () => {
    const { openai, events, used } = setup(s5Options, s5)
    server.reply(failure(529, { type: 'overloaded_error' }), ok())
    await openai.chat.completions.create({ model: 'gpt-4o', messages })
    expect(server.requests.map((r) => r.body.model)).toEqual(['gpt-4o', 'gpt-4o-mini'])
    expect(events.map((e) => [e.attempt.kind, e.attempt.model, e.end])).toEqual([
      ['primary', 'gpt-4o', 'failed'],
      ['fallback', 'gpt-4o-mini', 'completed'],
    ])
    const fallback = events[1]!
    expect(fallback.decision.limits.map((l) => l.rule)).toContain('fallback-spend')
    expect(fallback.result!.amounts.cost).toBe(2 + 2) // 10 × $0.15 + 2 × $0.60 per million, each rounded up
    const cap = await used('fallback-spend', { model: 'gpt-4o-mini', attributes: { attempt: 'fallback' } })
    expect(cap).toMatchObject({ used: 4, held: 0 })
  })

  it('counts attempts per action: a second primary attempt is refused, never sent', async () => {
    const { openai, events } = setup({ subject: workspace, attempts: { retries: 1 } }, s5)
    server.reply(failure(500), ok('gpt-4o'))
    const error = await openai.chat.completions.create({ model: 'gpt-4o', messages }).catch((e) => e)
    expect(TollgateError.isInstance(error)).toBe(true)
    expect(error.decision).toMatchObject({ rule: 'one-attempt-each', retryable: false })
    expect(error.cause).toMatchObject({ status: 500 }) // what made it try again
    expect(server.requests).toHaveLength(1)
    expect(events).toHaveLength(1)
  })

  it('keeps the caller’s action id across calls', async () => {
    const { openai } = setup({ subject: { ...workspace, action: 'act-7' } }, s5)
    server.reply(failure(400), ok('gpt-4o'))
    await expect(openai.chat.completions.create({ model: 'gpt-4o', messages })).rejects.toThrow()
    const again = await openai.chat.completions.create({ model: 'gpt-4o', messages }).catch((e) => e)
    expect(again.decision).toMatchObject({ rule: 'one-attempt-each', partition: { action: 'act-7' } })
  })

  it('refuses the fallback past its spend cap, with the capacity error as the cause', async () => {
    const { gate, openai, events } = setup(s5Options, s5)
    await gate.override({ rule: 'fallback-spend', subject: workspace }, 0.000001)
    server.reply(failure(500), ok())
    const error = await openai.chat.completions.create({ model: 'gpt-4o', messages }).catch((e) => e)
    expect(error).toMatchObject({ code: 'budget_exceeded', decision: { rule: 'fallback-spend' } })
    expect(error.cause).toMatchObject({ status: 500 })
    expect(server.requests).toHaveLength(1)
    expect(events).toHaveLength(1)
  })

  it('Anthropic: falls back after overloaded_error, for messages.stream too', async () => {
    const { anthropic, events } = setup({
      attempts: { fallbacks: { 'claude-opus-4-5': ['claude-haiku-4-5'] } },
    })
    const overloaded = { type: 'error', error: { type: 'overloaded_error', message: 'busy' } }
    server.reply(
      { json: overloaded, status: 529 },
      {
        events: anthropicEvents(['Hi'], { input_tokens: 9, output_tokens: 1 }, 2, 'claude-haiku-4-5'),
        named: true,
      },
    )
    const body = { model: 'claude-opus-4-5', max_tokens: 100, messages }
    const message = await anthropic.messages.stream(body).finalMessage()
    expect(message.content[0]).toMatchObject({ text: 'Hi' })
    expect(server.requests.map((r) => r.body.model)).toEqual(['claude-opus-4-5', 'claude-haiku-4-5'])
    expect(events[1]).toMatchObject({
      attempt: { kind: 'fallback' },
      decision: { model: 'claude-haiku-4-5' },
    })
    expect(events[1]!.result!.amounts.cost).toBe(9 + 10) // 9 × $1 + 2 × $5 per million

    server.reset()
    server.reply(
      { json: overloaded, status: 529 },
      { json: anthropicMessage('Yo', { input_tokens: 9, output_tokens: 1 }, 'claude-haiku-4-5') },
    )
    await anthropic.messages.create(body)
    expect(server.requests.map((r) => r.body.model)).toEqual(['claude-opus-4-5', 'claude-haiku-4-5'])
  })
})
