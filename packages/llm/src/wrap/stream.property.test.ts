/**
 * Streams of any shape, through the official SDKs against a local server, consumed in any way:
 * every call is settled or released exactly once and leaves no hold behind. The events are the
 * real ones, cut, dropped, repeated, reordered, mixed with errors, pings and junk; the caller reads
 * them all, breaks out, throws, or (Anthropic) asks for the final message.
 */
import Anthropic from '@anthropic-ai/sdk'
import { createTollgate, type PolicyInput } from '@tollgate/core'
import { fakeClock } from '@tollgate/core/testing'
import fc from 'fast-check'
import OpenAI from 'openai'
import { afterAll, beforeAll, expect, it, vi } from 'vitest'
import { withDefaultPrices } from '../prices.js'
import { anthropicEvents, chatChunk, chatUsageChunk, openAIUsage } from '../testing/fixtures.js'
import { type ProviderServer, startProviderServer } from '../testing/provider-server.js'
import { wrapAnthropic } from './anthropic.js'
import { wrapOpenAI } from './openai.js'
import type { SettleEvent } from './options.js'

const subject = { org: 'acme', user: 'u1' }
const policy: PolicyInput = withDefaultPrices({
  rules: [
    { id: 'daily-tokens', per: 'user', limits: { tokens: 10_000_000 }, window: 'day' },
    { id: 'monthly-cost', per: 'org', limits: { cost: 1000 }, window: 'month' },
    { id: 'one-at-a-time', per: 'user', limits: { concurrency: 1 } },
  ],
})
const exact = { subject, timeBudgetMs: Number.POSITIVE_INFINITY }

let server: ProviderServer
beforeAll(async () => {
  server = await startProviderServer()
  // the OpenAI SDK logs the junk events it skips
  vi.spyOn(console, 'error').mockImplementation(() => {})
})
afterAll(async () => {
  vi.restoreAllMocks()
  await server.close()
})

/** Settle events, and a promise of the first (a stream left early settles once its iterator returns). */
function recorder() {
  const settles: SettleEvent[] = []
  let first!: () => void
  const settled = new Promise<void>((resolve) => {
    first = resolve
  })
  const onSettle = (event: SettleEvent) => {
    settles.push(event)
    first()
  }
  return { settles, settled, onSettle }
}

/** What must hold once the call is over: one settle or release, no hold left, nothing negative. */
async function closedOnce(
  gate: ReturnType<typeof createTollgate>,
  { settles, settled }: ReturnType<typeof recorder>,
  thrown: unknown,
) {
  await settled // a call never closed fails by the test's timeout
  await new Promise((resolve) => setImmediate(resolve)) // room for a second, wrong, settle
  const states = await gate.usage({ subject })
  return (
    (thrown === undefined || thrown instanceof Error) &&
    settles.length === 1 &&
    states.every((state) => state.held === 0 && state.used >= 0)
  )
}

const openAIEvent = fc.oneof(
  fc.string({ maxLength: 12 }).map((text) => chatChunk(text)),
  fc.record({ p: fc.nat(500), c: fc.nat(500) }).map(({ p, c }) => chatUsageChunk(openAIUsage(p, c))),
  fc.constant({ id: 'x', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o-mini', choices: [] }),
  fc.constant('not json'),
  fc.constant({ error: { message: 'boom', type: 'server_error' } }),
)
const consumer = fc.record({
  stopAt: fc.option(fc.nat(8)),
  stop: fc.constantFrom('break', 'throw'),
})

/** Reads a stream as `how` says: to its end, or breaking out (or throwing) after `stopAt` items. */
async function consume(stream: AsyncIterable<unknown>, how: { stopAt: number | null; stop: string }) {
  let read = 0
  for await (const _ of stream) {
    if (how.stopAt === null || read++ < how.stopAt) continue
    if (how.stop === 'throw') throw new Error('the caller gave up')
    break
  }
}

it('OpenAI: any chat stream, read in any way, is closed once and leaves no hold', {
  timeout: 30_000,
}, async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(openAIEvent, { maxLength: 8 }),
      fc.constantFrom('end' as const, 'cut' as const),
      fc.boolean(),
      consumer,
      async (events, after, done, how) => {
        server.reset()
        server.reply({ events, after, done })
        const gate = createTollgate({ policy, clock: fakeClock() })
        const record = recorder()
        const client = new OpenAI({ apiKey: 't', baseURL: `${server.url}/v1`, maxRetries: 0 })
        const openai = wrapOpenAI(client, gate, { ...exact, onSettle: record.onSettle })
        let thrown: unknown
        try {
          const stream = await openai.chat.completions.create({
            model: 'gpt-4o-mini',
            messages: [{ role: 'user', content: 'hi' }],
            stream: true,
            stream_options: { include_usage: true },
          })
          await consume(stream, how)
        } catch (error) {
          thrown = error
        }
        return closedOnce(gate, record, thrown)
      },
    ),
    { numRuns: 150 },
  )
})

/** Events an Anthropic stream may also carry, or carry twice. */
const extras = [
  { event: 'ping', data: { type: 'ping' } },
  { event: 'error', data: { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } } },
  {
    event: 'message_delta',
    data: { type: 'message_delta', delta: { stop_reason: 'end_turn' }, usage: { output_tokens: 99 } },
  },
  { event: 'message_delta', data: { type: 'message_delta', delta: { stop_reason: 'end_turn' }, usage: {} } },
]

it('Anthropic: any message stream, read in any way, is closed once and leaves no hold', {
  timeout: 30_000,
}, async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.string({ maxLength: 10 }), { maxLength: 4 }),
      fc.nat(300),
      fc.option(fc.nat(300)),
      fc.array(fc.tuple(fc.nat(12), fc.nat(extras.length)), { maxLength: 3 }),
      fc.array(fc.nat(12), { maxLength: 2 }),
      fc.constantFrom('end' as const, 'cut' as const),
      fc.constantFrom('iterate', 'finalMessage'),
      consumer,
      async (deltas, input, output, inserts, drops, after, api, how) => {
        let events: unknown[] = anthropicEvents(deltas, { input_tokens: input, output_tokens: 1 }, output)
        for (const at of drops) events = events.filter((_, i) => i !== at % events.length)
        // an extra event, or (the last index) a repeat of one already there
        for (const [at, which] of inserts) {
          const event = extras[which] ?? events[at % events.length] ?? extras[0]
          events.splice(at % (events.length + 1), 0, event)
        }
        server.reset()
        server.reply({ events, named: true, after })
        const gate = createTollgate({ policy, clock: fakeClock() })
        const record = recorder()
        const client = new Anthropic({ apiKey: 't', baseURL: server.url, maxRetries: 0 })
        const anthropic = wrapAnthropic(client, gate, { ...exact, onSettle: record.onSettle })
        const body = {
          model: 'claude-opus-4-5',
          max_tokens: 100,
          messages: [{ role: 'user' as const, content: 'hi' }],
        }
        let thrown: unknown
        try {
          if (api === 'finalMessage') await anthropic.messages.stream(body).finalMessage()
          else await consume(await anthropic.messages.create({ ...body, stream: true }), how)
        } catch (error) {
          thrown = error
        }
        return closedOnce(gate, record, thrown)
      },
    ),
    { numRuns: 150 },
  )
})

it('the check sees a hold left open, and a second settle', async () => {
  const gate = createTollgate({ policy, clock: fakeClock() })
  const decision = await gate.reserve({ subject, model: 'gpt-4o-mini', estimate: { inputTokens: 5 } })
  expect(decision.allowed).toBe(true)
  const record = recorder()
  record.onSettle({} as SettleEvent)
  expect(await closedOnce(gate, record, undefined)).toBe(false) // the hold is still open
  if (decision.allowed) await gate.settle(decision.id, {})
  expect(await closedOnce(gate, record, undefined)).toBe(true)
  record.onSettle({} as SettleEvent)
  expect(await closedOnce(gate, record, undefined)).toBe(false)
})
