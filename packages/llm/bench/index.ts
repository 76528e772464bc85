/**
 * `@tollgate/llm` figures for `pnpm bench`: estimation time for ordinary and adversarial
 * prompts, and the latency a wrapped `openai` call adds over the bare call to the same local
 * server (memory store). Run alone with `npx tsx packages/llm/bench/index.ts`, or call
 * `runLlmBench()` from the repository's bench.
 */
import OpenAI from 'openai'
import { createTollgate } from '../../core/src/index.js'
import { estimateChatCompletion } from '../src/estimate/openai.js'
import { withDefaultPrices } from '../src/prices.js'
import { chatCompletion, openAIUsage } from '../src/testing/fixtures.js'
import { startProviderServer } from '../src/testing/provider-server.js'
import { wrapOpenAI } from '../src/wrap/openai.js'

export interface LlmBenchRow {
  name: string
  p50Ms: number
  p99Ms: number
  note?: string
}

const quantile = (sorted: number[], q: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))]!

function time(runs: number, fn: () => unknown): number[] {
  const samples: number[] = []
  for (let i = 0; i < runs; i++) {
    const start = performance.now()
    fn()
    samples.push(performance.now() - start)
  }
  return samples.sort((a, b) => a - b)
}

function randomText(length: number, from: number, span: number): string {
  let seed = 42
  let text = ''
  for (let i = 0; i < length; i++) {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff
    text += String.fromCharCode(from + (seed % span))
  }
  return text
}

const prose = (length: number) => {
  const words =
    'the quota engine holds an estimate before each call and settles what the provider reports'.split(' ')
  let text = ''
  for (let i = 0; text.length < length; i++)
    text += `${words[(i * 7) % words.length]}${i % 13 === 12 ? '. ' : ' '}`
  return text
}

/** Estimation time per prompt shape (each run a fresh estimate, so budgets apply per call). */
export function estimationBench(runs = 50): LlmBenchRow[] {
  const prompts: [string, string][] = [
    ['estimate: chat, 2 KB prose', prose(2_000)],
    ['estimate: chat, 100 KB prose', prose(100_000)],
    ['estimate: chat, 1 MB random ASCII', randomText(1_000_000, 33, 94)],
    ['estimate: chat, 1 MB random ASCII + spaces', randomText(1_000_000, 32, 95)],
    ['estimate: chat, 1 MB random CJK', randomText(1_000_000, 0x4e00, 20_000)],
    ['estimate: chat, 1 MB one repeated letter', 'a'.repeat(1_000_000)],
  ]
  return prompts.map(([name, content]) => {
    const body = { model: 'gpt-4o', messages: [{ role: 'user', content }] }
    let bounded = false
    const samples = time(runs, () => {
      bounded = estimateChatCompletion(body).bounded
    })
    return {
      name,
      p50Ms: quantile(samples, 0.5),
      p99Ms: quantile(samples, 0.99),
      note: bounded ? 'bounded' : 'exact',
    }
  })
}

/** Added latency of a wrapped call: bare and wrapped calls alternate against one local server. */
export async function wrapperBench(calls = 400): Promise<LlmBenchRow[]> {
  const server = await startProviderServer()
  try {
    const gate = createTollgate({
      policy: withDefaultPrices({
        rules: [
          { id: 'rpm', per: 'user', limits: { requests: 1_000_000 }, window: '60s' },
          { id: 'daily', per: 'user', limits: { tokens: 1e12 }, window: 'day' },
          { id: 'budget', per: 'org', limits: { cost: 1e6 }, window: 'month' },
        ],
      }),
    })
    const client = new OpenAI({ apiKey: 'bench', baseURL: `${server.url}/v1`, maxRetries: 0 })
    const wrapped = wrapOpenAI(client, gate, { subject: { org: 'acme', user: 'u1' } })
    const body = {
      model: 'gpt-4o-mini',
      messages: [{ role: 'user' as const, content: 'Say hello in five words.' }],
    }
    const reply = { json: chatCompletion('Hello there, how are you?', openAIUsage(20, 7)) }
    const bare: number[] = []
    const gated: number[] = []
    for (let i = 0; i < calls + 20; i++) {
      for (const [target, samples] of [
        [client, bare],
        [wrapped, gated],
      ] as const) {
        server.reply(reply)
        const start = performance.now()
        await target.chat.completions.create(body)
        if (i >= 20) samples.push(performance.now() - start) // the first 20 rounds warm up
      }
    }
    bare.sort((a, b) => a - b)
    gated.sort((a, b) => a - b)
    const added = quantile(gated, 0.5) - quantile(bare, 0.5)
    return [
      { name: 'openai call, bare', p50Ms: quantile(bare, 0.5), p99Ms: quantile(bare, 0.99) },
      {
        name: 'openai call, wrapped',
        p50Ms: quantile(gated, 0.5),
        p99Ms: quantile(gated, 0.99),
        note: `added at p50: ${added.toFixed(3)} ms (target < 0.2 ms)`,
      },
    ]
  } finally {
    await server.close()
  }
}

export async function runLlmBench(): Promise<LlmBenchRow[]> {
  return [...estimationBench(), ...(await wrapperBench())]
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const row of await runLlmBench())
    console.log(
      `${row.name.padEnd(44)} p50 ${row.p50Ms.toFixed(3).padStart(8)} ms  p99 ${row.p99Ms.toFixed(3).padStart(8)} ms  ${row.note ?? ''}`,
    )
}
