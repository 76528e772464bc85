/**
 * Redis decisions per second and latency: Tollgate on `redisStore()` against six
 * rate-limiter-flexible `RateLimiterRedis` instances for the same six limits (user / team / org ×
 * requests / tokens, calendar minutes, caps nothing reaches), and against the bare round-trip
 * floor (one `EVALSHA` of `return 1`). Every task runs the same number of concurrent loops for
 * the same time on its own fresh ioredis client (same options for all), after a warm-up on that
 * client; subjects rotate over 1000 users, 50 teams and 5 orgs as in the memory suite.
 * Keys live under a prefix unique to the run, deleted at the end, failure or not.
 * See bench/README.md for what each task measures and how to read the ratios.
 */
import { cpus, loadavg } from 'node:os'
import { performance } from 'node:perf_hooks'
import { createTollgate, type PolicyInput, type Subject } from '@tollgate/core'
import { redisStore } from '@tollgate/redis'
import { Redis } from 'ioredis'
import { RateLimiterRedis } from 'rate-limiter-flexible'
import { deleteMatching } from './keys.mjs'
import { environment, printTable, type Row, writeJson } from './report.js'

const TIME_MS = Number(process.env.BENCH_TIME_MS ?? 3_000)
const WARMUP_MS = Number(process.env.BENCH_WARMUP_MS ?? 1_000)
/** Loops running at once in this process, each awaiting one decision at a time. */
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 64)
const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379'
/** `BENCH_AUTOPIPELINING=1`: every task's client batches the commands of one tick into one write. */
const AUTO_PIPELINING = process.env.BENCH_AUTOPIPELINING === '1'
/** Targets of issue 3: throughput multiples of RLF's, and a p99 below RLF's. */
const TARGETS = { reserve: 2.5, reserveSettle: 1.5 }

const USERS = 1_000
const TEAMS = 50
const ORGS = 5
/** User i belongs to team i mod 50, which belongs to org (i mod 50) mod 5. */
const subjects: Subject[] = Array.from({ length: USERS }, (_, i) => ({
  org: `org-${(i % TEAMS) % ORGS}`,
  team: `team-${i % TEAMS}`,
  user: `user-${i}`,
}))
const DIMENSIONS = ['user', 'team', 'org'] as const

const LIMITS = { requests: 1e9, tokens: 1e12 }
/** The memory suite's headline policy: six limits over calendar minutes (a fixed window, like RLF's). */
const policy: PolicyInput = {
  rules: DIMENSIONS.map((dimension) => ({ id: dimension, per: dimension, limits: LIMITS, window: 'minute' })),
}
const estimate = { inputTokens: 100, maxOutputTokens: 100 }
const usage = { inputTokens: 100, outputTokens: 80 }

const RUN = `tgbench-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`

/** A client as the docs recommend (and as `redisStore` requires), the same for every task. */
function connect(): Redis {
  const client = new Redis(REDIS_URL, {
    enableOfflineQueue: false,
    autoResendUnfulfilledCommands: false,
    maxRetriesPerRequest: 1,
    lazyConnect: true,
    enableAutoPipelining: AUTO_PIPELINING,
  })
  client.on('error', () => {})
  return client
}

/** One task: `setup` builds its state on a fresh client and returns one decision for the i-th subject. */
interface Task {
  name: string
  setup(client: Redis, prefix: string): Promise<(i: number) => Promise<void>>
}

/** A gate on the Redis store; the first store error (a timeout: the failure mode decided) fails the task. */
function gateOn(client: Redis, prefix: string, batch = false) {
  let storeError: unknown
  const gate = createTollgate({
    policy,
    store: redisStore({ client, prefix, batch }),
    onStoreError: (error) => {
      storeError ??= error
    },
  })
  return { gate, failed: () => storeError }
}

/** Reserve for the i-th subject; a refusal or a degraded decision would mean we measured the wrong path. */
async function reserve({ gate, failed }: ReturnType<typeof gateOn>, i: number): Promise<string> {
  const decision = await gate.reserve({ subject: subjects[i % USERS]!, estimate })
  if (failed()) throw new Error('store error during the benchmark', { cause: failed() })
  if (!decision.allowed) throw new Error(`refused: ${decision.code} (${decision.message})`)
  if (decision.flags.length > 0) throw new Error(`flagged: ${decision.flags.join(', ')}`)
  return decision.id
}

/** The six limiters a rate-limiter-flexible user would set up for the same policy. */
function limiters(client: Redis, prefix: string) {
  return DIMENSIONS.flatMap((dimension) => [
    {
      dimension,
      cost: 1,
      limiter: new RateLimiterRedis({
        storeClient: client,
        keyPrefix: `${prefix}-${dimension}-requests`,
        points: LIMITS.requests,
        duration: 60,
      }),
    },
    {
      dimension,
      cost: 200,
      limiter: new RateLimiterRedis({
        storeClient: client,
        keyPrefix: `${prefix}-${dimension}-tokens`,
        points: LIMITS.tokens,
        duration: 60,
      }),
    },
  ])
}

const tasks: Task[] = [
  {
    name: 'floor: EVALSHA return 1',
    async setup(client) {
      const sha = (await client.script('LOAD', 'return 1')) as string
      return async () => {
        await client.evalsha(sha, 0)
      }
    },
  },
  ...[false, true].flatMap((batch): Task[] => [
    {
      // Never settled: open reservations pile up (they would expire after the hold TTL) until the clean-up.
      name: `tollgate reserve${batch ? ' (batch: true)' : ''}`,
      async setup(client, prefix) {
        const gate = gateOn(client, prefix, batch)
        return async (i) => {
          await reserve(gate, i)
        }
      },
    },
    {
      name: `tollgate reserve+settle${batch ? ' (batch: true)' : ''}`,
      async setup(client, prefix) {
        const gate = gateOn(client, prefix, batch)
        return async (i) => {
          const result = await gate.gate.settle(await reserve(gate, i), usage)
          if (result.status !== 'settled') throw new Error(`settle: ${result.status}`)
        }
      },
    },
  ]),
  {
    name: 'rlf 6× consume (sequential)',
    async setup(client, prefix) {
      const six = limiters(client, prefix)
      return async (i) => {
        const subject = subjects[i % USERS]!
        for (const { limiter, dimension, cost } of six) await limiter.consume(subject[dimension]!, cost)
      }
    },
  },
  {
    name: 'rlf 6× consume (Promise.all)',
    async setup(client, prefix) {
      const six = limiters(client, prefix)
      return async (i) => {
        const subject = subjects[i % USERS]!
        await Promise.all(
          six.map(({ limiter, dimension, cost }) => limiter.consume(subject[dimension]!, cost)),
        )
      }
    },
  },
]

/** Seconds of CPU Redis has used so far (main thread, user + system). */
async function redisCpu(client: Redis): Promise<number> {
  const info = await client.info('cpu')
  const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? Number.NaN)
  return field('used_cpu_user') + field('used_cpu_sys')
}

/**
 * Runs `CONCURRENCY` loops of `iteration` for `ms`; each loop starts no new decision after the
 * deadline. Returns the latency of every decision (ms) and the time until the last one ended.
 */
async function drive(
  iteration: (i: number) => Promise<void>,
  ms: number,
): Promise<{ latencies: Float64Array; elapsedMs: number }> {
  let latencies = new Float64Array(1 << 16)
  let count = 0
  let next = 0
  const start = performance.now()
  const deadline = start + ms
  const loop = async () => {
    while (performance.now() < deadline) {
      const i = next++
      const t0 = performance.now()
      await iteration(i)
      const t1 = performance.now()
      if (count === latencies.length) {
        const grown = new Float64Array(count * 2)
        grown.set(latencies)
        latencies = grown
      }
      latencies[count++] = t1 - t0
    }
  }
  await Promise.all(Array.from({ length: CONCURRENCY }, loop))
  return { latencies: latencies.subarray(0, count), elapsedMs: performance.now() - start }
}

interface Measured extends Row {
  /** Client CPU (this process, user + system) per decision, µs. */
  clientCpuUs: number
  /** Redis CPU per decision, µs. */
  redisCpuUs: number
}

async function measure(task: Task, index: number, admin: Redis): Promise<Measured> {
  const client = connect()
  try {
    await client.connect()
    const iteration = await task.setup(client, `${RUN}-${index}`)
    await drive(iteration, WARMUP_MS)
    const cpu0 = process.cpuUsage()
    const redis0 = await redisCpu(admin)
    const { latencies, elapsedMs } = await drive(iteration, TIME_MS)
    const redis1 = await redisCpu(admin)
    const cpu = process.cpuUsage(cpu0)
    const n = latencies.length
    const sorted = Float64Array.from(latencies).sort()
    const at = (q: number) => sorted[Math.min(n - 1, Math.ceil(q * n) - 1)]!
    let total = 0
    for (const l of latencies) total += l
    const mean = total / n
    let squares = 0
    for (const l of latencies) squares += (l - mean) ** 2
    const sd = Math.sqrt(squares / (n - 1))
    return {
      name: task.name,
      opsPerSec: (n / elapsedMs) * 1000,
      meanUs: mean * 1000,
      p50Us: at(0.5) * 1000,
      p99Us: at(0.99) * 1000,
      rmePct: ((1.96 * sd) / Math.sqrt(n) / mean) * 100,
      samples: n,
      clientCpuUs: (cpu.user + cpu.system) / n,
      redisCpuUs: ((redis1 - redis0) * 1e6) / n,
    }
  } finally {
    client.disconnect()
  }
}

/** Back-to-back pairs of the interleaved comparison, and how long each half runs. */
const PAIRS = Number(process.env.BENCH_PAIRS ?? 6)
const PAIR_MS = Number(process.env.BENCH_PAIR_MS ?? 1_000)

/**
 * Tollgate's reserve and reserve+settle against RLF's sequential consumes in alternating runs of
 * `PAIR_MS`: the median ratio of back-to-back pairs. On a 2-core VM whose speed drifts over
 * minutes, tasks measured a minute apart can be skewed; pairs run back to back are not.
 */
async function interleaved(): Promise<{ reserve: number; reserveSettle: number }> {
  const names = ['tollgate reserve', 'tollgate reserve+settle', 'rlf 6× consume (sequential)']
  const clients: Redis[] = []
  try {
    const iterations: ((i: number) => Promise<void>)[] = []
    for (const [k, name] of names.entries()) {
      const client = connect()
      clients.push(client)
      await client.connect()
      iterations.push(await tasks.find((t) => t.name === name)!.setup(client, `${RUN}-pairs-${k}`))
    }
    for (const iteration of iterations) await drive(iteration, WARMUP_MS)
    const rate = async (iteration: (i: number) => Promise<void>) => {
      const { latencies, elapsedMs } = await drive(iteration, PAIR_MS)
      return (latencies.length / elapsedMs) * 1000
    }
    const [reserveOnly, reserveSettle, rlf] = iterations as [
      (i: number) => Promise<void>,
      (i: number) => Promise<void>,
      (i: number) => Promise<void>,
    ]
    const reserveRatios: number[] = []
    const settleRatios: number[] = []
    for (let p = 0; p < PAIRS; p++) {
      reserveRatios.push((await rate(reserveOnly)) / (await rate(rlf)))
      settleRatios.push((await rate(reserveSettle)) / (await rate(rlf)))
    }
    const median = (values: number[]) => values.sort((a, b) => a - b)[values.length >> 1]!
    return { reserve: median(reserveRatios), reserveSettle: median(settleRatios) }
  } finally {
    for (const client of clients) client.disconnect()
  }
}

/** Every key of the run: Tollgate's start with `{<prefix>`, rate-limiter-flexible's with the prefix. */
async function cleanUp(admin: Redis): Promise<number> {
  let deleted = 0
  for (const pattern of [`{${RUN}-*`, `${RUN}-*`]) deleted += await deleteMatching(admin, pattern)
  return deleted
}

export async function run(): Promise<void> {
  const admin = connect()
  try {
    await admin.connect()
  } catch (error) {
    throw new Error(`redis suite: no Redis at ${REDIS_URL} (set BENCH_REDIS_URL)`, { cause: error })
  }
  const rows: Measured[] = []
  let pairs: { reserve: number; reserveSettle: number }
  try {
    for (const [index, task] of tasks.entries()) rows.push(await measure(task, index, admin))
    pairs = await interleaved()
  } finally {
    const deleted = await cleanUp(admin)
    console.log(`deleted ${deleted.toLocaleString('en-US')} keys under ${RUN}`)
    admin.disconnect()
  }

  const row = (name: string) => rows.find((r) => r.name === name)!
  const floor = row('floor: EVALSHA return 1')
  const rlf = [row('rlf 6× consume (sequential)'), row('rlf 6× consume (Promise.all)')]
  const contenders = [
    { row: row('tollgate reserve'), target: TARGETS.reserve },
    { row: row('tollgate reserve+settle'), target: TARGETS.reserveSettle },
    { row: row('tollgate reserve (batch: true)'), target: TARGETS.reserve },
    { row: row('tollgate reserve+settle (batch: true)'), target: TARGETS.reserveSettle },
  ]
  const ratios: Record<string, number> = {}
  const p99: Record<string, { tollgateUs: number; rlfUs: number; lower: boolean }> = {}
  for (const { row: t } of contenders)
    for (const r of rlf) {
      ratios[`${t.name} / ${r.name}`] = t.opsPerSec / r.opsPerSec
      p99[`${t.name} vs ${r.name}`] = { tollgateUs: t.p99Us, rlfUs: r.p99Us, lower: t.p99Us < r.p99Us }
    }
  const vsFloor: Record<string, { throughput: number; p99: number }> = {}
  for (const r of rows)
    if (r !== floor)
      vsFloor[r.name] = { throughput: r.opsPerSec / floor.opsPerSec, p99: r.p99Us / floor.p99Us }

  printTable(
    `redis — decisions/s across ${CONCURRENCY} concurrent loops, ${TIME_MS} ms per task after ${WARMUP_MS} ms warm-up${AUTO_PIPELINING ? ', auto-pipelining' : ''}`,
    rows,
  )
  console.log('\nCPU per decision (µs): client (this process) / Redis')
  for (const r of rows)
    console.log(`  ${r.name.padEnd(38)} ${r.clientCpuUs.toFixed(1).padStart(7)} / ${r.redisCpuUs.toFixed(1)}`)
  console.log(
    `\nratios (targets: reserve ≥ ${TARGETS.reserve}×, reserve+settle ≥ ${TARGETS.reserveSettle}×):`,
  )
  for (const { row: t, target } of contenders)
    for (const r of rlf) {
      const ratio = ratios[`${t.name} / ${r.name}`]!
      console.log(
        `  ${t.name} / ${r.name}: ${ratio.toPrecision(3)}× ${ratio >= target ? 'meets' : 'misses'} the target`,
      )
    }
  console.log(
    `  interleaved, median of ${PAIRS} back-to-back pairs of ${PAIR_MS} ms against rlf 6× consume (sequential): ` +
      `reserve ${pairs.reserve.toPrecision(3)}× (${pairs.reserve >= TARGETS.reserve ? 'meets' : 'misses'}), ` +
      `reserve+settle ${pairs.reserveSettle.toPrecision(3)}× (${pairs.reserveSettle >= TARGETS.reserveSettle ? 'meets' : 'misses'})`,
  )
  console.log('\np99 (target: lower than rate-limiter-flexible):')
  for (const [name, { tollgateUs, rlfUs, lower }] of Object.entries(p99))
    console.log(
      `  ${name}: ${tollgateUs.toFixed(0)} µs vs ${rlfUs.toFixed(0)} µs ${lower ? 'meets' : 'misses'}`,
    )
  console.log('\nagainst the floor (throughput share, p99 multiple):')
  for (const [name, { throughput, p99: multiple }] of Object.entries(vsFloor))
    console.log(`  ${name}: ${(throughput * 100).toFixed(1)}% of its throughput, p99 ${multiple.toFixed(2)}×`)

  const path = new URL('./results/redis.json', import.meta.url)
  await writeJson(path, {
    suite: 'redis',
    ...environment(),
    redis: REDIS_URL.replace(/\/\/[^@/]*@/, '//'),
    options: {
      timeMs: TIME_MS,
      warmupMs: WARMUP_MS,
      concurrency: CONCURRENCY,
      autoPipelining: AUTO_PIPELINING,
      users: USERS,
      teams: TEAMS,
      orgs: ORGS,
    },
    targets: TARGETS,
    tasks: rows,
    ratios,
    interleaved: pairs,
    p99,
    vsFloor,
  })
  console.log(
    `\nload average ${loadavg()[0]!.toFixed(2)} on ${cpus().length} cores; written to ${path.pathname}`,
  )
}
