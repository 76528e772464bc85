import Anthropic from '@anthropic-ai/sdk'
import { costOf, createTollgate, type PolicyInput, TollgateError } from '@tollgate/core'
import { fakeClock } from '@tollgate/core/testing'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { estimateAnthropicMessage } from '../estimate/anthropic.js'
import { withDefaultPrices } from '../prices.js'
import { anthropicEvents, anthropicMessage } from '../testing/fixtures.js'
import { type ProviderServer, startProviderServer } from '../testing/provider-server.js'
import { countTokens } from '../tokens/count.js'
import { wrapAnthropic } from './anthropic.js'
import type { AnthropicWrapOptions, SettleEvent } from './options.js'

const subject = { org: 'acme', user: 'u1' }
const basePolicy: PolicyInput = {
  access: [
    { match: { plan: 'free' }, allow: ['claude-haiku-4-5'], otherwise: { downgrade: 'claude-haiku-4-5' } },
  ],
  rules: [
    { id: 'daily-tokens', per: 'user', limits: { tokens: 100_000 }, window: 'day' },
    { id: 'monthly-cost', per: 'org', limits: { cost: 10 }, window: 'month' },
  ],
}
const body = {
  model: 'claude-opus-4-5',
  max_tokens: 512,
  system: 'You are terse.',
  messages: [{ role: 'user' as const, content: 'Say hello.' }],
}

let server: ProviderServer
beforeAll(async () => {
  server = await startProviderServer()
})
afterAll(() => server.close())
beforeEach(() => {
  server.reset()
})

function setup(options: Partial<AnthropicWrapOptions> = {}, policy: PolicyInput = basePolicy) {
  const gate = createTollgate({ policy: withDefaultPrices(policy), clock: fakeClock() })
  const events: SettleEvent[] = []
  const client = new Anthropic({ apiKey: 'test', baseURL: server.url, maxRetries: 0 })
  const anthropic = wrapAnthropic(client, gate, {
    subject,
    timeBudgetMs: Number.POSITIVE_INFINITY,
    onSettle: (event) => events.push(event),
    ...options,
  })
  const used = async (rule: string) => (await gate.usage({ subject })).find((s) => s.rule === rule)!
  return { gate, anthropic, events, used }
}

describe('wrapAnthropic', () => {
  it('holds the estimate, settles usage with cache reads and writes, and prices cache writes', async () => {
    const { anthropic, events, used } = setup()
    const usage = {
      input_tokens: 100,
      cache_read_input_tokens: 1000,
      cache_creation_input_tokens: 200,
      output_tokens: 50,
    }
    server.reply({ json: anthropicMessage('Hello.', usage) })
    const message = await anthropic.messages.create(body)
    expect(message.content[0]).toMatchObject({ type: 'text', text: 'Hello.' })
    expect(server.requests[0]).toMatchObject({ path: '/v1/messages', body })

    const estimate = estimateAnthropicMessage(body, { timeBudgetMs: Number.POSITIVE_INFINITY })
    expect(events[0]!.decision.reservation.amounts).toMatchObject({
      inputTokens: estimate.inputTokens,
      outputTokens: 512,
    })
    expect(events[0]!.metered).toMatchObject({ estimated: false, cacheWriteTokens: { '5m': 200, '1h': 0 } })
    // claude-opus-4-5: 100 × $5 + 1000 × $0.50 + 200 × $6.25 (5-minute cache write) + 50 × $25 per million
    expect(events[0]!.result!.amounts).toMatchObject({
      inputTokens: 1300,
      outputTokens: 50,
      cost: 500 + 500 + 1250 + 1250,
    })
    expect(await used('daily-tokens')).toMatchObject({ used: 1350, held: 0 })
  })

  it('keeps the input estimate when the usage leaves it out, and counts output it leaves out', async () => {
    const { anthropic, events, used } = setup()
    const estimate = estimateAnthropicMessage(body, { timeBudgetMs: Number.POSITIVE_INFINITY })
    server.reply({ json: anthropicMessage('Hello.', { output_tokens: 30 }) })
    await anthropic.messages.create(body)
    expect(events[0]!.result!.amounts).toMatchObject({ inputTokens: estimate.inputTokens, outputTokens: 30 })
    expect(events[0]!.metered).toMatchObject({ estimated: false })
    // a usage object with no counts at all: the output is counted from the text (with the margin), flagged
    server.reply({ json: anthropicMessage('Hello there.', {}) })
    await anthropic.messages.create(body)
    const counted = Math.ceil(countTokens('Hello there.').tokens * 1.2)
    expect(events[1]!.result!.amounts).toMatchObject({
      inputTokens: estimate.inputTokens,
      outputTokens: counted,
    })
    expect(events[1]!.metered).toMatchObject({ estimated: true })
    expect(await used('daily-tokens')).toMatchObject({
      used: 2 * estimate.inputTokens + 30 + counted,
      held: 0,
    })
  })

  it('settles a stream from message_start and message_delta', async () => {
    const { anthropic, events } = setup()
    server.reply({
      events: anthropicEvents(['Hel', 'lo.'], { input_tokens: 21, output_tokens: 1 }, 4),
      named: true,
    })
    const stream = await anthropic.messages.create({ ...body, stream: true })
    const types: string[] = []
    for await (const event of stream) types.push(event.type)
    expect(types[0]).toBe('message_start')
    expect(types.at(-1)).toBe('message_stop')
    expect(events[0]).toMatchObject({ end: 'completed', metered: { estimated: false } })
    expect(events[0]!.result!.amounts).toMatchObject({ inputTokens: 21, outputTokens: 4 })
  })

  it('counts the output from the text, flagged, when message_delta carries no output count', async () => {
    const { anthropic, events } = setup()
    const deltas = ['The quick brown fox ', 'jumps over ', 'the lazy dog.']
    // a proxy that drops the usage: message_start's `output_tokens: 1` is a placeholder, not the output
    for (const usage of [{}, { output_tokens: null }]) {
      const stream = anthropicEvents(deltas, { input_tokens: 20, output_tokens: 1 }, 0).map(
        ({ event, data }) =>
          event === 'message_delta' ? { event, data: { ...(data as object), usage } } : { event, data },
      )
      server.reply({ events: stream, named: true })
      const types: string[] = []
      for await (const event of await anthropic.messages.create({ ...body, stream: true }))
        types.push(event.type)
      expect(types.at(-1)).toBe('message_stop')
    }
    const settled = events.map(({ end, metered, result }) => ({
      end,
      estimated: metered?.estimated,
      inputTokens: result?.amounts.inputTokens,
      outputTokens: result?.amounts.outputTokens,
    }))
    const counted = Math.ceil(countTokens(deltas.join('')).tokens * 1.2)
    const expected = { end: 'completed', estimated: true, inputTokens: 20, outputTokens: counted }
    expect(settled).toEqual([expected, expected])
  })

  it('gates messages.stream and its helpers', async () => {
    const { anthropic, events } = setup()
    server.reply({
      events: anthropicEvents(['Hi ', 'there.'], { input_tokens: 15, output_tokens: 1 }, 3),
      named: true,
    })
    const message = await anthropic.messages.stream(body).finalMessage()
    expect(message.content[0]).toMatchObject({ text: 'Hi there.' })
    expect(server.requests).toHaveLength(1)
    expect(events[0]!.result!.amounts).toMatchObject({ inputTokens: 15, outputTokens: 3 })
  })

  it('settles an aborted stream: input from message_start, output from the streamed text (with the margin)', async () => {
    const { anthropic, events } = setup()
    server.reply({
      events: anthropicEvents(['One ', 'two ', 'three'], { input_tokens: 30, output_tokens: 1 }, null),
      named: true,
      after: 'hold',
    })
    const stream = anthropic.messages.stream(body)
    let text = ''
    stream.on('text', (delta) => {
      text += delta
      if (text === 'One two ') stream.abort()
    })
    await expect(stream.done()).rejects.toThrow()
    await server.holdClosed(0)
    expect(events[0]).toMatchObject({ end: 'aborted', metered: { estimated: true } })
    const streamed = Math.ceil(countTokens('One two ').tokens * 1.2)
    expect(events[0]!.result!.amounts).toMatchObject({ inputTokens: 30, outputTokens: streamed })
  })

  it('reports a stream aborted with the SDK’s own abort error as its reason as aborted, not broken', async () => {
    const { anthropic, events } = setup()
    server.reply({
      events: anthropicEvents(['One ', 'two ', 'three'], { input_tokens: 30, output_tokens: 1 }, null),
      named: true,
      after: 'hold',
    })
    const stream = await anthropic.messages.create({ ...body, stream: true })
    const reason = new Anthropic.APIUserAbortError()
    let text = ''
    const iterated = (async () => {
      for await (const event of stream)
        if (event.type === 'content_block_delta' && event.delta.type === 'text_delta') {
          text += event.delta.text
          if (text === 'One two ') stream.controller.abort(reason)
        }
    })()
    // the body read fails with the abort's reason, which the SDK (looking for an `AbortError`) throws on
    await expect(iterated).rejects.toBe(reason)
    await server.holdClosed(0)
    expect(events).toHaveLength(1)
    expect(events[0]).toMatchObject({ end: 'aborted', outcome: 'settled', metered: { estimated: true } })
    expect(events[0]!.error).toBe(reason)
    const streamed = Math.ceil(countTokens('One two ').tokens * 1.2)
    expect(events[0]!.result!.amounts).toMatchObject({ inputTokens: 30, outputTokens: streamed })
  })

  it('keeps the whole hold, cost included, of an unfinished stream that wrote the cache, with unfinishedStreams: reserved', async () => {
    const { anthropic, events, used } = setup({ unfinishedStreams: 'reserved' })
    // 18 input tokens reported, 10 of them cache writes: below the 20 held
    const start = { input_tokens: 8, cache_creation_input_tokens: 10, output_tokens: 1 }
    server.reply({
      events: anthropicEvents(['One ', 'two ', 'three'], start, null),
      named: true,
      after: 'hold',
    })
    const stream = await anthropic.messages.create({ ...body, stream: true })
    for await (const event of stream) if (event.type === 'content_block_delta') break
    await server.holdClosed(0)
    const held = events[0]!.decision.reservation.amounts
    expect(held).toMatchObject({ inputTokens: 20, outputTokens: 512 })
    expect(events[0]).toMatchObject({ end: 'aborted', outcome: 'settled', metered: { estimated: true } })
    // the held tokens, the cache writes reported among them priced as cache writes (1.25× input):
    // a little above the hold's cost, which priced all input as plain input
    const cost = costOf(10, 5_000_000) + costOf(10, 6_250_000) + costOf(512, 25_000_000)
    expect(cost).toBeGreaterThan(held.cost!)
    expect(events[0]!.result!.amounts).toMatchObject({
      inputTokens: held.inputTokens,
      outputTokens: held.outputTokens,
      cost,
    })
    expect(await used('monthly-cost')).toMatchObject({ used: cost, held: 0 })
  })

  it('never settles below the hold’s cost for an unfinished stream that read the cache, with unfinishedStreams: reserved', async () => {
    const { anthropic, events } = setup({ unfinishedStreams: 'reserved' })
    // 17 input tokens reported, 15 of them cache reads: the 20 held, priced with those reads, cost less than the hold
    const start = { input_tokens: 2, cache_read_input_tokens: 15, output_tokens: 1 }
    server.reply({ events: anthropicEvents(['One ', 'two'], start, null), named: true, after: 'hold' })
    for await (const event of await anthropic.messages.create({ ...body, stream: true }))
      if (event.type === 'content_block_delta') break
    await server.holdClosed(0)
    const held = events[0]!.decision.reservation.amounts
    expect(events[0]).toMatchObject({ end: 'aborted', metered: { usage: { cachedInputTokens: 15 } } })
    expect(events[0]!.result!.amounts).toMatchObject({
      inputTokens: held.inputTokens,
      outputTokens: held.outputTokens,
      cost: held.cost,
    })
  })

  it.each(['aborted', 'broken'] as const)(
    'settles the input message_start reported and the output streamed past a smaller hold, for a stream %s, with unfinishedStreams: reserved',
    async (end) => {
      // 4 output tokens and about 20 input tokens held; message_start reports 900 input tokens and
      // 20 words stream before the stream stops. `reserved` settled the hold, below what `streamed` settles
      const deltas = Array.from({ length: 20 }, () => ' word')
      const stop = async (mode: 'streamed' | 'reserved') => {
        server.reset()
        const { anthropic, events, used } = setup({ unfinishedStreams: mode })
        server.reply({
          events: anthropicEvents(deltas, { input_tokens: 900, output_tokens: 1 }, null),
          named: true,
          after: end === 'aborted' ? 'hold' : 'cut',
        })
        const stream = await anthropic.messages.create({ ...body, max_tokens: 4, stream: true })
        let text = ''
        const read = (async () => {
          for await (const event of stream)
            if (event.type === 'content_block_delta' && event.delta.type === 'text_delta') {
              text += event.delta.text
              if (end === 'aborted' && text === deltas.join('')) break
            }
        })()
        if (end === 'broken') await expect(read).rejects.toThrow()
        else {
          await read
          await server.holdClosed(0)
        }
        expect(events).toHaveLength(1)
        expect(events[0]).toMatchObject({ end, outcome: 'settled', metered: { estimated: true } })
        return { event: events[0]!, text, cost: await used('monthly-cost') }
      }
      const streamed = await stop('streamed')
      const reserved = await stop('reserved')
      const held = reserved.event.decision.reservation.amounts
      expect(held).toMatchObject({ inputTokens: 20, outputTokens: 4 })
      const outputTokens = Math.ceil(countTokens(reserved.text).tokens * 1.2)
      expect(outputTokens).toBeGreaterThan(12)
      // claude-opus-4-5: $5 / $25 per million tokens
      const cost = costOf(900, 5_000_000) + costOf(outputTokens, 25_000_000)
      expect(reserved.event.result!.amounts).toMatchObject({
        inputTokens: 900,
        outputTokens,
        tokens: 900 + outputTokens,
        cost,
      })
      expect(reserved.event.metered!.usage).toMatchObject({ inputTokens: 900, outputTokens })
      // never below what `streamed` settles, field by field
      for (const field of ['inputTokens', 'outputTokens', 'tokens', 'cost'])
        expect(reserved.event.result!.amounts[field], field).toBeGreaterThanOrEqual(
          streamed.event.result!.amounts[field]!,
        )
      expect(reserved.cost).toMatchObject({ used: cost, held: 0 })
    },
  )

  it('settles a stream the server cuts from what arrived', async () => {
    const { anthropic, events } = setup()
    server.reply({
      events: anthropicEvents(['Partial ', 'answer'], { input_tokens: 30, output_tokens: 1 }, null),
      named: true,
      after: 'cut',
    })
    const stream = await anthropic.messages.create({ ...body, stream: true })
    let text = ''
    await expect(
      (async () => {
        for await (const event of stream)
          if (event.type === 'content_block_delta' && event.delta.type === 'text_delta')
            text += event.delta.text
      })(),
    ).rejects.toThrow()
    expect(events[0]).toMatchObject({ end: 'broken', metered: { estimated: true } })
    expect(events[0]!.result!.amounts.outputTokens).toBe(Math.ceil(countTokens(text).tokens * 1.2))
    expect(events[0]!.result!.amounts.inputTokens).toBe(30)
  })

  it('charges nothing but the request when the API answers an error', async () => {
    const { anthropic, events, used } = setup()
    server.reply({
      json: { type: 'error', error: { type: 'overloaded_error', message: 'busy' } },
      status: 529,
    })
    await expect(anthropic.messages.create(body)).rejects.toMatchObject({ status: 529 })
    expect(events[0]).toMatchObject({ end: 'failed', outcome: 'settled', result: { amounts: { tokens: 0 } } })
    expect(await used('daily-tokens')).toMatchObject({ used: 0, held: 0 })
  })

  it('releases the whole hold of a call the SDK refuses to send: not even the request is counted', async () => {
    // the SDK throws at once, before any request, for a long call that is not streamed
    const rules = [
      ...basePolicy.rules!,
      { id: 'rpd', per: 'user', limits: { requests: 100 }, window: 'day' as const },
    ]
    const { anthropic, events, used } = setup({}, { rules })
    const long = { ...body, max_tokens: 32_000 }
    const error = await anthropic.messages.create(long).catch((e) => e)
    expect(error).toBeInstanceOf(Anthropic.AnthropicError)
    expect(error.message).toMatch(/^Streaming is required/)
    expect(server.requests).toHaveLength(0)
    expect(events).toHaveLength(1)
    expect(events[0]).toMatchObject({
      end: 'failed',
      outcome: 'released',
      metered: null,
      result: { status: 'released' },
      error,
    })
    expect(events[0]!.decision.reservation.amounts.outputTokens).toBe(32_000)
    expect(await used('rpd')).toMatchObject({ used: 0, held: 0 })
    expect(await used('daily-tokens')).toMatchObject({ used: 0, held: 0 })
  })

  it('refuses before any request, from create and from stream', async () => {
    const { anthropic } = setup(
      {},
      { rules: [{ id: 'tiny', per: 'user', limits: { tokens: 10 }, window: 'day' }] },
    )
    const error = await anthropic.messages.create(body).catch((e) => e)
    expect(TollgateError.isInstance(error)).toBe(true)
    expect(error.decision).toMatchObject({ allowed: false, rule: 'tiny' })
    const streamed = await anthropic.messages
      .stream(body)
      .finalMessage()
      .catch((e) => e)
    // the SDK's MessageStream wraps errors it did not raise: the refusal is the cause
    expect(TollgateError.isInstance(streamed.cause)).toBe(true)
    expect(streamed.cause.decision).toMatchObject({ allowed: false, rule: 'tiny' })
    expect(server.requests).toHaveLength(0)
  })

  it('sends the downgraded model', async () => {
    const { anthropic, events } = setup({ attributes: { plan: 'free' } })
    server.reply({ json: anthropicMessage('Hi', { input_tokens: 10, output_tokens: 2 }, 'claude-haiku-4-5') })
    await anthropic.messages.create(body)
    expect(server.requests[0]!.body.model).toBe('claude-haiku-4-5')
    expect(events[0]!.result!.amounts.cost).toBe(10 + 10) // 10 × $1 + 2 × $5 per million
  })
})

describe('wrapAnthropic: clients made from the wrapped client', () => {
  it('gates a client made with withOptions', async () => {
    const { anthropic, events, used } = setup()
    server.reply({ json: anthropicMessage('Hello.', { input_tokens: 10, output_tokens: 2 }) })
    await anthropic.withOptions({ timeout: 5000 }).messages.create(body)
    server.reply({
      events: anthropicEvents(['Hi'], { input_tokens: 11, output_tokens: 1 }, 3),
      named: true,
    })
    await anthropic.withOptions({ timeout: 5000 }).withOptions({}).messages.stream(body).finalMessage()
    expect(events.map((event) => event.result!.amounts.tokens)).toEqual([12, 14])
    expect(await used('daily-tokens')).toMatchObject({ used: 26, held: 0 })
  })
})
