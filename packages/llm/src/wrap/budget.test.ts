import Anthropic from '@anthropic-ai/sdk'
import { costOf, createTollgate, type PolicyInput, type RuleInput, TollgateError } from '@tollgate/core'
import { fakeClock } from '@tollgate/core/testing'
import OpenAI from 'openai'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { estimateAnthropicMessage } from '../estimate/anthropic.js'
import { estimateChatCompletion, estimateResponse } from '../estimate/openai.js'
import { withDefaultPrices } from '../prices.js'
import { anthropicMessage, chatChunk, chatCompletion, openAIUsage, response } from '../testing/fixtures.js'
import { type ProviderServer, startProviderServer } from '../testing/provider-server.js'
import { countTokens } from '../tokens/count.js'
import { wrapAnthropic } from './anthropic.js'
import { wrapOpenAI } from './openai.js'
import type { AnthropicWrapOptions, SettleEvent } from './options.js'

const subject = { org: 'acme', user: 'u1' }
const exact = { timeBudgetMs: Number.POSITIVE_INFINITY }
const messages = [{ role: 'user' as const, content: 'Tell me a long story.' }]
/** gpt-4o-mini prices in micro-units per million tokens. */
const MINI = { input: 150_000, output: 600_000 }

let server: ProviderServer
beforeAll(async () => {
  server = await startProviderServer()
})
afterAll(() => server.close())
beforeEach(() => server.reset())

function setup(rules: RuleInput[], options: Partial<AnthropicWrapOptions> = {}) {
  const policy: PolicyInput = { rules }
  const gate = createTollgate({ policy: withDefaultPrices(policy), clock: fakeClock() })
  const events: SettleEvent[] = []
  const wrap = { subject, ...exact, onSettle: (e: SettleEvent) => events.push(e), ...options }
  const openai = wrapOpenAI(
    new OpenAI({ apiKey: 't', baseURL: `${server.url}/v1`, maxRetries: 0 }),
    gate,
    wrap,
  )
  const anthropic = wrapAnthropic(
    new Anthropic({ apiKey: 't', baseURL: server.url, maxRetries: 0 }),
    gate,
    wrap,
  )
  const used = async (rule: string) => (await gate.usage({ subject })).find((s) => s.rule === rule)!
  return { gate, openai, anthropic, events, used }
}

const daily = (tokens: number): RuleInput => ({ id: 'daily', per: 'user', limits: { tokens }, window: 'day' })
const budget = (micros: number): RuleInput => ({
  id: 'budget',
  per: 'org',
  limits: { cost: micros / 1e6 },
  window: 'month',
})
const words = (n: number) => Array.from({ length: n }, () => ' word')
/** A rule in shadow: it never refuses, so it must never bound a call's output either. */
const shadow = (rule: RuleInput): RuleInput => ({ ...rule, id: `${rule.id}-shadow`, mode: 'shadow' })

describe('cutOffStreams', () => {
  it('ends a chat stream whose output reaches the tokens left, and settles what was streamed', async () => {
    const body = { model: 'gpt-4o-mini', messages, stream: true as const }
    const input = estimateChatCompletion(body, exact).inputTokens
    // 50 output tokens reserved (no cap in the request); the limit leaves room for 80
    const { openai, events, used } = setup([daily(input + 80)], { cutOffStreams: true, maxOutputTokens: 50 })
    server.reply({ events: words(200).map((w) => chatChunk(w)), after: 'hold' })
    const stream = await openai.chat.completions.create(body)
    let text = ''
    for await (const chunk of stream) text += chunk.choices[0]!.delta.content
    await server.holdClosed(0) // the request was aborted
    expect(text).toBe(words(80).join(''))
    expect(events[0]).toMatchObject({ end: 'cut', outcome: 'settled', metered: { estimated: true } })
    expect(events[0]!.result!.amounts.outputTokens).toBe(countTokens(text).tokens)
    expect(await used('daily')).toMatchObject({ used: input + 80, held: 0 })
  })

  it('settles what was streamed, not the smaller hold, of a stream it cuts, with unfinishedStreams: reserved', async () => {
    // the cut comes once the output reaches what the budget left, counting the call's own hold: at
    // or past the hold's output. `reserved` settled the 50 held, below the 80 streamed
    const body = { model: 'gpt-4o-mini', messages, stream: true as const }
    const input = estimateChatCompletion(body, exact).inputTokens
    const { openai, events, used } = setup([daily(input + 80)], {
      cutOffStreams: true,
      maxOutputTokens: 50,
      unfinishedStreams: 'reserved',
    })
    server.reply({ events: words(200).map((w) => chatChunk(w)), after: 'hold' })
    let text = ''
    for await (const chunk of await openai.chat.completions.create(body))
      text += chunk.choices[0]!.delta.content
    await server.holdClosed(0)
    expect(text).toBe(words(80).join(''))
    expect(events[0]).toMatchObject({ end: 'cut', outcome: 'settled', metered: { estimated: true } })
    expect(events[0]!.result!.amounts).toMatchObject({
      inputTokens: input,
      outputTokens: 80,
      cost: costOf(input, MINI.input) + costOf(80, MINI.output),
    })
    expect(await used('daily')).toMatchObject({ used: input + 80, held: 0 })
  })

  it('turns a cost limit into output tokens at the model’s price (Responses API)', async () => {
    const body = { model: 'gpt-4o-mini', input: 'Tell me a long story.', stream: true as const }
    const inputCost = costOf(estimateResponse(body, exact).inputTokens, MINI.input)
    // $0.60 per million output tokens: 36 micro-dollars buy 60 tokens
    const { openai, events } = setup([budget(inputCost + 36)], { cutOffStreams: true, maxOutputTokens: 50 })
    const delta = (text: string, i: number) => ({
      type: 'response.output_text.delta',
      sequence_number: i,
      item_id: 'msg_1',
      output_index: 0,
      content_index: 0,
      delta: text,
    })
    server.reply({ events: words(200).map(delta), after: 'hold', done: false })
    const stream = await openai.responses.create(body)
    let deltas = 0
    for await (const event of stream) if (event.type === 'response.output_text.delta') deltas++
    expect(deltas).toBe(60)
    expect(events[0]).toMatchObject({ end: 'cut', metered: { estimated: true } })
    expect(events[0]!.result!.amounts.cost).toBe(inputCost + 36)
  })

  it('never cuts a stream for a limit in shadow, however tight: only enforced limits bound it', async () => {
    const body = { model: 'gpt-4o-mini', messages, stream: true as const }
    const input = estimateChatCompletion(body, exact).inputTokens
    // tokens and cost rules in shadow that the stream runs past; the enforced limit leaves 120
    const rules = [
      daily(input + 120),
      shadow(daily(input + 60)),
      shadow(budget(costOf(input, MINI.input) + 6)),
    ]
    const { openai, events } = setup(rules, { cutOffStreams: true, maxOutputTokens: 50 })
    server.reply({ events: words(200).map((w) => chatChunk(w)), after: 'hold' })
    let chunks = 0
    for await (const _ of await openai.chat.completions.create(body)) chunks++
    await server.holdClosed(0)
    expect(chunks).toBe(120)
    expect(events[0]).toMatchObject({ end: 'cut', outcome: 'settled' })

    // with the shadow rules alone, nothing bounds the output: the stream runs to its end
    server.reset()
    const alone = setup(rules.slice(1), { cutOffStreams: true, maxOutputTokens: 50 })
    server.reply({ events: words(200).map((w) => chatChunk(w)) })
    chunks = 0
    for await (const _ of await alone.openai.chat.completions.create(body)) chunks++
    expect(chunks).toBe(200)
    expect(alone.events[0]).toMatchObject({ end: 'completed' })
    // the cost rule in shadow would have refused even the 50 tokens reserved
    expect(alone.events[0]!.decision.shadowViolations.map((v) => v.rule)).toEqual(['budget-shadow'])
  })

  it('leaves streams alone without the option, or when no limit bounds the output', async () => {
    const { openai, events } = setup([{ id: 'rpm', per: 'user', limits: { requests: 10 }, window: '60s' }], {
      cutOffStreams: true,
    })
    server.reply({ events: words(30).map((w) => chatChunk(w)) })
    const stream = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages, stream: true })
    let chunks = 0
    for await (const _ of stream) chunks++
    expect(chunks).toBe(30)
    expect(events[0]!.end).toBe('completed')
  })
})

describe('shrinkOutput', () => {
  const chatBody = { model: 'gpt-4o-mini', messages, max_tokens: 2000 }
  const input = estimateChatCompletion(chatBody, exact).inputTokens

  it('reserves again with the output cap the tokens left allow, and sends that cap', async () => {
    const { openai, events } = setup([daily(input + 300)], { shrinkOutput: true })
    server.reply({ json: chatCompletion('Once', openAIUsage(input, 1)) })
    await openai.chat.completions.create(chatBody)
    expect(server.requests[0]!.body.max_tokens).toBe(300)
    expect(events[0]).toMatchObject({
      shrunkTo: 300,
      decision: { reservation: { amounts: { outputTokens: 300 } } },
    })
  })

  it('shrinks to exactly `min` when that is all the tokens left allow', async () => {
    const { openai, events } = setup([daily(input + 300)], { shrinkOutput: { min: 300 } })
    server.reply({ json: chatCompletion('Once', openAIUsage(input, 1)) })
    await openai.chat.completions.create(chatBody)
    expect(server.requests[0]!.body.max_tokens).toBe(300)
    expect(events[0]!.shrunkTo).toBe(300)
  })

  it('shrinks to what the enforced limits allow, never to what a limit in shadow would', async () => {
    const inputCost = costOf(input, MINI.input)
    const rules = [daily(input + 300), shadow(daily(input + 100)), shadow(budget(inputCost + 12))]
    const { openai, events } = setup(rules, { shrinkOutput: true })
    server.reply({ json: chatCompletion('Once', openAIUsage(input, 1)) })
    await openai.chat.completions.create(chatBody)
    expect(server.requests[0]!.body.max_tokens).toBe(300)
    expect(events[0]).toMatchObject({
      shrunkTo: 300,
      decision: { reservation: { amounts: { outputTokens: 300 } } },
    })
    // both rules in shadow would have refused the call: they are reported, and bound nothing
    expect(events[0]!.decision.shadowViolations.map((v) => v.rule).sort()).toEqual([
      'budget-shadow',
      'daily-shadow',
    ])
  })

  it('splits the cap between choices, in the field the caller used', async () => {
    const body = { model: 'gpt-4o-mini', messages, max_completion_tokens: 1000, n: 2 }
    const { openai } = setup([daily(estimateChatCompletion(body, exact).inputTokens + 301)], {
      shrinkOutput: true,
    })
    server.reply({ json: chatCompletion('Once', openAIUsage(input, 1)) })
    await openai.chat.completions.create(body)
    expect(server.requests[0]!.body).toMatchObject({ max_completion_tokens: 150, n: 2 })
    expect(server.requests[0]!.body).not.toHaveProperty('max_tokens')
  })

  it('shrinks max_output_tokens to what a cost limit allows (Responses API)', async () => {
    const body = { model: 'gpt-4o-mini', input: 'Tell me a long story.', max_output_tokens: 5000 }
    const inputCost = costOf(estimateResponse(body, exact).inputTokens, MINI.input)
    const { openai, events } = setup([budget(inputCost + 60)], { shrinkOutput: true })
    server.reply({ json: response('Once', { input_tokens: 12, output_tokens: 3 }, 'gpt-4o-mini') })
    await openai.responses.create(body)
    expect(server.requests[0]!.body.max_output_tokens).toBe(100) // 60 micro-dollars at $0.60 per million
    expect(events[0]!.shrunkTo).toBe(100)
  })

  it('refuses as before when another limit refuses too, below `min`, or without the option', async () => {
    const rpm: RuleInput = { id: 'rpm', per: 'user', limits: { requests: 1 }, window: '60s' }
    const both = setup([daily(input + 300), rpm], { shrinkOutput: true })
    await both.gate.reserve({ subject, estimate: { inputTokens: 1, maxOutputTokens: 1 } })
    const refused = await both.openai.chat.completions.create(chatBody).catch((e) => e)
    expect(refused.decision.violations.map((v: { rule: string }) => v.rule).sort()).toEqual(['daily', 'rpm'])

    const small = setup([daily(input + 300)], { shrinkOutput: { min: 500 } })
    await expect(small.openai.chat.completions.create(chatBody)).rejects.toMatchObject({
      code: 'quota_exceeded',
    })
    const off = setup([daily(input + 300)])
    const error = await off.openai.chat.completions.create(chatBody).catch((e) => e)
    expect(TollgateError.isInstance(error)).toBe(true)
    expect(server.requests).toHaveLength(0)
  })

  it('Anthropic: keeps max_tokens above the thinking budget', async () => {
    const body = {
      model: 'claude-haiku-4-5',
      max_tokens: 4000,
      thinking: { type: 'enabled' as const, budget_tokens: 1024 },
      messages,
    }
    const anthropicInput = estimateAnthropicMessage(body, exact).inputTokens
    const tight = setup([daily(anthropicInput + 900)], { shrinkOutput: true })
    await expect(tight.anthropic.messages.create(body)).rejects.toMatchObject({ code: 'quota_exceeded' })
    const roomy = setup([daily(anthropicInput + 2000)], { shrinkOutput: true })
    server.reply({
      json: anthropicMessage('Once', { input_tokens: 20, output_tokens: 5 }, 'claude-haiku-4-5'),
    })
    await roomy.anthropic.messages.create(body)
    expect(server.requests[0]!.body).toMatchObject({ max_tokens: 2000, thinking: { budget_tokens: 1024 } })
  })
})
