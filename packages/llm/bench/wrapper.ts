/**
 * Added latency of a wrapped `openai` call over the bare call, memory store. Two measures:
 *
 * - `server`: against the local wire-format server of the tests (HTTP over loopback, in the
 *   same process) — the figure. Bare and wrapped calls alternate, in an order that
 *   flips every round, each round with a fresh prompt (so no count is served from a cache).
 * - `in-process fetch`: the same clients with a `fetch` that answers at once, which leaves
 *   only CPU: the least noisy view of what the wrapper costs.
 *
 * Added latency is reported two ways: the difference of the medians, and the median of the
 * per-round differences (less sensitive to the machine's noise).
 */
import { createTollgate, type Tollgate } from '@tollgate/core'
import { withDefaultPrices, wrapOpenAI } from '@tollgate/llm'
import OpenAI from 'openai'
import { chatCompletion, openAIUsage } from '../src/testing/fixtures.js'
import { startProviderServer } from '../src/testing/provider-server.js'

export interface LlmBenchRow {
  name: string
  p50Ms: number
  p99Ms: number
  note?: string
}

export const quantile = (sorted: readonly number[], q: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))]!
const sorted = (values: number[]) => [...values].sort((a, b) => a - b)

/** Three rules on three windows, as a product would have: requests per minute, tokens per day, money per month. */
function benchGate(): Tollgate {
  return createTollgate({
    policy: withDefaultPrices({
      rules: [
        { id: 'rpm', per: 'user', limits: { requests: 1_000_000 }, window: '60s' },
        { id: 'daily', per: 'user', limits: { tokens: 1e12 }, window: 'day' },
        { id: 'budget', per: 'org', limits: { cost: 1e6 }, window: 'month' },
      ],
    }),
  })
}

const reply = chatCompletion('Hello there, how are you?', openAIUsage(20, 7))
const bodyOf = (i: number) => ({
  model: 'gpt-4o-mini',
  messages: [
    { role: 'system' as const, content: 'You are a helpful assistant. Answer in one short sentence.' },
    { role: 'user' as const, content: `Say hello in five words. (request ${i})` },
  ],
})

interface Pair {
  bare: number[]
  gated: number[]
  /** Per-round wrapped − bare. */
  added: number[]
}

async function alternate(
  bare: OpenAI,
  wrapped: OpenAI,
  rounds: number,
  warmup: number,
  before: () => void,
): Promise<Pair> {
  const pair: Pair = { bare: [], gated: [], added: [] }
  for (let i = 0; i < warmup + rounds; i++) {
    const body = bodyOf(i)
    const order = i % 2 === 0 ? [bare, wrapped] : [wrapped, bare]
    const times: number[] = []
    for (const client of order) {
      before()
      const start = performance.now()
      await client.chat.completions.create(body)
      times.push(performance.now() - start)
    }
    if (i < warmup) continue
    const [b, w] = i % 2 === 0 ? times : [times[1]!, times[0]!]
    pair.bare.push(b!)
    pair.gated.push(w!)
    pair.added.push(w! - b!)
  }
  return pair
}

function rows(label: string, pair: Pair): LlmBenchRow[] {
  const bare = sorted(pair.bare)
  const gated = sorted(pair.gated)
  const added = quantile(gated, 0.5) - quantile(bare, 0.5)
  const paired = quantile(sorted(pair.added), 0.5)
  return [
    { name: `openai call, bare (${label})`, p50Ms: quantile(bare, 0.5), p99Ms: quantile(bare, 0.99) },
    {
      name: `openai call, wrapped (${label})`,
      p50Ms: quantile(gated, 0.5),
      p99Ms: quantile(gated, 0.99),
      note: `added at p50: ${added.toFixed(3)} ms, paired median ${paired.toFixed(3)} ms (target < 0.2 ms)`,
    },
  ]
}

/** Bare and wrapped calls against the local server (`rounds` of each, after `warmup`). */
export async function serverBench(rounds = 2000, warmup = 200): Promise<LlmBenchRow[]> {
  const server = await startProviderServer()
  try {
    const client = new OpenAI({ apiKey: 'bench', baseURL: `${server.url}/v1`, maxRetries: 0 })
    const wrapped = wrapOpenAI(client, benchGate(), { subject: { org: 'acme', user: 'u1' } })
    const pair = await alternate(client, wrapped, rounds, warmup, () => server.reply({ json: reply }))
    return rows('local server', pair)
  } finally {
    await server.close()
  }
}

/** The same with a `fetch` that answers at once: the wrapper's CPU alone. */
export async function inProcessBench(rounds = 5000, warmup = 1000): Promise<LlmBenchRow[]> {
  const text = JSON.stringify(reply)
  const fetch = async () => new Response(text, { headers: { 'content-type': 'application/json' } })
  const client = new OpenAI({ apiKey: 'bench', baseURL: 'http://bench.invalid/v1', maxRetries: 0, fetch })
  const wrapped = wrapOpenAI(client, benchGate(), { subject: { org: 'acme', user: 'u1' } })
  return rows('in-process fetch', await alternate(client, wrapped, rounds, warmup, () => {}))
}
