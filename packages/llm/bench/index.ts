/**
 * `@tollgate/llm` figures for `pnpm bench`: estimation time for ordinary and adversarial
 * prompts, and the latency a wrapped `openai` call adds over the bare call (memory store).
 * It measures the built packages (`@tollgate/llm`, `@tollgate/core` from `dist`), as users run
 * them, so build first:
 *
 *   cd packages/llm && npx --yes pnpm@10 build && npx tsx bench/index.ts
 *
 * The root runner calls {@link run}, which prints a table and writes `bench/results/llm.json`.
 * `LLM_BENCH_ROUNDS` sets the rounds of the server measure (default 2000).
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { cpus, loadavg } from 'node:os'
import { estimateChatCompletion } from '@tollgate/llm'
import { inProcessBench, type LlmBenchRow, quantile, serverBench } from './wrapper.js'

export type { LlmBenchRow } from './wrapper.js'

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

const prose = (length: number, salt = 0) => {
  const words =
    'the quota engine holds an estimate before each call and settles what the provider reports'.split(' ')
  let text = ''
  for (let i = salt; text.length < length; i++)
    text += `${words[(i * 7) % words.length]}${i % 13 === 12 ? '. ' : ' '}`
  return text
}

/**
 * Estimation time per prompt shape. Each run estimates a fresh text (a different salt for
 * prose, a different prefix otherwise), so no run is served from the count cache.
 */
export function estimationBench(runs = 50): LlmBenchRow[] {
  const prompts: [string, (i: number) => string][] = [
    ['estimate: chat, 2 KB prose', (i) => prose(2_000, i)],
    ['estimate: chat, 100 KB prose', (i) => prose(100_000, i)],
    ['estimate: chat, 1 MB random ASCII', (i) => `${i} ${randomText(1_000_000, 33, 94)}`],
    ['estimate: chat, 1 MB random ASCII + spaces', (i) => `${i} ${randomText(1_000_000, 32, 95)}`],
    ['estimate: chat, 1 MB random CJK', (i) => `${i} ${randomText(1_000_000, 0x4e00, 20_000)}`],
    ['estimate: chat, 1 MB one repeated letter', (i) => `${i} ${'a'.repeat(1_000_000)}`],
  ]
  return prompts.map(([name, text]) => {
    // through JSON, as a prompt arrives in a request body: a flat string, not a concatenation
    const bodies = Array.from({ length: runs }, (_, i) => ({
      model: 'gpt-4o',
      messages: [{ role: 'user', content: JSON.parse(JSON.stringify(text(i))) as string }],
    }))
    let bounded = false
    let i = 0
    const samples = time(runs, () => {
      bounded = estimateChatCompletion(bodies[i++]!).bounded
    })
    return {
      name,
      p50Ms: quantile(samples, 0.5),
      p99Ms: quantile(samples, 0.99),
      note: bounded ? 'bounded' : 'exact',
    }
  })
}

export async function runLlmBench(): Promise<LlmBenchRow[]> {
  const rounds = Number(process.env.LLM_BENCH_ROUNDS ?? 2000)
  return [...estimationBench(), ...(await inProcessBench()), ...(await serverBench(rounds))]
}

/** The suite entry point for the repository's `pnpm bench`: print, and write `bench/results/llm.json`. */
export async function run(): Promise<void> {
  const rows = await runLlmBench()
  for (const row of rows)
    console.log(
      `${row.name.padEnd(44)} p50 ${row.p50Ms.toFixed(3).padStart(8)} ms  p99 ${row.p99Ms.toFixed(3).padStart(8)} ms  ${row.note ?? ''}`,
    )
  const path = new URL('../../../bench/results/llm.json', import.meta.url)
  await mkdir(new URL('.', path), { recursive: true })
  const environment = {
    date: new Date().toISOString(),
    node: process.version,
    cores: cpus().length,
    loadAverage: Number(loadavg()[0]!.toFixed(2)),
  }
  await writeFile(path, `${JSON.stringify({ suite: 'llm', ...environment, rows }, null, 2)}\n`)
}

if (import.meta.url === `file://${process.argv[1]}`) await run()
