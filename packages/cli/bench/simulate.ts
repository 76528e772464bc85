/**
 * `tollgate simulate` at scale: a million synthetic requests (a day of traffic from 20,000
 * users in 200 workspaces on four plans) replayed through an eight-rule SaaS policy, end to
 * end as the command runs it: reading and parsing the JSON-lines file, reserving and settling
 * every call on the memory store, folding the summary. The file is written first, untimed.
 *
 * Run alone with `npx tsx packages/cli/bench/simulate.ts [requests] [--report]`, or list `run`
 * (a `() => Promise<void>` suite) in the repository's bench.
 */
import { createWriteStream } from 'node:fs'
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises'
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import type { PolicyInput } from '@tollgate/core'
import { simulateFile } from '../src/simulate/file.js'

/** The result of one run. */
export interface SimulateBenchResult {
  requests: number
  fileMb: number
  /** Wall time of the summary-only simulation in one thread. */
  seconds: number
  requestsPerSecond: number
  /** Wall time sharded by tenant across worker threads (2 to 4), and how many. */
  shardedSeconds: number
  workers: number
  /** Wall time with usage over time recorded for `--report`, sharded (when measured). */
  reportSeconds: number | null
  allowed: number
  refused: number
}

/** Eight rules in the shape of examples/simulate/policy.yaml. */
export const policy: PolicyInput = {
  tenant: 'org',
  models: {
    'gpt-4o-mini': { tier: 'low', price: { input: 0.15, output: 0.6 } },
    'gpt-4o': { tier: 'frontier', price: { input: 2.5, output: 10 } },
    o1: { tier: 'premium', price: { input: 15, output: 60 } },
  },
  plans: {
    free: { models: ['tier:low'], otherwise: { downgrade: 'gpt-4o-mini' } },
    starter: { models: ['tier:low', 'tier:frontier'], otherwise: { downgrade: 'gpt-4o' } },
    pro: {},
    enterprise: {},
  },
  access: [
    { match: { tier: 'premium' }, require: { flags: ['premium'] }, otherwise: { downgrade: 'gpt-4o' } },
  ],
  rules: [
    { id: 'key-burst', per: 'key', limits: { requests: 20 }, window: { bucket: '1m' } },
    {
      id: 'user-daily-free',
      match: { plan: 'free' },
      per: 'user',
      limits: { tokens: 40_000 },
      window: 'day',
      alerts: [0.8],
    },
    {
      id: 'user-daily',
      match: { plan: ['starter', 'pro'] },
      per: 'user',
      limits: { tokens: 400_000 },
      window: 'day',
      alerts: [0.8],
    },
    {
      id: 'org-monthly-starter',
      match: { plan: 'starter' },
      per: 'org',
      limits: { cost: 50 },
      window: 'month',
    },
    { id: 'org-monthly-pro', match: { plan: 'pro' }, per: 'org', limits: { cost: 500 }, window: 'month' },
    {
      id: 'org-daily-frontier',
      match: { tier: 'frontier' },
      per: 'org',
      limits: { cost: 20 },
      window: 'day',
      fallback: 'gpt-4o-mini',
    },
    { id: 'org-inflight', per: 'org', limits: { concurrency: 40 } },
    { id: 'org-hourly', per: 'org', limits: { requests: 400 }, window: 'hour', mode: 'shadow' },
  ],
}

const PLANS = ['free', 'starter', 'pro', 'enterprise'] as const
const MODELS = ['gpt-4o-mini', 'gpt-4o-mini', 'gpt-4o-mini', 'gpt-4o', 'o1'] as const
const FEATURES = ['chat', 'summarize', 'code-review'] as const

/** Write `requests` lines of a day of traffic to `path`, deterministically. */
export async function writeTraffic(path: string, requests: number): Promise<void> {
  let seed = 12345
  const next = () => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0
    return seed / 4294967296
  }
  const out = createWriteStream(path)
  const start = Date.parse('2026-03-10T00:00:00Z')
  const step = 86_400_000 / requests
  let chunk = ''
  for (let i = 0; i < requests; i++) {
    const u = Math.floor(next() ** 2 * 20_000) // a long tail: low ids are the heavy users
    const org = u % 200
    const plan = PLANS[org % 4]!
    const output = 50 + Math.floor(next() * 700)
    chunk +=
      `{"t":${Math.floor(start + i * step)},"subject":{"org":"org-${org}","user":"u-${u}","key":"k-${u}"},` +
      `"attributes":{"plan":"${plan}","flags":${plan === 'enterprise' ? '["premium"]' : '[]'}},` +
      `"model":"${MODELS[Math.floor(next() * 5)]}","feature":"${FEATURES[i % 3]}",` +
      `"inputTokens":${100 + Math.floor(next() * 2000)},"maxOutputTokens":1024,"outputTokens":${output},` +
      `"durationMs":${400 + output * 20}}\n`
    if (chunk.length > 1 << 20) {
      if (!out.write(chunk)) await new Promise<void>((resolve) => out.once('drain', () => resolve()))
      chunk = ''
    }
  }
  out.end(chunk)
  await new Promise<void>((resolve, reject) => out.on('finish', () => resolve()).on('error', reject))
}

/**
 * Generate `requests` synthetic requests (default `BENCH_SIMULATE_REQUESTS` or 1,000,000), time
 * the simulation sharded and in one thread, print the figures and return them. `withReport`
 * also times a sharded run that records charts.
 */
export async function measure(
  requests = Number(process.env.BENCH_SIMULATE_REQUESTS ?? 1_000_000),
  withReport = false,
): Promise<SimulateBenchResult> {
  const dir = await mkdtemp(join(tmpdir(), 'tollgate-bench-'))
  const file = join(dir, 'traffic.jsonl')
  try {
    await writeTraffic(file, requests)
    const fileMb = (await stat(file)).size / 2 ** 20
    const threads = Math.max(2, Math.min(4, availableParallelism()))
    const sharded = (await simulateFile(policy, file, { workers: threads })).summary
    const { summary } = await simulateFile(policy, file, { workers: 1 })
    if (sharded.allowed !== summary.allowed || sharded.refused !== summary.refused)
      throw new Error('the sharded simulation disagrees with the one-thread simulation')
    const seconds = summary.elapsedMs / 1000
    const reportSeconds = withReport
      ? (await simulateFile(policy, file, { series: true, workers: threads })).summary.elapsedMs / 1000
      : null
    const result: SimulateBenchResult = {
      requests: summary.requests,
      fileMb,
      seconds,
      requestsPerSecond: summary.requests / seconds,
      shardedSeconds: sharded.elapsedMs / 1000,
      workers: sharded.workers,
      reportSeconds,
      allowed: summary.allowed,
      refused: summary.refused,
    }
    const rate = (s: number) => `${Math.round(summary.requests / s).toLocaleString('en-US')} requests/s`
    console.log(
      `\ntollgate simulate: ${summary.requests.toLocaleString('en-US')} requests (${fileMb.toFixed(0)} MB of JSON lines), ` +
        `8 rules, memory store, load average ${loadavg()[0]!.toFixed(2)} on ${cpus().length} cores\n` +
        `  sharded by tenant (${sharded.workers} threads): ${result.shardedSeconds.toFixed(1)} s (${rate(result.shardedSeconds)})\n` +
        `  one thread:                     ${seconds.toFixed(1)} s (${rate(seconds)})` +
        (reportSeconds === null ? '' : `\n  with --report charts, sharded:  ${reportSeconds.toFixed(1)} s`) +
        `\n  allowed ${summary.allowed.toLocaleString('en-US')}, refused ${summary.refused.toLocaleString('en-US')}`,
    )
    return result
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

/** The `pnpm bench` suite: {@link measure} a million requests, and write `bench/results/simulate.json`. */
export async function run(): Promise<void> {
  const result = await measure()
  const file = fileURLToPath(new URL('../../../bench/results/simulate.json', import.meta.url))
  await mkdir(dirname(file), { recursive: true })
  await writeFile(
    file,
    `${JSON.stringify({ suite: 'simulate', date: new Date().toISOString(), node: process.version, cores: cpus().length, loadAverage: loadavg()[0], ...result }, null, 2)}\n`,
  )
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const count = process.argv[2] && /^\d+$/.test(process.argv[2]) ? Number(process.argv[2]) : undefined
  await measure(count, process.argv.includes('--report'))
}
