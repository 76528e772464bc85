/**
 * In-memory decisions per second: Tollgate on `memoryStore()` against six
 * rate-limiter-flexible `RateLimiterMemory` instances, for the same six limits
 * (user / team / org × requests / tokens, 60 s windows, caps nothing reaches) and
 * the same deterministic rotation over 1000 users, 50 teams and 5 orgs.
 * Every task gets fresh instances, built before its warm-up and dropped after its run.
 * See bench/README.md for what each task measures and how to read the ratios.
 */
import { execFileSync } from 'node:child_process'
import { cpus, loadavg } from 'node:os'
import { fileURLToPath } from 'node:url'
import { createTollgate, type Decision, memoryStore, type PolicyInput, type Subject } from '@tollgate/core'
import { RateLimiterMemory } from 'rate-limiter-flexible'
import { Bench, type FnOptions } from 'tinybench'
import { environment, printTable, type Row, rowOf, writeJson } from './report.js'

const TIME_MS = Number(process.env.BENCH_TIME_MS ?? 3_000)
const WARMUP_MS = Number(process.env.BENCH_WARMUP_MS ?? 1_000)
/**
 * Iterations per tinybench sample. tinybench's own cost per sample (two timer reads, an `await`,
 * storing the sample) is about 1.6 µs here, more than a whole Tollgate iteration: timing one
 * iteration per sample would mostly measure the harness and pull every ratio towards 1.
 */
const CALLS = Number(process.env.BENCH_CALLS ?? 100)
/** One sample: `CALLS` iterations of `iteration`, one after another. */
const batch =
  (iteration: () => Promise<void>): (() => Promise<void>) =>
  async () => {
    for (let i = 0; i < CALLS; i++) await iteration()
  }
/** The product's target: Tollgate reserve+settle at least this many times RLF's consume-only throughput. */
const TARGET = 2

const USERS = 1_000
const TEAMS = 50
const ORGS = 5
/** User i belongs to team i mod 50, which belongs to org (i mod 50) mod 5. */
const subjectOf = (i: number): Subject => ({
  org: `org-${(i % TEAMS) % ORGS}`,
  team: `team-${i % TEAMS}`,
  user: `user-${i}`,
})
const subjects: Subject[] = Array.from({ length: USERS }, (_, i) => subjectOf(i))
/** Users of the tasks that show how the figures change with the partitions active at once. */
const MANY_USERS = 10_000
const many: Subject[] = Array.from({ length: MANY_USERS }, (_, i) => subjectOf(i))
/** The next subject in the rotation (of `over`, the headline's users by default), one counter per task. */
const rotation = (over: Subject[] = subjects) => {
  let n = 0
  return () => over[n++ % over.length]!
}
/** A user never seen before at every call: what a long tail of users calling once each costs. */
const newcomers = () => {
  let n = 0
  return () => subjectOf(USERS + MANY_USERS + n++)
}

const LIMITS = { requests: 1e9, tokens: 1e12 }
/**
 * The six limits. The headline uses calendar minutes, a fixed window like rate-limiter-flexible's
 * (which counts `duration` seconds from a key's first hit); a second task uses rolling 60 s windows.
 */
const policy = (window: 'minute' | '60s'): PolicyInput => ({
  rules: ['user', 'team', 'org'].map((dimension) => ({
    id: dimension,
    per: dimension,
    limits: LIMITS,
    window,
  })),
})
const estimate = { inputTokens: 100, maxOutputTokens: 100 }
const usage = { inputTokens: 100, outputTokens: 80 }

/**
 * The id of an allowed decision; a refusal would mean we measured the wrong path, so it fails the
 * task. Synchronous, applied to the awaited decision: an async helper would add a promise and an
 * await to every Tollgate iteration that RLF's loop does not pay.
 */
function admitted(decision: Decision): string {
  if (!decision.allowed) throw new Error(`refused: ${decision.code} (${decision.message})`)
  return decision.id
}

/** The six limiters a rate-limiter-flexible user would set up for the same policy. */
function limiters() {
  return ['user', 'team', 'org'].flatMap((dimension) => [
    { dimension, cost: 1, limiter: new RateLimiterMemory({ points: LIMITS.requests, duration: 60 }) },
    { dimension, cost: 200, limiter: new RateLimiterMemory({ points: LIMITS.tokens, duration: 60 }) },
  ])
}

/** State built by `make` before a task's warm-up, kept for its run and dropped after it. */
function fresh<T>(make: () => T): { get: () => T; hooks: FnOptions } {
  let state: T | undefined
  return {
    get: () => state!,
    hooks: {
      beforeAll(mode) {
        if (mode === 'warmup' || state === undefined) state = make()
      },
      afterAll(mode) {
        if (mode === 'run') state = undefined
      },
    },
  }
}

const gate = () => createTollgate({ policy: policy('minute'), store: memoryStore() })
const rollingGate = () => createTollgate({ policy: policy('60s'), store: memoryStore() })

function addTasks(bench: Bench): void {
  {
    const g = fresh(gate)
    const next = rotation()
    bench.add(
      'tollgate reserve+settle',
      batch(async () => {
        const id = admitted(await g.get().reserve({ subject: next(), estimate }))
        await g.get().settle(id, usage)
      }),
      g.hooks,
    )
  }
  {
    const g = fresh(rollingGate)
    const next = rotation()
    bench.add(
      'tollgate reserve+settle (rolling 60s)',
      batch(async () => {
        const id = admitted(await g.get().reserve({ subject: next(), estimate }))
        await g.get().settle(id, usage)
      }),
      g.hooks,
    )
  }
  {
    const g = fresh(gate)
    const next = rotation()
    bench.add(
      'tollgate reserve+release',
      batch(async () => {
        await g.get().release(admitted(await g.get().reserve({ subject: next(), estimate })))
      }),
      g.hooks,
    )
  }
  {
    // tinybench runs afterEach outside the timed window: only the reserve is measured.
    const g = fresh(gate)
    const next = rotation()
    const ids: string[] = []
    bench.add(
      'tollgate reserve (release untimed)',
      batch(async () => {
        ids.push(admitted(await g.get().reserve({ subject: next(), estimate })))
      }),
      {
        ...g.hooks,
        async afterEach() {
          for (const id of ids) await g.get().release(id)
          ids.length = 0
        },
      },
    )
  }
  {
    const l = fresh(limiters)
    const next = rotation()
    bench.add(
      'rlf 6× consume (sequential)',
      batch(async () => {
        const subject = next()
        for (const { limiter, dimension, cost } of l.get()) await limiter.consume(subject[dimension]!, cost)
      }),
      l.hooks,
    )
  }
  {
    const l = fresh(limiters)
    const next = rotation()
    bench.add(
      'rlf 6× consume (Promise.all)',
      batch(async () => {
        const subject = next()
        await Promise.all(
          l.get().map(({ limiter, dimension, cost }) => limiter.consume(subject[dimension]!, cost)),
        )
      }),
      l.hooks,
    )
  }
}

/**
 * How the figures change with the partitions active at once, against RLF doing the same: run after
 * the headline and the interleaved comparison, in a bench of their own, because a new user per call
 * leaves RLF a timer per key for a minute, which slows whatever runs next.
 */
function addScaleTasks(bench: Bench): void {
  for (const [name, next] of [
    [`${MANY_USERS.toLocaleString('en-US')} users`, rotation(many)],
    ['a new user each call', newcomers()],
  ] as const) {
    const g = fresh(gate)
    bench.add(
      `tollgate reserve+settle (${name})`,
      batch(async () => {
        const id = admitted(await g.get().reserve({ subject: next(), estimate }))
        await g.get().settle(id, usage)
      }),
      g.hooks,
    )
    const l = fresh(limiters)
    bench.add(
      `rlf 6× consume (sequential, ${name})`,
      batch(async () => {
        const subject = next()
        for (const { limiter, dimension, cost } of l.get()) await limiter.consume(subject[dimension]!, cost)
      }),
      l.hooks,
    )
  }
}

/** Chunks of the interleaved comparison, and iterations per chunk. */
const CHUNKS = Number(process.env.BENCH_CHUNKS ?? 16)
const CHUNK = 50_000

/**
 * The headline against RLF's sequential consumes in alternating chunks of {@link CHUNK} iterations:
 * the median of the per-pair ratios. A 2-core VM's speed drifts over a suite's run (the same loop
 * was seen at half speed for minutes), which skews ratios of tasks measured a minute apart; pairs
 * measured back to back share the machine's state.
 */
async function interleaved(): Promise<{ ratio: number; tollgate: number; rlf: number }> {
  const gateNow = gate()
  const six = limiters()
  const nextT = rotation()
  const nextR = rotation()
  const tollgateChunk = async () => {
    for (let i = 0; i < CHUNK; i++) {
      const id = admitted(await gateNow.reserve({ subject: nextT(), estimate }))
      await gateNow.settle(id, usage)
    }
  }
  const rlfChunk = async () => {
    for (let i = 0; i < CHUNK; i++) {
      const subject = nextR()
      for (const { limiter, dimension, cost } of six) await limiter.consume(subject[dimension]!, cost)
    }
  }
  const timed = async (chunk: () => Promise<void>) => {
    const started = performance.now()
    await chunk()
    return (CHUNK / (performance.now() - started)) * 1000
  }
  await tollgateChunk() // warm-up
  await rlfChunk()
  const pairs: [number, number][] = []
  for (let i = 0; i < CHUNKS; i++) pairs.push([await timed(tollgateChunk), await timed(rlfChunk)])
  const median = (values: number[]) => values.sort((a, b) => a - b)[values.length >> 1]!
  return {
    ratio: median(pairs.map(([t, r]) => t / r)),
    tollgate: median(pairs.map(([t]) => t)),
    rlf: median(pairs.map(([, r]) => r)),
  }
}

/** Fresh processes that each run {@link interleaved}'s comparison (see {@link freshProcesses}). */
const PROCESSES = Number(process.env.BENCH_PROCESSES ?? 5)

type Pairs = { ratio: number; tollgate: number; rlf: number }

/**
 * {@link interleaved}'s comparison in {@link PROCESSES} processes of their own, one after another
 * (`interleaved.mjs`), each having run nothing else: each process's figure, and the process with the
 * median ratio. What a process ran before changes the code V8 compiles for the headline (after
 * other tasks, 10–15% slower: bench/README.md), and each process's compilation differs from the
 * next: the median of several is the figure to quote.
 */
function freshProcesses(): { median: Pairs; each: Pairs[] } {
  const script = fileURLToPath(new URL('./interleaved.mjs', import.meta.url))
  const each: Pairs[] = []
  for (let i = 0; i < PROCESSES; i++)
    each.push(JSON.parse(execFileSync(process.execPath, [script, String(CHUNKS)], { encoding: 'utf8' })))
  const sorted = [...each].sort((a, b) => a.ratio - b.ratio)
  return { median: sorted[sorted.length >> 1]!, each }
}

export async function run(): Promise<void> {
  const bench = new Bench({ name: 'memory', time: TIME_MS, warmupTime: WARMUP_MS })
  addTasks(bench)
  await bench.run()
  const rows = bench.tasks.map((task) => rowOf(task, CALLS))
  const ops = (name: string) => rows.find((r: Row) => r.name === name)!.opsPerSec
  const headline = ops('tollgate reserve+settle')
  const ratios = {
    'tollgate reserve+settle / rlf 6× consume (sequential)': headline / ops('rlf 6× consume (sequential)'),
    'tollgate reserve+settle / rlf 6× consume (Promise.all)': headline / ops('rlf 6× consume (Promise.all)'),
  }
  printTable(
    `memory — in-process decisions, ${TIME_MS} ms per task after ${WARMUP_MS} ms warm-up, ` +
      `${CALLS} iterations per sample (latencies are per iteration, averaged over a sample)`,
    rows,
  )
  console.log(`\nratios (target ≥ ${TARGET}×):`)
  for (const [name, ratio] of Object.entries(ratios))
    console.log(`  ${name}: ${ratio.toPrecision(3)}× ${ratio >= TARGET ? 'meets' : 'misses'} the target`)
  const pairs = await interleaved()
  const rate = (n: number) => `${Math.round(n).toLocaleString('en-US')}/s`
  const verdict = (ratio: number) => `${ratio >= TARGET ? 'meets' : 'misses'} the target`
  console.log(
    `  interleaved, median of ${CHUNKS} back-to-back pairs of ${CHUNK} iterations, in this process after the tasks above: ` +
      `${pairs.ratio.toPrecision(3)}× (tollgate reserve+settle ${rate(pairs.tollgate)}, ` +
      `rlf 6× consume (sequential) ${rate(pairs.rlf)}) ${verdict(pairs.ratio)}`,
  )
  const processes = freshProcesses()
  const { median } = processes
  console.log(
    `  the same in ${PROCESSES} fresh processes (${processes.each.map((p) => `${p.ratio.toPrecision(3)}×`).join(', ')}), ` +
      `median: ${median.ratio.toPrecision(3)}× (tollgate reserve+settle ${rate(median.tollgate)}, ` +
      `rlf 6× consume (sequential) ${rate(median.rlf)}) ${verdict(median.ratio)}`,
  )
  // how the figures change with the partitions active at once (no target: the headline has it)
  const scaleBench = new Bench({ name: 'memory-scale', time: TIME_MS, warmupTime: WARMUP_MS })
  addScaleTasks(scaleBench)
  await scaleBench.run()
  const scaleRows = scaleBench.tasks.map((task) => rowOf(task, CALLS))
  printTable('\nmemory — as the users taking turns grow (run after the rest)', scaleRows)
  const scaleOps = (name: string) => scaleRows.find((r: Row) => r.name === name)!.opsPerSec
  const scale: Record<string, number> = {}
  for (const name of [`${MANY_USERS.toLocaleString('en-US')} users`, 'a new user each call'])
    scale[name] =
      scaleOps(`tollgate reserve+settle (${name})`) / scaleOps(`rlf 6× consume (sequential, ${name})`)
  console.log('\nscale (tollgate reserve+settle / rlf 6× consume, sequential; no target):')
  for (const [name, ratio] of Object.entries(scale)) console.log(`  ${name}: ${ratio.toPrecision(3)}×`)
  const path = new URL('./results/memory.json', import.meta.url)
  await writeJson(path, {
    suite: 'memory',
    ...environment(),
    options: {
      timeMs: TIME_MS,
      warmupMs: WARMUP_MS,
      callsPerSample: CALLS,
      users: USERS,
      teams: TEAMS,
      orgs: ORGS,
    },
    target: TARGET,
    tasks: rows,
    ratios,
    scaleTasks: scaleRows,
    scale,
    interleaved: pairs,
    fresh: processes,
  })
  console.log(
    `\nload average ${loadavg()[0]!.toFixed(2)} on ${cpus().length} cores; written to ${path.pathname}`,
  )
}
