import { costOf, createTollgate, type PolicyInput, TollgateError } from '@tollgate/core'
import { fakeClock, unhandledRejections } from '@tollgate/core/testing'
import OpenAI from 'openai'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { estimateChatCompletion } from '../estimate/openai.js'
import { withDefaultPrices } from '../prices.js'
import { chatChunk, chatCompletion, chatUsageChunk, openAIUsage } from '../testing/fixtures.js'
import { type ProviderServer, startProviderServer } from '../testing/provider-server.js'
import { countTokens } from '../tokens/count.js'
import { wrapOpenAI } from './openai.js'
import type { SettleEvent, WrapOptions } from './options.js'

const subject = { org: 'acme', user: 'u1' }
const exact = { timeBudgetMs: Number.POSITIVE_INFINITY }
const basePolicy: PolicyInput = {
  access: [{ match: { plan: 'free' }, allow: ['gpt-4o-mini'], otherwise: { downgrade: 'gpt-4o-mini' } }],
  rules: [
    { id: 'daily-tokens', per: 'user', limits: { tokens: 100_000 }, window: 'day' },
    { id: 'monthly-cost', per: 'org', limits: { cost: 10 }, window: 'month' },
  ],
}
const messages = [
  { role: 'system' as const, content: 'You are terse.' },
  { role: 'user' as const, content: 'Say hello.', name: 'ada' },
]

let server: ProviderServer
beforeAll(async () => {
  server = await startProviderServer()
})
afterAll(() => server.close())
beforeEach(() => {
  server.reset()
})

function setup(options: Partial<WrapOptions> = {}, policy: PolicyInput = basePolicy) {
  const gate = createTollgate({ policy: withDefaultPrices(policy), clock: fakeClock() })
  const events: SettleEvent[] = []
  const waiters: (() => void)[] = []
  /** Resolves once `n` calls have settled or released. */
  const settled = (n: number) =>
    new Promise<void>((resolve) => {
      const check = () => (events.length >= n ? resolve() : waiters.push(check))
      check()
    })
  const client = new OpenAI({ apiKey: 'test', baseURL: `${server.url}/v1`, maxRetries: 0 })
  const openai = wrapOpenAI(client, gate, {
    subject,
    timeBudgetMs: Number.POSITIVE_INFINITY,
    onSettle: (event) => {
      events.push(event)
      for (const waiter of waiters.splice(0)) waiter()
    },
    ...options,
  })
  const used = async (rule: string) => {
    const states = await gate.usage({ subject })
    return states.find((s) => s.rule === rule)!
  }
  return { gate, openai, client, events, used, settled }
}

describe('wrapOpenAI: options', () => {
  it('refuses options that cannot work when the client is wrapped, naming the option', () => {
    const gate = createTollgate({ policy: withDefaultPrices(basePolicy), clock: fakeClock() })
    const client = new OpenAI({ apiKey: 'test', baseURL: `${server.url}/v1` })
    const bad: [string, Record<string, unknown>][] = [
      ['maxOutputTokens', { maxOutputTokens: Number.NaN }],
      ['opaquePartTokens', { opaquePartTokens: -1 }],
      ['maxPieceChars', { maxPieceChars: 0 }],
      ['timeBudgetMs', { timeBudgetMs: Number.NaN }],
      ['margin', { margin: Number.NaN }],
      ['unfinishedStreams', { unfinishedStreams: 'all' }],
      ['failedAttempts', { failedAttempts: 'ignore' }],
      ['shrinkOutput.min', { shrinkOutput: { min: 0.5 } }],
      // with max NaN, every call threw `undefined`
      ['attempts.max', { attempts: { max: Number.NaN } }],
      ['attempts.retries', { attempts: { retries: -1 } }],
      ['attempts.initialDelayMs', { attempts: { initialDelayMs: Number.POSITIVE_INFINITY } }],
      ['attempts.fallbacks', { attempts: { fallbacks: 'gpt-4o-mini' } }],
      ['subject', { subject: undefined }],
    ]
    for (const [name, extra] of bad)
      expect(() => wrapOpenAI(client, gate, { subject, ...extra } as never), name).toThrow(
        new RegExp(`^wrapOpenAI: ${name.replace('.', '\\.')} (must|is required)`),
      )
    expect(() =>
      wrapOpenAI(client, gate, {
        subject,
        timeBudgetMs: Number.POSITIVE_INFINITY,
        attempts: { max: 1, retries: 0 },
      }),
    ).not.toThrow()
  })

  it('refuses a per-request maxRetries that is no count, before any request', async () => {
    const { openai } = setup()
    // NaN threw `undefined` (which `rejects.toThrow(/…/)` lets pass, hence the explicit checks);
    // an object with no prototype made the message itself throw, naming nothing
    for (const maxRetries of [Number.NaN, Object.create(null)]) {
      const error = await openai.chat.completions
        .create({ model: 'gpt-4o-mini', messages }, { maxRetries })
        .then(
          () => 'resolved',
          (reason: unknown) => reason,
        )
      expect(error).toBeInstanceOf(TypeError)
      expect((error as TypeError).message).toMatch(/^maxRetries must be a whole number/)
    }
    expect(server.requests).toHaveLength(0)
  })
})

describe('wrapOpenAI: chat completions', () => {
  it('holds the estimate, settles the usage, and prices it', async () => {
    const { openai, events, used } = setup()
    server.reply({ json: chatCompletion('Hello.', openAIUsage(1000, 50, 200, 10)) })
    const body = { model: 'gpt-4o-mini', messages }
    const completion = await openai.chat.completions.create(body)
    expect(completion.choices[0]!.message.content).toBe('Hello.')
    expect(server.requests[0]!.body).toEqual(body)

    const [event] = events
    const estimate = estimateChatCompletion(body, { ...exact, defaultMaxOutputTokens: 1024 })
    expect(event!.decision.reservation.amounts).toMatchObject({
      inputTokens: estimate.inputTokens,
      outputTokens: 1024,
    })
    expect(event!.metered).toMatchObject({ estimated: false, reasoningTokens: 10 })
    // gpt-4o-mini: 800 × $0.15 + 200 cached × $0.075 + 50 × $0.60 per million = 165 micro-dollars
    expect(event!.result!.amounts).toMatchObject({
      inputTokens: 1000,
      outputTokens: 50,
      tokens: 1050,
      cost: 165,
    })
    expect(await used('daily-tokens')).toMatchObject({ used: 1050, held: 0 })
  })

  it('counts a fractional usage up, and settles at the estimate a usage the gate refuses', async () => {
    const { openai, events, used } = setup()
    server.reply({ json: chatCompletion('Hello.', openAIUsage(10.2, 4.5)) })
    await openai.chat.completions.create({ model: 'gpt-4o-mini', messages })
    expect(events[0]!.result!.amounts).toMatchObject({ inputTokens: 11, outputTokens: 5 })
    // more tokens than any call can use (past 1e12): refused by the gate, so the estimate is settled
    server.reply({ json: chatCompletion('Hello.', openAIUsage(5e12, 1)) })
    const body = { model: 'gpt-4o-mini', messages, max_tokens: 100 }
    await openai.chat.completions.create(body)
    expect(events[1]).toMatchObject({
      outcome: 'settled',
      error: expect.objectContaining({ code: 'invalid_amount' }),
    })
    expect(events[1]!.result).toMatchObject({ status: 'settled' })
    const estimate = estimateChatCompletion(body, exact)
    expect(await used('daily-tokens')).toMatchObject({ used: 16 + estimate.inputTokens + 100, held: 0 })
  })

  it('keeps the estimate of the input when the usage leaves it out (a proxy), never 0', async () => {
    const { openai, events, used } = setup()
    server.reply({ json: chatCompletion('Hello.', { completion_tokens: 50 }) })
    const body = { model: 'gpt-4o-mini', messages }
    await openai.chat.completions.create(body)
    const estimate = estimateChatCompletion(body, exact)
    expect(events[0]!.result!.amounts).toMatchObject({ inputTokens: estimate.inputTokens, outputTokens: 50 })
    expect(events[0]!.metered).toMatchObject({ estimated: false })
    expect(await used('daily-tokens')).toMatchObject({ used: estimate.inputTokens + 50, held: 0 })
  })

  it('asks for usage in a stream, hides the extra chunk from the caller, and settles it', async () => {
    const { openai, events } = setup()
    server.reply({
      events: [
        chatChunk('Hel', undefined, true),
        chatChunk('lo.', undefined, true),
        chatUsageChunk(openAIUsage(30, 2)),
      ],
    })
    const stream = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages, stream: true })
    const chunks = []
    for await (const chunk of stream) chunks.push(chunk)
    expect(server.requests[0]!.body.stream_options).toEqual({ include_usage: true })
    expect(chunks).toHaveLength(2)
    expect(chunks.every((c) => c.choices.length === 1 && !('usage' in c))).toBe(true)
    expect(events[0]).toMatchObject({ end: 'completed', metered: { estimated: false } })
    expect(events[0]!.result!.amounts).toMatchObject({ inputTokens: 30, outputTokens: 2 })
  })

  it('passes the usage chunk through when the caller asked for it', async () => {
    const { openai, events } = setup()
    server.reply({ events: [chatChunk('Hi', undefined, true), chatUsageChunk(openAIUsage(30, 1))] })
    const stream = await openai.chat.completions.create({
      model: 'gpt-4o-mini',
      messages,
      stream: true,
      stream_options: { include_usage: true },
    })
    const chunks = []
    for await (const chunk of stream) chunks.push(chunk)
    expect(chunks).toHaveLength(2)
    expect(chunks[1]!.usage).toMatchObject({ prompt_tokens: 30 })
    expect(events[0]!.result!.amounts).toMatchObject({ inputTokens: 30, outputTokens: 1 })
  })

  it('estimates output from the streamed text, flagged, when the stream carries no usage', async () => {
    const { openai, events } = setup()
    server.reply({ events: [chatChunk('Hello there, '), chatChunk('general Kenobi.')] })
    const body = { model: 'gpt-4o-mini', messages, stream: true as const }
    const stream = await openai.chat.completions.create(body)
    for await (const _ of stream);
    const outputTokens = countTokens('Hello there, general Kenobi.').tokens
    expect(events[0]).toMatchObject({ end: 'completed', metered: { estimated: true } })
    expect(events[0]!.result!.amounts).toMatchObject({
      inputTokens: estimateChatCompletion(body, exact).inputTokens,
      outputTokens,
    })
  })

  it('settles a stream the caller breaks out of from what was streamed', async () => {
    const { openai, events, used } = setup()
    server.reply({ events: [chatChunk('One '), chatChunk('two '), chatChunk('three')], after: 'hold' })
    const stream = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages, stream: true })
    let text = ''
    for await (const chunk of stream) {
      text += chunk.choices[0]!.delta.content
      if (text === 'One two ') break
    }
    await server.holdClosed(0)
    expect(events[0]).toMatchObject({ end: 'aborted', outcome: 'settled', metered: { estimated: true } })
    expect(events[0]!.result!.amounts.outputTokens).toBe(countTokens('One two ').tokens)
    expect((await used('daily-tokens')).held).toBe(0)
  })

  it('settles a stream aborted with its controller', async () => {
    const { openai, events } = setup()
    server.reply({ events: [chatChunk('One '), chatChunk('two ')], after: 'hold' })
    const stream = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages, stream: true })
    let count = 0
    for await (const _ of stream) if (++count === 2) stream.controller.abort()
    expect(events[0]).toMatchObject({ end: 'aborted', metered: { estimated: true } })
    expect(events[0]!.result!.amounts.outputTokens).toBe(countTokens('One two ').tokens)
  })

  it('reports a stream aborted with the SDK’s own abort error as its reason as aborted, not broken', async () => {
    // the OpenAI SDK's APIUserAbortError sets no `name`: only its class tells it is an abort
    const { openai, events } = setup()
    server.reply({ events: [chatChunk('One '), chatChunk('two '), chatChunk('three')], after: 'hold' })
    const stream = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages, stream: true })
    const reason = new OpenAI.APIUserAbortError()
    expect(reason.name).not.toBe('APIUserAbortError')
    let text = ''
    const iterated = (async () => {
      for await (const chunk of stream) {
        text += chunk.choices[0]!.delta.content
        if (text === 'One two ') stream.controller.abort(reason)
      }
    })()
    // the body read fails with the abort's reason, which the SDK (looking for an `AbortError`) throws on
    await expect(iterated).rejects.toBe(reason)
    await server.holdClosed(0)
    expect(events).toHaveLength(1)
    expect(events[0]).toMatchObject({ end: 'aborted', outcome: 'settled', metered: { estimated: true } })
    expect(events[0]!.error).toBe(reason)
    expect(events[0]!.result!.amounts.outputTokens).toBe(countTokens('One two ').tokens)
  })

  it('counts the transcript of streamed audio when a stream is broken off before its usage', async () => {
    const { openai, events } = setup()
    // audio deltas carry a transcript (not in the SDK's types, sent by the API for audio output)
    const audio = (transcript: string) => ({
      ...chatChunk('', 'gpt-4o-audio-preview'),
      choices: [
        { index: 0, delta: { audio: { id: 'a1', transcript, data: 'UklGRiQA' } }, finish_reason: null },
      ],
    })
    const transcript = ['Hello there, ', 'this is a spoken ', 'answer that goes on']
    server.reply({ events: transcript.map(audio), after: 'hold' })
    const body = {
      model: 'gpt-4o',
      messages,
      stream: true as const,
      modalities: ['text' as const, 'audio' as const],
      audio: { voice: 'alloy' as const, format: 'pcm16' as const },
    }
    const stream = await openai.chat.completions.create(body)
    let received = 0
    for await (const _ of stream) if (++received === transcript.length) break
    await server.holdClosed(0)
    expect(events[0]).toMatchObject({ end: 'aborted', metered: { estimated: true } })
    expect(events[0]!.result!.amounts.outputTokens).toBe(countTokens(transcript.join('')).tokens)
  })

  it('keeps the whole hold for an unfinished stream with unfinishedStreams: reserved', async () => {
    const { openai, events } = setup({ unfinishedStreams: 'reserved' })
    server.reply({ events: [chatChunk('One '), chatChunk('two ')], after: 'hold' })
    const stream = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages, stream: true })
    for await (const _ of stream) break
    await server.holdClosed(0)
    const held = events[0]!.decision.reservation.amounts
    const kept = { inputTokens: held.inputTokens, outputTokens: held.outputTokens }
    expect(events[0]).toMatchObject({ end: 'aborted', metered: { estimated: true, usage: kept } })
    expect(events[0]!.result!.amounts).toMatchObject({ ...kept, cost: held.cost })
  })

  it('settles a stream that ran to its end without usage from its text, with unfinishedStreams: reserved', async () => {
    // `reserved` is for streams that do not finish: a completed one is not charged its whole hold
    const { openai, events, used } = setup({ unfinishedStreams: 'reserved' })
    server.reply({ events: [chatChunk('Hello there, '), chatChunk('general Kenobi.')] })
    const body = { model: 'gpt-4o-mini', messages, stream: true as const }
    const stream = await openai.chat.completions.create(body)
    for await (const _ of stream);
    const outputTokens = countTokens('Hello there, general Kenobi.').tokens
    const inputTokens = estimateChatCompletion(body, exact).inputTokens
    expect(events[0]).toMatchObject({ end: 'completed', metered: { estimated: true } })
    expect(events[0]!.metered!.usage).toMatchObject({ outputTokens })
    expect(events[0]!.decision.reservation.amounts.outputTokens).toBe(1024)
    expect(events[0]!.result!.amounts).toMatchObject({ inputTokens, outputTokens })
    expect(await used('daily-tokens')).toMatchObject({ used: inputTokens + outputTokens, held: 0 })
  })

  it.each(['aborted', 'broken'] as const)(
    'settles the output streamed past a smaller hold, for a stream %s, with unfinishedStreams: reserved',
    async (end) => {
      // no cap in the request: 8 output tokens reserved; 20 streamed before the stream stopped.
      // `reserved` settled the 8 of the hold, below the 20 that `streamed` settles
      const words = Array.from({ length: 20 }, () => ' word')
      const stop = async (mode: 'streamed' | 'reserved') => {
        server.reset()
        const { openai, events, used } = setup({ unfinishedStreams: mode, maxOutputTokens: 8 })
        server.reply({ events: words.map((w) => chatChunk(w)), after: end === 'aborted' ? 'hold' : 'cut' })
        const stream = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages, stream: true })
        let text = ''
        const read = (async () => {
          for await (const chunk of stream) {
            text += chunk.choices[0]!.delta.content
            if (end === 'aborted' && text === words.join('')) break
          }
        })()
        if (end === 'broken') await expect(read).rejects.toThrow()
        else {
          await read
          await server.holdClosed(0)
        }
        expect(events).toHaveLength(1)
        expect(events[0]).toMatchObject({ end, outcome: 'settled', metered: { estimated: true } })
        return { event: events[0]!, text, daily: await used('daily-tokens') }
      }
      const streamed = await stop('streamed')
      const reserved = await stop('reserved')
      const held = reserved.event.decision.reservation.amounts
      const outputTokens = countTokens(reserved.text).tokens
      expect(held.outputTokens).toBe(8)
      expect(outputTokens).toBeGreaterThan(12)
      const inputTokens = held.inputTokens!
      // gpt-4o-mini: $0.15 / $0.60 per million tokens
      expect(reserved.event.result!.amounts).toMatchObject({
        inputTokens,
        outputTokens,
        tokens: inputTokens + outputTokens,
        cost: costOf(inputTokens, 150_000) + costOf(outputTokens, 600_000),
      })
      expect(reserved.event.metered!.usage).toMatchObject({ inputTokens, outputTokens })
      // never below what `streamed` settles, field by field
      for (const field of ['inputTokens', 'outputTokens', 'tokens', 'cost'])
        expect(reserved.event.result!.amounts[field], field).toBeGreaterThanOrEqual(
          streamed.event.result!.amounts[field]!,
        )
      expect(reserved.daily).toMatchObject({ used: inputTokens + outputTokens, held: 0 })
    },
  )

  it('settles a stream the server cuts mid-way from what arrived', async () => {
    const { openai, events } = setup()
    server.reply({ events: [chatChunk('Partial '), chatChunk('answer')], after: 'cut' })
    const stream = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages, stream: true })
    let text = ''
    await expect(
      (async () => {
        for await (const chunk of stream) text += chunk.choices[0]!.delta.content
      })(),
    ).rejects.toThrow()
    expect(events[0]).toMatchObject({ end: 'broken', outcome: 'settled', metered: { estimated: true } })
    expect(events[0]!.result!.amounts.outputTokens).toBe(countTokens(text).tokens)
    expect(events[0]!.result!.amounts.outputTokens).toBeGreaterThan(0)
  })

  it.each([429, 500])('charges nothing but the request when the API answers %i', async (status) => {
    const policy = {
      rules: [
        ...basePolicy.rules!,
        { id: 'rpd', per: 'user', limits: { requests: 100 }, window: 'day' as const },
      ],
    }
    const { openai, events, used } = setup({}, policy)
    server.reply({ json: { error: { message: 'nope', type: 'server_error', code: null } }, status })
    await expect(openai.chat.completions.create({ model: 'gpt-4o-mini', messages })).rejects.toMatchObject({
      status,
    })
    expect(events[0]).toMatchObject({
      end: 'failed',
      outcome: 'settled',
      result: { status: 'settled', amounts: { requests: 1, tokens: 0, cost: 0 } },
    })
    expect(await used('daily-tokens')).toMatchObject({ used: 0, held: 0 })
    expect(await used('rpd')).toMatchObject({ used: 1, held: 0 })
  })

  it('releases the whole hold of a failed call with failedAttempts: release', async () => {
    const { openai, events, used } = setup({ failedAttempts: 'release' })
    server.reply({ json: { error: { message: 'nope', type: 'server_error', code: null } }, status: 500 })
    await expect(openai.chat.completions.create({ model: 'gpt-4o-mini', messages })).rejects.toThrow()
    expect(events[0]).toMatchObject({ end: 'failed', outcome: 'released', result: { status: 'released' } })
    expect(await used('daily-tokens')).toMatchObject({ used: 0, held: 0 })
  })

  it('an async onSettle that rejects is dropped, not an unhandled rejection (that ended the process)', async () => {
    const unhandled = await unhandledRejections(async () => {
      const { gate } = setup()
      const client = new OpenAI({ apiKey: 't', baseURL: `${server.url}/v1`, maxRetries: 0 })
      const openai = wrapOpenAI(client, gate, {
        subject,
        onSettle: async () => {
          throw new Error('the billing queue is down')
        },
      })
      server.reply({ json: chatCompletion('Hi.', openAIUsage(12, 3)) })
      await openai.chat.completions.create({ model: 'gpt-4o-mini', messages })
    })
    expect(unhandled).toEqual([])
  })

  it('charges nothing when the server cannot be reached', async () => {
    const { gate, events } = setup()
    const closed = await startProviderServer()
    await closed.close()
    const openai = wrapOpenAI(new OpenAI({ apiKey: 't', baseURL: `${closed.url}/v1`, maxRetries: 0 }), gate, {
      subject,
      onSettle: (e) => events.push(e),
    })
    await expect(openai.chat.completions.create({ model: 'gpt-4o-mini', messages })).rejects.toThrow()
    expect(events[0]).toMatchObject({ end: 'failed', result: { amounts: { tokens: 0, cost: 0 } } })
  })

  it('throws a TollgateError carrying the decision, before any request', async () => {
    const { openai, events } = setup(
      {},
      { rules: [{ id: 'tiny', per: 'user', limits: { tokens: 10 }, window: 'day' }] },
    )
    const error = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages }).catch((e) => e)
    expect(TollgateError.isInstance(error)).toBe(true)
    expect(error.decision).toMatchObject({ allowed: false, code: 'quota_exceeded', rule: 'tiny' })
    expect(server.requests).toHaveLength(0)
    expect(events).toHaveLength(0)
  })

  it('sends the downgraded model and prices the call at its price', async () => {
    const { openai, events } = setup({ attributes: { plan: 'free' } })
    server.reply({ json: chatCompletion('Hi', openAIUsage(100, 10), 'gpt-4o-mini') })
    await openai.chat.completions.create({ model: 'gpt-4o', messages })
    expect(server.requests[0]!.body.model).toBe('gpt-4o-mini')
    expect(events[0]!.decision.downgrade).toMatchObject({ from: 'gpt-4o', to: 'gpt-4o-mini' })
    expect(events[0]!.result!.amounts.cost).toBe(15 + 6) // 100 × 0.15 + 10 × 0.60
  })

  it('injects the default output cap when asked, and reserves it', async () => {
    const { openai, events } = setup({ injectMaxOutputTokens: true, maxOutputTokens: 256 })
    server.reply({ json: chatCompletion('Hi', openAIUsage(20, 1)) })
    await openai.chat.completions.create({ model: 'gpt-4o-mini', messages })
    expect(server.requests[0]!.body.max_completion_tokens).toBe(256)
    expect(events[0]!.decision.reservation.amounts.outputTokens).toBe(256)
  })

  it('reads the subject per call, from a function', async () => {
    let calls = 0
    const { openai, events } = setup({ subject: async () => ({ org: 'acme', user: `u${++calls}` }) })
    server.reply(
      { json: chatCompletion('a', openAIUsage(5, 1)) },
      { json: chatCompletion('b', openAIUsage(5, 1)) },
    )
    await openai.chat.completions.create({ model: 'gpt-4o-mini', messages })
    await openai.chat.completions.create({ model: 'gpt-4o-mini', messages })
    expect(calls).toBe(2)
    expect(events.map((e) => e.decision.limits.find((l) => l.rule === 'daily-tokens')!.partition)).toEqual([
      { user: 'u1' },
      { user: 'u2' },
    ])
  })

  it('gates the SDK helpers built on create, and keeps withResponse', async () => {
    const { openai, events } = setup()
    server.reply({
      events: [chatChunk('Hi'), chatChunk('', undefined, false, 'stop'), chatUsageChunk(openAIUsage(12, 1))],
    })
    const final = await openai.chat.completions
      .stream({ model: 'gpt-4o-mini', messages })
      .finalChatCompletion()
    expect(final.choices[0]!.message.content).toBe('Hi')
    expect(events[0]!.result!.amounts).toMatchObject({ inputTokens: 12, outputTokens: 1 })

    server.reply({ json: chatCompletion('Hey', openAIUsage(7, 2)) })
    const { data, response } = await openai.chat.completions
      .create({ model: 'gpt-4o-mini', messages })
      .withResponse()
    expect(response.status).toBe(200)
    expect(data.choices[0]!.message.content).toBe('Hey')
    expect(events[1]!.result!.amounts).toMatchObject({ inputTokens: 7, outputTokens: 2 })
  })

  it('settles a raw response read with asResponse', async () => {
    const { openai, events, settled } = setup()
    server.reply({ json: chatCompletion('Raw', openAIUsage(9, 3)) })
    const raw = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages }).asResponse()
    expect(((await raw.json()) as { usage: { prompt_tokens: number } }).usage.prompt_tokens).toBe(9)
    await settled(1)
    expect(events[0]!.result!.amounts).toMatchObject({ inputTokens: 9, outputTokens: 3 })
  })
})

describe('wrapOpenAI: clients made from the wrapped client', () => {
  it('gates a client made with withOptions, streamed or not, and one made from it', async () => {
    const { openai, events, used } = setup()
    server.reply({ events: [chatChunk('Hi', 'gpt-4o-mini', true), chatUsageChunk(openAIUsage(12, 1))] })
    const stream = await openai
      .withOptions({ timeout: 5000 })
      .chat.completions.create({ model: 'gpt-4o-mini', messages, stream: true })
    const chunks: unknown[] = []
    for await (const chunk of stream) chunks.push(chunk)
    expect(server.requests[0]!.body.stream_options).toEqual({ include_usage: true })
    expect(chunks).toHaveLength(1) // the usage chunk Tollgate asked for is hidden
    expect(events[0]).toMatchObject({ end: 'completed', metered: { estimated: false } })
    expect(events[0]!.result!.amounts).toMatchObject({ inputTokens: 12, outputTokens: 1 })

    server.reply({ json: chatCompletion('Hello.', openAIUsage(20, 2)) })
    await openai
      .withOptions({ timeout: 5000 })
      .withOptions({ defaultHeaders: { 'x-team': 'a' } })
      .chat.completions.create({ model: 'gpt-4o-mini', messages })
    expect(events[1]!.result!.amounts).toMatchObject({ inputTokens: 20, outputTokens: 2 })
    expect(await used('daily-tokens')).toMatchObject({ used: 13 + 22, held: 0 })
  })

  it('retries as the options of the new client say, each attempt reserved', async () => {
    const { openai, events } = setup({ attempts: { sleep: async () => {} } })
    server.reply(
      { json: { error: { message: 'busy', type: 'server_error' } }, status: 500 },
      { json: chatCompletion('Hello.', openAIUsage(20, 2)) },
    )
    await openai.withOptions({ maxRetries: 1 }).chat.completions.create({ model: 'gpt-4o-mini', messages })
    expect(server.requests).toHaveLength(2)
    expect(events.map((event) => event.end)).toEqual(['failed', 'completed'])
  })
})
